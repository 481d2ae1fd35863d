//! Element loops compiled for the CPU they run on.
//!
//! The workspace builds for the baseline x86-64 instruction set (SSE2), so the compiler
//! vectorises the ops' plain loops (im2col / col2im copies and sums, BatchNorm's passes) four
//! floats at a time. [`vectorized`] runs a closure through `pulp`'s run-time dispatch, which
//! inlines it into a copy compiled for AVX-512 or AVX2/FMA where the CPU has them. The
//! arithmetic is the same in every copy (Rust neither reassociates nor fuses floating-point
//! operations), so the results do not depend on the instruction set.

/// `f()`, compiled for the best instruction set of this CPU. `f` must be a closure marked
/// `#[inline(always)]`, and what it calls must be `#[inline(always)]` too: pulp's dispatcher
/// only helps code inlined into it, and the compiler does not inline a large closure on its
/// own (perf then shows it as a `{{closure}}` of its own, running the baseline code).
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `Σ f(v)` with eight f32 partial sums (vectorised, and more accurate on long rows than one
/// chain); `#[inline(always)]` so that it runs in the caller's [`vectorized`] copy.
#[inline(always)]
pub(crate) fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut lanes = xs.chunks_exact(8);
    for chunk in &mut lanes {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    lanes.remainder().iter().map(|&v| f(v)).sum::<f32>() + acc.iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_closure_once_and_returns_its_value() {
        let mut calls = 0;
        let sum = vectorized(
            #[inline(always)]
            || {
                calls += 1;
                (1..=100).map(|i| i as f32).sum::<f32>()
            },
        );
        assert_eq!((sum, calls), (5050.0, 1));
    }
}
