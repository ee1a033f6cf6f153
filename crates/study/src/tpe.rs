//! A TPE search (`[search] sampler = "tpe"`): candidates over the `[random]` axes proposed
//! by a Tree-structured Parzen Estimator (the `parzen` crate), in generations.
//!
//! Generation 0 is the random start: the manifest's `random.samples` points, planned with
//! the manifest like a random search's (the same points). Generation g >= 1 holds the next
//! `generation` candidates (the last may hold fewer), proposed once every run of the
//! generations before it is finished (DONE or FAILED), from only:
//! - the manifest seed and g (the sampler's seed),
//! - the finished candidates of those generations, told in candidate order with their
//!   score (the mean of the metric over their runs; a candidate with a failed run or an
//!   undefined metric is left out, as Optuna leaves out failed trials). With several
//!   objectives (`metrics`), the score told is the candidate's NSGA-II rank among the
//!   finished candidates as one number ([`score::nsga_values`]: its Pareto front, plus up
//!   to a half for being crowded), minimised, so the sampler proposes near the front and
//!   along it.
//!
//! A fresh sampler is built for every generation and told that history, then asked for the
//! generation's candidates one by one, each told the worst score seen as its value before
//! the next is asked (a "constant liar", so a generation's candidates spread out instead of
//! repeating the most promising point). A proposal is therefore a pure function of the
//! manifest and the finished runs: the same at any `--jobs`, any `--shard` split, on Slurm
//! as locally, and after a kill. A generation is written once to
//! `RESULTS/<study>/search/generation-<g>.json` (atomically, with the hash of the search it
//! belongs to) together with its planned runs; every process that needs it reads it, or
//! proposes it and writes the same text. The search's result, once every generation is
//! finished, is `search/result.json`.
//!
//! Warm start: `search.enqueue` names candidates that come first (before the random start),
//! and `search.warm_start` names other studies in the same results folder whose finished
//! runs at points of this search's axes (their mean objectives over those runs) are told to
//! the sampler before this search's own candidates, in every generation. They are read once,
//! when the plan is written ([`warm_start`]), and kept in it, so every process tells the
//! same ones; a study that is still running gives what it has finished then.
//!
//! A generation once written is kept: a failed run rerun later (`--retry-failed`) changes
//! the scores the result ranks, not the proposals already made from it.

use crate::errors::{Context, Result};
use crate::manifest::search_spec::{Direction, Tpe};
use crate::manifest::{toml_json, AxisValue, Candidate, Dist, Manifest, Plan, PlannedRun};
use crate::manifest::{Planned, SearchPlan};
use crate::score::{self, rank, Objectives, Scored};
use crate::{halving, output, store};
use ionode_random::stream_seed;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Salt of the sampler seeds (distinct from the random-search and run streams).
const TPE_SALT: u64 = 0x7470_655f_7365_6564;

/// One proposed generation, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// [`halving::search_hash`] of the search it belongs to.
    pub search: String,
    pub generation: usize,
    /// The finished candidates it was proposed from, in the order they were told.
    pub told: Vec<Told>,
    /// Its candidates, numbered after the earlier generations' (each with its `drawn`
    /// values; `runs` holds one list, empty when the point's config is invalid).
    pub candidates: Vec<Candidate>,
    /// The runs first planned by this generation (a proposal that resolves to an earlier
    /// run reuses it), indexed after the runs before.
    pub runs: Vec<PlannedRun>,
    /// Candidate number -> why its config cannot run (a proposal outside what a run
    /// accepts, which the manifest's ranges allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<(usize, String)>,
    /// The values told for the plan's warm-start points (those with a value), first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warm: Vec<f64>,
}

/// A finished candidate as told to the sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Told {
    pub candidate: usize,
    pub score: f64,
}

/// The search's result once every generation is finished: every candidate ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub search: String,
    pub metric: String,
    pub direction: Direction,
    /// Every candidate, best first.
    pub ranked: Vec<Scored>,
    /// The best candidate by the metric (none with several objectives: see `front`).
    pub winner: Option<usize>,
    /// With several objectives, the Pareto front's candidates, in ranked order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub front: Vec<usize>,
}

/// Where generation `g` is kept.
pub fn generation_path(study_dir: &Path, g: usize) -> PathBuf {
    study_dir
        .join("search")
        .join(format!("generation-{g}.json"))
}

/// Where the result is kept.
pub fn outcome_path(study_dir: &Path) -> PathBuf {
    study_dir.join("search").join("result.json")
}

/// The number of generations: the random start, then `generation` candidates each.
pub fn generation_count(search: &SearchPlan, tpe: Tpe) -> usize {
    let rest = tpe.candidates.saturating_sub(search.candidates.len());
    1 + rest.div_ceil(tpe.generation.max(1))
}

/// A TPE search's state read from its folder: every candidate and run so far, generation
/// by generation (generation 0 from the plan).
#[derive(Debug, Clone)]
pub struct State {
    pub tpe: Tpe,
    /// Generation g's candidate numbers.
    pub generations: Vec<std::ops::Range<usize>>,
    pub candidates: Vec<Candidate>,
    /// The plan's runs, then each generation's.
    pub runs: Vec<PlannedRun>,
    pub problems: Vec<(usize, String)>,
}

impl State {
    /// The state of `plan`'s search as far as its generations are written (`None` when
    /// the plan is not a TPE search). A generation file of another search, or one that is
    /// unreadable or does not fit ([`State::follows`]), ends the chain there (it is
    /// proposed again).
    pub fn read(plan: &Plan, study_dir: &Path) -> Result<Option<State>> {
        let Some(search) = &plan.search else {
            return Ok(None);
        };
        let Some(tpe) = search.spec.tpe() else {
            return Ok(None);
        };
        let mut state = State {
            tpe,
            generations: Vec::with_capacity(generation_count(search, tpe)),
            candidates: search.candidates.clone(),
            runs: plan.runs.clone(),
            problems: Vec::new(),
        };
        state.generations.push(0..search.candidates.len());
        let hash = halving::search_hash(search);
        for g in 1..generation_count(search, tpe) {
            let Some(gen) = read_generation(study_dir, g)? else {
                break;
            };
            if !state.follows(&gen, &hash, g) {
                tracing::warn!(
                    generation = g,
                    "a generation that does not fit is proposed again"
                );
                break;
            }
            state.push(gen);
        }
        Ok(Some(state))
    }

    /// Whether `gen` is generation `g` of this search: its hash, its number, as many
    /// candidates as the generation holds, runs numbered after what is read and candidates
    /// naming only runs that exist.
    fn follows(&self, gen: &Generation, hash: &str, g: usize) -> bool {
        let (c0, r0) = (self.candidates.len(), self.runs.len());
        let runs_total = r0 + gen.runs.len();
        let size = self
            .tpe
            .candidates
            .saturating_sub(c0)
            .min(self.tpe.generation);
        gen.search == hash
            && gen.generation == g
            && gen.candidates.len() == size
            && size > 0
            && gen.runs.iter().enumerate().all(|(k, r)| r.index == r0 + k)
            && gen
                .candidates
                .iter()
                .all(|c| c.runs.len() == 1 && c.runs[0].iter().all(|&i| i < runs_total))
            && gen
                .problems
                .iter()
                .all(|(c, _)| (c0..c0 + gen.candidates.len()).contains(c))
    }

    fn push(&mut self, gen: Generation) {
        let start = self.candidates.len();
        self.generations.push(start..start + gen.candidates.len());
        self.candidates.extend(gen.candidates);
        self.runs.extend(gen.runs);
        self.problems.extend(gen.problems);
    }

    /// The runs of generation `g` (each once, in index order).
    pub fn generation_runs(&self, g: usize) -> Vec<&PlannedRun> {
        let mut idx: Vec<usize> = self.candidates[self.generations[g].clone()]
            .iter()
            .flat_map(|c| c.runs.iter().flatten().copied())
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| &self.runs[i]).collect()
    }

    /// Candidate `c`'s scores (`None` while a run of it is unfinished).
    pub fn score(&self, study_dir: &Path, c: usize, objectives: &Objectives) -> Option<Scored> {
        let runs: Vec<&str> = self.candidates[c]
            .runs
            .iter()
            .flatten()
            .map(|&i| self.runs[i].id.as_str())
            .collect();
        if runs.is_empty() {
            // Its config could not run: scored as a failure.
            return Some(Scored {
                candidate: c,
                score: None,
                runs: vec![],
                objectives: if objectives.len() > 1 {
                    vec![None; objectives.len()]
                } else {
                    vec![]
                },
            });
        }
        score::candidate(study_dir, c, &runs, objectives)
    }
}

fn read_generation(study_dir: &Path, g: usize) -> Result<Option<Generation>> {
    let path = generation_path(study_dir, g);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read '{}'", path.display())),
    };
    // A file this version cannot read (or whose runs fail their checks) is proposed again.
    Ok(serde_json::from_str(&text).ok())
}

/// The finished points of the plan's `warm_start` studies (in `results`, the folder this
/// study is in) at points of its axes: per study and point (its value of every axis of the
/// space, inside its distribution), each objective's mean over the point's finished runs
/// with every objective defined. Read when the plan is written.
pub fn warm_start(plan: &Plan, results: &Path) -> Result<Vec<crate::manifest::WarmPoint>> {
    let Some(search) = &plan.search else {
        return Ok(vec![]);
    };
    let objectives = search.spec.objectives();
    let mut out = Vec::new();
    for name in &search.spec.warm_start {
        let dir = results.join(name);
        if name == &plan.study {
            return Err(crate::usage!(
                "search.warm_start '{name}': a study's own runs are its history already; name \
                 other studies"
            ));
        }
        if !dir.join("plan.json").is_file() {
            return Err(crate::usage!(
                "search.warm_start '{name}': no study folder '{}' (a study in the same results \
                 folder; run it first)",
                dir.display()
            ));
        }
        let other = Plan::read(&dir)?;
        // A point (its values as JSON text) -> its values and, per objective, its runs' values.
        type Point = (Vec<serde_json::Value>, Vec<Vec<f64>>);
        let mut points: std::collections::BTreeMap<String, Point> = Default::default();
        for run in study_runs(&other, &dir)?.iter() {
            let drawn: Option<Vec<serde_json::Value>> = search
                .space
                .iter()
                .map(|(axis, d)| {
                    let v = run.axes.get(axis)?;
                    let t: toml::Value = serde_json::from_value(v.clone()).ok()?;
                    d.contains(&t).then(|| v.clone())
                })
                .collect();
            let Some(drawn) = drawn else { continue };
            if store::state(&dir, &run.id) != store::State::Done {
                continue;
            }
            let path = store::run_dir(&dir, &run.id).join(store::RUN_FILE);
            let Ok(record) = crate::record::read(&path) else {
                continue;
            };
            let values: Option<Vec<f64>> = objectives
                .iter()
                .map(|(_, m, _)| score::metric_of(&record.metrics, m))
                .collect();
            let Some(values) = values else { continue };
            let key = serde_json::to_string(&drawn).expect("JSON values serialise");
            let entry = points
                .entry(key)
                .or_insert_with(|| (drawn, vec![Vec::new(); objectives.len()]));
            for (list, v) in entry.1.iter_mut().zip(values) {
                list.push(v);
            }
        }
        for (drawn, lists) in points.into_values() {
            out.push(crate::manifest::WarmPoint {
                study: name.clone(),
                drawn,
                runs: lists.first().map_or(0, |l| l.len()),
                objectives: lists
                    .iter()
                    .map(|l| l.iter().sum::<f64>() / l.len() as f64)
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// A study's name and the ids of its runs, each once: the plan's, and a TPE search's
/// proposed ones, but not the runs a finished halving or Hyperband search dropped. Only a
/// search's plan is read whole.
pub fn study_run_ids(study_dir: &Path) -> Result<(String, Vec<String>)> {
    if let Some(light) = Plan::read_ids(study_dir)? {
        let (study, mut ids) = light;
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        return Ok((study, ids));
    }
    let plan = Plan::read(study_dir)?;
    // A finished halving or Hyperband search's dropped runs will never run: they are not
    // the study's (else it would never look complete).
    let mut seen: std::collections::HashSet<String> =
        crate::hyperband::unneeded_runs(&plan, study_dir)?
            .into_iter()
            .map(|i| plan.runs[i].id.clone())
            .collect();
    let ids = study_runs(&plan, study_dir)?
        .iter()
        .map(|r| r.id.clone())
        .filter(|id| seen.insert(id.clone()))
        .collect();
    Ok((plan.study, ids))
}

/// Every run of a study: the plan's, and for a TPE search those of its generations so far
/// (a sweep's are borrowed, not copied: a plan of 100 000 runs holds as many configs).
pub fn study_runs<'a>(
    plan: &'a Plan,
    study_dir: &Path,
) -> Result<std::borrow::Cow<'a, [PlannedRun]>> {
    Ok(match State::read(plan, study_dir)? {
        Some(state) => state.runs.into(),
        None => plan.runs.as_slice().into(),
    })
}

/// The parzen search space of the `[random]` axes.
fn space(axes: &[(String, Dist)]) -> Result<parzen::SearchSpace> {
    use parzen::{
        CategoricalDistribution, Distribution, FloatDistribution, IntDistribution, SearchSpace,
    };
    let mut space = SearchSpace::new();
    for (axis, d) in axes {
        let dist = match d {
            Dist::Uniform { min, max } => {
                FloatDistribution::linear(*min, *max).map(Distribution::Float)
            }
            Dist::LogUniform { min, max } => {
                FloatDistribution::log(*min, *max).map(Distribution::Float)
            }
            Dist::IntUniform { min, max } => {
                IntDistribution::linear(*min, *max).map(Distribution::Int)
            }
            Dist::Choice { values } => {
                CategoricalDistribution::new(values.len() as u32).map(Distribution::Categorical)
            }
        };
        dist.and_then(|dist| space.add(axis, dist).map(|_| ()))
            .map_err(|e| crate::failed!("random.\"{axis}\" cannot be searched by TPE: {e}"))?;
    }
    Ok(space)
}

/// A drawn value as the sampler's: a float clamped into its range (a log-uniform draw can
/// round one ulp past its end), an integer, or a choice's position.
fn param(d: &Dist, drawn: &serde_json::Value) -> Option<parzen::ParamValue> {
    use parzen::ParamValue;
    match d {
        Dist::Uniform { min, max } | Dist::LogUniform { min, max } => {
            Some(ParamValue::Float(drawn.as_f64()?.clamp(*min, *max)))
        }
        Dist::IntUniform { .. } => Some(ParamValue::Int(drawn.as_i64()?)),
        Dist::Choice { values } => values
            .iter()
            .position(|v| toml_json(v) == *drawn)
            .map(|i| ParamValue::Categorical(i as u32)),
    }
}

/// A sampler's value as a point's TOML value.
fn value(d: &Dist, p: parzen::ParamValue) -> toml::Value {
    use parzen::ParamValue;
    match (d, p) {
        (Dist::Choice { values }, ParamValue::Categorical(i)) => values[i as usize].clone(),
        (_, ParamValue::Int(i)) => toml::Value::Integer(i),
        (_, ParamValue::Float(x)) => toml::Value::Float(x),
        (_, ParamValue::Categorical(i)) => toml::Value::Integer(i64::from(i)),
    }
}

/// `count` points proposed from `told` (candidate draws and scores, in order) with the
/// sampler seeded by `seed`.
pub fn propose(
    axes: &[(String, Dist)],
    direction: Direction,
    told: &[(&[serde_json::Value], f64)],
    count: usize,
    seed: u64,
) -> Result<Vec<Vec<parzen::ParamValue>>> {
    let fail = |e: parzen::ParzenError| crate::failed!("the TPE sampler: {e}");
    let sampler = parzen::TpeSampler::new(
        parzen::TpeSamplerConfig::optuna_compatible(seed).startup_trials(0),
    )
    .map_err(fail)?;
    let dir = match direction {
        Direction::Minimize => parzen::Direction::Minimize,
        Direction::Maximize => parzen::Direction::Maximize,
    };
    let mut study = parzen::Study::new(dir, sampler, space(axes)?).map_err(fail)?;
    for (drawn, score) in told {
        let params: Option<Vec<(String, parzen::ParamValue)>> = axes
            .iter()
            .zip(drawn.iter())
            .map(|((axis, d), v)| Some((axis.clone(), param(d, v)?)))
            .collect();
        let Some(params) = params.filter(|p| p.len() == axes.len()) else {
            let names: Vec<&str> = axes.iter().map(|(a, _)| a.as_str()).collect();
            return Err(crate::failed!(
                "the values {} (of a candidate or a warm-start point in plan.json or a \
                 generation file) do not fit the axes {} with their distributions; `ablate plan \
                 MANIFEST --force` plans the search again",
                serde_json::Value::Array(drawn.to_vec()),
                names.join(", ")
            ));
        };
        study
            .add_trial(parzen::TrialInput {
                params,
                value: *score,
            })
            .map_err(fail)?;
    }
    let lie = told.iter().map(|(_, s)| *s).reduce(|a, b| match direction {
        Direction::Minimize => a.max(b),
        Direction::Maximize => a.min(b),
    });
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut point = Vec::with_capacity(axes.len());
        for (axis, d) in axes {
            let p = match d {
                Dist::Uniform { .. } | Dist::LogUniform { .. } => {
                    study.suggest_float(axis).map(parzen::ParamValue::Float)
                }
                Dist::IntUniform { .. } => study.suggest_int(axis).map(parzen::ParamValue::Int),
                Dist::Choice { .. } => study
                    .suggest_categorical(axis)
                    .map(parzen::ParamValue::Categorical),
            };
            point.push(p.map_err(fail)?);
        }
        match lie {
            Some(lie) => {
                study.complete_trial(lie).map_err(fail)?;
            }
            None => {
                study.abort_trial();
            }
        }
        out.push(point);
    }
    Ok(out)
}

/// Makes sure generation `g` (>= 1) of `m`'s TPE search is written: it is in `state`
/// already, or it is proposed and written now (an error while a run of the generations
/// before is unfinished). `false` past the last generation.
pub fn generation(m: &Manifest, study_dir: &Path, state: &State, g: usize) -> Result<bool> {
    let search = m.plan.search.as_ref().expect("a TPE study has a search");
    if g < state.generations.len() {
        return Ok(true);
    }
    if g >= generation_count(search, state.tpe) {
        return Ok(false);
    }
    let objectives = search.spec.objectives();
    let mut scored = Vec::with_capacity(state.candidates.len());
    for c in 0..state.candidates.len() {
        let Some(s) = state.score(study_dir, c, &objectives) else {
            return Err(crate::failed!(
                "generation {g} of study '{}' cannot be proposed: candidate {c} has a run that \
                 is not finished (`ablate status` lists them)",
                m.study
            ));
        };
        scored.push(s);
    }
    // The warm-start points after the candidates, scored like them.
    let own = scored.len();
    scored.extend(search.warm.iter().enumerate().map(|(k, w)| Scored {
        candidate: own + k,
        score: w.objectives.first().copied(),
        runs: vec![],
        objectives: if objectives.len() > 1 {
            w.objectives.iter().map(|&v| Some(v)).collect()
        } else {
            vec![]
        },
    }));
    let (mut values, direction) = if objectives.len() > 1 {
        let directions: Vec<Direction> = objectives.iter().map(|o| o.2).collect();
        (
            score::nsga_values(&scored, &directions),
            Direction::Minimize,
        )
    } else {
        (
            scored.iter().map(|s| s.score).collect(),
            search.spec.direction,
        )
    };
    let warm_values: Vec<Option<f64>> = values.split_off(own);
    let told: Vec<Told> = values
        .into_iter()
        .enumerate()
        .filter_map(|(c, v)| {
            v.map(|score| Told {
                candidate: c,
                score,
            })
        })
        .collect();
    let first = state.candidates.len();
    let count = (state.tpe.candidates - first).min(state.tpe.generation);
    // Told in order: the warm-start points, then the candidates.
    let history: Vec<(&[serde_json::Value], f64)> = search
        .warm
        .iter()
        .zip(&warm_values)
        .filter_map(|(w, v)| v.map(|v| (w.drawn.as_slice(), v)))
        .chain(
            told.iter()
                .map(|t| (state.candidates[t.candidate].drawn.as_slice(), t.score)),
        )
        .collect();
    let seed = stream_seed(m.plan.seed ^ TPE_SALT, g as u64);
    let points = propose(&search.space, direction, &history, count, seed)?;
    let mut known: HashMap<String, usize> =
        state.runs.iter().map(|r| (r.id.clone(), r.index)).collect();
    let mut gen = Generation {
        search: halving::search_hash(search),
        generation: g,
        told,
        candidates: Vec::with_capacity(count),
        runs: Vec::new(),
        problems: Vec::new(),
        warm: warm_values.iter().flatten().copied().collect(),
    };
    for (k, p) in points.into_iter().enumerate() {
        let point: Vec<AxisValue> = search
            .space
            .iter()
            .zip(p)
            .map(|((axis, d), v)| {
                let at = vec!["random".to_string(), axis.clone()];
                (axis.clone(), value(d, v), at)
            })
            .collect();
        let drawn = point.iter().map(|(_, v, _)| toml_json(v)).collect();
        let next = state.runs.len() + gen.runs.len();
        match m.template.plan_proposed(&[point], known.clone(), next) {
            Ok(Planned {
                mut candidates,
                runs,
                ..
            }) if candidates.len() == 1 && candidates[0].runs.len() == 1 => {
                for r in &runs {
                    known.insert(r.id.clone(), r.index);
                }
                let mut c = candidates.remove(0);
                c.drawn = drawn;
                gen.candidates.push(c);
                gen.runs.extend(runs);
            }
            planned => {
                let why = match planned {
                    Err(problems) => problems.join("; "),
                    Ok(_) => "no run config".to_string(),
                };
                gen.problems.push((first + k, why));
                gen.candidates.push(Candidate {
                    axes: Default::default(),
                    runs: vec![vec![]],
                    drawn,
                });
            }
        }
    }
    // Written once: a generation another process wrote meanwhile stays (its runs may be
    // running); one of another search (a replaced plan) is replaced.
    let path = generation_path(study_dir, g);
    let text = serde_json::to_string_pretty(&gen).expect("search files serialise") + "\n";
    let ours = |o: Option<Generation>| o.is_some_and(|o| o.search == gen.search);
    if !ours(read_generation(study_dir, g)?)
        && !output::write_text_new(&path, &text)?
        && !ours(read_generation(study_dir, g)?)
    {
        output::write_text(&path, &text)?;
    }
    Ok(true)
}

/// Writes a search file atomically unless the same text is there.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("search files serialise") + "\n";
    output::write_text_unless_same(path, &text)
}

/// Every candidate ranked (`None` while a run is unfinished) and the result written.
pub fn outcome(plan: &Plan, study_dir: &Path, state: &State) -> Result<Option<Outcome>> {
    let search = plan.search.as_ref().expect("a TPE study has a search");
    let objectives = search.spec.objectives();
    let directions: Vec<Direction> = objectives.iter().map(|o| o.2).collect();
    let mut ranked = Vec::with_capacity(state.candidates.len());
    for c in 0..state.candidates.len() {
        let Some(s) = state.score(study_dir, c, &objectives) else {
            return Ok(None);
        };
        ranked.push(s);
    }
    rank(&mut ranked, &directions);
    let several = directions.len() > 1;
    Ok(Some(Outcome {
        search: halving::search_hash(search),
        metric: search.spec.metric_label(),
        direction: search.spec.direction,
        winner: ranked
            .first()
            .filter(|s| s.score.is_some() && !several)
            .map(|s| s.candidate),
        front: if several {
            score::pareto_front(&ranked, &directions)
        } else {
            vec![]
        },
        ranked,
    }))
}

/// Writes the result once every generation is finished.
pub fn write_outcome(study_dir: &Path, o: &Outcome) -> Result<()> {
    write_json(&outcome_path(study_dir), o)
}

/// The written result of this search, if it is there.
pub fn read_outcome(plan: &Plan, study_dir: &Path) -> Option<Outcome> {
    let search = plan.search.as_ref()?;
    let text = std::fs::read_to_string(outcome_path(study_dir)).ok()?;
    let o: Outcome = serde_json::from_str(&text).ok()?;
    (o.search == halving::search_hash(search)).then_some(o)
    // (Candidate numbers in it are checked where they are shown.)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constructed response: the best point is x = 0.3 and the choice "b".
    fn response(p: &[parzen::ParamValue]) -> f64 {
        let x = p[0].as_float().unwrap();
        let c = p[1].as_categorical().unwrap();
        (x - 0.3).powi(2) + if c == 1 { 0.0 } else { 0.5 }
    }

    fn axes() -> Vec<(String, Dist)> {
        vec![
            ("x".into(), Dist::Uniform { min: 0.0, max: 1.0 }),
            (
                "c".into(),
                Dist::Choice {
                    values: vec!["a".into(), "b".into(), "c".into()],
                },
            ),
        ]
    }

    fn drawn(axes: &[(String, Dist)], p: &[parzen::ParamValue]) -> Vec<serde_json::Value> {
        axes.iter()
            .zip(p)
            .map(|((_, d), v)| toml_json(&value(d, *v)))
            .collect()
    }

    /// Runs a sequential search of `generations` x `size` with a random start of `start`.
    fn search(start: usize, size: usize, generations: usize) -> Vec<f64> {
        let axes = axes();
        let mut history: Vec<(Vec<serde_json::Value>, f64)> = Vec::new();
        let random = crate::manifest::random_points(&axes, start as u64, 7);
        for p in random {
            let v: Vec<serde_json::Value> = p.iter().map(|(_, v, _)| toml_json(v)).collect();
            let params: Vec<parzen::ParamValue> = axes
                .iter()
                .zip(&v)
                .map(|((_, d), v)| param(d, v).unwrap())
                .collect();
            history.push((v, response(&params)));
        }
        for g in 0..generations {
            let told: Vec<(&[serde_json::Value], f64)> =
                history.iter().map(|(d, s)| (d.as_slice(), *s)).collect();
            let points = propose(&axes, Direction::Minimize, &told, size, g as u64).unwrap();
            for p in points {
                history.push((drawn(&axes, &p), response(&p)));
            }
        }
        history.iter().map(|(_, s)| *s).collect()
    }

    #[test]
    fn proposals_are_a_function_of_the_history_and_the_seed() {
        let axes = axes();
        let told_values = [
            vec![serde_json::json!(0.9), serde_json::json!("a")],
            vec![serde_json::json!(0.35), serde_json::json!("b")],
        ];
        let told: Vec<(&[serde_json::Value], f64)> =
            vec![(&told_values[0], 0.86), (&told_values[1], 0.0025)];
        let a = propose(&axes, Direction::Minimize, &told, 4, 11).unwrap();
        let b = propose(&axes, Direction::Minimize, &told, 4, 11).unwrap();
        assert_eq!(a, b);
        let c = propose(&axes, Direction::Minimize, &told, 4, 12).unwrap();
        assert_ne!(a, c, "another seed proposes other points");
        // The constant liar spreads a generation out: no two of its points are alike.
        for i in 0..a.len() {
            for j in 0..i {
                assert_ne!(a[i], a[j]);
            }
        }
        // Values come back as drawn: a choice by its value, a float in range.
        let d = drawn(&axes, &a[0]);
        assert!(d[0].as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)));
        assert!(["a", "b", "c"].contains(&d[1].as_str().unwrap()));
    }

    #[test]
    fn tpe_finds_a_constructed_optimum_faster_than_its_random_start() {
        // 10 random points, then 6 generations of 4: the best after TPE beats the best of
        // 34 random points on average over seeds of the response's random start.
        let tpe = search(10, 4, 6);
        let best_tpe = tpe.iter().copied().fold(f64::INFINITY, f64::min);
        let random = search(34, 1, 0);
        let best_random = random.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(tpe.len(), random.len());
        assert!(best_tpe < 1e-3, "TPE best {best_tpe}");
        assert!(
            best_tpe < best_random,
            "TPE {best_tpe} vs random {best_random}"
        );
    }
}
