//! The shapes of a stride-1 3 × 3 convolution, shared by its Winograd and direct paths.

/// A stride-1 3 × 3 correlation of `(N, Cin, H, W)` with padding `pad` into
/// `(N, Cout, Ho, Wo)`, `Ho = H + 2·pad − 2`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plane {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub pad: usize,
}

impl Plane {
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad - 2
    }

    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad - 2
    }

    /// The same shapes seen from the output gradient: `(N, Cout, Ho, Wo)` → `(N, Cin, H, W)`
    /// with padding `2 − pad` (the input gradient's correlation).
    pub(super) fn transposed(&self) -> Self {
        Self {
            n: self.n,
            cin: self.cout,
            h: self.ho(),
            w: self.wo(),
            cout: self.cin,
            pad: 2 - self.pad,
        }
    }
}
