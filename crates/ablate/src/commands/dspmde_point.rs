//! `ablate dspmde point`: one DSPM-DE operating point from the command line.

use super::print_stdout;
use crate::cli::PointArgs;
use anyhow::{Context, Result};
use ionode_physics::cases::PointCaseOutput;
use ionode_physics::feed::parse_feed;
use ionode_physics::{
    Drive, FilmModel, Ion, PointSolution, PointSolver, PointSpec, Polarisation, SpiralWound,
};
use ionode_study::{ions, units};
use std::fmt::Write as _;

/// Parses `--cp` for the given ions.
fn parse_polarisation(value: &str, ions: &[Ion]) -> Result<Polarisation> {
    let spiral = || SpiralWound::default().mass_transfer(ions);
    Ok(match value.trim().to_ascii_lowercase().as_str() {
        "none" => Polarisation::None,
        "spiral-wound" | "spiral_wound" | "linearised" | "linearized" => Polarisation::Film {
            model: FilmModel::Linearised,
            mass_transfer_m_s: spiral(),
        },
        "exponential" => Polarisation::Film {
            model: FilmModel::Exponential,
            mass_transfer_m_s: spiral(),
        },
        other => match other.strip_prefix("fixed:") {
            Some(k) => {
                let k = units::parse_mass_transfer("--cp fixed:", k)?;
                Polarisation::Film {
                    model: FilmModel::Linearised,
                    mass_transfer_m_s: vec![k; ions.len()],
                }
            }
            None => return Err(crate::usage!(
                "--cp '{value}': expected none, spiral-wound, exponential or fixed:K_M_S (e.g. fixed:2e-5)"
            )),
        },
    })
}

/// Solves the point described by the flags.
fn solve(args: &PointArgs) -> Result<(PointSpec, PointSolution)> {
    let db = ions::load(args.ions.as_deref())?;
    let membrane = ionode_study::membrane::resolve(&args.membrane, std::path::Path::new(""))?;
    let temperature_k = units::parse_temperature("--temperature", &args.temperature)?;
    let activity = units::parse_activity(&args.activity)?;
    let drive = match (&args.flux, &args.pressure) {
        (Some(flux), None) => Drive::Flux {
            jv_m_s: units::parse_flux("--flux", flux)?,
        },
        (None, Some(p)) => Drive::Pressure {
            dp_pa: units::parse_pressure("--pressure", p)?,
        },
        // clap's argument group makes exactly one of them present.
        _ => return Err(crate::usage!("give exactly one of --flux and --pressure")),
    };
    let mut feed =
        parse_feed(&args.feed, &db).with_context(|| format!("--feed '{}'", args.feed))?;
    match &args.balance_with {
        Some(ion) => {
            feed.balance_with(ion, &db)
                .with_context(|| format!("--balance-with '{ion}' for --feed '{}'", args.feed))?;
            tracing::info!(
                "balanced feed: {}",
                feed.ions
                    .iter()
                    .zip(&feed.c_mol_m3)
                    .map(|(i, c)| format!("{}={c}", i.name))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        None => feed.check_electroneutral().with_context(|| {
            format!(
                "--feed '{}' (pass --balance-with ION to adjust one ion)",
                args.feed
            )
        })?,
    }
    // A membrane file's charge model gives the charge of this feed.
    let membrane = membrane.for_feed(&feed.ions, &feed.c_mol_m3);
    let mut spec = PointSpec::new(feed.ions.clone(), feed.c_mol_m3.clone(), membrane);
    spec.temperature_k = temperature_k;
    spec.activity = activity;
    spec.polarisation = parse_polarisation(&args.cp, &feed.ions)?;
    spec.elements = args.elements;
    let mut solver = PointSolver::new(&spec)?;
    let sol = solver.solve(drive)?;
    Ok((spec, sol))
}

/// Concentrations span 1e-6 to 1e3 mol/m3: fixed notation where it is readable.
fn conc(x: f64) -> String {
    if x == 0.0 || (1e-2..1e5).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.4e}")
    }
}

/// The human-readable report.
fn table(args: &PointArgs, spec: &PointSpec, sol: &PointSolution) -> String {
    let m = &spec.membrane;
    let film = !matches!(spec.polarisation, Polarisation::None);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "DSPM-DE point, membrane {}: r_p = {:.3} nm, dx_e = {:.3} um, X = {:.1} mol/m3, eps_p = {:.2}",
        args.membrane,
        m.pore_radius_m * 1e9,
        m.effective_thickness_m * 1e6,
        m.charge_density_mol_m3,
        m.pore_dielectric
    );
    let _ = writeln!(
        s,
        "T = {:.2} K ({:.2} C), activity {}, polarisation {}, {} pore element(s)\n",
        spec.temperature_k,
        spec.temperature_k - units::ZERO_CELSIUS,
        args.activity.to_ascii_lowercase(),
        args.cp,
        spec.elements
    );
    let _ = write!(
        s,
        "{:<8} {:>3} {:>12} {:>12} {:>12} {:>12}",
        "ion", "z", "feed", "interface", "permeate", "rejection"
    );
    if film {
        let _ = write!(s, " {:>12}", "intrinsic");
    }
    let _ = write!(
        s,
        "\n{:<8} {:>3} {:>12} {:>12} {:>12} {:>12}",
        "", "", "mol/m3", "mol/m3", "mol/m3", "%"
    );
    if film {
        let _ = write!(s, " {:>12}", "%");
    }
    s.push('\n');
    for (i, ion) in spec.ions.iter().enumerate() {
        let _ = write!(
            s,
            "{:<8} {:>+3} {:>12} {:>12} {:>12} {:>12.3}",
            ion.name,
            ion.charge,
            conc(sol.c_bulk[i]),
            conc(sol.c_interface[i]),
            conc(sol.c_permeate[i]),
            100.0 * sol.rejection_vs_bulk[i]
        );
        if film {
            let _ = write!(s, " {:>12.3}", 100.0 * sol.rejection_vs_interface[i]);
        }
        s.push('\n');
    }
    let bar = |pa: f64| pa / units::BAR;
    let mv = |v: f64| v * 1e3;
    let _ = writeln!(
        s,
        "\nJv          {:.6e} m/s = {:.3} LMH",
        sol.jv_m_s,
        sol.jv_m_s / units::LMH
    );
    let _ = writeln!(
        s,
        "dP          {:.5} bar ({:.1} Pa)",
        bar(sol.dp_pa),
        sol.dp_pa
    );
    let _ = writeln!(
        s,
        "potentials  pore entrance {:.4} mV, pore exit {:.4} mV, permeate {:.4} mV",
        mv(sol.psi_pore_entrance_v),
        mv(sol.psi_pore_exit_v),
        mv(sol.psi_permeate_v)
    );
    let _ = writeln!(
        s,
        "osmotic     interface {:.5} bar, permeate {:.5} bar, difference {:.5} bar",
        bar(sol.pi_interface_pa),
        bar(sol.pi_permeate_pa),
        bar(sol.pi_interface_pa - sol.pi_permeate_pa)
    );
    s
}

pub fn run(args: &PointArgs) -> Result<()> {
    let (spec, sol) = solve(args)?;
    tracing::debug!("solved in {} Newton iterations", sol.iterations);
    if args.json {
        let mut text = serde_json::to_string_pretty(&PointCaseOutput::from(&sol))?;
        text.push('\n');
        print_stdout(&text)
    } else {
        print_stdout(&table(args, &spec, &sol))
    }
}
