//! Slurm batch scripts for a study: an array whose task i runs shard i/N, and a report job
//! after it.
//!
//! Every value that reaches a script is checked here first, in Slurm's own syntax, so
//! nothing a user types can add a line to a script, change a directive ionode writes
//! itself, or reach the shell unquoted:
//! - names (`--partition`, `--account`, `--qos`) are Slurm names: letters, digits, `_`,
//!   `-`, `.` (a partition may be a comma-separated list);
//! - `--time` is one of Slurm's time formats, `--mem` a size with an optional K/M/G/T;
//! - an `--sbatch-arg` is one long option, `--name` or `--name=value`, its value without
//!   whitespace, quotes or shell characters, given once, and neither one of the directives
//!   ionode writes (`--array`, `--output`, `--chdir`, ...) or has a flag for nor an
//!   abbreviation of one (sbatch, like getopt, takes `--ar` for `--array`);
//! - paths written into `#SBATCH` lines (the working folder, the log folder) hold no
//!   whitespace, quote, `#`, `%` (Slurm expands `%` patterns in log names) or backslash;
//! - words of the shell part are single-quoted.

use crate::errors::{Context, Result};
use crate::{output, record};
use std::path::{Path, PathBuf};

/// One checked `#SBATCH` option, as `--name=value` (or `--name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive(String);

impl Directive {
    /// The option's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The user's Slurm settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--partition`, `--time`, `--mem`, `--account`, `--qos`, then the `--sbatch-arg`s.
    pub directives: Vec<Directive>,
    /// Tasks of the array, CPUs per task, most tasks at once.
    pub shards: usize,
    pub cpus: usize,
    pub throttle: Option<usize>,
}

/// The directives ionode writes itself, and the ones it has flags for: an `--sbatch-arg`
/// may set neither.
const OWN: [(&str, &str); 15] = [
    ("array", "ionode writes it from --shards and --throttle"),
    ("output", "ionode writes the log paths"),
    ("error", "ionode writes the log paths"),
    (
        "chdir",
        "the jobs run in the folder `ablate slurm` is run from",
    ),
    ("job-name", "ionode names the jobs after the study"),
    ("cpus-per-task", "use --cpus"),
    ("open-mode", "a requeued task appends to its log"),
    (
        "dependency",
        "--submit makes the report job depend on the array",
    ),
    ("wrap", "ionode writes the script"),
    ("parsable", "ionode reads the job id itself"),
    ("partition", "use --partition"),
    ("time", "use --time"),
    ("mem", "use --mem"),
    ("account", "use --account"),
    ("qos", "use --qos"),
];

/// The most characters of one option value (a guard, far above any real value).
const MAX_VALUE: usize = 512;

fn refuse(flag: &str, value: &str, valid: &str) -> String {
    let shown: String = value
        .chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string();
    format!("{flag} '{shown}': expected {valid}")
}

/// A Slurm name: letters, digits, `_`, `-`, `.`, starting with a letter, digit or `_`.
fn is_name(s: &str) -> bool {
    s.len() <= MAX_VALUE
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn name(flag: &str, value: &str, list: bool) -> Result<String, String> {
    let ok = if list {
        value.split(',').all(is_name)
    } else {
        is_name(value)
    };
    if ok {
        Ok(value.to_string())
    } else {
        Err(refuse(
            flag,
            value,
            if list {
                "one or more Slurm names separated by commas (letters, digits, '_', '-', '.')"
            } else {
                "a Slurm name (letters, digits, '_', '-', '.')"
            },
        ))
    }
}

/// Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, or `UNLIMITED`.
fn time(value: &str) -> Result<String, String> {
    let valid = "a Slurm time limit: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, \
                 DAYS-HOURS, DAYS-HOURS:MINUTES, DAYS-HOURS:MINUTES:SECONDS or UNLIMITED, \
                 e.g. 02:00:00";
    if ["unlimited", "infinite"].contains(&value.to_ascii_lowercase().as_str()) {
        return Ok(value.to_string());
    }
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 9 && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (days, clock) = match value.split_once('-') {
        Some((d, rest)) => (
            Some(number(d).ok_or_else(|| refuse("--time", value, valid))?),
            rest,
        ),
        None => (None, value),
    };
    let parts: Option<Vec<u64>> = clock.split(':').map(number).collect();
    let parts = parts.ok_or_else(|| refuse("--time", value, valid))?;
    let sixty = |v: &u64| *v < 60;
    let ok = match (days, parts.as_slice()) {
        (None, [_]) => true,
        (None, [_, s]) => sixty(s),
        (None, [_, m, s]) => sixty(m) && sixty(s),
        (Some(_), [h]) => *h < 24,
        (Some(_), [h, m]) => *h < 24 && sixty(m),
        (Some(_), [h, m, s]) => *h < 24 && sixty(m) && sixty(s),
        _ => false,
    };
    let total: u64 = days.unwrap_or(0) + parts.iter().sum::<u64>();
    if ok && total > 0 {
        Ok(value.to_string())
    } else {
        Err(refuse("--time", value, valid))
    }
}

/// A size with an optional unit: `4000`, `4G`, `512M` (0: all of a node's memory).
fn mem(value: &str) -> Result<String, String> {
    let digits = value.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit = &value[digits.len()..];
    if !digits.is_empty()
        && digits.len() <= 12
        && digits.chars().all(|c| c.is_ascii_digit())
        && unit.len() <= 1
    {
        Ok(value.to_string())
    } else {
        Err(refuse(
            "--mem",
            value,
            "a Slurm memory size: a whole number with an optional unit K, M, G or T, e.g. 4G",
        ))
    }
}

/// One `--sbatch-arg`: a long option ionode does not write itself.
fn extra(value: &str) -> Result<Directive, String> {
    let valid = "one long sbatch option, --NAME or --NAME=VALUE, with no whitespace, quotes \
                 or shell characters in VALUE, e.g. --constraint=zen4";
    let Some(body) = value.strip_prefix("--") else {
        return Err(refuse("--sbatch-arg", value, valid));
    };
    let (key, val) = match body.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (body, None),
    };
    let key_ok = key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let val_ok = val.is_none_or(|v| {
        !v.is_empty()
            && v.len() <= MAX_VALUE
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.,:=@%+/-".contains(c))
    });
    if !key_ok || !val_ok {
        return Err(refuse("--sbatch-arg", value, valid));
    }
    if let Some((own, why)) = OWN.iter().find(|(k, _)| k.starts_with(key)) {
        let what = if *own == key {
            format!("--{key}")
        } else {
            format!("--{key} (sbatch reads it as --{own})")
        };
        return Err(format!(
            "--sbatch-arg '{value}': {what} cannot be set this way ({why})"
        ));
    }
    Ok(Directive(value.to_string()))
}

/// A value's check: the value to write, or the problem.
type Check = fn(&str) -> Result<String, String>;

/// The settings as `ablate slurm` was given them.
pub struct Given<'a> {
    pub shards: usize,
    pub cpus: usize,
    pub throttle: Option<usize>,
    pub partition: Option<&'a str>,
    pub time: Option<&'a str>,
    pub mem: Option<&'a str>,
    pub account: Option<&'a str>,
    pub qos: Option<&'a str>,
    pub extra: &'a [String],
}

impl Given<'_> {
    /// The checked options, or every problem (one line each, naming the flag).
    pub fn check(&self) -> Result<Options, Vec<String>> {
        use crate::limits::{MAX_JOBS, MAX_SHARDS};
        let mut problems = Vec::new();
        let mut directives = Vec::new();
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            problems.push(format!(
                "--shards {}: expected 1..={MAX_SHARDS}",
                self.shards
            ));
        }
        if !(1..=MAX_JOBS).contains(&self.cpus) {
            problems.push(format!("--cpus {}: expected 1..={MAX_JOBS}", self.cpus));
        }
        if let Some(t) = self.throttle.filter(|t| !(1..=MAX_SHARDS).contains(t)) {
            problems.push(format!("--throttle {t}: expected 1..={MAX_SHARDS}"));
        }
        let checks: [(&str, Option<&str>, Check); 5] = [
            ("partition", self.partition, |v| {
                name("--partition", v, true)
            }),
            ("time", self.time, time),
            ("mem", self.mem, mem),
            ("account", self.account, |v| name("--account", v, false)),
            ("qos", self.qos, |v| name("--qos", v, false)),
        ];
        for (key, value, check) in checks {
            if let Some(v) = value {
                match check(v) {
                    Ok(v) => directives.push(Directive(format!("--{key}={v}"))),
                    Err(p) => problems.push(p),
                }
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for e in self.extra {
            match extra(e) {
                Ok(d) => {
                    let key = d.0.split('=').next().unwrap_or_default().to_string();
                    if keys.insert(key.clone()) {
                        directives.push(d);
                    } else {
                        problems.push(format!(
                            "--sbatch-arg '{e}': {key} is given twice (give each option once)"
                        ));
                    }
                }
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty() {
            Ok(Options {
                directives,
                shards: self.shards,
                cpus: self.cpus,
                throttle: self.throttle,
            })
        } else {
            Err(problems)
        }
    }
}

/// A path for an `#SBATCH` line, or why it cannot be one.
pub fn directive_path(what: &str, path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{what} '{}' is not valid UTF-8", path.display()))?;
    let bad = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'#%\\`$".contains(*c));
    match bad {
        None => Ok(text.to_string()),
        Some(c) => Err(format!(
            "{what} '{}' holds {:?}, which an #SBATCH line cannot carry (Slurm splits its \
             options at whitespace and expands '%' in log names); run `ablate slurm` from a \
             folder, and give --results, whose path has no whitespace, quote, '#', '%', '$' \
             or backslash",
            text.escape_debug(),
            c
        )),
    }
}

/// One word as a POSIX shell reads it back.
pub fn sh(word: &str) -> String {
    record::command_line([word.to_string()])
}

/// What a study's scripts say: its name, run count, the command of a task, where.
pub struct Study<'a> {
    pub name: &'a str,
    pub runs: usize,
    /// `ablate run` of a task, without `--shard` and `--jobs` (words, unquoted).
    pub run_args: Vec<String>,
    /// The study folder, for the report job (a path as given).
    pub study_dir: String,
    /// The working folder and the log folder, checked by [`directive_path`].
    pub cwd: String,
    pub logs: String,
    /// The binary that writes the scripts (the default of `$ABLATE`).
    pub exe: String,
}

/// The shell lines that pick the binary: this one, unless `ABLATE` names another.
fn binary(exe: &str) -> String {
    format!(
        "ablate={}\nif [ -n \"${{ABLATE:-}}\" ]; then ablate=\"$ABLATE\"; fi\n",
        sh(exe)
    )
}

/// The `#SBATCH` lines every job of a study shares.
fn common(o: &Options, s: &Study<'_>) -> String {
    let mut out = String::new();
    for d in &o.directives {
        out.push_str(&format!("#SBATCH {}\n", d.as_str()));
    }
    out.push_str(&format!("#SBATCH --chdir={}\n", s.cwd));
    out
}

/// The array script: task i runs shard i/N of the study.
pub fn array_script(o: &Options, s: &Study<'_>) -> String {
    let n = o.shards;
    let mut out = String::from("#!/bin/bash\n");
    out.push_str(&format!(
        "# Generated by `ablate slurm` for study '{}' ({} runs in {n} shards).\n\
         # Resubmitting resumes: DONE runs are skipped (add --retry-failed to the command\n\
         # below to rerun FAILED ones). ABLATE=/path/to/ablate overrides the binary.\n",
        s.name, s.runs,
    ));
    out.push_str(&format!("#SBATCH --job-name=ablate-{}\n", s.name));
    let throttle = o.throttle.map_or(String::new(), |t| format!("%{t}"));
    out.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", n - 1));
    out.push_str(&format!("#SBATCH --cpus-per-task={}\n", o.cpus));
    out.push_str(&common(o, s));
    out.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", s.logs));
    // A requeued task appends to its log instead of replacing what it said before.
    out.push_str("#SBATCH --open-mode=append\n");
    out.push_str("set -euo pipefail\n");
    out.push_str(&binary(&s.exe));
    let args: Vec<String> = s.run_args.iter().map(|a| sh(a)).collect();
    out.push_str(&format!(
        "exec \"$ablate\" {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --jobs {}\n",
        args.join(" "),
        o.cpus
    ));
    out
}

/// The report job's script: `ablate report` of the study, after the array.
pub fn report_script(o: &Options, s: &Study<'_>) -> String {
    let mut out = String::from("#!/bin/bash\n");
    out.push_str(&format!(
        "# Generated by `ablate slurm`: the report of study '{}', submitted to run after its\n\
         # array (afterany), so it reports whatever finished.\n",
        s.name
    ));
    out.push_str(&format!("#SBATCH --job-name=ablate-{}-report\n", s.name));
    out.push_str("#SBATCH --cpus-per-task=1\n");
    out.push_str(&common(o, s));
    out.push_str(&format!("#SBATCH --output={}/report_%j.out\n", s.logs));
    out.push_str("set -euo pipefail\n");
    out.push_str(&binary(&s.exe));
    out.push_str(&format!("exec \"$ablate\" report {}\n", sh(&s.study_dir)));
    out
}

/// A study's two scripts, written into its folder.
#[derive(Debug, Clone)]
pub struct Scripts {
    /// `slurm.sbatch`: the array.
    pub array: PathBuf,
    /// `report.sbatch`: the report after it.
    pub report: PathBuf,
}

/// Writes `slurm.sbatch` and `report.sbatch` into `study_dir` (each atomically) and
/// creates the log folder the jobs write to.
pub fn write_scripts(o: &Options, s: &Study<'_>, study_dir: &Path) -> Result<Scripts> {
    std::fs::create_dir_all(&s.logs).with_context(|| format!("cannot create '{}'", s.logs))?;
    let scripts = Scripts {
        array: study_dir.join("slurm.sbatch"),
        report: study_dir.join("report.sbatch"),
    };
    output::write_text(&scripts.array, &array_script(o, s))?;
    output::write_text(&scripts.report, &report_script(o, s))?;
    Ok(scripts)
}

/// The jobs [`submit`] queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub array: String,
    pub report: String,
}

/// Submits the array, then the report to run after it (`afterany`, so it reports whatever
/// finished): their job ids.
pub fn submit(scripts: &Scripts) -> Result<Submitted> {
    let array = sbatch(&[], &scripts.array)?;
    let report = sbatch(&[format!("--dependency=afterany:{array}")], &scripts.report)?;
    Ok(Submitted { array, report })
}

/// `sbatch --parsable ARGS SCRIPT` -> the job id. The script's path and the arguments are
/// passed as words, never through a shell.
fn sbatch(extra: &[String], script: &Path) -> Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .context("cannot run `sbatch` (is Slurm installed here and on PATH?)")?;
    if !out.status.success() {
        return Err(crate::failed!(
            "`sbatch {}` failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(crate::failed!(
            "`sbatch --parsable` printed '{}', not a job id",
            text.trim()
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given<'a>(extra: &'a [String]) -> Given<'a> {
        Given {
            shards: 4,
            cpus: 2,
            throttle: None,
            partition: None,
            time: None,
            mem: None,
            account: None,
            qos: None,
            extra,
        }
    }

    #[test]
    fn slurm_values_are_checked_in_slurm_syntax() {
        for t in [
            "30",
            "30:00",
            "02:00:00",
            "1-0",
            "1-12:30",
            "2-00:00:00",
            "UNLIMITED",
            "48:00:00",
        ] {
            assert_eq!(time(t), Ok(t.to_string()), "{t}");
        }
        for t in [
            "",
            "abc",
            "1:2:3:4",
            "0",
            "00:00:00",
            "1:60",
            "1-24",
            "2h",
            "1:00\n#SBATCH --x",
            " 1",
        ] {
            assert!(time(t).is_err(), "{t:?}");
        }
        for m in ["4G", "4000", "512m", "0", "1T"] {
            assert!(mem(m).is_ok(), "{m}");
        }
        for m in ["", "4GB", "-1G", "4 G", "G", "4G\n"] {
            assert!(mem(m).is_err(), "{m:?}");
        }
        assert!(name("--partition", "gpu,cpu-long", true).is_ok());
        for n in [
            "",
            "a b",
            "x\n#SBATCH --array=0-9",
            "a,",
            "ac;ct",
            "a'b",
            "-",
            "-x",
        ] {
            assert!(name("--account", n, false).is_err(), "{n:?}");
        }
    }

    #[test]
    fn an_sbatch_arg_is_one_long_option_ionode_does_not_write() {
        for ok in [
            "--constraint=zen4",
            "--exclusive",
            "--gres=gpu:1",
            "--mail-user=a@b.org",
        ] {
            assert!(extra(ok).is_ok(), "{ok}");
        }
        for bad in [
            "--constraint=zen4 --exclusive",
            "-C zen4",
            "--comment=$(rm -rf ~)",
            "--comment='x'",
            "--x=a\nb",
            "--",
            "--Constraint=x",
            "constraint=zen4",
        ] {
            assert!(extra(bad).is_err(), "{bad:?}");
        }
        for own in [
            "--array=0-3",
            "--output=/tmp/x",
            "--chdir=/",
            "--job-name=x",
            "--time=1",
        ] {
            let e = extra(own).unwrap_err();
            assert!(e.contains("cannot be set this way"), "{e}");
        }
    }

    #[test]
    fn every_problem_is_reported_and_nothing_unchecked_reaches_a_script() {
        let extra = vec!["--constraint=zen4".to_string(), "--array=1".to_string()];
        let g = Given {
            account: Some("lab\n#SBATCH --array=0-999"),
            time: Some("forever"),
            ..given(&extra)
        };
        let p = g.check().unwrap_err();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("--time 'forever'"), "{}", p[0]);
        assert!(p[1].starts_with("--account 'lab\\n#SBATCH"), "{}", p[1]);
        let ok = vec!["--constraint=zen4".to_string()];
        let o = Given {
            time: Some("02:00:00"),
            mem: Some("4G"),
            ..given(&ok)
        }
        .check()
        .unwrap();
        let s = Study {
            name: "smoke",
            runs: 10,
            run_args: vec!["run".into(), "my study.toml".into()],
            study_dir: "results/smoke".into(),
            cwd: "/work/x".into(),
            logs: "/work/x/results/smoke/slurm".into(),
            exe: "/opt/it's/ablate".into(),
        };
        let script = array_script(&o, &s);
        let directives: Vec<&str> = script
            .lines()
            .filter(|l| l.starts_with("#SBATCH"))
            .collect();
        assert_eq!(
            directives,
            [
                "#SBATCH --job-name=ablate-smoke",
                "#SBATCH --array=0-3",
                "#SBATCH --cpus-per-task=2",
                "#SBATCH --time=02:00:00",
                "#SBATCH --mem=4G",
                "#SBATCH --constraint=zen4",
                "#SBATCH --chdir=/work/x",
                "#SBATCH --output=/work/x/results/smoke/slurm/%A_%a.out",
                "#SBATCH --open-mode=append",
            ]
        );
        assert!(
            script.contains("ablate='/opt/it'\\''s/ablate'\n"),
            "{script}"
        );
        assert!(
            script.contains("exec \"$ablate\" run 'my study.toml' --shard"),
            "{script}"
        );
        assert!(directive_path("the working folder", Path::new("/a b")).is_err());
        assert!(directive_path("the working folder", Path::new("/a%b")).is_err());
        assert!(directive_path("the working folder", Path::new("/a/b-c_d.e")).is_ok());
    }
}
