//! Parsing of values with units from the command line (`30lmh`, `7bar`, `25C`).
//!
//! Everything is converted to SI, the only units the physics crate knows. Errors name the
//! flag, the value and the accepted units, because a wrong unit is the most likely mistake
//! and a silent default (reading `30` LMH as 30 m/s) would be the worst outcome.

/// One litre per square metre per hour in m/s.
pub const LMH: f64 = 1.0 / 3.6e6;
/// One bar in Pa.
pub const BAR: f64 = 1e5;
/// 0 degC in K.
pub const ZERO_CELSIUS: f64 = 273.15;

/// A value that could not be read; `Display` is the one-line message the user sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{flag} '{value}': {reason}; expected {expected}")]
pub struct UnitError {
    pub flag: String,
    pub value: String,
    pub reason: String,
    pub expected: String,
}

/// A unit suffix (lower case) and its factor to SI.
type Unit = (&'static str, f64);

/// Suffixes are matched case-insensitively, longest first, so `kPa` is not read as `Pa`.
const FLUX_UNITS: &[Unit] = &[("l/m2/h", LMH), ("l/m2h", LMH), ("lmh", LMH), ("m/s", 1.0)];
const PRESSURE_UNITS: &[Unit] = &[
    ("kpa", 1e3),
    ("mpa", 1e6),
    ("bar", BAR),
    ("psi", 6894.757293168),
    ("pa", 1.0),
];

/// Splits `value` into a number and the first matching unit of `units` (or the default
/// factor when there is no unit at all).
fn parse_with_units(
    flag: &str,
    value: &str,
    units: &[Unit],
    default_factor: f64,
    expected: &str,
) -> Result<f64, UnitError> {
    let err = |reason: String| UnitError {
        flag: flag.to_string(),
        value: value.to_string(),
        reason,
        expected: expected.to_string(),
    };
    let text = value.trim();
    let lower = text.to_ascii_lowercase();
    let (number, factor) = match units.iter().find(|(suffix, _)| lower.ends_with(suffix)) {
        Some((suffix, factor)) => (text[..text.len() - suffix.len()].trim(), *factor),
        None => (text, default_factor),
    };
    match number.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x * factor),
        Ok(_) => Err(err("not a finite number".into())),
        Err(_) => {
            // Name the unit when the number part is fine: `30furlongs` -> 'furlongs'.
            let split = number
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map(|(i, c)| i + c.len_utf8());
            match split {
                Some(i) if number[..i].trim().parse::<f64>().is_ok() => {
                    Err(err(format!("unknown unit '{}'", number[i..].trim())))
                }
                _ => Err(err("not a number".into())),
            }
        }
    }
}

fn require_positive(flag: &str, value: &str, x: f64, expected: &str) -> Result<f64, UnitError> {
    if x > 0.0 {
        Ok(x)
    } else {
        Err(UnitError {
            flag: flag.to_string(),
            value: value.to_string(),
            reason: "must be > 0".into(),
            expected: expected.to_string(),
        })
    }
}

/// A water flux in m/s: `30lmh`, `8.3e-6m/s`, `8.3e-6` (m/s).
pub fn parse_flux(flag: &str, value: &str) -> Result<f64, UnitError> {
    const EXPECTED: &str =
        "a flux > 0 in lmh or m/s, e.g. 30lmh or 8.3e-6m/s (a plain number is m/s)";
    let x = parse_with_units(flag, value, FLUX_UNITS, 1.0, EXPECTED)?;
    require_positive(flag, value, x, EXPECTED)
}

/// A pressure in Pa: `7bar`, `700kPa`, `0.7MPa`, `700000Pa`, `100psi`, `700000` (Pa).
pub fn parse_pressure(flag: &str, value: &str) -> Result<f64, UnitError> {
    const EXPECTED: &str =
        "a pressure > 0 in bar, kPa, MPa, Pa or psi, e.g. 7bar (a plain number is Pa)";
    let x = parse_with_units(flag, value, PRESSURE_UNITS, 1.0, EXPECTED)?;
    require_positive(flag, value, x, EXPECTED)
}

/// A temperature in K: `25C`, `25°C`, `298.15K`, `298.15` (K).
pub fn parse_temperature(flag: &str, value: &str) -> Result<f64, UnitError> {
    const EXPECTED: &str = "a temperature in C or K, e.g. 25C or 298.15K (a plain number is K)";
    let text = value.trim();
    let lower = text.to_ascii_lowercase();
    let celsius = ["°c", "degc", "c"]
        .iter()
        .find(|s| lower.ends_with(*s))
        .map(|s| &text[..text.len() - s.len()]);
    let kelvin = lower.ends_with('k').then(|| &text[..text.len() - 1]);
    let (number, offset) = match (celsius, kelvin) {
        (Some(n), _) => (n, ZERO_CELSIUS),
        (None, Some(n)) => (n, 0.0),
        (None, None) => (text, 0.0),
    };
    let t = parse_with_units(flag, number, &[], 1.0, EXPECTED).map_err(|mut e| {
        e.value = value.to_string();
        e
    })? + offset;
    if t > 0.0 {
        Ok(t)
    } else {
        Err(UnitError {
            flag: flag.to_string(),
            value: value.to_string(),
            reason: format!("{t} K is below absolute zero"),
            expected: EXPECTED.to_string(),
        })
    }
}

/// A mass-transfer coefficient in m/s: `2e-5` or `2e-5m/s`.
pub fn parse_mass_transfer(flag: &str, value: &str) -> Result<f64, UnitError> {
    const EXPECTED: &str = "a mass-transfer coefficient > 0 in m/s, e.g. fixed:2e-5";
    let x = parse_with_units(flag, value, &[("m/s", 1.0)], 1.0, EXPECTED)?;
    require_positive(flag, value, x, EXPECTED)
}

/// An activity model: `ideal` or `davies`.
pub fn parse_activity(value: &str) -> Result<ionode_physics::ActivityModel, UnitError> {
    ionode_physics::ActivityModel::parse(value).ok_or_else(|| UnitError {
        flag: "--activity".into(),
        value: value.to_string(),
        reason: "unknown activity model".into(),
        expected: "ideal or davies".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs()
    }

    #[test]
    fn fluxes() {
        assert!(close(parse_flux("--flux", "30lmh").unwrap(), 30.0 / 3.6e6));
        assert!(close(parse_flux("--flux", "30 LMH").unwrap(), 30.0 / 3.6e6));
        assert!(close(
            parse_flux("--flux", "30L/m2/h").unwrap(),
            30.0 / 3.6e6
        ));
        assert_eq!(parse_flux("--flux", "8.3e-6").unwrap(), 8.3e-6);
        assert_eq!(parse_flux("--flux", "8.3e-6m/s").unwrap(), 8.3e-6);
        assert_eq!(parse_flux("--flux", "8.3E-6 m/s").unwrap(), 8.3e-6);
    }

    #[test]
    fn bad_flux_names_the_unit_and_the_flag() {
        let e = parse_flux("--flux", "30furlongs").unwrap_err().to_string();
        assert!(
            e.starts_with("--flux '30furlongs': unknown unit 'furlongs'"),
            "{e}"
        );
        assert!(e.contains("lmh"), "{e}");
        let e = parse_flux("--flux", "abc").unwrap_err().to_string();
        assert!(e.contains("'abc': not a number"), "{e}");
        let e = parse_flux("--flux", "-3lmh").unwrap_err().to_string();
        assert!(e.contains("must be > 0"), "{e}");
        let e = parse_flux("--flux", "0").unwrap_err().to_string();
        assert!(e.contains("must be > 0"), "{e}");
        assert!(parse_flux("--flux", "inf").is_err());
        assert!(parse_flux("--flux", "").is_err());
    }

    #[test]
    fn pressures() {
        assert_eq!(parse_pressure("--pressure", "7bar").unwrap(), 7e5);
        assert_eq!(parse_pressure("--pressure", "700kPa").unwrap(), 7e5);
        assert_eq!(parse_pressure("--pressure", "0.7MPa").unwrap(), 7e5);
        assert_eq!(parse_pressure("--pressure", "700000Pa").unwrap(), 7e5);
        assert_eq!(parse_pressure("--pressure", "700000").unwrap(), 7e5);
        assert_eq!(parse_pressure("--pressure", "7 bar").unwrap(), 7e5);
        let e = parse_pressure("--pressure", "7atmos")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown unit 'atmos'"), "{e}");
    }

    #[test]
    fn temperatures() {
        assert!(close(
            parse_temperature("--temperature", "25C").unwrap(),
            298.15
        ));
        assert!(close(
            parse_temperature("--temperature", "25°C").unwrap(),
            298.15
        ));
        assert!(close(
            parse_temperature("--temperature", "25 degC").unwrap(),
            298.15
        ));
        assert_eq!(
            parse_temperature("--temperature", "298.15K").unwrap(),
            298.15
        );
        assert_eq!(
            parse_temperature("--temperature", "298.15").unwrap(),
            298.15
        );
        let e = parse_temperature("--temperature", "-300C")
            .unwrap_err()
            .to_string();
        assert!(e.contains("below absolute zero"), "{e}");
        let e = parse_temperature("--temperature", "warm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'warm'"), "{e}");
    }

    #[test]
    fn mass_transfer() {
        assert_eq!(parse_mass_transfer("--cp", "2e-5").unwrap(), 2e-5);
        assert_eq!(parse_mass_transfer("--cp", "2e-5m/s").unwrap(), 2e-5);
        assert!(parse_mass_transfer("--cp", "-1").is_err());
    }
}
