//! Positional encoding of the ion slots (added to each token's embedding).
//!
//! Attention is permutation-equivariant, so without an encoding the head could not tell
//! Na+ from Cl- except through the token features; the encoding gives every slot identity.

/// The fixed sinusoidal table `[S, d]`, row-major: feature `2k` of slot `p` is
/// `sin(p / base^(2k/d))`, feature `2k+1` is `cos(p / base^(2k/d))` (the transformer's).
pub fn sinusoidal(slots: usize, d: usize, base: f64) -> Vec<f64> {
    let mut out = vec![0.0; slots * d];
    for p in 0..slots {
        for k in 0..d {
            let freq = base.powf(-((2 * (k / 2)) as f64) / d as f64);
            let a = p as f64 * freq;
            out[p * d + k] = if k % 2 == 0 { a.sin() } else { a.cos() };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoidal_rows_are_distinct_and_bounded() {
        let t = sinusoidal(7, 16, 10_000.0);
        assert_eq!(t[0], 0.0); // sin(0)
        assert_eq!(t[1], 1.0); // cos(0)
        assert!(t.iter().all(|v| v.abs() <= 1.0));
        for a in 0..7 {
            for b in 0..a {
                let d: f64 = (0..16).map(|k| (t[a * 16 + k] - t[b * 16 + k]).abs()).sum();
                assert!(d > 1e-3, "slots {a} and {b} share an encoding");
            }
        }
    }
}
