//! Paired differences: two methods run with the same seeds (same split, initialisation and
//! batch order per seed) are compared seed by seed, which removes the between-seed variance
//! their unpaired means share.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The mean of the per-seed differences a − b with its two-sided 95 % Student-t interval,
/// mean ± t(0.975, n − 1)·sd/√n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    /// Seeds in both.
    pub n: usize,
    /// Mean of the differences.
    pub mean: f64,
    /// Their sample sd (n − 1).
    pub sd: f64,
    /// Lower end of the 95 % interval (`NaN` for fewer than two pairs).
    pub low: f64,
    /// Upper end of the 95 % interval (`NaN` for fewer than two pairs).
    pub high: f64,
}

impl PairedDifference {
    /// Whether the interval lies wholly above or below 0.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// The paired difference of `a` − `b`, each a list of (seed, value); seeds present in only one
/// are left out. `None` when no seed is in both.
pub fn paired_difference(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<PairedDifference> {
    let diffs: Vec<f64> = a
        .iter()
        .filter_map(|(seed, x)| b.iter().find(|(s, _)| s == seed).map(|(_, y)| x - y))
        .collect();
    let n = diffs.len();
    if n == 0 {
        return None;
    }
    let (mean, sd) = crate::mean_std(&diffs);
    let (low, high) = if n < 2 {
        (f64::NAN, f64::NAN)
    } else {
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .map_or(f64::NAN, |dist| dist.inverse_cdf(0.975));
        let half = t * sd / (n as f64).sqrt();
        (mean - half, mean + half)
    };
    Some(PairedDifference {
        n,
        mean,
        sd,
        low,
        high,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_pairs_give_the_t_interval() {
        let a = [(0, 0.91), (1, 0.93), (2, 0.92), (3, 0.95), (4, 0.94)];
        let b = [
            (4, 0.93),
            (3, 0.93),
            (2, 0.92),
            (1, 0.92),
            (0, 0.90),
            (9, 0.1),
        ];
        let d = paired_difference(&a, &b).unwrap_or_else(|| panic!("pairs"));
        assert_eq!(d.n, 5);
        // differences 0.01, 0.01, 0, 0.02, 0.01: mean 0.01, sd √(0.0002/4)
        assert!((d.mean - 0.01).abs() < 1e-12);
        let sd = (0.0002f64 / 4.0).sqrt();
        assert!((d.sd - sd).abs() < 1e-12);
        // t(0.975, 4) = 2.776445
        let half = 2.776_445 * sd / 5f64.sqrt();
        assert!((d.low - (0.01 - half)).abs() < 1e-6, "{d:?}");
        assert!((d.high - (0.01 + half)).abs() < 1e-6, "{d:?}");
        assert!(d.excludes_zero());
    }

    #[test]
    fn one_pair_has_no_interval_and_none_has_no_difference() {
        let d = paired_difference(&[(0, 0.5)], &[(0, 0.25)]).unwrap_or_else(|| panic!("one"));
        assert_eq!((d.n, d.mean, d.sd), (1, 0.25, 0.0));
        assert!(d.low.is_nan() && !d.excludes_zero());
        assert!(paired_difference(&[(0, 0.5)], &[(1, 0.5)]).is_none());
    }
}
