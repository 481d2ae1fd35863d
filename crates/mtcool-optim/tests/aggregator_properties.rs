//! Properties every Gramian aggregator should have, checked on random Gramians in the spirit
//! of torchjd's aggregator tests: permutation equivariance of the weights, the claimed
//! behaviour under scaling of G, non-conflicting updates (g_i · d ≥ 0) where the method claims
//! them, and finite output on rank-deficient and zero Gramians.
#![allow(clippy::unwrap_used)]

use mtcool_optim::aggregators::{
    aligned, cagrad, con_fig, db_mtl, dualproj, fairgrad, imtl, mgda, moco, modo, nash, sdmgrad,
    upgrad,
};
use mtcool_optim::Result;
use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

type Rule = fn(&DMatrix<f64>) -> Result<DVector<f64>>;

/// An aggregator under test. `scaling_power`: its weights change as w(cG) = c^power · w(G)
/// (Nash-MTL normalises G first, so it is scale-invariant; FairGrad's G w = w^(−1/α) gives
/// c^(−α/(α+1))); `None` for the stochastic rules whose one step from uniform weights is no
/// power law of the scale (MoCo, MoDo) or is invariant only up to an ε (SDMGrad).
struct Aggregator {
    name: &'static str,
    rule: Rule,
    scaling_power: Option<f64>,
    non_conflicting: bool,
}

fn uniform(k: usize) -> DVector<f64> {
    DVector::from_element(k, 1.0 / k as f64)
}

fn aggregators() -> Vec<Aggregator> {
    let all: [(&str, Rule, Option<f64>, bool); 13] = [
        ("mgda", mgda::min_norm_weights, Some(0.0), true),
        (
            "cagrad",
            |g| cagrad::weights(g, 0.4, true),
            Some(0.0),
            false,
        ),
        ("imtl", imtl::gradient_weights, Some(0.0), false),
        ("nash-mtl", |g| nash::weights(g, 20), Some(0.0), true),
        (
            "aligned-mtl",
            |g| aligned::weights(g, &DVector::from_element(g.nrows(), 1.0), None),
            Some(0.0),
            false,
        ),
        ("upgrad", upgrad::weights, Some(0.0), true),
        ("dualproj", dualproj::weights, Some(0.0), true),
        (
            "fairgrad",
            |g| fairgrad::weights(g, 2.0),
            Some(-2.0 / 3.0),
            true,
        ),
        ("con-fig", con_fig::weights, Some(0.0), true),
        ("db-mtl", db_mtl::weights, Some(0.0), false),
        (
            "moco",
            |g| moco::update_weights(g, &uniform(g.nrows()), 0.1, 0.0),
            None,
            false,
        ),
        (
            "modo",
            |g| modo::update_weights(g, &uniform(g.nrows()), 0.01, 0.1),
            None,
            false,
        ),
        (
            "sdmgrad",
            |g| {
                sdmgrad::weights(
                    &sdmgrad::normalised_cross_gramian(g),
                    &uniform(g.nrows()),
                    0.3,
                    20,
                )
            },
            None,
            false,
        ),
    ];
    all.into_iter()
        .map(|(name, rule, scaling_power, non_conflicting)| Aggregator {
            name,
            rule,
            scaling_power,
            non_conflicting,
        })
        .collect()
}

/// J J ᵀ for a random K×d Jacobian J.
fn random_gramian(k: usize, d: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    let j: DMatrix<f64> = DMatrix::from_fn(k, d, |_, _| StandardNormal.sample(rng));
    &j * j.transpose()
}

fn cases(seed: u64) -> Vec<DMatrix<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..12)
        .map(|i| random_gramian(2 + i % 4, 6 + i, &mut rng))
        .collect()
}

fn close(a: &DVector<f64>, b: &DVector<f64>, tol: f64) -> bool {
    (a - b).amax() <= tol * (1.0 + b.amax())
}

#[test]
fn weights_are_permutation_equivariant() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for agg in aggregators() {
        for g in cases(1) {
            let k = g.nrows();
            let mut order: Vec<usize> = (0..k).collect();
            order.shuffle(&mut rng);
            let permuted = DMatrix::from_fn(k, k, |a, b| g[(order[a], order[b])]);
            let w = (agg.rule)(&g).unwrap();
            let wp = (agg.rule)(&permuted).unwrap();
            let expected = DVector::from_fn(k, |a, _| w[order[a]]);
            assert!(
                close(&wp, &expected, 1e-6),
                "{}: {wp} vs {expected}",
                agg.name
            );
        }
    }
}

#[test]
fn weights_scale_as_each_method_says() {
    for agg in aggregators() {
        let Some(power) = agg.scaling_power else {
            continue;
        };
        for g in cases(2) {
            for c in [1e-3, 10.0] {
                let w = (agg.rule)(&g).unwrap();
                let scaled = (agg.rule)(&(&g * c)).unwrap();
                let expected = &w * c.powf(power);
                assert!(
                    close(&scaled, &expected, 1e-6),
                    "{} at c = {c}: {scaled} vs {expected}",
                    agg.name
                );
            }
        }
    }
}

#[test]
fn updates_do_not_conflict_where_the_method_claims_it() {
    for agg in aggregators().into_iter().filter(|a| a.non_conflicting) {
        for g in cases(3) {
            let w = (agg.rule)(&g).unwrap();
            let projections = &g * &w; // g_i · d for d = Σ_j w_j g_j
            let scale = g.amax() * w.amax();
            assert!(
                projections.iter().all(|p| *p >= -1e-9 * scale),
                "{}: g_i·d = {projections}",
                agg.name
            );
        }
    }
}

#[test]
fn rank_deficient_and_zero_gramians_give_finite_weights_or_a_clear_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut deficient: Vec<DMatrix<f64>> = (0..6)
        .map(|i| random_gramian(3 + i % 3, 1 + i % 2, &mut rng))
        .collect();
    // Two identical gradients and a zero one.
    let j = DMatrix::from_row_slice(3, 3, &[1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    deficient.push(&j * j.transpose());
    for agg in aggregators() {
        for g in &deficient {
            match (agg.rule)(g) {
                Ok(w) => assert!(w.iter().all(|x| x.is_finite()), "{}: {w}", agg.name),
                // IMTL-G refuses, by design, Gramians whose equal-projection system is
                // singular or that hold a zero gradient (its unit vector is undefined).
                Err(e) => {
                    assert_eq!(agg.name, "imtl", "{e}");
                    assert!(!e.to_string().contains('\n'));
                }
            }
        }
        match (agg.rule)(&DMatrix::zeros(3, 3)) {
            Ok(w) => assert!(w.iter().all(|x| x.is_finite()), "{}: {w}", agg.name),
            // Nash-MTL's equation has no solution when every gradient is zero.
            Err(e) => {
                assert!(
                    ["nash-mtl", "imtl"].contains(&agg.name),
                    "{}: {e}",
                    agg.name
                );
                assert!(!e.to_string().contains('\n'));
            }
        }
    }
}
