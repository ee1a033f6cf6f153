//! The ion property database: valence, bulk diffusivity, Stokes radius and molar mass.
//!
//! The built-in values are the ones WaterTAP 1.8.0 uses in its DSPM-DE tests (and that the
//! reference file `crates/physics/tests/data/dspmde_watertap_cases.json` was computed with), so the
//! defaults reproduce WaterTAP. Users add or override ions with [`IonDb::insert`] (the
//! `ablate` program reads them from a TOML file).

use crate::error::{require_positive, PhysicsError, Result};
use serde::{Deserialize, Serialize};

/// One ionic species.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ion {
    /// Canonical name, e.g. `Na+`, `SO4^2-`: the spelling of the measured-data format and
    /// of every file ionode writes. Other spellings (`SO4_2-` as in WaterTAP/MCAS, `SO42-`)
    /// are accepted wherever a name is looked up ([`IonDb::get`]) and are rewritten to this
    /// one when an ion is added ([`IonDb::insert`]).
    pub name: String,
    /// Valence (signed), e.g. -2 for sulfate.
    pub charge: i32,
    /// Bulk (infinite-dilution) diffusivity, m2/s.
    pub diffusivity_m2_s: f64,
    /// Stokes radius, m. Used for steric partitioning, hindrance and as the Born radius.
    pub stokes_radius_m: f64,
    /// Molar mass, kg/mol. Only enters flow/concentration conversions and Davies molality.
    pub molar_mass_kg_mol: f64,
    /// Where the numbers come from.
    #[serde(default)]
    pub source: String,
}

impl Ion {
    /// Valence as a float, for the equations.
    pub fn z(&self) -> f64 {
        f64::from(self.charge)
    }

    /// Checks that every property is physical; the error names the ion and the field.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(PhysicsError::invalid("ion name", "''", "a non-empty name"));
        }
        if self.charge == 0 {
            return Err(PhysicsError::invalid(
                format!("ion {}: charge", self.name),
                0,
                "a non-zero integer valence (neutral solutes are not supported)",
            ));
        }
        require_positive(
            &format!("ion {}: diffusivity_m2_s", self.name),
            self.diffusivity_m2_s,
        )?;
        require_positive(
            &format!("ion {}: stokes_radius_m", self.name),
            self.stokes_radius_m,
        )?;
        require_positive(
            &format!("ion {}: molar_mass_kg_mol", self.name),
            self.molar_mass_kg_mol,
        )?;
        if self.diffusivity_m2_s > 1e-7 || self.stokes_radius_m > 1e-8 {
            return Err(PhysicsError::invalid(
                format!("ion {}: diffusivity_m2_s / stokes_radius_m", self.name),
                format!("{:e} / {:e}", self.diffusivity_m2_s, self.stokes_radius_m),
                "SI units: m2/s (~1e-9) and m (~1e-10)",
            ));
        }
        Ok(())
    }

    /// The canonical name (the ion's `name` once it is in a database; kept for callers
    /// that hold an ion built by hand with a WaterTAP-style name).
    pub fn display_name(&self) -> String {
        canonical_name(&self.name)
    }

    /// The formula without charge, e.g. `SO4`; used to parse salt formulas.
    pub fn stem(&self) -> &str {
        let name = self.name.split(['_', '^']).next().unwrap_or(&self.name);
        name.trim_end_matches(['+', '-'])
    }
}

const WATERTAP: &str = "WaterTAP 1.8.0 DSPM-DE tests (D: CRC limiting diffusivities; r_s: Stokes-Einstein, mu = 8.9e-4 Pa s)";

/// NH4+ and NO3- (the trace ions of the bundled NF270 measurements): D from the limiting
/// molar conductivities at 25 C (NH4+ 73.5, NO3- 71.42 S cm2/mol; CRC Handbook of
/// Chemistry and Physics, "Ionic conductivity and diffusion at infinite dilution") by the
/// Nernst-Einstein relation D = R T lambda / (z^2 F^2); r_s by Stokes-Einstein with
/// mu = 8.9e-4 Pa s, as for K+ and Li+ in the reference cases.
const NERNST_EINSTEIN: &str = "D: CRC Handbook limiting conductivity via Nernst-Einstein; r_s: Stokes-Einstein (mu = 8.9e-4 Pa s), as for K+ and Li+";

/// The canonical spelling of a WaterTAP/MCAS-style name: `SO4_2-` -> `SO4^2-`, `Na_+` ->
/// `Na+`; a name without `_` is returned as it is.
pub fn canonical_name(name: &str) -> String {
    match name.trim().split_once('_') {
        Some((stem, charge)) if charge.len() > 1 => format!("{stem}^{charge}"),
        Some((stem, charge)) => format!("{stem}{charge}"),
        None => name.trim().to_string(),
    }
}

fn builtin(name: &str, charge: i32, d: f64, r: f64, m: f64, source: &str) -> Ion {
    Ion {
        name: name.to_string(),
        charge,
        diffusivity_m2_s: d,
        stokes_radius_m: r,
        molar_mass_kg_mol: m,
        source: source.to_string(),
    }
}

/// An ordered set of ions, looked up by name or alias.
#[derive(Debug, Clone, PartialEq)]
pub struct IonDb {
    ions: Vec<Ion>,
}

impl Default for IonDb {
    fn default() -> Self {
        Self::builtin()
    }
}

impl IonDb {
    /// The built-in ions (values of `crates/physics/tests/data/dspmde_watertap_cases.json`).
    pub fn builtin() -> Self {
        let ions = vec![
            builtin("Na+", 1, 1.33e-9, 1.84e-10, 0.02299, WATERTAP),
            builtin("K+", 1, 1.957e-9, 1.25e-10, 0.039098,
                "D: CRC Handbook limiting diffusivity; r_s: Stokes-Einstein (mu = 8.9e-4 Pa s), as in the reference cases"),
            builtin("Li+", 1, 1.03e-9, 2.38e-10, 0.006941,
                "D: CRC Handbook / PrOMMiS nf_brine; r_s: Stokes-Einstein (mu = 8.9e-4 Pa s), as in the reference cases"),
            builtin("NH4+", 1, 1.957e-9, 1.254e-10, 0.018038, NERNST_EINSTEIN),
            builtin("Mg^2+", 2, 7.06e-10, 3.47e-10, 0.024305, WATERTAP),
            builtin("Ca^2+", 2, 9.2e-10, 3.09e-10, 0.040078,
                "WaterTAP 1.8.0 DSPM-DE tests (r_s is WaterTAP's value, not Stokes-Einstein)"),
            builtin("Cl-", -1, 2.03e-9, 1.21e-10, 0.035453, WATERTAP),
            builtin("NO3-", -1, 1.902e-9, 1.290e-10, 0.062004, NERNST_EINSTEIN),
            builtin("SO4^2-", -2, 1.06e-9, 2.30e-10, 0.096066, WATERTAP),
            builtin("HCO3-", -1, 1.19e-9, 2.06e-10, 0.0610168, "WaterTAP nanofiltration flowsheet examples"),
        ];
        IonDb { ions }
    }

    /// All ions in database order.
    pub fn ions(&self) -> &[Ion] {
        &self.ions
    }

    /// Adds an ion, or replaces the one of the same name in any spelling (the name is
    /// stored in its canonical form, [`canonical_name`]).
    pub fn insert(&mut self, mut ion: Ion) -> Result<()> {
        ion.name = canonical_name(&ion.name);
        ion.validate()?;
        let key = normalise(&ion.name);
        match self.ions.iter_mut().find(|i| normalise(&i.name) == key) {
            Some(slot) => *slot = ion,
            None => self.ions.push(ion),
        }
        Ok(())
    }

    /// Looks an ion up by its canonical name (`SO4^2-`) or an alias: the WaterTAP/MCAS
    /// name (`SO4_2-`), the name without separators (`SO42-`), or the bare formula (`SO4`).
    /// Case matters only where it must (`Co` vs `CO3` style clashes do not occur here).
    pub fn get(&self, name: &str) -> Result<&Ion> {
        let key = normalise(name);
        self.ions
            .iter()
            .find(|i| normalise(&i.name) == key || i.stem() == name.trim())
            .ok_or_else(|| PhysicsError::UnknownIon {
                name: name.to_string(),
                known: self
                    .ions
                    .iter()
                    .map(|i| i.display_name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '^' | ' '))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_the_same_ion() {
        let db = IonDb::builtin();
        for alias in ["SO4_2-", "SO4^2-", "SO42-", "SO4", " SO4 2-"] {
            assert_eq!(db.get(alias).unwrap().name, "SO4^2-", "{alias}");
        }
        assert_eq!(db.get("Na_+").unwrap().name, "Na+");
        assert_eq!(db.get("Mg2+").unwrap().name, "Mg^2+");
        assert_eq!(db.get("NH4").unwrap().stem(), "NH4");
        assert_eq!(db.get("SO4").unwrap().stem(), "SO4");
    }

    #[test]
    fn unknown_ion_lists_the_known_ones() {
        let err = IonDb::builtin().get("Fe3+").unwrap_err().to_string();
        assert!(err.contains("unknown ion 'Fe3+'"), "{err}");
        assert!(err.contains("SO4^2-"), "{err}");
    }

    #[test]
    fn insert_validates_and_replaces() {
        let mut db = IonDb::builtin();
        let mut ion = db.get("Na+").unwrap().clone();
        ion.stokes_radius_m = -1.0;
        let err = db.insert(ion.clone()).unwrap_err().to_string();
        assert!(err.contains("ion Na+: stokes_radius_m"), "{err}");
        ion.stokes_radius_m = 2.0e-10;
        // Another spelling of the same ion replaces it and is stored canonically.
        ion.name = "Na_+".into();
        db.insert(ion.clone()).unwrap();
        assert_eq!(db.get("Na+").unwrap().stokes_radius_m, 2.0e-10);
        assert_eq!(db.ions().len(), 10);
        ion.name = "Fe_3+".into();
        ion.charge = 3;
        db.insert(ion).unwrap();
        assert_eq!(db.get("Fe3+").unwrap().name, "Fe^3+");
    }

    /// The added ions follow their stated sources: Nernst-Einstein from the conductivity
    /// and Stokes-Einstein from the diffusivity, both at 25 C.
    #[test]
    fn ammonium_and_nitrate_follow_their_sources() {
        use crate::constants::{BOLTZMANN, FARADAY, GAS_CONSTANT};
        let db = IonDb::builtin();
        let t = 298.15;
        for (name, lambda_s_cm2_mol) in [("NH4+", 73.5), ("NO3-", 71.42)] {
            let ion = db.get(name).unwrap();
            let d = GAS_CONSTANT * t * lambda_s_cm2_mol * 1e-4 / (FARADAY * FARADAY);
            assert!(
                (ion.diffusivity_m2_s / d - 1.0).abs() < 1e-3,
                "{name}: {d:e}"
            );
            let r = BOLTZMANN * t / (6.0 * std::f64::consts::PI * 8.9e-4 * ion.diffusivity_m2_s);
            assert!(
                (ion.stokes_radius_m / r - 1.0).abs() < 1e-3,
                "{name}: {r:e}"
            );
        }
        assert_eq!(db.get("NH4").unwrap().name, "NH4+");
        assert_eq!(db.get("NO3^-").unwrap().name, "NO3-");
        let feed = crate::feed::parse_feed("NaNO3=0.2,NH4Cl=0.2", &db).unwrap();
        let names: Vec<&str> = feed.ions.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["Na+", "NO3-", "NH4+", "Cl-"]);
        feed.check_electroneutral().unwrap();
    }
}
