//! `--set KEY=VALUE`: changes to a manifest from the command line, applied after its
//! includes as if a last file had written them.
//!
//! Each argument is one TOML key/value line: dotted keys as in the manifest
//! (`base.finetune.epochs=50`, `grid."model.variant"=["node"]`, `seeds=[0,1]`). A value that
//! is not TOML but a bare word (`base.model.variant=node`) is read as that string, since a
//! shell has already eaten the quotes a TOML string needs. Paths in values are read as if
//! the manifest wrote them (relative to its folder).
//!
//! Keys set here are located at their argument (`--set 'base.finetune.epochs=0':1:6: ...`),
//! so the manifest's checks name the argument that caused a problem. A study with overrides
//! is a different study: unless an override sets `study`, its name gets the suffix
//! `-set-<hash of the overrides>`, so its plan and runs live in their own folder and never
//! mix with the un-overridden study's.

use super::include::merge;
use super::locate::{toml_error, Locations};
use super::Problems;
use toml::{Table, Value};

/// Most overrides in one command (a guard on the command line's size, not a design limit).
pub const MAX_OVERRIDES: usize = 256;

/// How an override argument is named in messages and locations.
pub fn shown(arg: &str) -> String {
    format!("--set '{arg}'")
}

/// One argument as a table of the keys it sets, and the TOML text it was read as (a bare
/// word quoted), from which its keys are located: keys start where the argument has them.
fn parse(arg: &str) -> Result<(Table, String), String> {
    let name = shown(arg);
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!(
            "{name}: expected KEY=VALUE (a dotted key as in the manifest and a TOML value), \
             e.g. --set base.finetune.epochs=50"
        ));
    };
    if key.trim().is_empty() {
        return Err(format!("{name}: the key before '=' is empty"));
    }
    match toml::from_str::<Table>(arg) {
        Ok(t) => Ok((t, arg.to_string())),
        Err(e) => {
            let bare = value.trim();
            let is_word = !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-+^./:".contains(c));
            if is_word {
                let quoted = format!("{key}={}", Value::String(bare.to_string()));
                if let Ok(t) = toml::from_str::<Table>(&quoted) {
                    return Ok((t, quoted));
                }
            }
            Err(format!(
                "{} (the value is TOML: quote strings, e.g. --set 'base.model.variant=\"node\"')",
                toml_error(&name, arg, &e)
            ))
        }
    }
}

/// Applies the overrides, in order, to a merged manifest, recording where each key was
/// set. Every bad argument is reported.
pub fn apply(merged: &mut Table, locs: &mut Locations, args: &[String]) -> Result<(), Problems> {
    if args.len() > MAX_OVERRIDES {
        return Err(Problems(vec![format!(
            "{} --set arguments: expected at most {MAX_OVERRIDES}",
            args.len()
        )]));
    }
    let mut problems = Vec::new();
    let mut tables = Vec::new();
    for arg in args {
        match parse(arg) {
            Ok((t, _)) if t.contains_key("include") => problems.push(format!(
                "{}: include: includes cannot be set from the command line (they are read before overrides)",
                shown(arg)
            )),
            Ok((t, text)) => tables.push((arg, t, text)),
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let mut set = Vec::new();
    for (arg, t, text) in tables {
        locs.record(&shown(arg), &text);
        set.push((arg, leaf_paths(&t)));
        merge(merged, t);
    }
    for (arg, paths) in set {
        for path in paths {
            if let Some(why) = overridden_by_the_study(merged, &path) {
                problems.push(format!(
                    "{}: {}: {why}, so this override would change nothing",
                    locs.at(
                        &path.iter().map(String::as_str).collect::<Vec<_>>(),
                        &shown(arg)
                    ),
                    path.join(".")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

/// Every key path a table sets down to its leaves (a table value is descended into; an
/// array or scalar is a leaf).
fn leaf_paths(t: &Table) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (k, v) in t {
        match v {
            Value::Table(inner) if !inner.is_empty() => {
                for mut p in leaf_paths(inner) {
                    p.insert(0, k.clone());
                    out.push(p);
                }
            }
            _ => out.push(vec![k.clone()]),
        }
    }
    out
}

/// Why a `base.` key an override sets is set again in every run by the study itself: a
/// grid or random axis at it or above it (an axis that sets a whole table), or the
/// search's budget.
fn overridden_by_the_study(merged: &Table, path: &[String]) -> Option<String> {
    let [first, rest @ ..] = path else {
        return None;
    };
    if first != "base" || rest.is_empty() {
        return None;
    }
    let key = rest.join(".");
    let covers = |axis: &str| key == axis || key.starts_with(&format!("{axis}."));
    for table in ["grid", "random"] {
        if let Some(Value::Table(axes)) = merged.get(table) {
            if let Some(axis) = axes.keys().find(|a| covers(a)) {
                return Some(format!(
                    "the {table} axis \"{axis}\" sets it in every run (change the axis instead: \
                     --set '{table}.\"{axis}\"=...')"
                ));
            }
        }
    }
    let budget = merged
        .get("search")
        .and_then(|s| s.get("budget"))
        .and_then(Value::as_str)?;
    covers(budget).then(|| {
        format!(
            "the search's budget \"{budget}\" sets it in every run (set search.min/max instead)"
        )
    })
}

/// The study name of an overridden manifest: its own name with `-set-` and a hash of the
/// overrides, unless an override names the study itself.
pub fn study_name(study: &str, args: &[String]) -> String {
    let sets_study = args
        .iter()
        .any(|a| a.split_once('=').is_some_and(|(k, _)| k.trim() == "study"));
    if args.is_empty() || sets_study || study.is_empty() {
        return study.to_string();
    }
    let hash = crate::provenance::text_hash(&args.join("\n"));
    format!("{study}-set-{}", &hash[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(args: &[&str]) -> Result<Table, Problems> {
        let mut t: Table = toml::from_str("[base.finetune]\nepochs = 2\nbatch_size = 4\n").unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        apply(&mut t, &mut Locations::default(), &args).map(|()| t)
    }

    #[test]
    fn dotted_and_quoted_keys_set_values_and_merge_tables() {
        let t = table(&[
            "base.finetune.epochs=50",
            "grid.\"model.variant\"=[\"node\"]",
            "base.model.encoding=sinusoidal",
        ])
        .unwrap();
        assert_eq!(t["base"]["finetune"]["epochs"], Value::Integer(50));
        assert_eq!(t["base"]["finetune"]["batch_size"], Value::Integer(4));
        assert_eq!(
            t["grid"]["model.variant"],
            Value::Array(vec![Value::String("node".into())])
        );
        assert_eq!(
            t["base"]["model"]["encoding"],
            Value::String("sinusoidal".into())
        );
    }

    #[test]
    fn bad_arguments_are_all_named() {
        let p = table(&[
            "base.finetune.epochs",
            "=3",
            "grid.x=[1,",
            "include=[\"a.toml\"]",
        ])
        .unwrap_err()
        .0;
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("--set 'base.finetune.epochs': expected KEY=VALUE"));
        assert!(p[1].contains("key before '=' is empty"));
        assert!(p[2].starts_with("--set 'grid.x=[1,':1:"), "{}", p[2]);
        assert!(p[3].contains("includes cannot be set"));
    }

    #[test]
    fn an_overridden_study_has_its_own_name() {
        let args = vec!["base.finetune.epochs=50".to_string()];
        let a = study_name("smoke", &args);
        assert!(a.starts_with("smoke-set-") && a.len() == "smoke-set-".len() + 8);
        assert_eq!(study_name("smoke", &[]), "smoke");
        let named = vec![args[0].clone(), "study=mine".to_string()];
        assert_eq!(study_name("mine", &named), "mine");
        assert_ne!(
            a,
            study_name("smoke", &["base.finetune.epochs=51".to_string()])
        );
    }

    #[test]
    fn a_bare_word_is_located_at_its_argument() {
        let mut t: Table = toml::from_str("[base.model]\nvariant = \"node\"\n").unwrap();
        let mut locs = Locations::default();
        apply(&mut t, &mut locs, &["base.model.variant=bogus".to_string()]).unwrap();
        assert_eq!(
            locs.at(&["base", "model", "variant"], "m.toml"),
            "--set 'base.model.variant=bogus':1:12"
        );
    }

    #[test]
    fn a_key_the_study_sets_in_every_run_cannot_be_overridden() {
        let manifest = "[base.finetune]\nepochs = 2\n[grid]\n\"finetune.learning_rate\" = [1e-3]\n\
                        \"pretrain\" = [false]\n[search]\nbudget = \"finetune.epochs\"\n";
        let mut t: Table = toml::from_str(manifest).unwrap();
        let args: Vec<String> = [
            "base.finetune.learning_rate=0.1",
            "base.pretrain.epochs=3",
            "base.finetune.epochs=7",
            "base.finetune.batch_size=8",
            "grid.\"finetune.learning_rate\"=[0.1]",
        ]
        .map(String::from)
        .to_vec();
        let p = apply(&mut t, &mut Locations::default(), &args)
            .unwrap_err()
            .0;
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("--set 'base.finetune.learning_rate=0.1':1:15: "),
            "{}",
            p[0]
        );
        assert!(
            p[0].contains("grid axis \"finetune.learning_rate\""),
            "{}",
            p[0]
        );
        assert!(p[1].contains("grid axis \"pretrain\""), "{}", p[1]);
        assert!(p[2].contains("budget \"finetune.epochs\""), "{}", p[2]);
        assert!(p.iter().all(|l| l.contains("would change nothing")));
    }
}
