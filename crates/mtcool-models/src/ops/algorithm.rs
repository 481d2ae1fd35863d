//! Which algorithm the fast `conv2d` uses for a convolution: im2col + GEMM, Winograd's
//! F(2×2, 3×3), or the direct 3 × 3 kernels.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::LazyLock;

use super::{direct, winograd};

/// How the fast `conv2d` picks its algorithm, for the whole process ([`set_conv_algorithm`]).
///
/// The algorithms round differently, so a choice other than [`ConvAlgorithm::Auto`] changes
/// results in the last digits: it is for comparing them (`examples/conv_bench.rs`), not for
/// everyday use.
///
/// [`set_conv_algorithm`]: super::set_conv_algorithm
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// The fastest for the layer's shape, as measured on 2 threads (the default): Winograd for
    /// wide 3 × 3 stride-1 layers, the direct kernels for narrow ones, im2col + GEMM for the
    /// rest.
    Auto,
    /// im2col + GEMM for every convolution.
    Im2col,
    /// Winograd for every 3 × 3, stride-1 convolution with padding at most 2; im2col for the
    /// rest.
    Winograd,
    /// The direct kernels for every 3 × 3, stride-1 convolution with padding at most 2; im2col
    /// for the rest.
    Direct,
}

impl ConvAlgorithm {
    /// Parses `auto`, `im2col`, `winograd` or `direct` (the values of `MTCOOL_CONV`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "auto" => Some(Self::Auto),
            "im2col" => Some(Self::Im2col),
            "winograd" => Some(Self::Winograd),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }
}

/// The process-wide choice, as `ConvAlgorithm as u8`; `MTCOOL_CONV` sets the initial value
/// (anything unknown means `auto`).
static CHOICE: LazyLock<AtomicU8> = LazyLock::new(|| {
    let choice = std::env::var("MTCOOL_CONV")
        .ok()
        .and_then(|v| ConvAlgorithm::parse(&v))
        .unwrap_or(ConvAlgorithm::Auto);
    AtomicU8::new(choice as u8)
});

/// The process-wide choice.
pub(super) fn current() -> ConvAlgorithm {
    match CHOICE.load(Ordering::Relaxed) {
        1 => ConvAlgorithm::Im2col,
        2 => ConvAlgorithm::Winograd,
        3 => ConvAlgorithm::Direct,
        _ => ConvAlgorithm::Auto,
    }
}

/// Sets the process-wide choice.
pub(super) fn set(choice: ConvAlgorithm) {
    CHOICE.store(choice as u8, Ordering::Relaxed);
}

/// The algorithm one convolution runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    Im2col,
    Winograd,
    Direct,
}

/// The shape of a convolution, as far as the choice of algorithm goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConvShape {
    /// Kernel side.
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub cin: usize,
    pub cout: usize,
    /// Output columns.
    pub wo: usize,
}

/// The algorithm for a convolution of `shape` under the process-wide choice.
pub(super) fn pick(shape: ConvShape) -> Kernel {
    pick_with(current(), shape)
}

fn pick_with(choice: ConvAlgorithm, shape: ConvShape) -> Kernel {
    let ConvShape {
        k,
        stride,
        pad,
        cin,
        cout,
        wo,
    } = shape;
    // Both 3 × 3 paths read at most 2 columns of zero padding on each side.
    if k != 3 || stride != 1 || pad > 2 {
        return Kernel::Im2col;
    }
    match choice {
        ConvAlgorithm::Im2col => Kernel::Im2col,
        ConvAlgorithm::Winograd => Kernel::Winograd,
        ConvAlgorithm::Direct => Kernel::Direct,
        ConvAlgorithm::Auto if winograd::wide(cin, cout) => Kernel::Winograd,
        ConvAlgorithm::Auto if direct::narrow(cin, cout, wo) => Kernel::Direct,
        ConvAlgorithm::Auto => Kernel::Im2col,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick_for(
        choice: ConvAlgorithm,
        (k, stride, pad): (usize, usize, usize),
        c: usize,
    ) -> Kernel {
        let shape = ConvShape {
            k,
            stride,
            pad,
            cin: c,
            cout: c,
            wo: 256,
        };
        pick_with(choice, shape)
    }

    #[test]
    fn auto_picks_by_shape_and_forced_choices_fall_back_to_im2col() {
        let auto = |kind, c| pick_for(ConvAlgorithm::Auto, kind, c);
        assert_eq!(auto((3, 1, 1), 16), Kernel::Direct);
        assert_eq!(auto((3, 1, 1), 256), Kernel::Winograd);
        assert_eq!(auto((5, 1, 0), 16), Kernel::Im2col);
        assert_eq!(auto((3, 2, 1), 16), Kernel::Im2col);
        let small = ConvShape {
            k: 3,
            stride: 1,
            pad: 1,
            cin: 32,
            cout: 64,
            wo: 64,
        };
        assert_eq!(pick_with(ConvAlgorithm::Auto, small), Kernel::Im2col);
        // Forced choices on 512 channels: taken where the 3 × 3 paths apply, im2col elsewhere.
        let forced = [
            (ConvAlgorithm::Direct, (3, 1, 2), Kernel::Direct),
            (ConvAlgorithm::Winograd, (3, 1, 0), Kernel::Winograd),
            (ConvAlgorithm::Winograd, (3, 1, 3), Kernel::Im2col),
            (ConvAlgorithm::Im2col, (3, 1, 1), Kernel::Im2col),
        ];
        for (choice, kind, want) in forced {
            assert_eq!(pick_for(choice, kind, 512), want, "{choice:?} {kind:?}");
        }
        assert_eq!(ConvAlgorithm::parse(" direct"), Some(ConvAlgorithm::Direct));
        assert_eq!(ConvAlgorithm::parse("fast"), None);
    }
}
