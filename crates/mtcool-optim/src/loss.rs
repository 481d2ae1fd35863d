//! Task losses and MT-COOL's similarity term, over class scores on dimension 1.
//!
//! Logits are `(N, C)` for classification or `(N, C, …)` for dense prediction; targets hold
//! class indices (`u32`) of shape `(N, …)`. Both functions average over every sample (and
//! pixel).

use candle_core::{DType, Result, Tensor};

/// Log-softmax over the class dimension 1, for any number of trailing dimensions.
fn log_softmax_dim1(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let log_sum = shifted.exp()?.sum_keepdim(1)?.log()?;
    shifted.broadcast_sub(&log_sum)
}

/// Mean cross-entropy between `logits` and the class indices `target`.
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.rank() == 2 {
        return candle_nn::loss::cross_entropy(logits, target);
    }
    let log_p = log_softmax_dim1(logits)?;
    let picked = log_p.gather(&target.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    picked.mean_all()?.neg()
}

/// Mean over samples (and pixels) of KL(P ‖ Q) between the class distributions
/// `P = softmax(reference)` and `Q = softmax(perturbed)`. Zero when the logits agree.
pub fn kl_divergence(reference: &Tensor, perturbed: &Tensor) -> Result<Tensor> {
    let log_p = log_softmax_dim1(reference)?;
    let log_q = log_softmax_dim1(perturbed)?;
    let per_position = (log_p.exp()? * (&log_p - log_q)?)?.sum(1)?;
    per_position.mean_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn kl_is_zero_for_equal_and_positive_for_different_logits() {
        let a = Tensor::new(&[[1f32, 2., 3.], [0., 0., 1.]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[3f32, 2., 1.], [0., 1., 0.]], &Device::Cpu).unwrap();
        let same = kl_divergence(&a, &a).unwrap().to_scalar::<f32>().unwrap();
        assert!(same.abs() < 1e-7);
        let diff = kl_divergence(&a, &b).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff > 0.1);
    }

    #[test]
    fn dense_cross_entropy_equals_flattened_classification() {
        let dev = Device::Cpu;
        let logits = Tensor::new(
            &[[[0.5f32, -1.0], [2.0, 0.1]], [[0.3, 0.2], [-0.4, 1.5]]],
            &dev,
        )
        .unwrap()
        .unsqueeze(0)
        .unwrap(); // (1, 2 classes, 2, 2)
        let target = Tensor::new(&[[[0u32, 1], [1, 0]]], &dev).unwrap();
        let dense = cross_entropy(&logits, &target)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let flat_logits = logits
            .permute((0, 2, 3, 1))
            .unwrap()
            .reshape((4, 2))
            .unwrap();
        let flat = cross_entropy(&flat_logits, &target.flatten_all().unwrap())
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((dense - flat).abs() < 1e-6, "{dense} vs {flat}");
    }
}
