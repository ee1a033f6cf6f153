//! Membranes by name or by file: everywhere a preset name is accepted (`--membrane` of
//! `dspmde point` and `simulate`, a lab design's `membrane`, a manifest's
//! `[datasets.pretrain]`), a path to a membrane file (`*.toml`) is accepted too. A
//! calibrated `dspmde_fit` run writes its fitted membrane in the same format, so a
//! membrane calibrated on one's own data is used like a preset.
//!
//! The file (units in the key names, as everywhere in ionode's files):
//!
//! ```toml
//! name = "NF270, calibrated on my data"      # optional
//! pore_radius_m = 5.0e-10
//! effective_thickness_m = 1.33e-6
//! charge_density_mol_m3 = -27.0
//! pore_dielectric = 41.3
//! source = "ablate train, run ..."           # optional
//! # optional: how the charge depends on the feed (docs/DSPMDE.md); without it the charge
//! # is charge_density_mol_m3 for every feed.
//! charge = { model = "freundlich", a_mol_m3 = 8.0, b = 0.4 }
//! # charge = { model = "langmuir", sites_mol_m3 = 60.0, k_mono_m3_mol = 0.01, k_multi_m3_mol = 1.0 }
//! ```

use crate::errors::Result;
use crate::limits::{read_text, MAX_TEXT_FILE_BYTES};
use crate::manifest::locate::{show, toml_error, typed, Locations};
use ionode_physics::{ChargeModel, ChargedMembrane, Membrane};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A membrane file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembraneFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub pore_radius_m: f64,
    pub effective_thickness_m: f64,
    pub charge_density_mol_m3: f64,
    pub pore_dielectric: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How the charge depends on the feed (absent: constant).
    #[serde(default, skip_serializing_if = "ChargeModel::is_constant")]
    pub charge: ChargeModel,
}

impl MembraneFile {
    pub fn new(m: &ChargedMembrane, name: &str, source: &str) -> MembraneFile {
        let (c, charge) = (&m.membrane, m.charge);
        MembraneFile {
            name: Some(name.to_string()),
            pore_radius_m: c.pore_radius_m,
            effective_thickness_m: c.effective_thickness_m,
            charge_density_mol_m3: c.charge_density_mol_m3,
            pore_dielectric: c.pore_dielectric,
            source: Some(source.to_string()),
            charge,
        }
    }

    pub fn membrane(&self) -> ChargedMembrane {
        ChargedMembrane {
            membrane: Membrane {
                pore_radius_m: self.pore_radius_m,
                effective_thickness_m: self.effective_thickness_m,
                charge_density_mol_m3: self.charge_density_mol_m3,
                pore_dielectric: self.pore_dielectric,
            },
            charge: self.charge,
        }
    }

    /// The file's text (numbers in shortest round-trip form, so reading it back gives
    /// the same bits).
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# DSPM-DE membrane (ionode membrane file; usable wherever a preset name is)\n",
        );
        if let Some(n) = &self.name {
            out.push_str(&format!("name = {}\n", toml::Value::String(n.clone())));
        }
        for (k, v) in [
            ("pore_radius_m", self.pore_radius_m),
            ("effective_thickness_m", self.effective_thickness_m),
            ("charge_density_mol_m3", self.charge_density_mol_m3),
            ("pore_dielectric", self.pore_dielectric),
        ] {
            out.push_str(&format!("{k} = {v:?}\n"));
        }
        if let Some(s) = &self.source {
            out.push_str(&format!("source = {}\n", toml::Value::String(s.clone())));
        }
        let charge = match self.charge {
            ChargeModel::Constant => None,
            ChargeModel::Freundlich { a_mol_m3, b } => Some(format!(
                "{{ model = \"freundlich\", a_mol_m3 = {a_mol_m3:?}, b = {b:?} }}"
            )),
            ChargeModel::Langmuir {
                sites_mol_m3,
                k_mono_m3_mol,
                k_multi_m3_mol,
            } => Some(format!(
                "{{ model = \"langmuir\", sites_mol_m3 = {sites_mol_m3:?}, \
                 k_mono_m3_mol = {k_mono_m3_mol:?}, k_multi_m3_mol = {k_multi_m3_mol:?} }}"
            )),
        };
        if let Some(c) = charge {
            out.push_str("# the charge depends on the feed; charge_density_mol_m3 is not used\n");
            out.push_str(&format!("charge = {c}\n"));
        }
        out
    }
}

/// Whether a `--membrane` value names a file rather than a preset.
pub fn is_file(value: &str) -> bool {
    value.trim().ends_with(".toml")
}

/// A file value as a path: relative paths from `base` (the folder of the file that names
/// it, or the working directory for a flag).
pub fn path_of(value: &str, base: &Path) -> PathBuf {
    let p = Path::new(value.trim());
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Reads a membrane file; every problem located in it, one line each.
pub fn read_file(path: &Path) -> Result<ChargedMembrane> {
    let name = path.display().to_string();
    let text = read_text(path, MAX_TEXT_FILE_BYTES)
        .map_err(|e| crate::usage!("cannot read membrane file '{name}': {e}"))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| crate::usage!("{}", toml_error(&name, &text, &e)))?;
    let mut locs = Locations::default();
    locs.record(&name, &text);
    let locate = |p: &[String]| locs.find(p).map(|l| (l, show(p)));
    let (file, problems) = typed::<MembraneFile>(&table, &locate, &name);
    if !problems.is_empty() {
        return Err(crate::usage!("membrane file: {}", problems.join("; ")));
    }
    let m = file.expect("no problems, so a value").membrane();
    m.validate().map_err(|e| {
        // Located at the first key the physics names (a charge parameter in its table).
        let text = e.to_string();
        let keys = [
            ["pore_radius_m", ""],
            ["effective_thickness_m", ""],
            ["charge_density_mol_m3", ""],
            ["pore_dielectric", ""],
            ["charge", "a_mol_m3"],
            ["charge", "b"],
            ["charge", "sites_mol_m3"],
            ["charge", "k_mono_m3_mol"],
            ["charge", "k_multi_m3_mol"],
        ];
        let key = keys.into_iter().find(|[a, b]| {
            let field = if b.is_empty() {
                a.to_string()
            } else {
                format!("{a} {b}")
            };
            text.contains(&field)
        });
        let at = key.map_or(name.clone(), |[a, b]| {
            let path: Vec<&str> = [a, b].into_iter().filter(|k| !k.is_empty()).collect();
            locs.at(&path, &name)
        });
        crate::usage!("{at}: {text}")
    })?;
    Ok(m)
}

/// A preset name or a membrane file (`*.toml`, relative to `base`).
pub fn resolve(value: &str, base: &Path) -> Result<ChargedMembrane> {
    if is_file(value) {
        return read_file(&path_of(value, base));
    }
    Membrane::preset(value)
        .map(ChargedMembrane::constant)
        .map_err(|e| crate::usage!("{e} (or a membrane file, FILE.toml)"))
}

/// The membrane a `dspmde_fit` run, or a physics-anchored run for its prior, calibrated,
/// in the membrane-file format (usable as `--membrane FILE`); `None` for a plain neural run.
/// An ensemble's is its first member's (each member's is in the run's record).
pub fn calibrated(a: &ionode_train::run::Artefact, source: &str) -> Option<MembraneFile> {
    use ionode_train::run::Artefact;
    let name = match a {
        Artefact::Anchored { .. } => {
            "DSPM-DE membrane calibrated as the prior of a physics-anchored run"
        }
        Artefact::Ensemble { members, .. } => match members.first()? {
            Artefact::Anchored { .. } => {
                "DSPM-DE membrane calibrated as the prior of member 0 of a physics-anchored ensemble"
            }
            _ => "DSPM-DE membrane calibrated by member 0 of a dspmde_fit ensemble",
        },
        _ => "DSPM-DE membrane calibrated by a dspmde_fit run",
    };
    a.charged_membrane()
        .map(|m| MembraneFile::new(&m, name, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_membrane_file_reads_back_to_the_same_bits() {
        let dir = tempfile::tempdir().unwrap();
        let m = Membrane {
            pore_radius_m: 4.1234567891e-10,
            effective_thickness_m: 2.3e-6,
            charge_density_mol_m3: -61.0000001,
            pore_dielectric: 35.5,
        };
        let path = dir.path().join("fit.toml");
        let charged = ChargedMembrane::constant(m);
        std::fs::write(
            &path,
            MembraneFile::new(&charged, "fit \"a\"", "test").to_toml(),
        )
        .unwrap();
        assert_eq!(read_file(&path).unwrap(), charged);
        assert_eq!(resolve("fit.toml", dir.path()).unwrap(), charged);
        assert_eq!(
            resolve("nf270", dir.path()).unwrap(),
            ChargedMembrane::constant(Membrane::preset("nf270").unwrap())
        );
        // With a charge model: written and read back to the same bits.
        for charge in [
            ChargeModel::Freundlich {
                a_mol_m3: 7.123456789,
                b: 0.4321,
            },
            ChargeModel::Langmuir {
                sites_mol_m3: 61.5,
                k_mono_m3_mol: 1.25e-3,
                k_multi_m3_mol: 0.75,
            },
        ] {
            let charged = ChargedMembrane {
                membrane: m,
                charge,
            };
            std::fs::write(&path, MembraneFile::new(&charged, "fit", "test").to_toml()).unwrap();
            assert_eq!(read_file(&path).unwrap(), charged);
        }
    }

    #[test]
    fn bad_membrane_files_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "pore_radius_nm = 0.5\neffective_thickness_m = 1e-6\ncharge_density_mol_m3 = -1\npore_dielectric = 40\n",
        )
        .unwrap();
        let e = format!("{:#}", read_file(&path).unwrap_err());
        assert!(
            e.contains(&format!(
                "{}:1:1: unknown key 'pore_radius_nm' (did you mean 'pore_radius_m'?)",
                path.display()
            )),
            "{e}"
        );
        std::fs::write(
            &path,
            "pore_radius_m = 0.5\neffective_thickness_m = 1e-6\ncharge_density_mol_m3 = -1\npore_dielectric = 40\n",
        )
        .unwrap();
        let e = format!("{:#}", read_file(&path).unwrap_err());
        assert!(e.contains(&format!("{}:1:1: ", path.display())), "{e}");
        assert!(e.contains("SI units"), "{e}");
        std::fs::write(
            &path,
            "# a comment\npore_radius_m = 5e-10\neffective_thickness_m = 1e-6\ncharge_density_mol_m3 = -1\npore_dielectric = -40\n",
        )
        .unwrap();
        let e = format!("{:#}", read_file(&path).unwrap_err());
        assert!(
            e.contains(&format!("{}:5:1: ", path.display())) && e.contains("pore_dielectric"),
            "{e}"
        );
        let e = format!("{:#}", resolve("nf90", dir.path()).unwrap_err());
        assert!(e.contains("nf270") && e.contains("FILE.toml"), "{e}");
    }
}
