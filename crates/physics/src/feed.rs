//! Feed compositions: parsing `"NaCl=50,MgSO4=10"` (salts or single ions, mol/m3 unless a
//! unit is given), charge balance and balancing with one ion.

use crate::error::{PhysicsError, Result};
use crate::ions::{Ion, IonDb};
use crate::point::check_electroneutral;

/// A bulk feed: ions and their concentrations (mol/m3), in order of first mention.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub ions: Vec<Ion>,
    pub c_mol_m3: Vec<f64>,
}

impl Feed {
    /// Net charge `sum z c`, eq/m3.
    pub fn imbalance(&self) -> f64 {
        self.ions
            .iter()
            .zip(&self.c_mol_m3)
            .map(|(i, c)| i.z() * c)
            .sum()
    }

    /// Checks electroneutrality (relative tolerance 1e-6).
    pub fn check_electroneutral(&self) -> Result<()> {
        check_electroneutral(&self.ions, &self.c_mol_m3)
    }

    /// Makes the feed electroneutral by changing (or adding) `ion`. Fails if that would need
    /// a negative concentration of it.
    pub fn balance_with(&mut self, ion: &str, db: &IonDb) -> Result<()> {
        let ion = db.get(ion)?.clone();
        let idx = match self.ions.iter().position(|i| i.name == ion.name) {
            Some(i) => i,
            None => {
                self.ions.push(ion.clone());
                self.c_mol_m3.push(0.0);
                self.ions.len() - 1
            }
        };
        let others: f64 = self
            .ions
            .iter()
            .zip(&self.c_mol_m3)
            .enumerate()
            .filter(|(i, _)| *i != idx)
            .map(|(_, (ion, c))| ion.z() * c)
            .sum();
        let needed = -others / ion.z();
        if !(needed > 0.0) {
            return Err(PhysicsError::invalid(
                "balance ion",
                &ion.name,
                format!(
                    "an ion of the opposite sign to the feed's net charge {others:+.6} eq/m3 without it"
                ),
            ));
        }
        self.c_mol_m3[idx] = needed;
        Ok(())
    }
}

/// Parses a feed such as `"NaCl=50, MgSO4=10"`, `"Na+=50,Cl-=50"` or `"NaCl=0.05M"`.
/// Units: `mM` or `mol/m3` (the default) and `M` (mol/L). Salts dissociate fully.
pub fn parse_feed(text: &str, db: &IonDb) -> Result<Feed> {
    let mut feed = Feed {
        ions: Vec::new(),
        c_mol_m3: Vec::new(),
    };
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').ok_or_else(|| {
            PhysicsError::invalid(
                "feed",
                format!("'{item}'"),
                "NAME=CONCENTRATION items, e.g. NaCl=50,MgSO4=10 (mol/m3)",
            )
        })?;
        let c = parse_concentration(name.trim(), value.trim())?;
        for (ion, count) in parse_species(name.trim(), db)? {
            match feed.ions.iter().position(|i| i.name == ion.name) {
                Some(i) => feed.c_mol_m3[i] += count * c,
                None => {
                    feed.ions.push(ion);
                    feed.c_mol_m3.push(count * c);
                }
            }
        }
    }
    if feed.ions.is_empty() {
        return Err(PhysicsError::invalid(
            "feed",
            format!("'{text}'"),
            "at least one salt or ion, e.g. NaCl=50",
        ));
    }
    Ok(feed)
}

fn parse_concentration(name: &str, value: &str) -> Result<f64> {
    let (number, factor) = if let Some(v) = value.strip_suffix("mol/m3") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix("mM") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('M') {
        (v, 1000.0)
    } else {
        (value, 1.0)
    };
    let c: f64 = number.trim().parse().map_err(|_| {
        PhysicsError::invalid(
            format!("feed concentration of {name}"),
            format!("'{value}'"),
            "a number in mol/m3, optionally with a unit (mM, mol/m3, M)",
        )
    })?;
    if !(c.is_finite() && c > 0.0) {
        return Err(PhysicsError::invalid(
            format!("feed concentration of {name}"),
            value,
            "a finite number > 0",
        ));
    }
    Ok(c * factor)
}

/// An ion name (`Na+`, `SO4^2-`, `Cl-`) or a neutral salt formula (`Na2SO4`, `MgCl2`,
/// `Ca(HCO3)2`) as ions with stoichiometric counts.
fn parse_species(name: &str, db: &IonDb) -> Result<Vec<(Ion, f64)>> {
    if name.contains(['+', '-', '_', '^']) {
        return Ok(vec![(db.get(name)?.clone(), 1.0)]);
    }
    let bad = |why: &str| {
        PhysicsError::invalid(
            "feed salt",
            format!("'{name}'"),
            format!(
                "{why}; write a neutral formula of known ions (e.g. NaCl, Na2SO4, MgCl2) or an ion with its charge (Na+, SO4^2-)"
            ),
        )
    };
    // The longest cation stem that starts the formula.
    let cation = db
        .ions()
        .iter()
        .filter(|i| i.charge > 0 && name.starts_with(i.stem()))
        .max_by_key(|i| i.stem().len())
        .ok_or_else(|| bad("it does not start with a known cation"))?;
    let (n_cat, rest) = take_count(&name[cation.stem().len()..]);
    let (anion_text, n_an) = match rest.strip_prefix('(') {
        Some(inner) => {
            let (inside, after) = inner
                .split_once(')')
                .ok_or_else(|| bad("unbalanced parenthesis"))?;
            let (count, tail) = take_count(after);
            if !tail.is_empty() {
                return Err(bad("unexpected text after the anion"));
            }
            (inside, count)
        }
        None => {
            // The longest anion stem that starts the rest, then its count.
            let stem = db
                .ions()
                .iter()
                .filter(|i| i.charge < 0 && rest.starts_with(i.stem()))
                .map(Ion::stem)
                .max_by_key(|s| s.len())
                .ok_or_else(|| bad(&format!("'{rest}' is not a known anion")))?;
            let (count, tail) = take_count(&rest[stem.len()..]);
            if !tail.is_empty() {
                return Err(bad("unexpected text after the anion"));
            }
            (stem, count)
        }
    };
    let anion = db
        .ions()
        .iter()
        .find(|i| i.charge < 0 && i.stem() == anion_text)
        .ok_or_else(|| bad(&format!("'{anion_text}' is not a known anion")))?;
    if n_cat * cation.z() + n_an * anion.z() != 0.0 {
        let need_cat = anion.charge.unsigned_abs()
            / gcd(cation.charge.unsigned_abs(), anion.charge.unsigned_abs());
        let need_an = cation.charge.unsigned_abs()
            / gcd(cation.charge.unsigned_abs(), anion.charge.unsigned_abs());
        return Err(bad(&format!(
            "it is not neutral: {n_cat} x ({:+}) + {n_an} x ({:+}) != 0 (expected {need_cat} {} : {need_an} {})",
            cation.charge,
            anion.charge,
            cation.stem(),
            anion.stem()
        )));
    }
    Ok(vec![(cation.clone(), n_cat), (anion.clone(), n_an)])
}

/// Splits a leading stoichiometric count (default 1) from `s`.
fn take_count(s: &str) -> (f64, &str) {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        (1.0, s)
    } else {
        (s[..digits].parse().unwrap_or(1.0), &s[digits..])
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conc(feed: &Feed, name: &str) -> f64 {
        let i = feed.ions.iter().position(|i| i.name == name).unwrap();
        feed.c_mol_m3[i]
    }

    #[test]
    fn salts_dissociate_and_add_up() {
        let db = IonDb::builtin();
        let feed = parse_feed("NaCl=50, MgSO4=10, Na2SO4=5, MgCl2=0.002M", &db).unwrap();
        assert_eq!(conc(&feed, "Na+"), 60.0);
        assert_eq!(conc(&feed, "Cl-"), 54.0);
        assert_eq!(conc(&feed, "SO4^2-"), 15.0);
        assert_eq!(conc(&feed, "Mg^2+"), 12.0);
        feed.check_electroneutral().unwrap();
    }

    #[test]
    fn parenthesised_anions_and_ions_parse() {
        let db = IonDb::builtin();
        let feed = parse_feed("Ca(HCO3)2=1,K+=2,Cl-=2", &db).unwrap();
        assert_eq!(conc(&feed, "HCO3-"), 2.0);
        assert_eq!(conc(&feed, "K+"), 2.0);
    }

    #[test]
    fn non_neutral_formula_names_the_fix() {
        let db = IonDb::builtin();
        let err = parse_feed("MgCl=5", &db).unwrap_err().to_string();
        assert!(
            err.contains("'MgCl'") && err.contains("1 Mg : 2 Cl"),
            "{err}"
        );
    }

    #[test]
    fn bad_numbers_and_unknown_species_are_errors() {
        let db = IonDb::builtin();
        let err = parse_feed("NaCl=-5", &db).unwrap_err().to_string();
        assert!(
            err.contains("feed concentration of NaCl") && err.contains("-5"),
            "{err}"
        );
        let err = parse_feed("NaCl=abc", &db).unwrap_err().to_string();
        assert!(err.contains("'abc'"), "{err}");
        let err = parse_feed("FeCl3=1", &db).unwrap_err().to_string();
        assert!(err.contains("known cation"), "{err}");
    }

    #[test]
    fn balancing_fixes_an_imbalanced_feed() {
        let db = IonDb::builtin();
        let mut feed = parse_feed("Na+=50,Cl-=40", &db).unwrap();
        let err = feed.check_electroneutral().unwrap_err().to_string();
        assert!(
            err.contains("not electroneutral") && err.contains("+1.0"),
            "{err}"
        );
        feed.balance_with("Cl-", &db).unwrap();
        assert_eq!(conc(&feed, "Cl-"), 50.0);
        assert!(feed.balance_with("Na+", &db).is_ok());
        let mut cations_only = parse_feed("Na+=5,Cl-=10", &db).unwrap();
        assert!(cations_only.balance_with("SO4", &db).is_err());
    }
}
