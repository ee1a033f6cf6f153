//! Gaussian noise augmentation of the targets from their stated uncertainty (MODEL.md
//! section 3, after the predecessor paper, arXiv 2303.04594): each epoch of fine-tuning
//! sees `c_p + sd * N(0, 1)`, clipped at 0, instead of the measured mean, so the model is
//! not asked to fit measurement noise more tightly than it was measured.
//!
//! The normal draws come from the version-stable generator of `ionode-random`, so an
//! augmented epoch is the same on every machine and after dependency upgrades.

use ionode_random::{stream_seed, Rng};
use ndarray::{Array2, ArrayView2, Zip};

/// Mixed into the augmentation stream's seed (distinct from batch and split streams).
const AUGMENT_STREAM_SALT: u64 = 0x6175_676d_656e_7421;

/// `targets + sd * N(0, 1)` per entry, clipped at 0 (concentrations are non-negative).
/// Entries with `sd = 0` (unknown uncertainty, absent ions) are returned unchanged, but
/// still consume their draws, so the noise of one entry does not depend on the others'
/// uncertainties. Panics if the shapes differ.
pub fn augment(targets: ArrayView2<f64>, sd: ArrayView2<f64>, rng: &mut Rng) -> Array2<f64> {
    assert_eq!(targets.dim(), sd.dim(), "targets and sd shapes differ");
    let mut out = targets.to_owned();
    Zip::from(&mut out).and(&sd).for_each(|t, &s| {
        let e = rng.normal();
        if s > 0.0 {
            *t = (*t + s * e).max(0.0);
        }
    });
    out
}

/// [`augment`] with the stream of `(seed, epoch)`: the same noise for the same epoch of the
/// same run, fresh noise every epoch.
pub fn augment_epoch(
    targets: ArrayView2<f64>,
    sd: ArrayView2<f64>,
    seed: u64,
    epoch: u64,
) -> Array2<f64> {
    let mut rng = Rng::new(stream_seed(seed ^ AUGMENT_STREAM_SALT, epoch));
    augment(targets, sd, &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_stated_mean_and_spread() {
        let n = 20_000;
        let targets = Array2::from_shape_fn((n, 2), |(_, j)| if j == 0 { 10.0 } else { 3.0 });
        let sd = Array2::from_shape_fn((n, 2), |(_, j)| if j == 0 { 0.5 } else { 0.0 });
        let a = augment_epoch(targets.view(), sd.view(), 42, 0);
        let col = a.column(0);
        let mean = col.sum() / n as f64;
        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // Standard error of the mean 0.5 / sqrt(20000) = 0.0035; of the sd about 0.0025.
        assert!((mean - 10.0).abs() < 0.015, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.012, "sd {}", var.sqrt());
        assert!(
            a.column(1).iter().all(|&x| x == 3.0),
            "sd 0 leaves the target"
        );
    }

    #[test]
    fn deterministic_per_seed_and_epoch_and_clipped() {
        let targets = Array2::from_elem((50, 3), 0.1);
        let sd = Array2::from_elem((50, 3), 1.0);
        let a = augment_epoch(targets.view(), sd.view(), 1, 3);
        assert_eq!(a, augment_epoch(targets.view(), sd.view(), 1, 3));
        assert_ne!(a, augment_epoch(targets.view(), sd.view(), 1, 4));
        assert_ne!(a, augment_epoch(targets.view(), sd.view(), 2, 3));
        assert!(a.iter().all(|&x| x >= 0.0));
        assert!(a.iter().any(|&x| x == 0.0), "large noise clips some at 0");
    }
}
