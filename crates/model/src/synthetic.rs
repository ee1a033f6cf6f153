//! Synthetic batches of the `train_step` benchmark (`BENCH.md`), for tests and benchmarks:
//! random masks of 2..S ions with at least one cation and one anion, electroneutral feeds
//! log-uniform in 1..200 mol/m3 (anions rescaled together to balance the cations' charge,
//! so a few land slightly outside the range), flux uniform in 2e-6..3e-5 m/s, and the
//! deterministic target `c_p = 0.5 c_f` (the targets do not change the cost of a step).
//! A pure function of the seed.

use crate::config::ModelConfig;
use crate::slots::Batch;
use ionode_random::SplitMix64;
use ndarray::{Array1, Array2};

/// A synthetic batch of `b` samples over `cfg`'s slots (needs a cation and an anion slot).
pub fn batch(cfg: &ModelConfig, b: usize, seed: u64) -> Batch {
    let z = cfg.charges();
    let s = z.len();
    assert!(
        z.iter().any(|&q| q > 0.0) && z.iter().any(|&q| q < 0.0),
        "synthetic batches need a cation and an anion slot"
    );
    let mut r = SplitMix64::new(seed);
    let mut unit = move || (r.symmetric(1.0) + 1.0) / 2.0;
    let mut feed = Array2::zeros((b, s));
    let mut mask = Array2::from_elem((b, s), false);
    let mut flux = Array1::zeros(b);
    for i in 0..b {
        let n = 2 + ((unit() * (s - 1) as f64) as usize).min(s - 2);
        loop {
            // Random subset of size n: a partial Fisher-Yates shuffle.
            let mut idx: Vec<usize> = (0..s).collect();
            for k in 0..n {
                let j = k + ((unit() * (s - k) as f64) as usize).min(s - k - 1);
                idx.swap(k, j);
            }
            let pick = &idx[..n];
            if pick.iter().any(|&j| z[j] > 0.0) && pick.iter().any(|&j| z[j] < 0.0) {
                for j in 0..s {
                    mask[[i, j]] = pick.contains(&j);
                }
                break;
            }
        }
        let (mut qp, mut qn) = (0.0, 0.0);
        for j in 0..s {
            if mask[[i, j]] {
                let c = (unit() * 200f64.ln()).exp();
                feed[[i, j]] = c;
                if z[j] > 0.0 {
                    qp += z[j] * c;
                } else {
                    qn -= z[j] * c;
                }
            }
        }
        for j in 0..s {
            if mask[[i, j]] && z[j] < 0.0 {
                feed[[i, j]] *= qp / qn;
            }
        }
        flux[i] = 2e-6 + unit() * (3e-5 - 2e-6);
    }
    let target = feed.mapv(|c| 0.5 * c);
    Batch::new(feed, mask, flux).with_target(target)
}
