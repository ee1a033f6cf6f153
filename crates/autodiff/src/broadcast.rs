//! Right-aligned (numpy) broadcasting of two shapes, planned once when an op is recorded.

use crate::error::{AdError, Result};
use crate::shape::{Shape, MAX_RANK};

/// How two shapes broadcast against each other (numpy rules, right-aligned, rank <= 3).
///
/// Element `(i, j, k)` of the output reads `a[i*sa[0] + j*sa[1] + k*sa[2]]` and likewise
/// for `b`; a broadcast axis has stride 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bcast {
    pub out: Shape,
    /// Iteration extents after merging adjacent axes (not the output's padded shape).
    pub dims: [usize; MAX_RANK],
    pub sa: [usize; MAX_RANK],
    pub sb: [usize; MAX_RANK],
    /// Both operands already have the output's shape: a plain zip.
    pub same: bool,
}

/// Strides (over the rank-3-padded axes) for reading a tensor of padded extents `p`
/// broadcast to padded extents `out`: broadcast axes get stride 0.
pub(crate) fn strides_in(p: [usize; MAX_RANK], out: [usize; MAX_RANK]) -> [usize; MAX_RANK] {
    let mut s = [0; MAX_RANK];
    let mut acc = 1;
    for ax in (0..MAX_RANK).rev() {
        s[ax] = if p[ax] == 1 && out[ax] != 1 { 0 } else { acc };
        acc *= p[ax];
    }
    s
}

impl Bcast {
    pub fn new(op: &'static str, a: Shape, b: Shape) -> Result<Bcast> {
        let (pa, pb) = (a.padded(), b.padded());
        let mut dims = [1; MAX_RANK];
        for ax in 0..MAX_RANK {
            dims[ax] = match (pa[ax], pb[ax]) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(AdError::Shape {
                        op,
                        lhs: a,
                        rhs: b,
                        why: "extents differ and neither is 1 (broadcasting is right-aligned)",
                    })
                }
            };
        }
        let rank = a.rank().max(b.rank());
        let out = Shape::new(&dims[MAX_RANK - rank..])?;
        let (mut sa, mut sb) = (strides_in(pa, dims), strides_in(pb, dims));
        // Merge adjacent axes that both operands traverse the same way (both contiguous or
        // both broadcast), so rows get as long as possible: [B, S, d] + [S, d] becomes
        // [B, S*d] + [S*d].
        for _ in 0..2 {
            for ax in [1, 0] {
                let inner = dims[ax + 1];
                if sa[ax] == sa[ax + 1] * inner && sb[ax] == sb[ax + 1] * inner {
                    dims[ax + 1] *= dims[ax];
                    // Shift the outer axes one step in.
                    for k in (1..=ax).rev() {
                        dims[k] = dims[k - 1];
                        sa[k] = sa[k - 1];
                        sb[k] = sb[k - 1];
                    }
                    dims[0] = 1;
                    sa[0] = 0;
                    sb[0] = 0;
                }
            }
        }
        Ok(Bcast {
            out,
            dims,
            sa,
            sb,
            same: a == b,
        })
    }

    /// Visit every output element with (output index, index into a, index into b).
    #[cfg(test)]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        self.for_each_row(|o, ia, ib| {
            for k in 0..self.dims[2] {
                f(o + k, ia + k * self.sa[2], ib + k * self.sb[2]);
            }
        });
    }

    /// Visit every row along the (merged) last axis with the start indices into the output,
    /// a and b. Inside a row, `a` advances by `sa[2]` and `b` by `sb[2]` (each 0 or 1).
    #[inline(always)]
    pub fn for_each_row(&self, mut f: impl FnMut(usize, usize, usize)) {
        let [d0, d1, d2] = self.dims;
        let (sa, sb) = (self.sa, self.sb);
        let mut o = 0;
        for i in 0..d0 {
            for j in 0..d1 {
                f(o, i * sa[0] + j * sa[1], i * sb[0] + j * sb[1]);
                o += d2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let s = |d: &[usize]| Shape::new(d).unwrap();
        assert_eq!(
            Bcast::new("t", s(&[4, 3]), s(&[3])).unwrap().out,
            s(&[4, 3])
        );
        assert_eq!(
            Bcast::new("t", s(&[4, 3]), s(&[4, 1])).unwrap().out,
            s(&[4, 3])
        );
        assert_eq!(
            Bcast::new("t", s(&[]), s(&[2, 4, 3])).unwrap().out,
            s(&[2, 4, 3])
        );
        assert_eq!(
            Bcast::new("t", s(&[2, 1, 3]), s(&[5, 1])).unwrap().out,
            s(&[2, 5, 3])
        );
        let e = Bcast::new("add", s(&[4, 3]), s(&[4]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[4, 3]") && e.contains("[4]"), "{e}");
        // Axis merging keeps the element mapping of plain numpy broadcasting.
        let cases: [(&[usize], &[usize]); 6] = [
            (&[2, 3, 4], &[3, 4]),
            (&[2, 3, 4], &[2, 3, 1]),
            (&[2, 3, 4], &[2, 1, 4]),
            (&[2, 1, 4], &[3, 1]),
            (&[5, 7], &[5, 1]),
            (&[], &[2, 3, 4]),
        ];
        for (da, db) in cases {
            let (a, b) = (s(da), s(db));
            let plan = Bcast::new("t", a, b).unwrap();
            let (pa, pb, po) = (a.padded(), b.padded(), plan.out.padded());
            let mut seen = 0;
            plan.for_each(|o, i, j| {
                let idx = [o / (po[1] * po[2]), (o / po[2]) % po[1], o % po[2]];
                let lin = |p: [usize; 3]| {
                    let c: Vec<usize> =
                        (0..3).map(|k| if p[k] == 1 { 0 } else { idx[k] }).collect();
                    (c[0] * p[1] + c[1]) * p[2] + c[2]
                };
                assert_eq!((i, j), (lin(pa), lin(pb)), "{da:?} {db:?} at {o}");
                seen += 1;
            });
            assert_eq!(seen, plan.out.numel());
        }
    }
}
