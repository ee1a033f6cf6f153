//! The ion database of a run: the built-in ions plus those of an `--ions FILE.toml`.
//!
//! TOML errors are reported on one line with the file, line and column and the offending
//! line's text, because toml's own `Display` is a multi-line snippet that does not fit the
//! program's one-line `error:` contract.

use crate::errors::OrUsage;
use crate::errors::{Context, Result};
use ionode_physics::{Ion, IonDb};
use serde::Deserialize;
use std::path::Path;

/// The file format: `[[ion]]` tables with the fields of [`Ion`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IonsFile {
    #[serde(default)]
    ion: Vec<toml::Spanned<Ion>>,
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn line_text(text: &str, line: usize) -> &str {
    text.lines().nth(line - 1).unwrap_or("").trim()
}

/// One line: `ions file 'F', line L, column C: MESSAGE (at `LINE TEXT`)`.
fn describe_toml_error(path: &Path, text: &str, err: &toml::de::Error) -> String {
    let message = err.message().lines().collect::<Vec<_>>().join("; ");
    match err.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let at = line_text(text, line);
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" (at `{at}`)")
            };
            format!(
                "ions file '{}', line {line}, column {col}: {message}{at}",
                path.display()
            )
        }
        None => format!("ions file '{}': {message}", path.display()),
    }
}

/// The built-in ions, plus (replacing same-named ones) those of `path`.
pub fn load(path: Option<&Path>) -> Result<IonDb> {
    let mut db = IonDb::builtin();
    let Some(path) = path else { return Ok(db) };
    let text = crate::limits::read_text(path, crate::limits::MAX_TEXT_FILE_BYTES)
        .or_usage(|| format!("cannot read ions file '{}'", path.display()))?;
    let file: IonsFile = toml::from_str(&text)
        .map_err(|e| crate::usage!("{}", describe_toml_error(path, &text, &e)))?;
    if file.ion.is_empty() {
        tracing::warn!("ions file '{}' has no [[ion]] tables", path.display());
    }
    for spanned in file.ion {
        let (line, _) = line_col(&text, spanned.span().start);
        let ion = spanned.into_inner();
        let name = ion.name.clone();
        db.insert(ion).with_context(|| {
            format!("ions file '{}', line {line}, ion '{name}'", path.display())
        })?;
        tracing::debug!("ion {name} from {}", path.display());
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "a\nbc\ndef";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 2));
        assert_eq!(line_col(text, 5), (3, 1));
    }

    #[test]
    fn ions_file_adds_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "[[ion]]\nname = \"NO3_-\"\ncharge = -1\ndiffusivity_m2_s = 1.9e-9\n\
             stokes_radius_m = 1.3e-10\nmolar_mass_kg_mol = 0.062\nsource = \"test\"\n",
        )
        .unwrap();
        let db = load(Some(&good)).unwrap();
        assert_eq!(db.get("NO3-").unwrap().charge, -1);

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "[[ion]]\nname = \"NO3_-\"\ncharge = \"minus one\"\ndiffusivity_m2_s = 1.9e-9\n",
        )
        .unwrap();
        let e = load(Some(&bad)).unwrap_err().to_string();
        assert!(
            e.contains("bad.toml', line 3") && e.contains("charge"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");

        let unknown = dir.path().join("unknown.toml");
        std::fs::write(&unknown, "[[ion]]\nname = \"X_+\"\nradius = 1\n").unwrap();
        let e = load(Some(&unknown)).unwrap_err().to_string();
        assert!(e.contains("unknown field `radius`"), "{e}");

        let invalid = dir.path().join("invalid.toml");
        std::fs::write(
            &invalid,
            "[[ion]]\nname = \"X_+\"\ncharge = 1\ndiffusivity_m2_s = -1e-9\n\
             stokes_radius_m = 1e-10\nmolar_mass_kg_mol = 0.01\n",
        )
        .unwrap();
        let e = crate::errors::one_line(&load(Some(&invalid)).unwrap_err());
        assert!(
            e.contains("line 1, ion 'X_+'") && e.contains("diffusivity_m2_s"),
            "{e}"
        );
    }
}
