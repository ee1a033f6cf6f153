//! Donnan equilibrium at a pore mouth.
//!
//! With bath concentrations `c_s` (activity `gamma_s`) and pore activities `gamma_p`, the pore
//! side holds `c_p,i = c_s,i Phi_i Phi_B,i (gamma_s,i / gamma_p,i) exp(-z_i phi)` and is
//! electroneutral with the fixed charge: `sum z_i c_p,i + X = 0`. For fixed activities the
//! left side is strictly decreasing in the dimensionless potential `phi = F psi / RT`, so a
//! safeguarded Newton on `phi` converges from any start. This runs in the innermost loop of
//! every solve (many times per point), so it is written out here, allocation-free, rather than
//! going through argmin's executor (whose state keeps a `HashMap` of evaluation counts).

use crate::activity::{ionic_strength_molal, ActivityModel};

/// Solves `sum_i z_i b_i exp(-z_i phi) + x = 0` for `phi`, starting from `guess`.
/// Returns `None` if there is no root (e.g. no counter-ion can balance the fixed charge) or
/// the iteration fails.
pub(crate) fn donnan_potential(z: &[f64], b: &[f64], x: f64, guess: f64) -> Option<f64> {
    // A root exists iff g(-inf) > 0 > g(+inf).
    let has_pos = z.iter().zip(b).any(|(z, b)| *z > 0.0 && *b > 0.0);
    let has_neg = z.iter().zip(b).any(|(z, b)| *z < 0.0 && *b > 0.0);
    let upper_ok = has_pos || x > 0.0;
    let lower_ok = has_neg || x < 0.0;
    if !(upper_ok && lower_ok) {
        return None;
    }
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut phi = if guess.is_finite() { guess } else { 0.0 };
    for _ in 0..200 {
        let (mut g, mut dg, mut mag) = (x, 0.0, x.abs());
        for (z, b) in z.iter().zip(b) {
            let t = b * (-z * phi).exp();
            g += z * t;
            dg -= z * z * t;
            mag += z.abs() * t;
        }
        if !g.is_finite() || !dg.is_finite() {
            // Overflow far from the root: step back towards the bracket.
            phi = if lo.is_finite() && hi.is_finite() {
                0.5 * (lo + hi)
            } else if g.is_nan() {
                0.5 * phi
            } else if g > 0.0 {
                phi + 1.0
            } else {
                phi - 1.0
            };
            continue;
        }
        if g.abs() <= 1e-15 * mag {
            return Some(phi);
        }
        if g > 0.0 {
            lo = phi;
        } else {
            hi = phi;
        }
        let mut next = phi - g / dg;
        // Limit the step where the exponentials would change by more than e^2 per unit z.
        next = next.clamp(phi - 2.0, phi + 2.0);
        if lo.is_finite() && hi.is_finite() && !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - phi).abs() <= 1e-15 * (1.0 + phi.abs()) {
            return Some(next);
        }
        phi = next;
    }
    None
}

/// Inputs of a mouth solve that do not change within one point solve.
pub(crate) struct Mouth<'a> {
    pub z: &'a [f64],
    /// Phi * Phi_B per ion.
    pub partition: &'a [f64],
    pub molar_mass: &'a [f64],
    pub activity: ActivityModel,
    pub davies_a: f64,
    /// Membrane charge X, mol/m3.
    pub x: f64,
}

/// Why a mouth solve failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MouthFailure {
    NoRoot,
    ActivityDiverged,
    NoWater,
}

/// Scratch buffers of a mouth solve.
#[derive(Debug, Clone, Default)]
pub(crate) struct MouthScratch {
    b: Vec<f64>,
    ln_gamma_pore: Vec<f64>,
}

impl MouthScratch {
    pub fn new(n: usize) -> Self {
        MouthScratch {
            b: vec![0.0; n],
            ln_gamma_pore: vec![0.0; n],
        }
    }
}

impl Mouth<'_> {
    /// Solves the pore-side concentrations `c_pore` and returns `phi` (pore minus bath
    /// potential, dimensionless). `ln_gamma_bath` are the bath's activity coefficients.
    /// With Davies activities the pore coefficients depend on the pore ionic strength `I`,
    /// which is found as the scalar fixed point `I = I(c_pore(I))` by a safeguarded secant.
    pub fn solve(
        &self,
        c_bath: &[f64],
        ln_gamma_bath: &[f64],
        phi_guess: f64,
        scratch: &mut MouthScratch,
        c_pore: &mut [f64],
    ) -> Result<f64, MouthFailure> {
        match self.activity {
            ActivityModel::Ideal => {
                for i in 0..c_bath.len() {
                    scratch.b[i] = c_bath[i] * self.partition[i];
                }
                let phi = donnan_potential(self.z, &scratch.b, self.x, phi_guess)
                    .ok_or(MouthFailure::NoRoot)?;
                self.fill_pore(&scratch.b, phi, c_pore);
                Ok(phi)
            }
            ActivityModel::Davies => {
                self.solve_davies(c_bath, ln_gamma_bath, phi_guess, scratch, c_pore)
            }
        }
    }

    fn fill_pore(&self, b: &[f64], phi: f64, c_pore: &mut [f64]) {
        for i in 0..b.len() {
            c_pore[i] = b[i] * (-self.z[i] * phi).exp();
        }
    }

    /// One evaluation of the ionic-strength map: given pore activities for strength
    /// `sqrt_i`-derived coefficients, solve Donnan and return the resulting strength.
    fn strength_map(
        &self,
        ionic_strength: f64,
        c_bath: &[f64],
        ln_gamma_bath: &[f64],
        phi: &mut f64,
        scratch: &mut MouthScratch,
        c_pore: &mut [f64],
    ) -> Result<f64, MouthFailure> {
        let s = ionic_strength.max(0.0).sqrt();
        let bracket = s / (1.0 + s) - 0.3 * ionic_strength;
        for i in 0..c_bath.len() {
            let ln_g = -std::f64::consts::LN_10 * self.davies_a * self.z[i] * self.z[i] * bracket;
            scratch.ln_gamma_pore[i] = ln_g;
            scratch.b[i] = c_bath[i] * self.partition[i] * (ln_gamma_bath[i] - ln_g).exp();
        }
        *phi = donnan_potential(self.z, &scratch.b, self.x, *phi).ok_or(MouthFailure::NoRoot)?;
        self.fill_pore(&scratch.b, *phi, c_pore);
        ionic_strength_molal(self.z, self.molar_mass, c_pore).ok_or(MouthFailure::NoWater)
    }

    fn solve_davies(
        &self,
        c_bath: &[f64],
        ln_gamma_bath: &[f64],
        phi_guess: f64,
        scratch: &mut MouthScratch,
        c_pore: &mut [f64],
    ) -> Result<f64, MouthFailure> {
        let mut phi = phi_guess;
        // Start from the ideal pore's strength (activities of strength 0 are 1).
        let mut i0 = self.strength_map(0.0, c_bath, ln_gamma_bath, &mut phi, scratch, c_pore)?;
        let mut h0 = self.strength_map(i0, c_bath, ln_gamma_bath, &mut phi, scratch, c_pore)? - i0;
        let mut i1 = i0 + h0;
        // Bracket of the root of h(I) = map(I) - I (h(0) > 0; h decreases eventually).
        let (mut lo, mut hi) = (0.0_f64, f64::INFINITY);
        if h0 > 0.0 {
            lo = i0;
        } else {
            hi = i0;
        }
        for _ in 0..100 {
            let h1 = self.strength_map(i1, c_bath, ln_gamma_bath, &mut phi, scratch, c_pore)? - i1;
            if h1.abs() <= 1e-14 * i1.max(1e-12) {
                return Ok(phi);
            }
            if h1 > 0.0 {
                lo = lo.max(i1);
            } else {
                hi = hi.min(i1);
            }
            let mut next = if h1 != h0 {
                i1 - h1 * (i1 - i0) / (h1 - h0)
            } else {
                i1 + h1
            };
            if !(next > lo && next < hi && next.is_finite()) {
                next = if hi.is_finite() {
                    0.5 * (lo + hi)
                } else {
                    i1 + h1
                };
            }
            i0 = i1;
            h0 = h1;
            i1 = next;
        }
        Err(MouthFailure::ActivityDiverged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn donnan_of_symmetric_salt_has_closed_form() {
        // 1:1 salt, c Phi = b: b e^{-phi} - b e^{phi} + X = 0 -> phi = asinh(X / 2b).
        let (b, x) = (10.0, -27.0);
        let phi = donnan_potential(&[1.0, -1.0], &[b, b], x, 0.0).unwrap();
        assert!((phi - (x / (2.0 * b)).asinh()).abs() < 1e-14, "{phi}");
    }

    #[test]
    fn donnan_from_far_guesses_converges() {
        let z = [1.0, 2.0, -1.0, -2.0];
        let b = [30.0, 1e-3, 20.0, 1e-4];
        let x = -680.0;
        let reference = donnan_potential(&z, &b, x, 0.0).unwrap();
        for guess in [-40.0, -5.0, 5.0, 40.0] {
            let phi = donnan_potential(&z, &b, x, guess).unwrap();
            assert!(
                (phi - reference).abs() < 1e-12,
                "{guess}: {phi} vs {reference}"
            );
        }
        let g: f64 = z
            .iter()
            .zip(b)
            .map(|(z, b)| z * b * (-z * reference).exp())
            .sum::<f64>()
            + x;
        assert!(g.abs() < 1e-10, "{g}");
    }

    #[test]
    fn donnan_without_counter_ion_has_no_root() {
        assert!(donnan_potential(&[-1.0], &[10.0], -5.0, 0.0).is_none());
    }
}
