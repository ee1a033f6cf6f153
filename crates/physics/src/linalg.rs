//! A small dense LU solver for the membrane Newton systems (4 to ~100 unknowns). Written
//! here rather than calling LAPACK: the systems are tiny, it allocates nothing, and it keeps
//! the physics crate free of a BLAS link.

/// Solves `a x = b` in place by LU with partial pivoting; `a` is row-major `m x m` and is
/// overwritten, `b` becomes `x`. Returns `false` if `a` is numerically singular.
pub(crate) fn lu_solve(a: &mut [f64], b: &mut [f64], m: usize) -> bool {
    debug_assert_eq!(a.len(), m * m);
    debug_assert_eq!(b.len(), m);
    let scale = a.iter().fold(0.0_f64, |s, v| s.max(v.abs()));
    if !(scale > 0.0) || !scale.is_finite() {
        return false;
    }
    for k in 0..m {
        let (mut p, mut best) = (k, a[k * m + k].abs());
        for i in k + 1..m {
            let v = a[i * m + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if best <= scale * 1e-300 || !best.is_finite() {
            return false;
        }
        if p != k {
            for j in 0..m {
                a.swap(k * m + j, p * m + j);
            }
            b.swap(k, p);
        }
        let pivot = a[k * m + k];
        for i in k + 1..m {
            let factor = a[i * m + k] / pivot;
            if factor != 0.0 {
                for j in k + 1..m {
                    a[i * m + j] -= factor * a[k * m + j];
                }
                b[i] -= factor * b[k];
            }
        }
    }
    for k in (0..m).rev() {
        let mut s = b[k];
        for j in k + 1..m {
            s -= a[k * m + j] * b[j];
        }
        b[k] = s / a[k * m + k];
    }
    b.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_system_that_needs_pivoting() {
        let mut a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0];
        let x = [1.0, -2.0, 3.0];
        let mut b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        assert!(lu_solve(&mut a, &mut b, 3));
        for (bi, xi) in b.iter().zip(x) {
            assert!((bi - xi).abs() < 1e-14);
        }
    }

    #[test]
    fn reports_a_singular_matrix() {
        let mut a = vec![1.0, 2.0, 2.0, 4.0];
        let mut b = vec![1.0, 2.0];
        assert!(!lu_solve(&mut a, &mut b, 2));
    }
}
