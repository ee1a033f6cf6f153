//! Small fixed-capacity shapes (rank 0 to 3) and right-aligned broadcasting.
//!
//! Rank 3 (`[batch, rows, cols]`) is all the model needs: attention scores are `[B, S, S]`,
//! tokens `[B, S, d]`. A fixed array keeps `Shape` `Copy` and allocation-free.

use crate::error::{AdError, Result};
use std::fmt;

/// Highest rank a tensor on the tape may have.
pub const MAX_RANK: usize = 3;

/// The shape of a dense row-major tensor: up to [`MAX_RANK`] extents, each at least 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// A shape from its extents. Errors on rank above 3 or a zero extent.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        if dims.len() > MAX_RANK {
            return Err(AdError::Dims {
                dims: dims.to_vec(),
                why: "rank above 3",
            });
        }
        if dims.contains(&0) {
            return Err(AdError::Dims {
                dims: dims.to_vec(),
                why: "zero extent",
            });
        }
        let mut d = [1; MAX_RANK];
        d[..dims.len()].copy_from_slice(dims);
        Ok(Shape {
            dims: d,
            rank: dims.len() as u8,
        })
    }

    /// The rank-0 shape of a scalar (one element).
    pub const fn scalar() -> Shape {
        Shape {
            dims: [1; MAX_RANK],
            rank: 0,
        }
    }

    /// The extents, one per axis.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// Extent of `axis` (panics if out of range; callers check first).
    pub fn dim(&self, axis: usize) -> usize {
        self.dims()[axis]
    }

    /// Extent of the last axis (1 for a scalar).
    pub fn last(&self) -> usize {
        if self.rank == 0 {
            1
        } else {
            self.dims[self.rank as usize - 1]
        }
    }

    /// The extents left-padded with ones to rank 3, so loops can always be three deep.
    pub(crate) fn padded(&self) -> [usize; MAX_RANK] {
        let r = self.rank as usize;
        let mut p = [1; MAX_RANK];
        p[MAX_RANK - r..].copy_from_slice(&self.dims[..r]);
        p
    }

    /// Split around `axis`: (product of extents before, extent, product after).
    pub(crate) fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let d = self.dims();
        (
            d[..axis].iter().product(),
            d[axis],
            d[axis + 1..].iter().product(),
        )
    }

    /// The same shape with one extent replaced.
    pub(crate) fn with_dim(mut self, axis: usize, n: usize) -> Shape {
        self.dims[axis] = n;
        self
    }

    /// The shape with `axis` removed.
    pub(crate) fn without_axis(&self, axis: usize) -> Shape {
        let mut d = [1; MAX_RANK];
        let mut r = 0;
        for (i, &e) in self.dims().iter().enumerate() {
            if i != axis {
                d[r] = e;
                r += 1;
            }
        }
        Shape {
            dims: d,
            rank: r as u8,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shape{:?}", self.dims())
    }
}

impl TryFrom<&[usize]> for Shape {
    type Error = AdError;
    fn try_from(d: &[usize]) -> Result<Shape> {
        Shape::new(d)
    }
}

impl<const N: usize> TryFrom<[usize; N]> for Shape {
    type Error = AdError;
    fn try_from(d: [usize; N]) -> Result<Shape> {
        Shape::new(&d)
    }
}

impl<const N: usize> TryFrom<&[usize; N]> for Shape {
    type Error = AdError;
    fn try_from(d: &[usize; N]) -> Result<Shape> {
        Shape::new(d)
    }
}

/// How two shapes broadcast against each other (numpy rules, right-aligned, rank <= 3).
///
/// Element `(i, j, k)` of the output reads `a[i*sa[0] + j*sa[1] + k*sa[2]]` and likewise
/// for `b`; a broadcast axis has stride 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bcast {
    pub out: Shape,
    pub dims: [usize; MAX_RANK],
    pub sa: [usize; MAX_RANK],
    pub sb: [usize; MAX_RANK],
    /// Both operands already have the output's shape: a plain zip.
    pub same: bool,
}

fn strides_in(p: [usize; MAX_RANK], out: [usize; MAX_RANK]) -> [usize; MAX_RANK] {
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
        Ok(Bcast {
            out,
            dims,
            sa: strides_in(pa, dims),
            sb: strides_in(pb, dims),
            same: a == b,
        })
    }

    /// Visit every output element with (output index, index into a, index into b).
    #[inline(always)]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let [d0, d1, d2] = self.dims;
        let (sa, sb) = (self.sa, self.sb);
        let mut o = 0;
        for i in 0..d0 {
            for j in 0..d1 {
                let ba = i * sa[0] + j * sa[1];
                let bb = i * sb[0] + j * sb[1];
                for k in 0..d2 {
                    f(o, ba + k * sa[2], bb + k * sb[2]);
                    o += 1;
                }
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
        assert!(Shape::new(&[1, 2, 3, 4]).is_err());
        assert!(Shape::new(&[0, 2]).is_err());
        assert_eq!(s(&[2, 3, 4]).without_axis(1), s(&[2, 4]));
        assert_eq!(s(&[2, 3, 4]).split_at_axis(1), (2, 3, 4));
    }
}
