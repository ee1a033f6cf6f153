//! The raw command-line arguments (clap derive). Values with units stay strings here and
//! are parsed by [`ionode_study::units`], so that a bad value gives one `error:` line naming the
//! flag, the value and what is accepted, instead of clap's multi-line usage error.

use clap::{ArgAction, Args, Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  ablate dspmde point --membrane nf270 --feed \"NaCl=50,MgSO4=10\" --flux 30lmh
  ablate dspmde solve --cases crates/physics/tests/data/dspmde_watertap_cases.json --out computed.json
  ablate simulate --membrane nf270 --samples 1000 --seed 1 --out datasets/sim/nf270_1k.h5
  ablate data check datasets/measured/my_rejections.csv
  ablate lab --design datasets/exp/nf270_single_salts.toml --seed 1 --out /tmp/single_salts.csv";

/// ionode's command-line program: DSPM-DE solves, simulated datasets, measured-data checks.
#[derive(Debug, Parser)]
#[command(name = "ablate", version, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug (RUST_LOG is used when no -v is given).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Solve the DSPM-DE model: one point from the command line, or a file of cases.
    #[command(subcommand)]
    Dspmde(DspmdeCommand),
    /// Simulate a DSPM-DE pre-training dataset (random feeds x flux grid) into HDF5.
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(SimulateArgs),
    /// Measured (or surrogate) rejection data in the CSV format of datasets/README.md.
    #[command(subcommand)]
    Data(DataCommand),
    /// Run an experimental campaign in the surrogate laboratory (synthetic data) into the
    /// measured-data CSV format.
    #[command(after_help = LAB_EXAMPLES)]
    Lab(LabArgs),
    /// Train one model (or calibrate the DSPM-DE baseline) from one run config.
    #[command(after_help = TRAIN_EXAMPLES)]
    Train(TrainArgs),
    /// Summarise a study's finished runs: summary table, paper tables and figures.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Apply a finished run (neural or dspmde_fit) to every row of a measured-data file.
    #[command(after_help = PREDICT_EXAMPLES)]
    Predict(PredictArgs),
    /// Check a study manifest (every problem with file, line and column); runs nothing.
    Check(CheckArgs),
    /// Expand a study manifest into its resolved runs and write RESULTS/STUDY/plan.json.
    Plan(PlanArgs),
    /// Run a study: plan, skip finished runs, run the rest (resumable, shardable).
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Count a study's done, failed and missing runs.
    Status(StatusArgs),
    /// Write a Slurm array script that runs a study in shards.
    Slurm(SlurmArgs),
    /// Compare finished TPE and random searches: the best score found against candidates.
    #[command(after_help = SEARCH_CURVES_EXAMPLES)]
    SearchCurves(SearchCurvesArgs),
    /// Every finished run under results folders as one table: filter, sort, export.
    #[command(after_help = RUNS_EXAMPLES)]
    Runs(RunsArgs),
    /// Two finished runs side by side (the settings that differ and every result), or two
    /// studies cell by cell (paired over seeds, with the report's tests).
    #[command(after_help = COMPARE_EXAMPLES)]
    Compare(CompareArgs),
    /// Add or remove tags and set the note of a run or a study (kept beside it, never in
    /// run.h5).
    #[command(after_help = TAG_EXAMPLES)]
    Tag(TagArgs),
    /// Write RESULTS/index.html: every study (state, counts, best run, report) and every
    /// `ablate train` run, one page.
    #[command(after_help = INDEX_EXAMPLES)]
    Index(IndexArgs),
}

const INDEX_EXAMPLES: &str = "\
Examples:
  ablate index                 # results/index.html
  ablate index /shared/ionode/results

`ablate run` writes it too, at its start and end, and `ablate report` after each report;
while a study runs, RESULTS/<study>/progress.html (counts, rate, ETA, the runs in progress
and every failure with its message) is rewritten every 15 s and reloads itself in the
browser. Both are made from the files alone: open them from the shared folder, no server.
An index.html ionode did not write is never replaced.";

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The results folder.
    #[arg(value_name = "RESULTS", default_value = "results")]
    pub results: PathBuf,
}

const RUNS_EXAMPLES: &str = "\
Examples:
  ablate runs results
  ablate runs results --where \"metrics.measured.validation.mae < 0.05 and config.model.variant = 'node'\"
  ablate runs results/paper --sort metrics.measured.test.mae --limit 10
  ablate runs results --where \"tags = 'shipped'\" --columns study,run,config.model.*,metrics.measured.test.mae
  ablate runs results --format parquet --out runs.parquet
  ablate runs results --fields          # every field a filter or column can name

A DIR is a study folder (its plan's finished runs), an `ablate train --out` folder, or a
folder of those (one level down). Fields: run, study, method, synthetic, path, kind
(study or train), tags, note, study_note, config.<path>, axes.<axis>,
metrics.<pretrain|measured>.<train|validation|test>.<mae|rmse|r2|en_mean|en_max|coverage|
interval_width|n_samples>[.<ion>], seconds.<total|pretrain|finetune>, provenance.<field>.

--where: comparisons (= != < <= > >=) against a number, a 'quoted string', true, false
or null; `in (a, b)`, `not in (...)`; ~ and !~ match a regular expression; and, or, not,
parentheses. A field a run lacks (or an empty list) is null: `= null` holds, = < > in ~
are false and their negations != `not in` !~ hold; a list field (tags) matches when one
element does. Each run's facts are cached in facts.json beside its run.h5 (rebuilt when the run
changes), so a query reads no run.h5 twice.";

const COMPARE_EXAMPLES: &str = "\
Examples:
  ablate compare results/paper/runs/0a1b2c3d4e5f6a7b results/paper/runs/8c9d0e1f2a3b4c5d
  ablate compare results/nf270_fdl2021_final results/nf270_fdl2021_dspmde

  ablate compare results/paper /shared/ionode/results/paper   # the same study elsewhere

Each of A and B is a run's folder (STUDY/runs/<run-id>, or an `ablate train --out`
folder), or both are study folders: then every configuration both ran is scored per seed
by its test MAE (the mean over the seed's folds) and the seeds both ran are paired: A, B,
B − A with its 95 % interval, the paired t-test and Wilcoxon p, * where p < 0.05.";

const TAG_EXAMPLES: &str = "\
Examples:
  ablate tag results/paper/runs/0a1b2c3d4e5f6a7b --add best --note \"the run in Table 1\"
  ablate tag results/paper --add paper-v1
  ablate tag results/paper/runs/0a1b2c3d4e5f6a7b --remove best --clear-note

Tags are 1 to 64 letters, digits and _ . : + -; a study's tags apply to all its runs in
`ablate runs`. They live in tags.json beside the run or the study's plan.json, so no
checksum or result changes.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunsFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Results folders, study folders or `ablate train` folders.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Keep the runs for which this condition holds (see below).
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Sort by these keys (KEY, KEY:asc or KEY:desc), comma-separated; the first decides.
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    pub sort: Vec<String>,
    /// The columns, comma-separated; PREFIX.* for every field under PREFIX.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// At most this many runs (after filtering and sorting).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format (parquet needs --out).
    #[arg(long, value_enum, default_value = "table")]
    pub format: RunsFormat,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// List every field the runs have, with how many runs have it, and exit.
    #[arg(long)]
    pub fields: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first run's folder, or the first study's.
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second run's folder, or the second study's.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// A run's folder (STUDY/runs/<run-id> or an `ablate train` folder) or a study folder.
    #[arg(value_name = "TARGET")]
    pub target: PathBuf,
    /// Tags to add.
    #[arg(long, value_name = "TAG")]
    pub add: Vec<String>,
    /// Tags to remove.
    #[arg(long, value_name = "TAG")]
    pub remove: Vec<String>,
    /// Set the note (at most 4096 bytes).
    #[arg(long, value_name = "TEXT", conflicts_with = "clear_note")]
    pub note: Option<String>,
    /// Remove the note.
    #[arg(long)]
    pub clear_note: bool,
}

const SEARCH_CURVES_EXAMPLES: &str = "\
Examples:
  ablate search-curves results/nf270_search_tpe_s1 results/nf270_search_random_s1 --out results/nf270_search
  scripts/search-compare      # the TPE and random searches of experiments/nf270_search.toml, 5 seeds each

Each DIR is a finished TPE study (a random search is one whose candidates are all its
random start, `random.samples` = `search.candidates`). Writes OUT/search_curves.csv (the
best score so far after each candidate, per study) and OUT/search_curves.{png,svg,pdf}, and
prints each sampler's mean best, when TPE reaches the random search's best (overall and
paired by manifest seed), and each winner's test MAE, read only after the search.";

#[derive(Debug, Args)]
pub struct SearchCurvesArgs {
    /// Finished TPE study folders (RESULTS/STUDY).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the table and figure go.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

const REPORT_EXAMPLES: &str = "\
Examples:
  ablate report results/ablation_small
  ablate report results/ablation_small --out /tmp/report

Reads DIR/runs/<run-id>/run.h5 of every run with a DONE marker whose checksum matches
(unfinished runs are counted, damaged ones named; both are left out). Writes
summary.parquet and summary.csv (one row per run, typed columns) into DIR, or into OUT
when --out is given (so a read-only study can be reported elsewhere), OUT/tables/
(Markdown and LaTeX: mean +- std over seeds, paired t-test and Wilcoxon comparisons, best
in bold only where significant), OUT/figures/ (PNG, SVG and PDF) and OUT/index.html (one
self-contained page: tables, figures, a sortable run table, provenance). OUT defaults to
DIR/report. Figures need a TTF font: DejaVu Sans by default, or IONODE_FONT=FILE.ttf.";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The study folder (RESULTS/STUDY, holding runs/).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where everything the report writes goes: the summary, tables/ and figures/
    /// [default: the summary in DIR, the rest in DIR/report].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Runs up to which the page's run table is inlined; a larger study's table is loaded
    /// from report/runs.js a page of rows at a time (0: always).
    #[arg(long, value_name = "N", default_value_t = ionode_report::html::INLINE_RUNS)]
    pub inline_runs: usize,
}

const PREDICT_EXAMPLES: &str = "\
Examples:
  ablate predict --run results/nf270_fdl2021_final --data datasets/examples/my_feeds.csv --out predicted.csv
  ablate predict --run results/nf270_fdl2021/runs/0123456789abcdef --data datasets/measured/nf270_fdl2021.csv --out pred.csv

DIR is an `ablate train` output folder or one run of a study. The data file is in the
measured-data format (datasets/README.md); outcomes are optional: with them, the rejection
MAE and RMSE per ion and overall are printed. PRED.csv has one row per data row and present
ion: row, line, sample_id, family, ion, feed_mol_m3, Jv_m_s, temperature_K,
permeate_predicted_mol_m3, rejection_predicted; for an ensemble run ([ensemble]) its central
interval, rejection_predicted_lower and _upper; rejection_measured (+ its sd) where the file
has outcomes (empty where an ion was not measured); with Li+ and Mg2+ in a row, the Li/Mg
separation factor S = (1 - R_Li) / (1 - R_Mg), predicted (with its interval) and measured;
and `domain`: every way the row lies outside what the model was trained on (an ion never
measured, a feed or ionic strength beyond the measured ones, flux, temperature), empty when
it lies inside. One summary line counts those rows.

Refused (exit 2, nothing written): an ion without a model slot, and a flux or temperature
outside what the model was trained on (a neural model has no temperature input), unless
--extrapolate; everything else outside the domain is predicted and flagged.";

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The finished run: an `ablate train` output folder or results/STUDY/runs/RUN_ID.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// The rows to predict (measured-data format, CSV or Parquet).
    #[arg(long, value_name = "FILE.csv")]
    pub data: PathBuf,
    /// Where the predictions go (written atomically, only when every row was predicted).
    #[arg(long, value_name = "PRED.csv")]
    pub out: PathBuf,
    /// Make every row's feed electroneutral by adjusting (or adding) this ion.
    #[arg(long, value_name = "ION")]
    pub balance_with: Option<String>,
    /// Predict also at fluxes and temperatures outside what the model was trained on (the
    /// rows are still flagged in the `domain` column).
    #[arg(long)]
    pub extrapolate: bool,
}

const TRAIN_EXAMPLES: &str = "\
Examples:
  ablate train --config experiments/train_example.toml --out results/train_example

Writes DIR/run.h5 (the run's record, the schema of a study's runs: config, provenance,
metrics, learning curves, predictions, the trained parameters or fitted membrane; what
`ablate predict --run DIR` reads), DIR/metrics.json, DIR/predictions.csv and, for
dspmde_fit, DIR/membrane.toml (the fitted membrane, usable as --membrane FILE). The
config's keys are documented in experiments/train_example.toml.";

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run config (TOML).
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Threads for a stage's micro-batches (a stage's `micro_batch`) [default: all cores].
    /// The result is the same at any count.
    #[arg(long)]
    pub threads: Option<usize>,
}

const LAB_EXAMPLES: &str = "\
Examples:
  ablate lab --design datasets/exp/nf270_single_salts.toml --seed 1 --out datasets/exp/nf270_single_salts.csv

Design file (TOML):
  name = \"my_campaign\"
  membrane = \"nf270\"        # preset (nominal r_p, dx_e, X, eps_p) or a membrane file (.toml)
  repeats = 2
  [lab]                       # optional changes to the surrogate NF270
  charge = { model = \"freundlich\", a_mol_m3 = 8.0, b = 0.4 }   # or { model = \"constant\" }
  pores = { sigma_ln = 0.1, nodes = 5 }                          # sigma_ln = 0: one radius
  film = { model = \"exponential\", crossflow_m_s = 1.0 }        # or { model = \"none\" }
  activity = \"davies\"
  noise_rel = 0.03
  [[family]]
  name = \"NaCl\"
  feed = \"NaCl=1\"             # composition at level 1, mol/m3
  levels = [5, 20, 50]
  flux_lmh = [5, 10, 20]      # or pressure_bar = [...]";

#[derive(Debug, Args)]
pub struct LabArgs {
    /// The campaign design (TOML).
    #[arg(long, value_name = "FILE.toml")]
    pub design: PathBuf,
    /// Seed of the measurement noise.
    #[arg(long)]
    pub seed: u64,
    /// Output CSV (measured-data format; every row is marked synthetic).
    #[arg(long, value_name = "FILE.csv")]
    pub out: PathBuf,
    /// TOML file of extra ions (`[[ion]]` tables, see `ablate dspmde point --help`).
    #[arg(long, value_name = "FILE.toml")]
    pub ions: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Validate a measured-data CSV file and summarise it.
    ///
    /// A good file gets a summary (rows, synthetic or measured, sources, membranes,
    /// families, ions with their feed ranges, flux, temperature, uncertainties) and exit
    /// code 0. A bad file gets every problem, one per line with the line, column and value
    /// (at most 20, then how many more), and exit code 2; nothing of it is used.
    #[command(after_help = DATA_CHECK_EXAMPLES)]
    Check(DataCheckArgs),
    /// Convert digitised figure points (one per marker, with reading errors) into the
    /// measured-data format, by the rules of datasets/README.md ("Digitised data").
    #[command(after_help = DATA_DIGITISED_EXAMPLES)]
    Digitised(DataDigitisedArgs),
}

const DATA_DIGITISED_EXAMPLES: &str = "\
Examples:
  ablate data digitised --spec datasets/measured/raw/nf270_fdl2021.toml --out datasets/measured/nf270_fdl2021.csv

Spec (TOML; paths relative to it):
  points = \"nf270_fdl2021_digitised.csv\"   # dominant_salt,species,flux_um_s,flux_reading_error_um_s,f_measured,f_reading_error,figure_quality
  source = \"doi:10.3390/membranes11040272\"
  membrane = \"NF270\"
  temperature_K = 293.15
  quantity = \"reciprocal_transmission\"      # f = 1/(1-R); or \"rejection\"
  match_sigmas = 3.0                          # points within 3 combined reading errors are one measurement
  [[series]]
  name = \"NaCl\"                             # the dominant_salt value; the rows' family
  feed = \"NaCl=10,NaNO3=0.2,NH4Cl=0.2\"      # mol/m3
  species = { NaCl = [\"Na+\", \"Cl-\"], NH4 = [\"NH4+\"], NO3 = [\"NO3-\"] }";

#[derive(Debug, Args)]
pub struct DataDigitisedArgs {
    /// The conversion spec (TOML): the points file, source, conditions, series.
    #[arg(long, value_name = "FILE.toml")]
    pub spec: PathBuf,
    /// The measured-data CSV to write (atomically).
    #[arg(long, value_name = "FILE.csv")]
    pub out: PathBuf,
}

const DATA_CHECK_EXAMPLES: &str = "\
Examples:
  ablate data check datasets/measured/my_rejections.csv
  ablate data check lab.csv --balance-with Cl- --en-tolerance 0.02

Format (one row per measurement; units in the header names; see datasets/README.md):
  source,membrane,temperature_K,synthetic,Jv_LMH,feed_Na+_mol_m3,feed_Cl-_mol_m3,permeate_Na+_mol_m3,rejection_Cl-
  doi:10.xxxx/yyyy,NF270,298.15,false,36,50,50,20,0.6";

#[derive(Debug, Args)]
pub struct DataCheckArgs {
    /// The CSV file.
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// Make every row's feed electroneutral by adjusting (or adding) this ion's
    /// concentration; the summary says what changed.
    #[arg(long, value_name = "ION")]
    pub balance_with: Option<String>,
    /// Largest accepted relative charge imbalance of a feed, |sum z c| / sum |z| c.
    #[arg(long, default_value_t = 0.05, value_name = "FRACTION")]
    pub en_tolerance: f64,
    /// TOML file of extra ions (`[[ion]]` tables, see `ablate dspmde point --help`).
    #[arg(long, value_name = "FILE.toml")]
    pub ions: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DspmdeCommand {
    /// Solve every case of a JSON case file and write it back with computed values.
    ///
    /// Accepts the layout of crates/physics/tests/data/dspmde_watertap_cases.json (an object with
    /// `groups`), one group (an array of cases) or a single case object. Point cases
    /// (`kind` "point", "point_given_Jv" or no kind) get their `expected` block replaced by
    /// the computed one; module cases ("watertap_unit_test_module_0D") get
    /// `oracle_full_precision` and `asserted_upstream_watertap_1_8_0` replaced. A case that
    /// fails gets an `error` field instead. Exits 0 once the file was processed.
    #[command(after_help = SOLVE_EXAMPLES)]
    Solve(SolveArgs),
    /// Solve one operating point and print a table (or JSON).
    #[command(after_help = POINT_EXAMPLES)]
    Point(PointArgs),
}

const SOLVE_EXAMPLES: &str = "\
Examples:
  ablate dspmde solve --cases crates/physics/tests/data/dspmde_watertap_cases.json --out computed.json
  ablate dspmde solve --cases one_case.json --out one_case.solved.json";

#[derive(Debug, Args)]
pub struct SolveArgs {
    /// Case file (JSON): the reference layout with `groups`, an array of cases, or one case.
    #[arg(long, value_name = "FILE.json")]
    pub cases: PathBuf,
    /// Where to write the solved cases (written to OUT.tmp, then renamed).
    #[arg(long, value_name = "OUT.json")]
    pub out: PathBuf,
}

const POINT_EXAMPLES: &str = "\
Examples:
  ablate dspmde point --feed \"NaCl=50,MgSO4=10\" --flux 30lmh
  ablate dspmde point --membrane wt_test --feed \"Na+=50,Cl-=50\" --pressure 3bar --json
  ablate dspmde point --feed \"NaCl=100,MgSO4=10\" --pressure 7bar --cp spiral-wound --activity davies
  ablate dspmde point --feed \"Na+=50,Cl-=40\" --balance-with Cl- --flux 8.3e-6m/s --temperature 20C
  ablate dspmde point --ions my_ions.toml --feed \"NaNO3=20\" --flux 20lmh

Ions file (--ions), TOML; adds ions or replaces built-in ones of the same name:
  [[ion]]
  name = \"NO3_-\"
  charge = -1
  diffusivity_m2_s = 1.9e-9
  stokes_radius_m = 1.3e-10
  molar_mass_kg_mol = 0.062
  source = \"CRC Handbook\"";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("drive").required(true).args(["flux", "pressure"])))]
pub struct PointArgs {
    /// Membrane: a preset (nf270, wt_test, wt_flowsheet, wt_default) or a membrane file
    /// (FILE.toml: pore_radius_m, effective_thickness_m, charge_density_mol_m3,
    /// pore_dielectric), e.g. one a dspmde_fit run wrote.
    #[arg(long, default_value = "nf270")]
    pub membrane: String,
    /// Feed composition: salts or ions with concentrations in mol/m3 (= mM), e.g.
    /// "NaCl=50,MgSO4=10" or "Na+=50,Cl-=50"; "0.05M" is mol/L.
    #[arg(long)]
    pub feed: String,
    /// Water flux: 30lmh, 8.3e-6m/s or a plain number in m/s.
    #[arg(long, allow_hyphen_values = true)]
    pub flux: Option<String>,
    /// Transmembrane pressure: 7bar, 700kPa, 0.7MPa, 700000Pa or a plain number in Pa.
    #[arg(long, allow_hyphen_values = true)]
    pub pressure: Option<String>,
    /// Temperature: 25C, 298.15K or a plain number in K.
    #[arg(long, default_value = "25C", allow_hyphen_values = true)]
    pub temperature: String,
    /// Activity model: ideal or davies.
    #[arg(long, default_value = "ideal")]
    pub activity: String,
    /// Concentration polarisation: none, spiral-wound (WaterTAP's linearised film with
    /// the spiral-wound correlation, h = 0.5 mm, u = 0.25 m/s), exponential (exact film
    /// integral, same k) or fixed:K_M_S (linearised film, the same k in m/s for all ions).
    #[arg(long, default_value = "none")]
    pub cp: String,
    /// Finite-difference elements across the pore (1 reproduces WaterTAP).
    #[arg(long, default_value_t = 1)]
    pub elements: usize,
    /// Make a non-electroneutral feed neutral by adjusting (or adding) this ion.
    #[arg(long, value_name = "ION")]
    pub balance_with: Option<String>,
    /// TOML file of extra ions (`[[ion]]` tables); replaces built-in ions of the same name.
    #[arg(long, value_name = "FILE.toml")]
    pub ions: Option<PathBuf>,
    /// Print the result as JSON (the keys of the reference file's `expected` blocks).
    #[arg(long)]
    pub json: bool,
}

const SIMULATE_EXAMPLES: &str = "\
Examples:
  ablate simulate --membrane nf270 --samples 10000 --seed 1 --out datasets/sim/nf270_10k.h5
  ablate simulate --samples 500 --seed 7 --species Na+,Mg^2+,Cl-,SO4^2- --max-ions 4 \\
      --flux-count 8 --flux-spacing log --cp exponential --out datasets/sim/small.h5

HDF5 layout: feed [N,S], mask [N,S] u8, flux_m_s [F], permeate [N,F,S], rejection
[N,F,S], pressure_pa [N,F], status [N,F] u8 (0 solved, 1 failed), temperature_k [N],
species [S], charge [S], group failures/ (sample, flux_index, jv_m_s, message); root attributes hold the generator
config (config_json), membrane parameters, git commit and synthetic = \"true\".";

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub spec: ionode_study::simulator::SimulatorSpec,
    /// Output file (.h5); written under a temporary name, then renamed. Parent folders
    /// are created.
    #[arg(long, value_name = "NAME.h5")]
    pub out: PathBuf,
    /// Worker threads [default: all cores]. The result does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// TOML file of extra ions (`[[ion]]` tables, see `ablate dspmde point --help`).
    #[arg(long, value_name = "FILE.toml")]
    pub ions: Option<PathBuf>,
}

pub const RUN_EXAMPLES: &str = "\
Examples:
  ablate run experiments/smoke.toml --jobs 2
  ablate run experiments/paper.toml --jobs 8 --shard 0/4 --results /scratch/results
  ablate status results/paper
  ablate run experiments/smoke.toml --set base.finetune.epochs=50 --set 'grid.\"model.variant\"=[\"node\"]'
  ablate slurm experiments/paper.toml --shards 16 --cpus 4 --time 02:00:00 --mem 4G --submit

Writes RESULTS/<study>/plan.json, RESULTS/<study>/runs/<run-id>/run.h5 and a DONE (or
FAILED) marker per run. Rerunning skips DONE runs; --retry-failed reruns FAILED ones.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Change the manifest: a dotted key as in the manifest and a TOML value, applied
    /// after its includes (repeatable), e.g. `--set base.finetune.epochs=50` or
    /// `--set 'grid."model.variant"=["node"]'`. The study gets its own folder
    /// (STUDY-set-HASH) unless an override sets `study`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Change the manifest: a dotted key as in the manifest and a TOML value, applied
    /// after its includes (repeatable), e.g. `--set base.finetune.epochs=50` or
    /// `--set 'grid."model.variant"=["node"]'`. The study gets its own folder
    /// (STUDY-set-HASH) unless an override sets `study`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Results root; the plan goes to RESULTS/STUDY/plan.json.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Replace an existing plan of the same study that differs from this one.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Change the manifest: a dotted key as in the manifest and a TOML value, applied
    /// after its includes (repeatable), e.g. `--set base.finetune.epochs=50` or
    /// `--set 'grid."model.variant"=["node"]'`. The study gets its own folder
    /// (STUDY-set-HASH) unless an override sets `study`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Runs in parallel [default: all cores]; each run's micro-batches (a stage's
    /// `micro_batch`) get cores / jobs threads. Results do not depend on either.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only the runs with plan index % N == I (0-based I), e.g. 0/4.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Rerun runs marked FAILED.
    #[arg(long)]
    pub retry_failed: bool,
    /// Run only this run of the plan (repeatable; ids as `ablate plan` lists them), e.g.
    /// to recompute a few runs of a study and compare them with its summary. Not for a
    /// `[search]`, whose rungs decide what runs.
    #[arg(long, value_name = "RUN_ID")]
    pub only: Vec<String>,
    /// Results root.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A study folder (RESULTS/STUDY, with plan.json) or a manifest.
    #[arg(value_name = "DIR|FILE.toml")]
    pub target: PathBuf,
    /// The overrides the study was run with (when a manifest is given).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Results root (when a manifest is given).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Change the manifest: a dotted key as in the manifest and a TOML value, applied
    /// after its includes (repeatable), e.g. `--set base.finetune.epochs=50` or
    /// `--set 'grid."model.variant"=["node"]'`. The study gets its own folder
    /// (STUDY-set-HASH) unless an override sets `study`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Array tasks; task i runs shard i/N.
    #[arg(long)]
    pub shards: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (Slurm format, e.g. 02:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (= `--jobs` of each task).
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Memory per task (Slurm format, e.g. 4G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Account to charge.
    #[arg(long)]
    pub account: Option<String>,
    /// Quality of service.
    #[arg(long)]
    pub qos: Option<String>,
    /// Most array tasks running at once (the array's `%N`).
    #[arg(long, value_name = "N")]
    pub throttle: Option<usize>,
    /// Any other `#SBATCH` option, written as given (repeatable), e.g.
    /// `--sbatch-arg=--constraint=zen4`.
    #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Submit with `sbatch`: the array, then a report job that runs `ablate report` after
    /// it (`afterany`); prints both job ids.
    #[arg(long)]
    pub submit: bool,
    /// Results root (on the shared file system).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

/// Prints a command-line error as clap does and returns its exit code; an argument that is
/// not valid UTF-8 (which clap reports without saying which) is named by its position, its
/// flag and its text as far as it can be shown.
pub fn exit_with(e: clap::Error) -> std::process::ExitCode {
    if e.kind() == clap::error::ErrorKind::InvalidUtf8 {
        if let Some(line) = non_utf8_argument(std::env::args_os().skip(1)) {
            eprintln!("error: {line}");
            return std::process::ExitCode::from(2);
        }
    }
    let _ = e.print();
    std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// The first argument that is not valid UTF-8, described for an error line.
fn non_utf8_argument(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    let mut previous: Option<String> = None;
    for (i, arg) in args.enumerate() {
        match arg.to_str() {
            Some(text) => previous = Some(text.to_string()),
            None => {
                let after = previous
                    .filter(|p| p.starts_with('-'))
                    .map_or(String::new(), |p| format!(", the value of {p}"));
                return Some(format!(
                    "argument {} ('{}'{after}) is not valid UTF-8 (shown with U+FFFD for the \
                     bytes that are not); this argument must be text",
                    i + 1,
                    arg.to_string_lossy()
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_non_utf8_argument_is_named_by_position_and_flag() {
        let args = [
            std::ffi::OsString::from("slurm"),
            "--account".into(),
            std::ffi::OsString::from_vec(b"ab\xffc".to_vec()),
        ];
        let line = non_utf8_argument(args.into_iter()).unwrap();
        assert!(
            line.contains("argument 3") && line.contains("--account"),
            "{line}"
        );
        assert!(line.contains("ab\u{FFFD}c"), "{line}");
        assert_eq!(non_utf8_argument(std::iter::empty()), None);
    }
}
