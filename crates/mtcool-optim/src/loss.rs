//! Task losses and MT-COOL's similarity term.
//!
//! The target's dtype says what a task predicts: integer targets hold class indices, of
//! shape `(N,)` for classification or `(N, …)` for dense prediction, against logits `(N, C)`
//! or `(N, C, …)` (class scores on dimension 1); `f32` targets are regression targets of the
//! output's shape (head boxes, image reconstruction). Every function averages over samples
//! (and pixels).

use candle_core::{DType, Result, Tensor};

/// Log-softmax over the class dimension 1, for any number of trailing dimensions.
fn log_softmax_dim1(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let log_sum = shifted.exp()?.sum_keepdim(1)?.log()?;
    shifted.broadcast_sub(&log_sum)
}

/// A task's training loss: cross-entropy for integer (class) targets, mean squared error for
/// `f32` (regression) targets.
pub fn task_loss(output: &Tensor, target: &Tensor) -> Result<Tensor> {
    if target.dtype().is_float() {
        mean_squared_error(output, target)
    } else {
        cross_entropy(output, target)
    }
}

/// MT-COOL's similarity term between the clean and the perturbed outputs of a task: the KL
/// divergence of the class distributions for class targets; for regression targets, half the
/// mean squared difference (the KL divergence of two unit-variance Gaussians).
pub fn output_divergence(
    reference: &Tensor,
    perturbed: &Tensor,
    target: &Tensor,
) -> Result<Tensor> {
    if target.dtype().is_float() {
        mean_squared_error(perturbed, reference)? * 0.5
    } else {
        kl_divergence(reference, perturbed)
    }
}

/// Mean squared error over every element.
pub fn mean_squared_error(output: &Tensor, target: &Tensor) -> Result<Tensor> {
    output.sub(target)?.sqr()?.mean_all()
}

/// Mean cross-entropy between `logits` and the class indices `target`. In dense targets,
/// pixels whose label is not a class (e.g. 255 for A/V crossings) are ignored: the mean runs
/// over the labelled pixels only.
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.rank() == 2 {
        return candle_nn::loss::cross_entropy(logits, &target.to_dtype(DType::U32)?);
    }
    let classes = logits.dim(1)? as f64;
    let target = target.to_dtype(DType::U32)?;
    let labelled = target.to_dtype(DType::F32)?.lt(classes)?;
    let all_labelled = labelled.to_dtype(DType::F32)?.sum_all()?;
    let count = all_labelled.to_scalar::<f32>()?;
    let log_p = log_softmax_dim1(logits)?;
    if count as usize == target.elem_count() {
        let picked = log_p.gather(&target.unsqueeze(1)?, 1)?;
        return picked.mean_all()?.neg();
    }
    let safe = labelled.where_cond(&target, &target.zeros_like()?)?;
    let picked = log_p.gather(&safe.unsqueeze(1)?, 1)?.squeeze(1)?;
    let kept = picked.mul(&labelled.to_dtype(picked.dtype())?)?;
    kept.sum_all()?.neg()? / f64::from(count.max(1.0))
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
    fn ignored_pixels_do_not_count() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[[[0.5f32, -1.0]], [[2.0, 0.1]]]], &dev).unwrap(); // (1,2,1,2)
        let both = Tensor::new(&[[[1u32, 0]]], &dev).unwrap();
        let first = Tensor::new(&[[[1u32, 255]]], &dev).unwrap();
        let only_first = Tensor::new(&[[[[0.5f32]], [[2.0]]]], &dev).unwrap();
        let target_first = Tensor::new(&[[[1u32]]], &dev).unwrap();
        let masked = cross_entropy(&logits, &first)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let alone = cross_entropy(&only_first, &target_first)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let full = cross_entropy(&logits, &both)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((masked - alone).abs() < 1e-6, "{masked} vs {alone}");
        assert!((masked - full).abs() > 1e-3);
    }

    #[test]
    fn float_targets_give_mean_squared_error() {
        let dev = Device::Cpu;
        let out = Tensor::new(&[[1f32, 2.], [3., 4.]], &dev).unwrap();
        let target = Tensor::new(&[[1f32, 0.], [3., 6.]], &dev).unwrap();
        let loss = task_loss(&out, &target)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss - 2.0).abs() < 1e-6);
        let div = output_divergence(&target, &out, &target)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((div - 1.0).abs() < 1e-6);
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
