//! DWA, Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019): loss weights from the
//! rate at which each task's epoch-mean loss falls.
//!
//! w_k(t) = K · exp(r_k / T) / Σ_i exp(r_i / T), r_k = L̄_k(t−1) / L̄_k(t−2) on epoch-mean
//! training losses; w = 1 for the first two epochs (lorenmt/mtan; LibMTL `weighting/DWA.py`).

use super::{check_finite, fail};
use crate::error::Result;

const METHOD: &str = "dwa";

/// This epoch's loss weights (they sum to K) from the last two epochs' mean losses.
///
/// `last` = L̄(t−1), `before_last` = L̄(t−2). If either is `None` (the first two epochs) the
/// weights are all 1, K being taken from the one that is given; if both are `None` the task
/// count is unknown and this returns an error, so callers start from K ones and keep them.
/// Losses must be finite, `before_last` positive, and `temperature` finite and > 0. The
/// softmax is computed stably (max-shifted).
pub fn weights(
    last: Option<&[f64]>,
    before_last: Option<&[f64]>,
    temperature: f64,
) -> Result<Vec<f64>> {
    if !temperature.is_finite() || temperature <= 0.0 {
        return Err(fail(
            METHOD,
            format!("the temperature must be finite and > 0, got {temperature}"),
        ));
    }
    let (last, before) = match (last, before_last) {
        (Some(l), Some(b)) => (l, b),
        (Some(x), None) | (None, Some(x)) => return Ok(vec![1.0; x.len()]),
        (None, None) => {
            return Err(fail(
                METHOD,
                "no epoch losses yet: the number of tasks is unknown (use K ones)",
            ))
        }
    };
    let k = last.len();
    if k == 0 {
        return Err(fail(METHOD, "no tasks"));
    }
    check_finite(METHOD, "last-epoch losses", last, k)?;
    check_finite(METHOD, "losses of the epoch before", before, k)?;
    if let Some((i, v)) = before.iter().enumerate().find(|(_, v)| **v <= 0.0) {
        return Err(fail(
            METHOD,
            format!("task {i}'s mean loss two epochs ago is {v}: the ratio needs it > 0"),
        ));
    }
    let scaled: Vec<f64> = last
        .iter()
        .zip(before)
        .map(|(l, b)| l / b / temperature)
        .collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scaled.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    Ok(exp.iter().map(|e| k as f64 * e / total).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_two_epochs_are_uniform() {
        assert_eq!(
            weights(None, Some(&[1.0, 2.0, 3.0]), 2.0).unwrap(),
            vec![1.0; 3]
        );
        assert_eq!(weights(Some(&[1.0, 2.0]), None, 2.0).unwrap(), vec![1.0; 2]);
        assert!(weights(None, None, 2.0).is_err());
    }

    #[test]
    fn third_epoch_by_hand() {
        // r = (0.5/1.0, 0.9/1.0) = (0.5, 0.9); T = 2: exp(0.25), exp(0.45).
        // w_1 = 2 e^{0.25}/(e^{0.25} + e^{0.45}) = 2/(1 + e^{0.2}) = 0.900332…
        let w = weights(Some(&[0.5, 0.9]), Some(&[1.0, 1.0]), 2.0).unwrap();
        let w1 = 2.0 / (1.0 + 0.2f64.exp());
        assert!((w[0] - w1).abs() < 1e-15 && (w[1] - (2.0 - w1)).abs() < 1e-15);
        assert!((w1 - 0.900_332_005_375_044_3).abs() < 1e-12);
        // Equal ratios give uniform weights summing to K.
        let w = weights(Some(&[2.0, 4.0, 6.0]), Some(&[4.0, 8.0, 12.0]), 2.0).unwrap();
        assert!(w.iter().all(|v| (v - 1.0).abs() < 1e-15));
    }

    #[test]
    fn bad_inputs() {
        assert!(weights(Some(&[1.0, 1.0]), Some(&[1.0]), 2.0).is_err());
        assert!(weights(Some(&[1.0, f64::NAN]), Some(&[1.0, 1.0]), 2.0).is_err());
        assert!(weights(Some(&[1.0, 1.0]), Some(&[0.0, 1.0]), 2.0).is_err());
        assert!(weights(Some(&[1.0]), Some(&[1.0]), 0.0).is_err());
        assert!(weights(Some(&[]), Some(&[]), 2.0).is_err());
    }
}
