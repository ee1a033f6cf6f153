//! Weight initialisation draws from SplitMix64 (`rand_xoshiro`, whose streams are fixed
//! by the algorithm), so a model's initial weights are a pure function of its config and
//! seed on every platform.

use rand_xoshiro::rand_core::{RngCore, SeedableRng};

pub(crate) struct SplitMix64(rand_xoshiro::SplitMix64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(rand_xoshiro::SplitMix64::seed_from_u64(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[-a, a)`.
    pub(crate) fn uniform(&mut self, a: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        a * (2.0 * u - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream of the hand-written SplitMix64 this module used before (every saved
    /// initialisation depends on it).
    #[test]
    fn the_stream_is_the_published_one() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
