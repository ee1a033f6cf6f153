//! The columns of the format, and reading a header into them.

use super::error::Problems;
use ionode_physics::{Ion, IonDb};

/// Columns that must be present (besides exactly one of `Jv_m_s` / `Jv_LMH`).
pub const REQUIRED_COLUMNS: [&str; 4] = ["source", "membrane", "temperature_K", "synthetic"];

/// Every column name that does not carry an ion.
pub const FIXED_COLUMNS: [&str; 12] = [
    "source",
    "membrane",
    "temperature_K",
    "synthetic",
    "Jv_m_s",
    "Jv_LMH",
    "dP_bar",
    "family",
    "sample_id",
    "repeat",
    "rejection_basis",
    "k_film_m_s",
];

/// What a column of ion `<ion>` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IonField {
    Feed,
    Permeate,
    Rejection,
    PermeateSd,
    RejectionSd,
}

impl IonField {
    pub(crate) const ALL: [IonField; 5] = [
        IonField::Feed,
        IonField::Permeate,
        IonField::Rejection,
        IonField::PermeateSd,
        IonField::RejectionSd,
    ];

    /// The column name for an ion spelled `ion`.
    pub(crate) fn column(self, ion: &str) -> String {
        match self {
            IonField::Feed => format!("feed_{ion}_mol_m3"),
            IonField::Permeate => format!("permeate_{ion}_mol_m3"),
            IonField::Rejection => format!("rejection_{ion}"),
            IonField::PermeateSd => format!("permeate_{ion}_mol_m3_sd"),
            IonField::RejectionSd => format!("rejection_{ion}_sd"),
        }
    }

    /// Splits a column name into its kind and ion token, if it has the form of one.
    fn split(name: &str) -> Option<(IonField, &str)> {
        if let Some(rest) = name.strip_prefix("feed_") {
            return rest.strip_suffix("_mol_m3").map(|i| (IonField::Feed, i));
        }
        if let Some(rest) = name.strip_prefix("permeate_") {
            if let Some(i) = rest.strip_suffix("_mol_m3_sd") {
                return Some((IonField::PermeateSd, i));
            }
            return rest
                .strip_suffix("_mol_m3")
                .map(|i| (IonField::Permeate, i));
        }
        if let Some(rest) = name.strip_prefix("rejection_") {
            if let Some(i) = rest.strip_suffix("_sd") {
                return Some((IonField::RejectionSd, i));
            }
            return Some((IonField::Rejection, rest));
        }
        None
    }
}

/// The meaning of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Source,
    Membrane,
    TemperatureK,
    Synthetic,
    JvMS,
    JvLMH,
    DpBar,
    Family,
    SampleId,
    Repeat,
    RejectionBasis,
    KFilm,
    /// An ion column; the index is into [`Header::ions`].
    Ion(IonField, usize),
}

impl Field {
    fn fixed(name: &str) -> Option<Field> {
        Some(match name {
            "source" => Field::Source,
            "membrane" => Field::Membrane,
            "temperature_K" => Field::TemperatureK,
            "synthetic" => Field::Synthetic,
            "Jv_m_s" => Field::JvMS,
            "Jv_LMH" => Field::JvLMH,
            "dP_bar" => Field::DpBar,
            "family" => Field::Family,
            "sample_id" => Field::SampleId,
            "repeat" => Field::Repeat,
            "rejection_basis" => Field::RejectionBasis,
            "k_film_m_s" => Field::KFilm,
            _ => return None,
        })
    }
}

/// A header read against the schema.
#[derive(Debug)]
pub(crate) struct Header {
    /// Column names, trimmed.
    pub names: Vec<String>,
    /// The meaning of each column; `None` for columns that were refused.
    pub fields: Vec<Option<Field>>,
    /// The file's ions in the documented order.
    pub ions: Vec<Ion>,
    /// Index into `ions` of the balance ion.
    pub balance: Option<usize>,
    /// The file has at least one feed column.
    pub has_feed: bool,
}

impl Header {
    /// The column of a field, if the file has it.
    pub(crate) fn column_of(&self, field: Field) -> Option<usize> {
        self.fields.iter().position(|f| *f == Some(field))
    }
}

/// `Na+, K+, ...`: the ions a name may be.
pub(crate) fn known_ions(db: &IonDb) -> String {
    db.ions()
        .iter()
        .map(Ion::display_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The valid column name closest to `name`: an exact match but for letter case, else the
/// nearest by edit distance if it is at most max(2, len/4) edits away.
pub(crate) fn suggest(name: &str, db: &IonDb) -> Option<String> {
    let mut candidates: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
    for ion in db.ions() {
        let ion = ion.display_name();
        candidates.extend(IonField::ALL.iter().map(|f| f.column(&ion)));
    }
    if let Some(c) = candidates.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(c.clone());
    }
    let limit = (name.chars().count() / 4).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, &c), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= limit)
        .map(|(_, c)| c)
}

const ALL_COLUMNS: &str = "source, membrane, temperature_K, synthetic, Jv_m_s or Jv_LMH, \
     dP_bar, family, sample_id, repeat, rejection_basis, k_film_m_s, feed_<ion>_mol_m3, permeate_<ion>_mol_m3, \
     rejection_<ion>, permeate_<ion>_mol_m3_sd, rejection_<ion>_sd";

fn required_meaning(name: &str) -> &'static str {
    match name {
        "source" => {
            "where the row comes from: a DOI, a lab notebook id, or e.g. 'ionode-lab surrogate v1'"
        }
        "membrane" => "the membrane, e.g. NF270",
        "temperature_K" => "the temperature in K",
        _ => "true for simulated or surrogate data, false for measurements",
    }
}

/// A header column before the ions are ordered: a fixed field, or an ion field with the
/// ion's canonical record.
enum Raw {
    Fixed(Field),
    Ion(IonField, Ion),
}

/// Reads the header at `line`; problems go to `problems`. `balance` is the balance ion,
/// already resolved.
pub(crate) fn parse_header(
    raw: &[String],
    line: usize,
    db: &IonDb,
    balance: Option<&Ion>,
    problems: &mut Problems,
) -> Header {
    let names: Vec<String> = raw.iter().map(|n| n.trim().to_string()).collect();
    let mut parsed = classify(&names, line, db, problems);
    drop_duplicates(&mut parsed, &names, line, problems);
    let ions = ion_order(&parsed, balance);
    let index = |ion: &Ion| ions.iter().position(|i| i.name == ion.name).unwrap();
    let fields: Vec<Option<Field>> = parsed
        .iter()
        .map(|p| match p {
            Some(Raw::Fixed(f)) => Some(*f),
            Some(Raw::Ion(kind, ion)) => Some(Field::Ion(*kind, index(ion))),
            None => None,
        })
        .collect();
    let balance = balance.map(index);
    let has_feed = check_required(&fields, line, problems);
    Header {
        names,
        fields,
        ions,
        balance,
        has_feed,
    }
}

/// Each column's field, with the ion's canonical name; `None` (and a problem) for a
/// column that names nothing known.
fn classify(
    names: &[String],
    line: usize,
    db: &IonDb,
    problems: &mut Problems,
) -> Vec<Option<Raw>> {
    let mut parsed: Vec<Option<Raw>> = Vec::with_capacity(names.len());
    for name in names {
        let p = |message: String, problems: &mut Problems| {
            problems.add(Some(line), Some(name), None, message);
        };
        let unknown = |problems: &mut Problems| match suggest(name, db) {
            Some(s) => p(format!("unknown column; did you mean '{s}'?"), problems),
            None => p(
                format!("unknown column; expected one of {ALL_COLUMNS}"),
                problems,
            ),
        };
        if name.is_empty() {
            p(
                "empty column name; expected a name for every column (a trailing comma?)".into(),
                problems,
            );
            parsed.push(None);
        } else if let Some(field) = Field::fixed(name) {
            parsed.push(Some(Raw::Fixed(field)));
        } else if let Some((kind, token)) = IonField::split(name) {
            match db.get(token) {
                Ok(ion) => parsed.push(Some(Raw::Ion(kind, ion.clone()))),
                // `rejection_Na+_mol_m3` is a misspelt column, not an ion called `Na+_mol_m3`.
                Err(_) if token.contains("mol") || token.contains("m3") => {
                    unknown(problems);
                    parsed.push(None);
                }
                Err(_) => {
                    p(
                        format!(
                            "unknown ion '{token}'; expected one of {} (one column per ion, not per salt)",
                            known_ions(db)
                        ),
                        problems,
                    );
                    parsed.push(None);
                }
            }
        } else {
            unknown(problems);
            parsed.push(None);
        }
    }

    parsed
}

/// The same field twice, whatever the ion's spelling: every later copy is a problem and
/// is dropped.
fn drop_duplicates(
    parsed: &mut [Option<Raw>],
    names: &[String],
    line: usize,
    problems: &mut Problems,
) {
    for k in 0..parsed.len() {
        let same = |a: &Raw, b: &Raw| match (a, b) {
            (Raw::Fixed(x), Raw::Fixed(y)) => x == y,
            (Raw::Ion(x, i), Raw::Ion(y, j)) => x == y && i.name == j.name,
            _ => false,
        };
        let Some(this) = &parsed[k] else { continue };
        if let Some(first) = (0..k).find(|&j| parsed[j].as_ref().is_some_and(|o| same(o, this))) {
            problems.add(
                Some(line),
                Some(&names[k]),
                None,
                format!(
                    "duplicate column (same as column {}, '{}'); expected each column once",
                    first + 1,
                    names[first]
                ),
            );
            parsed[k] = None;
        }
    }
}

/// The ion order: built-in ions in their order, then the others by first appearance (the
/// balance ion included).
fn ion_order(parsed: &[Option<Raw>], balance: Option<&Ion>) -> Vec<Ion> {
    let builtin = IonDb::builtin();
    let mut ions: Vec<Ion> = Vec::new();
    let mentioned = parsed
        .iter()
        .filter_map(|p| match p {
            Some(Raw::Ion(_, ion)) => Some(ion),
            _ => None,
        })
        .chain(balance);
    for ion in mentioned {
        if !ions.iter().any(|i| i.name == ion.name) {
            ions.push(ion.clone());
        }
    }
    let rank = |ion: &Ion| {
        builtin
            .ions()
            .iter()
            .position(|b| b.name == ion.name)
            .unwrap_or(usize::MAX)
    };
    ions.sort_by_key(rank); // stable: non-built-in ions keep their order of appearance
    ions
}

/// The required columns, exactly one flux column and at least one feed column; whether
/// there is a feed column.
fn check_required(fields: &[Option<Field>], line: usize, problems: &mut Problems) -> bool {
    let has = |f: Field| fields.contains(&Some(f));
    for name in REQUIRED_COLUMNS {
        if !has(Field::fixed(name).unwrap()) {
            problems.line(
                line,
                format!(
                    "missing required column '{name}'; expected a column '{name}' ({})",
                    required_meaning(name)
                ),
            );
        }
    }
    match (has(Field::JvMS), has(Field::JvLMH)) {
        (true, true) => {
            problems.line(
                line,
                "both 'Jv_m_s' and 'Jv_LMH' given; expected exactly one flux column",
            );
        }
        (false, false) => {
            problems.line(
                line,
                "no flux column; expected exactly one of 'Jv_m_s' (m/s) or 'Jv_LMH' (L/m2/h)",
            );
        }
        _ => {}
    }
    let has_feed = fields
        .iter()
        .any(|f| matches!(f, Some(Field::Ion(IonField::Feed, _))));
    if !has_feed {
        problems.line(
            line,
            "no feed columns; expected a column feed_<ion>_mol_m3 for each ion of the feed, e.g. feed_Na+_mol_m3",
        );
    }
    has_feed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let db = IonDb::builtin();
        let s = |n: &str| suggest(n, &db);
        assert_eq!(s("feed_Na+_mol_m").as_deref(), Some("feed_Na+_mol_m3"));
        assert_eq!(s("Jv_lmh").as_deref(), Some("Jv_LMH"));
        assert_eq!(s("Temperature_K").as_deref(), Some("temperature_K"));
        assert_eq!(s("temperature_C").as_deref(), Some("temperature_K"));
        assert_eq!(
            s("permeate_Cl-_mol_m3_sdev").as_deref(),
            Some("permeate_Cl-_mol_m3_sd")
        );
        assert_eq!(s("notes"), None);
        assert_eq!(s("flux"), None);
    }

    #[test]
    fn ion_columns_split() {
        assert_eq!(
            IonField::split("feed_SO4^2-_mol_m3"),
            Some((IonField::Feed, "SO4^2-"))
        );
        assert_eq!(
            IonField::split("permeate_Na_+_mol_m3_sd"),
            Some((IonField::PermeateSd, "Na_+"))
        );
        assert_eq!(
            IonField::split("rejection_Cl-_sd"),
            Some((IonField::RejectionSd, "Cl-"))
        );
        assert_eq!(IonField::split("feed_Na+"), None);
        for f in IonField::ALL {
            assert_eq!(IonField::split(&f.column("Mg^2+")), Some((f, "Mg^2+")));
        }
    }
}
