//! Paired comparisons of two configurations over the seeds they share.
//!
//! The runs of one replicate seed share their data split and initial draws, so two
//! configurations are compared on the differences of their paired per-seed values: the
//! paired t-test (Student's t distribution from `statrs`) with the 95 % interval of the
//! mean difference, and the Wilcoxon signed-rank test (exact distribution of the rank sum
//! for up to 25 nonzero differences without ties, else the normal approximation with the
//! tie correction). Both are two-sided. With 5 seeds the exact Wilcoxon test cannot go
//! below p = 0.0625, so at the 5 % level only the t-test can call a difference
//! significant; the tables say which test marks "best".

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use std::collections::BTreeMap;

/// The level at which a difference is called significant.
pub const ALPHA: f64 = 0.05;

/// A paired comparison of `a - b` over shared seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Seeds both have.
    pub n: usize,
    /// Mean of the differences a - b.
    pub mean_diff: f64,
    /// 95 % t-interval of the mean difference (NaN for n < 2).
    pub ci95: (f64, f64),
    /// t statistic and two-sided p (NaN when n < 2; p = 1 when every difference is 0, 0
    /// when they are equal and nonzero).
    pub t: f64,
    pub p_t: f64,
    /// Wilcoxon's W+ (sum of the ranks of positive differences) and two-sided p.
    pub w_plus: f64,
    pub p_wilcoxon: f64,
}

impl Paired {
    /// Compares the per-seed values of two configurations (seed -> value); seeds only one
    /// has are left out.
    pub fn of(a: &BTreeMap<u64, f64>, b: &BTreeMap<u64, f64>) -> Paired {
        let d: Vec<f64> = a
            .iter()
            .filter_map(|(s, x)| b.get(s).map(|y| x - y))
            .collect();
        let (t, p_t, ci95) = t_test(&d);
        let (w_plus, p_wilcoxon) = wilcoxon(&d);
        Paired {
            n: d.len(),
            mean_diff: mean(&d),
            ci95,
            t,
            p_t,
            w_plus,
            p_wilcoxon,
        }
    }

    /// Whether the t-test calls the difference significant at [`ALPHA`].
    pub fn significant(&self) -> bool {
        self.p_t < ALPHA
    }
}

fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        f64::NAN
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Paired t-test on differences: (t, two-sided p, 95 % interval of the mean).
fn t_test(d: &[f64]) -> (f64, f64, (f64, f64)) {
    let n = d.len();
    if n < 2 {
        return (f64::NAN, f64::NAN, (f64::NAN, f64::NAN));
    }
    let m = mean(d);
    let var = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n - 1 >= 1 degrees of freedom");
    let q = dist.inverse_cdf(0.975);
    if se == 0.0 {
        let p = if m == 0.0 { 1.0 } else { 0.0 };
        let t = if m == 0.0 {
            0.0
        } else {
            m.signum() * f64::INFINITY
        };
        return (t, p, (m, m));
    }
    let t = m / se;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    (t, p.min(1.0), (m - q * se, m + q * se))
}

/// Wilcoxon signed-rank test: (W+, two-sided p). Zero differences are dropped.
fn wilcoxon(d: &[f64]) -> (f64, f64) {
    let mut nz: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return (0.0, 1.0);
    }
    nz.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Average ranks of |d| (1-based), with tie groups.
    let mut ranks = vec![0.0; n];
    let mut ties = false;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && nz[j + 1].abs() == nz[i].abs() {
            j += 1;
        }
        let r = (i + j + 2) as f64 / 2.0;
        for rank in &mut ranks[i..=j] {
            *rank = r;
        }
        let t = (j - i + 1) as f64;
        if t > 1.0 {
            ties = true;
            tie_term += t * t * t - t;
        }
        i = j + 1;
    }
    let w_plus: f64 = nz
        .iter()
        .zip(&ranks)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let p = if !ties && n <= 25 {
        // Exact: counts of rank subsets with each sum.
        let max = n * (n + 1) / 2;
        let mut counts = vec![0f64; max + 1];
        counts[0] = 1.0;
        for k in 1..=n {
            for s in (k..=max).rev() {
                counts[s] += counts[s - k];
            }
        }
        let all = 2f64.powi(n as i32);
        let w = w_plus.min(total - w_plus).round() as usize;
        let tail: f64 = counts[..=w].iter().sum::<f64>() / all;
        (2.0 * tail).min(1.0)
    } else {
        let mu = total / 2.0;
        let sigma = ((n * (n + 1) * (2 * n + 1)) as f64 / 24.0 - tie_term / 48.0).sqrt();
        if sigma == 0.0 {
            1.0
        } else {
            let z = ((w_plus - mu).abs() - 0.5).max(0.0) / sigma;
            let normal = Normal::new(0.0, 1.0).expect("the standard normal");
            (2.0 * (1.0 - normal.cdf(z))).min(1.0)
        }
    };
    (w_plus, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(v: &[f64]) -> BTreeMap<u64, f64> {
        v.iter().enumerate().map(|(i, x)| (i as u64, *x)).collect()
    }

    /// Values of scipy.stats.ttest_rel and wilcoxon (exact) on the same numbers.
    #[test]
    fn paired_tests_match_textbook_values() {
        let a = seeds(&[0.52, 0.61, 0.48, 0.57, 0.55]);
        let b = seeds(&[0.50, 0.55, 0.47, 0.50, 0.51]);
        let p = Paired::of(&a, &b);
        // d = [0.02, 0.06, 0.01, 0.07, 0.04]: mean 0.04, sd 0.025495, se 0.011402.
        assert_eq!(p.n, 5);
        assert!((p.mean_diff - 0.04).abs() < 1e-12);
        assert!((p.t - 3.508_232).abs() < 1e-5, "{}", p.t);
        assert!((p.p_t - 0.024_711).abs() < 1e-5, "{}", p.p_t);
        // t(0.975, 4) = 2.776445.
        assert!((p.ci95.0 - (0.04 - 2.776_445 * 0.011_401_75)).abs() < 1e-6);
        // Every difference positive: W+ = 15, exact p = 2 / 32.
        assert_eq!(p.w_plus, 15.0);
        assert!((p.p_wilcoxon - 0.0625).abs() < 1e-12);
        assert!(p.significant());
    }

    #[test]
    fn noise_is_not_significant_and_seeds_pair_up() {
        let a = seeds(&[0.10, 0.12, 0.09, 0.11, 0.10]);
        let b = seeds(&[0.11, 0.10, 0.10, 0.12, 0.09]);
        let p = Paired::of(&a, &b);
        assert!(!p.significant(), "{p:?}");
        assert!(p.p_wilcoxon > 0.5, "{p:?}");
        // Seeds only one side has are ignored.
        let mut c = b.clone();
        c.insert(99, 5.0);
        assert_eq!(Paired::of(&a, &c), p);
        // No difference at all.
        let same = Paired::of(&a, &a);
        assert_eq!((same.p_t, same.p_wilcoxon), (1.0, 1.0));
        assert!(Paired::of(&seeds(&[1.0]), &seeds(&[2.0])).p_t.is_nan());
    }

    #[test]
    fn wilcoxon_with_ties_uses_the_corrected_normal_approximation() {
        // d = [1, 1, -1, 2, 2, 2, 3]: ties, so the normal approximation (scipy's
        // wilcoxon(method="approx", correction=True) gives 0.048583).
        let (w, p) = wilcoxon(&[1.0, 1.0, -1.0, 2.0, 2.0, 2.0, 3.0]);
        assert_eq!(w, 26.0);
        assert!((p - 0.048_583).abs() < 1e-5, "{p}");
    }
}
