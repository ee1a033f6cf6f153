//! Small fixed-capacity shapes (rank 0 to 3).
//!
//! Rank 3 (`[batch, rows, cols]`) is all the model needs: attention scores are `[B, S, S]`,
//! tokens `[B, S, d]`. A fixed array keeps `Shape` `Copy` and allocation-free.

use std::fmt;

/// Highest rank a tensor on the tape may have.
pub const MAX_RANK: usize = 3;

/// A dimension list that cannot be a [`Shape`] (rank above 3 or a zero extent); it
/// becomes [`crate::AdError::Dims`] wherever a shape is made for an op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dimensions {dims:?}: {why}")]
pub struct DimsError {
    /// The offending dimensions.
    pub dims: Vec<usize>,
    /// What rule was broken.
    pub why: &'static str,
}

/// The shape of a dense row-major tensor: up to [`MAX_RANK`] extents, each at least 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// A shape from its extents. Errors on rank above 3 or a zero extent.
    pub fn new(dims: &[usize]) -> Result<Shape, DimsError> {
        if dims.len() > MAX_RANK {
            return Err(DimsError {
                dims: dims.to_vec(),
                why: "rank above 3",
            });
        }
        if dims.contains(&0) {
            return Err(DimsError {
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
    type Error = DimsError;
    fn try_from(d: &[usize]) -> Result<Shape, DimsError> {
        Shape::new(d)
    }
}

impl<const N: usize> TryFrom<[usize; N]> for Shape {
    type Error = DimsError;
    fn try_from(d: [usize; N]) -> Result<Shape, DimsError> {
        Shape::new(&d)
    }
}

impl<const N: usize> TryFrom<&[usize; N]> for Shape {
    type Error = DimsError;
    fn try_from(d: &[usize; N]) -> Result<Shape, DimsError> {
        Shape::new(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_and_reshaped() {
        let s = |d: &[usize]| Shape::new(d).unwrap();
        assert!(Shape::new(&[1, 2, 3, 4]).is_err());
        assert!(Shape::new(&[0, 2]).is_err());
        assert_eq!(s(&[2, 3, 4]).without_axis(1), s(&[2, 4]));
        assert_eq!(s(&[2, 3, 4]).split_at_axis(1), (2, 3, 4));
    }
}
