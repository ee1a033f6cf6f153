//! Pressure-driven mode: the water flux `J_v` that satisfies Hagen-Poiseuille,
//! `J_v = L_p (dP - (pi_m - pi_p))`, found as a bracketed 1-D root with argmin's Brent
//! solver. Each evaluation is a full flux-driven point solve, warm-started from the last.

use crate::error::{require_positive, PhysicsError, Result, Stage};
use crate::point::{Drive, PointSolution, PointSolver};
use argmin::core::{CostFunction, Executor, State};
use argmin::solver::brent::BrentRoot;
use std::cell::RefCell;

impl PointSolver {
    /// Solves the point for a drive.
    pub fn solve(&mut self, drive: Drive) -> Result<PointSolution> {
        match drive {
            Drive::Flux { jv_m_s } => {
                require_positive("water flux Jv_m_s", jv_m_s)?;
                if jv_m_s > 1e-2 {
                    return Err(PhysicsError::invalid(
                        "water flux Jv_m_s",
                        jv_m_s,
                        "a flux in m/s (1e-2 m/s is 36000 LMH; typical NF fluxes are 1e-6 to 1e-4)",
                    ));
                }
                let (u, iterations) = self.solve_flux_unknowns(jv_m_s)?;
                self.solution(&u, jv_m_s, None, iterations)
            }
            Drive::Pressure { dp_pa } => {
                require_positive("pressure difference dP_Pa", dp_pa)?;
                solve_pressure(self, dp_pa)
            }
        }
    }
}

/// The scaled water-flux balance `F(J) = (J - L_p (dP - dpi(J))) / (L_p dP)`; `F < 0` below
/// the root, since `dpi -> 0` as `J -> 0`.
struct FluxBalance<'a> {
    solver: RefCell<&'a mut PointSolver>,
    dp: f64,
    lp: f64,
    /// The typed error of the last failed evaluation (argmin's error type is untyped).
    failure: RefCell<Option<PhysicsError>>,
}

impl FluxBalance<'_> {
    fn eval(&self, jv: f64) -> Result<f64> {
        let mut solver = self.solver.borrow_mut();
        solver.solve_flux_unknowns(jv)?;
        let dpi = solver.osmotic_difference();
        Ok((jv - self.lp * (self.dp - dpi)) / (self.lp * self.dp))
    }
}

/// argmin's executor owns its problem; this lends it the balance so the solver (and its
/// warm start) comes back afterwards.
struct Lent<'a, 'b>(&'a FluxBalance<'b>);

impl CostFunction for Lent<'_, '_> {
    type Param = f64;
    type Output = f64;

    fn cost(&self, jv: &f64) -> std::result::Result<f64, argmin::core::Error> {
        self.0.eval(*jv).map_err(|e| {
            let msg = e.to_string();
            *self.0.failure.borrow_mut() = Some(e);
            argmin::core::Error::msg(msg)
        })
    }
}

/// Narrows a bracket `F(lo) < 0 <= F(hi)` by bisection in log space until `hi / lo` is
/// below [`NARROW_RATIO`], so that Brent's interpolation steps stay near converged fluxes.
/// Brent on the wide bracket (often 14 decades) can jump to a flux far above the root
/// where Newton, warm-started from far away, fails even though the point solves and the
/// root is well inside the feasible range. `F` is increasing in `J`; a midpoint that does
/// not solve is treated as lying above the root (failures come at high flux: a film near
/// its limit, a stiff pore), and if the root turns out to lie above such a point, the
/// bracket's upper end keeps that point's error and the solve fails with it.
fn narrow(balance: &FluxBalance, mut lo: f64, mut hi: f64) -> Result<(f64, f64)> {
    let mut hi_failure: Option<PhysicsError> = None;
    for _ in 0..200 {
        if hi / lo < NARROW_RATIO {
            break;
        }
        let mid = (lo * hi).sqrt();
        match balance.eval(mid) {
            Ok(f) if f < 0.0 => lo = mid,
            Ok(_) => {
                hi = mid;
                hi_failure = None;
            }
            Err(e) => {
                hi = mid;
                hi_failure = Some(e);
            }
        }
    }
    match hi_failure {
        // The upper end never solved: find the nearest flux below it that does.
        Some(e) => {
            let f = balance
                .eval(hi)
                .or_else(|_| balance.eval(lo * NARROW_RATIO.sqrt()));
            match f {
                Ok(f) if f >= 0.0 => Ok((lo, hi)),
                _ => Err(e),
            }
        }
        None => Ok((lo, hi)),
    }
}

/// A bracket this narrow (1 %) goes to Brent.
const NARROW_RATIO: f64 = 1.01;

/// Solves the point at transmembrane pressure `dp` (Pa).
pub(crate) fn solve_pressure(solver: &mut PointSolver, dp: f64) -> Result<PointSolution> {
    let lp = solver.permeability();
    let has_film = solver.has_film();
    let balance = FluxBalance {
        solver: RefCell::new(solver),
        dp,
        lp,
        failure: RefCell::new(None),
    };
    // Lower end: a flux small enough that the osmotic term has not built up yet (F < 0).
    // Strongly rejected feeds reach most of their rejection by 1e-10 m/s, so start tiny;
    // if the solve is too ill-conditioned down there, move up while F stays negative.
    let mut lo = lp * dp * 1e-9;
    let mut f_lo = balance.eval(lo);
    for _ in 0..8 {
        match f_lo {
            Ok(f) if f < 0.0 => break,
            Ok(_) => lo /= 100.0,
            Err(_) => lo *= 10.0,
        }
        f_lo = balance.eval(lo);
    }
    let f_lo = f_lo?;
    if f_lo >= 0.0 {
        return Err(PhysicsError::NoConvergence {
            stage: Stage::WaterFlux,
            reason: format!("no flux low enough to bracket the root at dP = {dp:e} Pa"),
        });
    }
    // Upper end: the flux without osmotic back-pressure; F >= 0 there unless the permeate
    // is more concentrated than the interface (then widen the bracket).
    let mut hi = lp * dp;
    let mut f_hi = None;
    for _ in 0..12 {
        match balance.eval(hi) {
            Ok(f) if f >= 0.0 => {
                f_hi = Some(f);
                break;
            }
            Ok(_) => hi *= 2.0,
            Err(e) => {
                // Infeasible at `hi` (a linearised film): find the largest feasible flux
                // by bisection in log space; the root must lie below it.
                let (mut ok, mut bad) = (lo, hi);
                let mut f_ok = f_lo;
                for _ in 0..60 {
                    let mid = (ok * bad).sqrt();
                    match balance.eval(mid) {
                        Ok(f) => {
                            ok = mid;
                            f_ok = f;
                            if f >= 0.0 {
                                break;
                            }
                        }
                        Err(_) => bad = mid,
                    }
                    if bad / ok < 1.0 + 1e-9 {
                        break;
                    }
                }
                if f_ok < 0.0 {
                    let limit = format!(
                        "dP = {dp:.6e} Pa needs Jv above {ok:.6e} m/s, the largest flux with a solution"
                    );
                    return Err(match e {
                        PhysicsError::NoSolution { stage, reason } => PhysicsError::NoSolution {
                            stage,
                            reason: format!("{reason}; {limit}"),
                        },
                        other if has_film => PhysicsError::NoSolution {
                            stage: Stage::Polarisation,
                            reason: format!("{other}; {limit}"),
                        },
                        other => other,
                    });
                }
                hi = ok;
                f_hi = Some(f_ok);
                break;
            }
        }
    }
    if f_hi.is_none() {
        return Err(PhysicsError::NoConvergence {
            stage: Stage::WaterFlux,
            reason: format!("no bracket of the water flux up to {hi:.3e} m/s at dP = {dp:e} Pa"),
        });
    }
    let (lo, hi) = narrow(&balance, lo, hi)?;
    let result = Executor::new(Lent(&balance), BrentRoot::new(lo, hi, hi * 1e-15))
        .configure(|state| state.max_iters(200))
        .timer(false)
        .run();
    let jv =
        match result {
            Ok(res) => res.state().get_best_param().copied().ok_or_else(|| {
                PhysicsError::NoConvergence {
                    stage: Stage::WaterFlux,
                    reason: "Brent returned no flux".into(),
                }
            })?,
            Err(e) => {
                return Err(balance
                    .failure
                    .take()
                    .unwrap_or(PhysicsError::NoConvergence {
                        stage: Stage::WaterFlux,
                        reason: e.to_string(),
                    }))
            }
        };
    let solver = balance.solver.into_inner();
    let (u, iterations) = solver.solve_flux_unknowns(jv)?;
    solver.solution(&u, jv, Some(dp), iterations)
}
