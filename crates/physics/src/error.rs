//! Typed errors of the physics crate. Every failure says which sub-problem failed and why;
//! a returned solution never contains NaN.

use std::fmt;

/// The sub-problem of a DSPM-DE solve in which a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Donnan equilibrium at the pore entrance (feed side).
    DonnanEntrance,
    /// Donnan equilibrium at the pore exit (permeate side).
    DonnanExit,
    /// Activity coefficients (Davies) at a pore mouth.
    Activity,
    /// The coupled membrane residual (Nernst-Planck, electroneutrality, polarisation).
    Membrane,
    /// Concentration polarisation in the feed-side film.
    Polarisation,
    /// The water-flux (Hagen-Poiseuille) root in pressure-driven mode.
    WaterFlux,
    /// The 0D module mass balance between inlet and outlet.
    Module,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Stage::DonnanEntrance => "Donnan equilibrium at the pore entrance",
            Stage::DonnanExit => "Donnan equilibrium at the pore exit",
            Stage::Activity => "activity coefficients in the pore",
            Stage::Membrane => "membrane transport (Nernst-Planck) solve",
            Stage::Polarisation => "concentration polarisation",
            Stage::WaterFlux => "water flux (Hagen-Poiseuille) solve",
            Stage::Module => "0D module mass balance",
        };
        f.write_str(s)
    }
}

/// Everything that can go wrong in the physics crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PhysicsError {
    /// An ion name that is not in the database.
    #[error("unknown ion '{name}' (known: {known})")]
    UnknownIon { name: String, known: String },
    /// A parameter outside its valid range.
    #[error("invalid {field} = {value}: {expected}")]
    InvalidParameter {
        field: String,
        value: String,
        expected: String,
    },
    /// The bulk feed carries a net charge.
    #[error(
        "feed is not electroneutral: sum(z*c) = {imbalance:+.6e} eq/m3 ({relative:.2e} of the total charge {total:.6e} eq/m3); \
         fix the concentrations or balance the feed with one ion"
    )]
    NotElectroneutral {
        imbalance: f64,
        relative: f64,
        total: f64,
    },
    /// An ion that cannot enter the pore at all.
    #[error("ion {ion}: Stokes radius {stokes_radius_m:e} m is not smaller than the pore radius {pore_radius_m:e} m")]
    IonLargerThanPore {
        ion: String,
        stokes_radius_m: f64,
        pore_radius_m: f64,
    },
    /// An iterative solve ran out of iterations or stalled.
    #[error("{stage} did not converge: {reason}")]
    NoConvergence { stage: Stage, reason: String },
    /// The equations have no physical (positive, finite) solution for these inputs.
    #[error("no physical solution ({stage}): {reason}")]
    NoSolution { stage: Stage, reason: String },
}

impl PhysicsError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        PhysicsError::InvalidParameter {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// The stage of a solver failure, if this is one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            PhysicsError::NoConvergence { stage, .. } | PhysicsError::NoSolution { stage, .. } => {
                Some(*stage)
            }
            _ => None,
        }
    }
}

/// Result alias of the physics crate.
pub type Result<T> = std::result::Result<T, PhysicsError>;

/// Checks that `value` is finite and strictly positive.
pub(crate) fn require_positive(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PhysicsError::invalid(field, value, "a finite number > 0"))
    }
}
