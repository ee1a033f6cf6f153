//! The validating loader: CSV text -> [`MeasuredData`], or every problem.

use super::csv::{self, Record};
use super::error::{LoadError, Problems};
use super::schema::{known_ions, parse_header, Field, Header, IonField};
use super::{
    BalanceAdjustment, BalanceReport, LoadOptions, MeasuredData, MeasuredRow, Outcomes,
    RejectionBasis, AGREEMENT, BAR_PA, MAX_FLUX_M_S, REJECTION_RANGE, TEMPERATURE_RANGE_K,
};
use ionode_physics::{Ion, IonDb};
use std::collections::HashMap;

/// LMH per m/s.
const LMH_PER_M_S: f64 = 3.6e6;
const EXPECT_TEMPERATURE: &str = "a temperature between 273.15 and 373.15 K (kelvin, not Celsius)";
const EXPECT_JV_M_S: &str = "a water flux > 0 and <= 1e-3 m/s";
const EXPECT_JV_LMH: &str = "a water flux > 0 and <= 3600 L/m2/h";
const EXPECT_DP: &str = "a transmembrane pressure > 0 in bar, or empty";
const EXPECT_FEED: &str = "a concentration >= 0 in mol/m3 (0 or empty when the ion is absent)";
const EXPECT_PERMEATE: &str = "a concentration >= 0 in mol/m3";
const EXPECT_REJECTION: &str = "a rejection 1 - c_permeate/c_feed between -2 and 1";
const EXPECT_PERMEATE_SD: &str = "an absolute standard deviation >= 0 in mol/m3";
const EXPECT_REJECTION_SD: &str = "an absolute standard deviation >= 0 of the rejection";
const EXPECT_REPEAT: &str = "a non-negative integer (0, 1, 2, ...) or empty";
const EXPECT_BOOL: &str = "true or false";
const EXPECT_BASIS: &str = "intrinsic or observed (empty: intrinsic)";
const EXPECT_K_FILM: &str =
    "a film mass-transfer coefficient > 0 in m/s (typically 1e-6 to 1e-4), or empty";
/// The largest `J_v / k` a row may have: a polarisation modulus `exp(J_v / k)` above
/// e^10 (22 000) is no cell's; a coefficient in the wrong unit is the likely cause.
pub const MAX_FLUX_OVER_K: f64 = 10.0;

/// A number for messages: 4 significant digits (all integer digits below 1e6), no
/// trailing zeros.
pub(crate) fn fmt_num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{}", if x == 0.0 { 0.0 } else { x });
    }
    let exponent = x.abs().log10().floor() as i32;
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (-4..6).contains(&exponent) {
        trim(format!("{:.*}", (3 - exponent).max(0) as usize, x))
    } else {
        let s = format!("{x:.3e}");
        let (mantissa, exp) = s.split_once('e').unwrap();
        format!("{}e{exp}", trim(mantissa.to_string()))
    }
}

/// Reads the text of a measured-data CSV file.
///
/// `source_name` names the file in problems (a path, usually); `db` resolves ion names in
/// column headers and gives their charges. Either every row is valid and the data is
/// returned, or the error lists every problem (the first [`super::MAX_PROBLEMS`] of them,
/// in line order, and how many there are in all).
pub fn parse_csv(
    text: &str,
    source_name: &str,
    options: &LoadOptions,
    db: &IonDb,
) -> Result<MeasuredData, LoadError> {
    let mut problems = Problems::new(source_name);
    let tolerance = options.electroneutrality_tolerance;
    if !(0.0..1.0).contains(&tolerance) {
        problems.file(format!(
            "electroneutrality tolerance {tolerance} is out of range; expected a number >= 0 and < 1 (0.05 is 5 %)"
        ));
    }
    let balance_ion = options
        .balance_with
        .as_deref()
        .and_then(|name| match db.get(name) {
            Ok(ion) => Some(ion.clone()),
            Err(_) => {
                problems.file(format!(
                    "cannot balance the feeds with '{name}': unknown ion; expected one of {}",
                    known_ions(db)
                ));
                None
            }
        });

    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = csv::read(text).into_iter();
    let header = match records.next() {
        None => {
            problems.file(
                "empty file; expected a header row naming the columns, then one row per measurement (see datasets/README.md)",
            );
            return problems.finish(unreachable_data(source_name));
        }
        Some(Err(e)) => {
            problems.line(e.line(), format!("header: {e}"));
            return problems.finish(unreachable_data(source_name));
        }
        Some(Ok(record)) => record,
    };
    let header_line = header.line;
    let header = parse_header(
        &header.fields,
        header_line,
        db,
        balance_ion.as_ref(),
        &mut problems,
    );

    let mut rows = Vec::new();
    let mut adjustments = Vec::new();
    let mut data_records = 0;
    for record in records {
        data_records += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.line(e.line(), e.to_string());
                continue;
            }
        };
        if record.fields.len() != header.names.len() {
            problems.line(
                record.line,
                format!(
                    "{} field{}, but the header has {} columns; expected one value per column (quote values that contain commas)",
                    record.fields.len(),
                    if record.fields.len() == 1 { "" } else { "s" },
                    header.names.len()
                ),
            );
            continue;
        }
        let before = problems.len();
        let row = RowReader {
            start: before,
            header: &header,
            record: &record,
            problems: &mut problems,
            tolerance,
            outcomes: options.outcomes,
        }
        .read(&mut adjustments);
        if problems.len() == before {
            rows.extend(row);
        }
    }
    if data_records == 0 {
        problems.line(
            header_line,
            "the header has no data rows after it; expected one row per measurement",
        );
    }
    find_duplicates(&rows, &mut problems);

    let balance = header.balance.map(|b| BalanceReport {
        ion: header.ions[b].display_name(),
        adjustments,
    });
    problems.finish(MeasuredData {
        source_name: source_name.to_string(),
        columns: header.names,
        ions: header.ions,
        rows,
        balance,
    })
}

/// The value passed to `finish` on paths where there is always a problem.
fn unreachable_data(source_name: &str) -> MeasuredData {
    MeasuredData {
        source_name: source_name.to_string(),
        columns: Vec::new(),
        ions: Vec::new(),
        rows: Vec::new(),
        balance: None,
    }
}

/// Rows with identical source, membrane, temperature, feed, flux and outcome.
fn find_duplicates(rows: &[MeasuredRow], problems: &mut Problems) {
    let bits = |x: f64| (x + 0.0).to_bits(); // -0.0 and 0.0 alike
    let key = |r: &MeasuredRow| {
        let mut numbers = vec![bits(r.temperature_k), bits(r.jv_m_s)];
        for v in [&r.feed_mol_m3, &r.permeate_mol_m3, &r.rejection] {
            numbers.extend(v.iter().map(|&x| bits(x)));
        }
        (r.source.clone(), r.membrane.clone(), numbers)
    };
    let mut seen: HashMap<_, usize> = HashMap::new();
    for row in rows {
        if let Some(first) = seen.insert(key(row), row.line) {
            problems.line(
                row.line,
                format!(
                    "duplicate of line {first} (same source, membrane, temperature, feed, flux and outcome); expected each measurement once"
                ),
            );
            // Keep pointing later copies at the first one.
            seen.insert(key(row), first);
        }
    }
}

/// A parsed cell: its column and value.
#[derive(Debug, Clone, Copy)]
struct Cell {
    column: usize,
    value: f64,
}

/// The ion cells of one row (`None`: no column, empty, or invalid).
#[derive(Debug, Clone, Copy, Default)]
struct IonCells {
    feed: Option<Cell>,
    permeate: Option<Cell>,
    rejection: Option<Cell>,
    permeate_sd: Option<Cell>,
    rejection_sd: Option<Cell>,
}

/// A row's cells, each read on its own.
#[derive(Debug, Default)]
struct RowCells {
    source: Option<String>,
    membrane: Option<String>,
    temperature_k: Option<f64>,
    synthetic: Option<bool>,
    jv_m_s: Option<f64>,
    dp_pa: Option<f64>,
    family: Option<String>,
    sample_id: Option<String>,
    repeat: Option<u32>,
    basis: RejectionBasis,
    /// The film coefficient and its column.
    k_film: Option<(usize, f64)>,
    ions: Vec<IonCells>,
    /// Whether every ion cell read cleanly.
    ions_ok: bool,
}

/// A row's outcomes per ion.
#[derive(Debug)]
struct RowOutcomes {
    permeate: Vec<f64>,
    rejection: Vec<f64>,
    permeate_sd: Vec<Option<f64>>,
    measured: Vec<bool>,
}

struct RowReader<'a> {
    /// How many problems there were before this row.
    start: usize,
    header: &'a Header,
    record: &'a Record,
    problems: &'a mut Problems,
    tolerance: f64,
    outcomes: Outcomes,
}

impl RowReader<'_> {
    fn raw(&self, column: usize) -> &str {
        self.record.fields[column].trim()
    }

    fn add(&mut self, column: usize, message: impl Into<String>) {
        let (line, name) = (self.record.line, &self.header.names[column]);
        let value = self.record.fields[column].trim();
        self.problems
            .add(Some(line), Some(name), Some(value), message);
    }

    /// A number, or `None` when the cell is empty or invalid (then with a problem).
    fn number(&mut self, column: usize, expected: &str) -> Option<f64> {
        let raw = self.raw(column);
        if raw.is_empty() {
            return None;
        }
        match raw.parse::<f64>() {
            Ok(x) if x.is_finite() => Some(x),
            Ok(_) => {
                self.add(column, format!("not a finite number; expected {expected}"));
                None
            }
            Err(_) => {
                self.add(column, format!("not a number; expected {expected}"));
                None
            }
        }
    }

    /// A required number (a problem when empty).
    fn required(&mut self, column: usize, expected: &str) -> Option<f64> {
        if self.raw(column).is_empty() {
            self.add(column, format!("missing value; expected {expected}"));
            return None;
        }
        self.number(column, expected)
    }

    /// A non-negative number, or `None` when empty or invalid.
    fn non_negative(&mut self, column: usize, what: &str, expected: &str) -> Option<f64> {
        let x = self.number(column, expected)?;
        if x < 0.0 {
            self.add(column, format!("negative {what}; expected {expected}"));
            return None;
        }
        Some(x)
    }

    fn text(&mut self, column: usize, expected: &str) -> Option<String> {
        let raw = self.raw(column);
        if raw.is_empty() {
            self.add(column, format!("missing value; expected {expected}"));
            return None;
        }
        Some(raw.to_string())
    }

    fn optional_text(&self, column: usize) -> Option<String> {
        Some(self.raw(column).to_string()).filter(|s| !s.is_empty())
    }

    fn flux(&mut self, column: usize, lmh: bool) -> Option<f64> {
        let (expected, max) = if lmh {
            (EXPECT_JV_LMH, 3600.0)
        } else {
            (EXPECT_JV_M_S, MAX_FLUX_M_S)
        };
        let x = self.required(column, expected)?;
        if x < 0.0 {
            self.add(column, format!("negative flux; expected {expected}"));
            return None;
        }
        if !(x > 0.0 && x <= max) {
            self.add(column, format!("flux out of range; expected {expected}"));
            return None;
        }
        // Divide (1 LMH = 1/3.6e6 m/s), so that 36 LMH is exactly the double 1e-5.
        Some(if lmh { x / LMH_PER_M_S } else { x })
    }

    /// Reads and checks the row; `None` when something is wrong (the problems are added).
    /// Every problem of the row is listed at once, except that a bad ion value stops the
    /// checks that need several cells.
    fn read(mut self, adjustments: &mut Vec<BalanceAdjustment>) -> Option<MeasuredRow> {
        let header = self.header;
        let line = self.record.line;
        let row = self.cells();
        // A bad ion value makes the checks below unreliable, and without feed columns every
        // row would repeat the header's problem: stop here. (Other bad values do not stop
        // them, so that every problem of the row is listed at once.)
        if !row.ions_ok || !header.has_feed {
            return None;
        }
        let raw_feed: Vec<f64> = row
            .ions
            .iter()
            .map(|c| c.feed.map_or(0.0, |c| c.value))
            .collect();
        self.check_agreement(&row.ions, &raw_feed);
        let feed = self.balanced(raw_feed, adjustments)?;
        let present: Vec<bool> = feed.iter().map(|&c| c > 0.0).collect();
        self.check_charges(&feed, &present);
        let outcomes = self.outcomes(&row.ions, &feed, &present);
        if self.outcomes == Outcomes::Required
            && present.iter().any(|&p| p)
            && !outcomes.measured.iter().any(|&m| m)
            && self.problems_in_row() == 0
        {
            self.problems.line(
                line,
                "no ion of the row has a measured permeate or rejection; expected at least one outcome per row",
            );
        }
        self.check_film(&row);
        if self.problems_in_row() > 0 {
            return None;
        }
        Some(MeasuredRow {
            line,
            source: row.source?,
            membrane: row.membrane?,
            family: row.family,
            sample_id: row.sample_id,
            repeat: row.repeat,
            temperature_k: row.temperature_k?,
            synthetic: row.synthetic?,
            jv_m_s: row.jv_m_s?,
            dp_pa: row.dp_pa,
            feed_mol_m3: feed,
            permeate_mol_m3: outcomes.permeate,
            rejection: outcomes.rejection,
            permeate_sd_mol_m3: outcomes.permeate_sd,
            present,
            measured: outcomes.measured,
            basis: row.basis,
            k_film_m_s: row.k_film.map(|(_, k)| k),
        })
    }

    /// Every cell of the row read on its own (each bad value a problem).
    fn cells(&mut self) -> RowCells {
        let header = self.header;
        let mut row = RowCells {
            ions: vec![IonCells::default(); header.ions.len()],
            ions_ok: true,
            ..RowCells::default()
        };
        let both_fluxes =
            header.column_of(Field::JvMS).is_some() && header.column_of(Field::JvLMH).is_some();
        for (column, field) in header.fields.iter().enumerate() {
            let Some(field) = *field else { continue };
            match field {
                Field::Source => {
                    row.source = self.text(
                        column,
                        "a source: a DOI, a lab notebook id, or e.g. 'ionode-lab surrogate v1'",
                    )
                }
                Field::Membrane => row.membrane = self.text(column, "a membrane name, e.g. NF270"),
                Field::TemperatureK => {
                    row.temperature_k = self.required(column, EXPECT_TEMPERATURE).and_then(|t| {
                        let (lo, hi) = TEMPERATURE_RANGE_K;
                        if (lo..=hi).contains(&t) {
                            Some(t)
                        } else {
                            self.add(
                                column,
                                format!("temperature out of range; expected {EXPECT_TEMPERATURE}"),
                            );
                            None
                        }
                    })
                }
                Field::Synthetic => {
                    let raw = self.raw(column);
                    row.synthetic = if raw.eq_ignore_ascii_case("true") {
                        Some(true)
                    } else if raw.eq_ignore_ascii_case("false") {
                        Some(false)
                    } else if raw.is_empty() {
                        self.add(column, format!("missing value; expected {EXPECT_BOOL}"));
                        None
                    } else {
                        self.add(column, format!("not true or false; expected {EXPECT_BOOL}"));
                        None
                    };
                }
                Field::JvMS | Field::JvLMH => {
                    let x = self.flux(column, field == Field::JvLMH);
                    if !both_fluxes {
                        row.jv_m_s = x;
                    }
                }
                Field::DpBar => {
                    row.dp_pa = self.number(column, EXPECT_DP).and_then(|p| {
                        if p > 0.0 {
                            Some(p * BAR_PA)
                        } else {
                            self.add(
                                column,
                                format!("pressure out of range; expected {EXPECT_DP}"),
                            );
                            None
                        }
                    })
                }
                Field::Family => row.family = self.optional_text(column),
                Field::SampleId => row.sample_id = self.optional_text(column),
                Field::Repeat => {
                    let raw = self.raw(column);
                    if !raw.is_empty() {
                        match raw.parse::<u32>() {
                            Ok(k) => row.repeat = Some(k),
                            Err(_) => self.add(
                                column,
                                format!("not a non-negative integer; expected {EXPECT_REPEAT}"),
                            ),
                        }
                    }
                }
                Field::RejectionBasis => {
                    let raw = self.raw(column);
                    if raw.eq_ignore_ascii_case("observed") {
                        row.basis = RejectionBasis::Observed;
                    } else if !(raw.is_empty() || raw.eq_ignore_ascii_case("intrinsic")) {
                        self.add(
                            column,
                            format!("unknown rejection basis; expected {EXPECT_BASIS}"),
                        );
                    }
                }
                Field::KFilm => {
                    row.k_film = self.number(column, EXPECT_K_FILM).and_then(|k| {
                        if k > 0.0 {
                            Some((column, k))
                        } else {
                            self.add(
                                column,
                                format!("coefficient out of range; expected {EXPECT_K_FILM}"),
                            );
                            None
                        }
                    })
                }
                Field::Ion(kind, k) => {
                    let before = self.problems.len();
                    let (slot, value) = match kind {
                        IonField::Feed => (
                            &mut row.ions[k].feed,
                            self.non_negative(column, "concentration", EXPECT_FEED),
                        ),
                        IonField::Permeate => (
                            &mut row.ions[k].permeate,
                            self.non_negative(column, "concentration", EXPECT_PERMEATE),
                        ),
                        IonField::Rejection => (
                            &mut row.ions[k].rejection,
                            self.number(column, EXPECT_REJECTION),
                        ),
                        IonField::PermeateSd => (
                            &mut row.ions[k].permeate_sd,
                            self.non_negative(column, "standard deviation", EXPECT_PERMEATE_SD),
                        ),
                        IonField::RejectionSd => (
                            &mut row.ions[k].rejection_sd,
                            self.non_negative(column, "standard deviation", EXPECT_REJECTION_SD),
                        ),
                    };
                    *slot = value.map(|value| Cell { column, value });
                    row.ions_ok &= self.problems.len() == before;
                }
            }
        }
        row
    }

    /// Permeate and rejection given together must agree (on the feed as written).
    fn check_agreement(&mut self, cells: &[IonCells], raw_feed: &[f64]) {
        let header = self.header;
        for (k, c) in cells.iter().enumerate() {
            if let (Some(p), Some(r)) = (c.permeate, c.rejection) {
                let cf = raw_feed[k];
                if cf > 0.0 {
                    let from_permeate = 1.0 - p.value / cf;
                    let scale = r.value.abs().max(p.value / cf);
                    if (r.value - from_permeate).abs() > AGREEMENT * scale {
                        let permeate_column = header.names[p.column].clone();
                        let permeate_raw = self.raw(p.column).to_string();
                        self.add(
                            r.column,
                            format!(
                                "disagrees with '{permeate_column}' = {permeate_raw}: 1 - {}/{} = {from_permeate}; expected both to agree to 1e-6 relative (or only one of them)",
                                p.value, cf
                            ),
                        );
                    }
                }
            }
        }
    }

    /// The feed, balanced with the header's balance ion if it names one (the change
    /// recorded in `adjustments`); `None` when the balance would need a negative amount.
    fn balanced(
        &mut self,
        mut feed: Vec<f64>,
        adjustments: &mut Vec<BalanceAdjustment>,
    ) -> Option<Vec<f64>> {
        let (header, line) = (self.header, self.record.line);
        let (ions, n_ions) = (&header.ions, header.ions.len());
        if let Some(b) = header.balance {
            let others: f64 = (0..n_ions)
                .filter(|&k| k != b)
                .map(|k| ions[k].z() * feed[k])
                .sum();
            let scale: f64 = (0..n_ions).map(|k| ions[k].z().abs() * feed[k]).sum();
            let needed = -others / ions[b].z();
            if needed < -1e-12 * scale {
                self.problems.line(
                    line,
                    format!(
                        "cannot balance the feed with {name}: the other ions carry {} eq/m3, which needs {name} = {} mol/m3; expected a balance ion of the opposite sign to that charge",
                        fmt_num(others),
                        fmt_num(needed),
                        name = ions[b].display_name()
                    ),
                );
                return None;
            }
            let needed = needed.max(0.0);
            if needed != feed[b] {
                adjustments.push(BalanceAdjustment {
                    line,
                    before_mol_m3: feed[b],
                    after_mol_m3: needed,
                });
                feed[b] = needed;
            }
        }

        Some(feed)
    }

    /// The feed has a cation and an anion, and (unless balanced) is electroneutral.
    fn check_charges(&mut self, feed: &[f64], present: &[bool]) {
        let (header, line) = (self.header, self.record.line);
        let (ions, n_ions) = (&header.ions, header.ions.len());
        let has = |sign: f64| (0..n_ions).any(|k| present[k] && ions[k].z() * sign > 0.0);
        match (has(1.0), has(-1.0)) {
            (true, true) => {
                if header.balance.is_none() {
                    self.check_electroneutral(ions, feed);
                }
            }
            (cation, anion) => {
                let missing = match (cation, anion) {
                    (false, false) => "no ion",
                    (false, true) => "no cation",
                    _ => "no anion",
                };
                self.problems.line(
                    line,
                    format!(
                        "{missing} with a feed > 0; expected at least one cation and one anion in the feed"
                    ),
                );
            }
        }
    }

    /// Every present ion's outcome (permeate, rejection, uncertainty), checked; an absent
    /// ion must have none.
    fn outcomes(&mut self, cells: &[IonCells], feed: &[f64], present: &[bool]) -> RowOutcomes {
        let (header, line) = (self.header, self.record.line);
        let (ions, n_ions) = (&header.ions, header.ions.len());
        let mut permeate = vec![0.0; n_ions];
        let mut rejection = vec![0.0; n_ions];
        let mut permeate_sd = vec![None; n_ions];
        let mut measured = vec![false; n_ions];
        for k in 0..n_ions {
            let c = cells[k];
            let name = ions[k].display_name();
            if !present[k] {
                let given = [
                    (c.permeate, "permeate"),
                    (c.rejection, "rejection"),
                    (c.permeate_sd, "uncertainty"),
                    (c.rejection_sd, "uncertainty"),
                ];
                for (cell, what) in given {
                    if let Some(cell) = cell.filter(|c| c.value != 0.0) {
                        self.add(
                            cell.column,
                            format!(
                                "{what} given for {name}, which is absent from the feed; expected 0 or empty"
                            ),
                        );
                    }
                }
                continue;
            }
            let cf = feed[k];
            match (c.permeate, c.rejection) {
                (None, None) => {
                    let has_column = [IonField::Permeate, IonField::Rejection]
                        .iter()
                        .any(|&f| header.column_of(Field::Ion(f, k)).is_some());
                    if has_column || self.outcomes == Outcomes::Optional {
                        // Not measured in this row (partial data): no outcome, no target.
                        permeate[k] = f64::NAN;
                        rejection[k] = f64::NAN;
                        for cell in [c.permeate_sd, c.rejection_sd].into_iter().flatten() {
                            self.add(
                                cell.column,
                                format!(
                                    "uncertainty given for {name}, whose permeate and rejection are empty (not measured); expected it empty too"
                                ),
                            );
                        }
                        continue;
                    }
                    let message = format!(
                        "no permeate or rejection column for {name}, which is in the feed; expected a column '{}' or '{}' (its cell may be left empty in rows where {name} was not measured)",
                        IonField::Permeate.column(&name),
                        IonField::Rejection.column(&name)
                    );
                    match c.feed {
                        Some(cell) => self.add(cell.column, message),
                        None => self.problems.line(line, message),
                    }
                    continue;
                }
                (Some(p), _) => {
                    permeate[k] = p.value;
                    rejection[k] = 1.0 - p.value / cf;
                    if rejection[k] < REJECTION_RANGE.0 {
                        self.add(
                            p.column,
                            format!(
                                "permeate above 3 times the feed of {} mol/m3 (rejection {}); expected {EXPECT_REJECTION}",
                                fmt_num(cf),
                                fmt_num(rejection[k])
                            ),
                        );
                    }
                }
                (None, Some(r)) => {
                    rejection[k] = r.value;
                    permeate[k] = (1.0 - r.value) * cf;
                }
            }
            measured[k] = true;
            if let Some(r) = c.rejection {
                let (lo, hi) = REJECTION_RANGE;
                if !(lo..=hi).contains(&r.value) {
                    self.add(
                        r.column,
                        format!("rejection out of range; expected {EXPECT_REJECTION}"),
                    );
                }
            }
            permeate_sd[k] = match (c.permeate_sd, c.rejection_sd) {
                (Some(p), Some(r)) => {
                    let from_rejection = r.value * cf;
                    if (p.value - from_rejection).abs() > AGREEMENT * p.value.max(from_rejection) {
                        let rejection_column = header.names[r.column].clone();
                        let rejection_raw = self.raw(r.column).to_string();
                        self.add(
                            p.column,
                            format!(
                                "disagrees with '{rejection_column}' = {rejection_raw}: {} * {cf} = {from_rejection} mol/m3; expected both to agree to 1e-6 relative (or only one of them)",
                                r.value
                            ),
                        );
                    }
                    Some(p.value)
                }
                (Some(p), None) => Some(p.value),
                (None, Some(r)) => Some(r.value * cf),
                (None, None) => None,
            };
        }

        RowOutcomes {
            permeate,
            rejection,
            permeate_sd,
            measured,
        }
    }

    /// A film coefficient converts observed rejections only; and it must give a
    /// polarisation modulus some cell could have.
    fn check_film(&mut self, row: &RowCells) {
        if let Some((column, k)) = row.k_film {
            if row.basis == RejectionBasis::Intrinsic {
                self.add(
                    column,
                    "a film coefficient on a row of intrinsic rejections; expected it only where \
                     rejection_basis = observed (it converts those to the intrinsic ones the models predict)"
                        .to_string(),
                );
            } else if let Some(jv) = row.jv_m_s {
                if jv / k > MAX_FLUX_OVER_K {
                    self.add(
                        column,
                        format!(
                            "J_v / k = {} gives a polarisation modulus exp(J_v / k) above e^{MAX_FLUX_OVER_K}; expected {EXPECT_K_FILM} (is it in m/s?)",
                            fmt_num(jv / k)
                        ),
                    );
                }
            }
        }
    }

    fn problems_in_row(&self) -> usize {
        self.problems.len() - self.start
    }

    fn check_electroneutral(&mut self, ions: &[Ion], feed: &[f64]) {
        let net: f64 = ions.iter().zip(feed).map(|(i, c)| i.z() * c).sum();
        let total: f64 = ions.iter().zip(feed).map(|(i, c)| i.z().abs() * c).sum();
        let relative = net.abs() / total;
        // An invalid tolerance is reported once, as a problem of the options.
        if (0.0..1.0).contains(&self.tolerance) && relative > self.tolerance {
            self.problems.line(
                self.record.line,
                format!(
                    "feed not electroneutral: sum z*c = {}{} eq/m3 is {} % of sum |z|*c = {} eq/m3; expected at most {} % (correct the feed, or balance it with one ion: --balance-with ION)",
                    if net > 0.0 { "+" } else { "" },
                    fmt_num(net),
                    fmt_num(100.0 * relative),
                    fmt_num(total),
                    fmt_num(100.0 * self.tolerance)
                ),
            );
        }
    }
}
