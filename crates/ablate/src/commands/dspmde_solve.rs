//! `ablate dspmde solve`: solves every case of a JSON case file (the format of
//! `crates/physics/tests/data/dspmde_watertap_cases.json`) and writes the same document back with
//! computed values where the file has expected ones.
//!
//! The output keeps every other key, in the input's order, so that `diff` of input and
//! output shows exactly what the solver changed. A case that fails carries an `error`
//! field instead of values and does not stop the run: a file of cases is a test suite, and
//! one failure should not hide the others.

use crate::cli::SolveArgs;
use crate::json::Json;
use anyhow::{Context, Result};
use ionode_physics::cases::{ModuleCaseInputs, ModuleCaseOutput, PointCaseInputs, PointCaseOutput};
use ionode_physics::{IonDb, PointSolution, PointSolver};
use ionode_study::errors::OrUsage;
use ionode_study::output;
use rayon::prelude::*;
use std::time::Instant;

/// Kinds of case this command understands.
const POINT: &str = "point";
const POINT_GIVEN_JV: &str = "point_given_Jv";
const MODULE: &str = "watertap_unit_test_module_0D";

/// Keys holding expected values, which a computed run replaces (or drops on failure).
const POINT_EXPECTED: &str = "expected";
const MODULE_ORACLE: &str = "oracle_full_precision";
const MODULE_ASSERTED: &str = "asserted_upstream_watertap_1_8_0";

/// A case found in the document, with a label for messages.
struct Case<'a> {
    label: String,
    value: &'a mut Json,
}

fn label_of(value: &Json, location: String) -> String {
    match value.get("id").and_then(Json::as_str) {
        Some(id) => format!("{location} '{id}'"),
        None => location,
    }
}

/// Finds the cases in any of the three accepted layouts; anything else is malformed input.
fn collect_cases<'a>(doc: &'a mut Json, file: &str) -> Result<Vec<Case<'a>>> {
    fn array<'a>(items: &'a mut [Json], prefix: &str, file: &str) -> Result<Vec<Case<'a>>> {
        items
            .iter_mut()
            .enumerate()
            .map(|(i, value)| {
                if !matches!(value, Json::Object(_)) {
                    return Err(crate::usage!(
                        "cases file '{file}': {prefix}[{i}] is not a case object"
                    ));
                }
                let label = label_of(value, format!("{prefix}[{i}]"));
                Ok(Case { label, value })
            })
            .collect()
    }
    enum Layout {
        Groups,
        Array,
        Single,
    }
    let layout = match &*doc {
        Json::Object(_) if doc.get("groups").is_some() => Layout::Groups,
        Json::Array(_) => Layout::Array,
        Json::Object(_) if doc.get("inputs").is_some() => Layout::Single,
        _ => {
            return Err(crate::usage!(
                "cases file '{file}': expected an object with `groups` (the reference layout), \
             an array of cases, or one case object with `inputs`"
            ))
        }
    };
    match (layout, doc) {
        (Layout::Groups, Json::Object(entries)) => {
            let groups = entries
                .iter_mut()
                .find_map(|(k, v)| (k == "groups").then_some(v));
            let Some(Json::Object(groups)) = groups else {
                return Err(crate::usage!(
                    "cases file '{file}': `groups` must be an object of case arrays"
                ));
            };
            let mut cases = Vec::new();
            for (name, group) in groups.iter_mut() {
                let Json::Array(items) = group else {
                    return Err(crate::usage!(
                        "cases file '{file}': groups.{name} is not an array of cases"
                    ));
                };
                cases.extend(array(items, &format!("groups.{name}"), file)?);
            }
            Ok(cases)
        }
        (Layout::Array, Json::Array(items)) => array(items, "", file),
        (_, doc) => {
            let label = label_of(doc, "case".into());
            Ok(vec![Case { label, value: doc }])
        }
    }
}

fn inputs<T: serde::de::DeserializeOwned>(case: &Json) -> Result<T, String> {
    let inputs = case
        .get("inputs")
        .ok_or("the case has no `inputs` object")?;
    serde_json::from_value(inputs.to_value()).map_err(|e| format!("inputs: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Json, String> {
    Json::from_serialize(value).map_err(|e| format!("cannot serialise the result: {e}"))
}

/// Solves a point case and puts the result in `expected`.
fn solve_point(case: &mut Json, db: &IonDb, given_jv: bool) -> Result<(), String> {
    let inputs: PointCaseInputs = inputs(case)?;
    let (spec, drive) = inputs.to_spec(db, given_jv).map_err(|e| e.to_string())?;
    let sol = PointSolver::new(&spec)
        .and_then(|mut s| s.solve(drive))
        .map_err(|e| e.to_string())?;
    let mut computed = to_json(&PointCaseOutput::from(&sol))?;
    match case.get(POINT_EXPECTED) {
        Some(old) => computed.align_to(old),
        // Cases without expected values (the reference's no_solution_cases): ions in the
        // order of the feed.
        None => computed.align_to(&ion_order_template(&computed, case)),
    }
    case.set(POINT_EXPECTED, computed, Some("inputs"));
    Ok(())
}

/// A template that orders per-ion maps like `inputs.c_bulk_mol_m3`.
fn ion_order_template(computed: &Json, case: &Json) -> Json {
    let Some(order) = case.get("inputs").and_then(|i| i.get("c_bulk_mol_m3")) else {
        return Json::Null;
    };
    let Json::Object(entries) = computed else {
        return Json::Null;
    };
    Json::Object(
        entries
            .iter()
            .map(|(k, v)| {
                let t = if matches!(v, Json::Object(_)) {
                    order.clone()
                } else {
                    Json::Null
                };
                (k.clone(), t)
            })
            .collect(),
    )
}

/// A module end's point result. The reference's `point_x1` blocks use short names
/// (`c_bulk`, `c_interface`, `c_permeate`) and include the outlet's bulk concentration,
/// which no input states; keys of the old block that the standard output lacks are filled
/// in under the old names so that every expected number has a computed counterpart.
fn point_block(sol: &PointSolution, old: Option<&Json>) -> Result<Json, String> {
    let mut block = to_json(&PointCaseOutput::from(sol))?;
    let Some(Json::Object(old_entries)) = old else {
        return Ok(block);
    };
    for (key, _) in old_entries {
        if block.get(key).is_some() {
            continue;
        }
        let value = if key == "c_bulk" || key == "c_bulk_mol_m3" {
            let per_ion: std::collections::BTreeMap<&str, f64> = sol
                .ions
                .iter()
                .map(String::as_str)
                .zip(sol.c_bulk.iter().copied())
                .collect();
            Some(to_json(&per_ion)?)
        } else {
            block.get(&format!("{key}_mol_m3")).cloned()
        };
        if let Some(value) = value {
            block.set(key, value, None);
        }
    }
    Ok(block)
}

/// The module output key an upstream assertion key corresponds to.
fn module_key(asserted: &str) -> &str {
    match asserted {
        "flux_mol_avg" => "flux_mol_avg_m2_s",
        "inlet_flow_mol" => "feed_flow_mol_s",
        "retentate_flow_mol" => "retentate_flow_mol_s",
        "permeate_flow_mol" => "permeate_flow_mol_s",
        other => other,
    }
}

/// Solves a 0D module case; replaces the oracle block and the upstream assertions.
fn solve_module(case: &mut Json, label: &str) -> Result<(), String> {
    let inputs: ModuleCaseInputs = inputs(case)?;
    let spec = inputs.to_spec().map_err(|e| e.to_string())?;
    let sol = spec.solve().map_err(|e| e.to_string())?;
    let module = to_json(&ModuleCaseOutput::from(&sol))?;
    let mut oracle = Json::Object(vec![
        ("module".into(), module.clone()),
        (
            "point_x0".into(),
            point_block(
                &sol.inlet,
                case.get(MODULE_ORACLE).and_then(|o| o.get("point_x0")),
            )?,
        ),
        (
            "point_x1".into(),
            point_block(
                &sol.outlet,
                case.get(MODULE_ORACLE).and_then(|o| o.get("point_x1")),
            )?,
        ),
    ]);
    if let Some(old) = case.get(MODULE_ORACLE) {
        oracle.align_to(old);
    }
    if let Some(Json::Object(asserted)) = case.get(MODULE_ASSERTED) {
        // The same keys as the upstream assertions (which name fewer ions or no water for
        // some quantities), with computed values.
        let mut computed = Vec::new();
        for (key, old) in asserted {
            let Some(value) = module.get(module_key(key)) else {
                tracing::warn!("{label}: no computed value for {MODULE_ASSERTED}.{key}; dropped");
                continue;
            };
            let value = match (old, value) {
                (Json::Object(wanted), Json::Object(_)) => Json::Object(
                    wanted
                        .iter()
                        .filter_map(|(ion, _)| value.get(ion).map(|v| (ion.clone(), v.clone())))
                        .collect(),
                ),
                _ => value.clone(),
            };
            computed.push((key.clone(), value));
        }
        case.set(MODULE_ASSERTED, Json::Object(computed), None);
    }
    case.set(MODULE_ORACLE, oracle, Some(MODULE_ASSERTED));
    Ok(())
}

/// Solves one case in place. On failure the expected-value blocks are removed (the output
/// must not present reference numbers as computed ones) and `error` says why.
fn solve_case(case: &mut Json, label: &str, db: &IonDb) -> Result<(), String> {
    case.remove("error");
    let kind = case
        .get("kind")
        .map(|k| {
            k.as_str()
                .map(str::to_string)
                .ok_or("`kind` is not a string".to_string())
        })
        .transpose()?;
    let result = match kind.as_deref() {
        None | Some(POINT) => solve_point(case, db, false),
        Some(POINT_GIVEN_JV) => solve_point(case, db, true),
        Some(MODULE) => solve_module(case, label),
        Some(other) => Err(format!(
            "unknown kind '{other}' (known: {POINT}, {POINT_GIVEN_JV}, {MODULE})"
        )),
    };
    if let Err(message) = &result {
        for key in [POINT_EXPECTED, MODULE_ORACLE, MODULE_ASSERTED] {
            case.remove(key);
        }
        case.set("error", Json::String(message.clone()), Some("inputs"));
    }
    result
}

/// The indent of the input file (the reference uses one space), so the output diffs cleanly.
fn detect_indent(text: &str) -> usize {
    text.lines()
        .nth(1)
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .filter(|n| (1..=8).contains(n))
        .unwrap_or(2)
}

pub fn run(args: &SolveArgs) -> Result<()> {
    let start = Instant::now();
    let file = args.cases.display().to_string();
    let text =
        ionode_study::limits::read_text(&args.cases, ionode_study::limits::MAX_TEXT_FILE_BYTES)
            .or_usage(|| format!("cannot read cases file '{file}'"))?;
    let mut doc: Json = serde_json::from_str(&text)
        .or_usage(|| format!("cases file '{file}' is not valid JSON"))?;
    let db = IonDb::builtin();
    let mut cases = collect_cases(&mut doc, &file)?;
    if cases.is_empty() {
        tracing::warn!("cases file '{file}' contains no cases");
    }
    // Cases are independent: solve them in parallel, each in place, so the document (and
    // thus the output) keeps the input order.
    let results: Vec<Result<(), String>> = cases
        .par_iter_mut()
        .map(|c| solve_case(c.value, &c.label, &db))
        .collect();
    let mut failed = 0;
    for (case, result) in cases.iter().zip(&results) {
        match result {
            Ok(()) => tracing::debug!("{}: solved", case.label),
            Err(e) => {
                failed += 1;
                tracing::warn!("{}: {e}", case.label);
            }
        }
    }
    let solved = results.len() - failed;
    drop(cases);
    let out_text = doc
        .to_pretty_string(detect_indent(&text))
        .context("cannot serialise the solved cases")?;
    output::write_text(&args.out, &out_text)?;
    eprintln!(
        "solved {solved}, failed {failed} ({:.2} s); wrote {}",
        start.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
