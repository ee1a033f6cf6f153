//! The loader, one test per class of bad input, each asserting the exact text of every
//! problem; a good file field by field and through the writer and back.

use super::*;
use ionode_physics::IonDb;

const FILE: &str = "lab.csv";

/// A minimal valid header and row (NaCl, permeates given).
const HEADER: &str = "source,membrane,temperature_K,synthetic,Jv_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3,permeate_Na+_mol_m3,permeate_Cl-_mol_m3";
const ROW: &str = "s,NF270,298.15,false,1e-5,10,10,5,4";

fn load(text: &str) -> Result<MeasuredData, LoadError> {
    parse_csv(text, FILE, &LoadOptions::default(), &IonDb::builtin())
}

fn load_with(text: &str, options: &LoadOptions) -> Result<MeasuredData, LoadError> {
    parse_csv(text, FILE, options, &IonDb::builtin())
}

/// The problem lines of a file that must be refused.
fn problems(text: &str) -> Vec<String> {
    problems_with(text, &LoadOptions::default())
}

fn problems_with(text: &str, options: &LoadOptions) -> Vec<String> {
    match load_with(text, options) {
        Ok(data) => panic!("loaded {} rows, expected problems", data.rows.len()),
        Err(e) => e.lines(),
    }
}

/// `HEADER` + `extra_header`, and one row per entry of `rows` (each appended to by `extra`).
fn file(extra_header: &str, rows: &[&str]) -> String {
    let mut text = format!("{HEADER}{extra_header}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// `ROW` with field `k` (0-based, of `HEADER`) replaced.
fn row_with(k: usize, value: &str) -> String {
    let mut fields: Vec<&str> = ROW.split(',').collect();
    fields[k] = value;
    fields.join(",")
}

const GOOD: &str = "\
source,membrane,family,sample_id,repeat,temperature_K,synthetic,Jv_LMH,dP_bar,feed_Na+_mol_m3,feed_Cl-_mol_m3,feed_Mg^2+_mol_m3,feed_SO4^2-_mol_m3,permeate_Na+_mol_m3,rejection_Cl-,permeate_Mg^2+_mol_m3,rejection_SO4^2-,permeate_Na+_mol_m3_sd,rejection_SO4^2-_sd
\"doi:10.1016/j.memsci.2020.1, \"\"Table 2\"\"\",NF270,NaCl,A1,0,298.15,false,36,5,50,50,0,0,20,0.6,,,0.5,
ionode-lab surrogate v1,NF270,NaCl+MgSO4,,,303.15,true,72,,50,50,10,10,25,0.5,1,0.95,,0.01\r
";

#[test]
fn good_file_loads_field_by_field() {
    let data = load(GOOD).unwrap();
    assert_eq!(data.source_name, FILE);
    assert_eq!(data.ion_names(), ["Na+", "Mg^2+", "Cl-", "SO4^2-"]);
    assert_eq!(data.columns.len(), 19);
    assert_eq!(data.rows.len(), 2);
    assert_eq!(data.synthetic_rows(), 1);
    assert_eq!(data.balance, None);

    let r = &data.rows[0];
    assert_eq!(r.line, 2);
    assert_eq!(r.source, "doi:10.1016/j.memsci.2020.1, \"Table 2\"");
    assert_eq!(r.membrane, "NF270");
    assert_eq!(r.family.as_deref(), Some("NaCl"));
    assert_eq!(r.sample_id.as_deref(), Some("A1"));
    assert_eq!(r.repeat, Some(0));
    assert_eq!(r.temperature_k, 298.15);
    assert!(!r.synthetic);
    assert_eq!(r.jv_m_s, 36.0 / 3.6e6);
    assert_eq!(r.dp_pa, Some(5e5));
    assert_eq!(r.feed_mol_m3, [50.0, 0.0, 50.0, 0.0]);
    assert_eq!(r.present, [true, false, true, false]);
    assert_eq!(r.permeate_mol_m3, [20.0, 0.0, 20.0, 0.0]);
    assert_eq!(r.rejection, [0.6, 0.0, 0.6, 0.0]);
    assert_eq!(r.permeate_sd_mol_m3, [Some(0.5), None, None, None]);

    let r = &data.rows[1];
    assert_eq!(r.line, 3);
    assert_eq!(r.family.as_deref(), Some("NaCl+MgSO4"));
    assert_eq!((r.sample_id.as_deref(), r.repeat), (None, None));
    assert!(r.synthetic);
    assert_eq!(r.dp_pa, None);
    assert_eq!(r.jv_m_s, 2e-5);
    assert_eq!(r.feed_mol_m3, [50.0, 10.0, 50.0, 10.0]);
    assert_eq!(r.present, [true; 4]);
    assert_eq!(r.rejection[0], 0.5);
    assert_eq!(r.rejection[1], 0.9);
    assert_eq!(r.permeate_mol_m3[2], 25.0);
    assert!((r.permeate_mol_m3[3] - 0.5).abs() < 1e-15);
    assert_eq!(r.rejection[3], 0.95);
    assert_eq!(r.permeate_sd_mol_m3, [None, None, None, Some(0.01 * 10.0)]);
}

#[test]
fn good_file_round_trips_through_the_writer() {
    let data = load(GOOD).unwrap();
    let text = data.to_csv();
    let back = load(&text).unwrap();
    assert_eq!(back.ions, data.ions);
    assert_eq!(back.rows.len(), data.rows.len());
    for (a, b) in back.rows.iter().zip(&data.rows) {
        // Rejections given without a permeate come back from the written permeate.
        for (x, y) in a.rejection.iter().zip(&b.rejection) {
            assert!((x - y).abs() <= 1e-15, "{x} {y}");
        }
        let mut a = a.clone();
        a.rejection.clone_from(&b.rejection);
        assert_eq!(&a, b);
    }
    // Once permeates are written, the canonical text is a fixed point.
    let again = back.to_csv();
    assert_eq!(load(&again).unwrap().to_csv(), again);
    assert!(text.starts_with(
        "source,membrane,family,sample_id,repeat,synthetic,temperature_K,Jv_m_s,dP_bar,\
         feed_Na+_mol_m3,feed_Mg^2+_mol_m3,feed_Cl-_mol_m3,feed_SO4^2-_mol_m3,"
    ));
    assert!(text.contains("\n\"doi:10.1016/j.memsci.2020.1, \"\"Table 2\"\"\",NF270,NaCl,A1,0,false,298.15,1e-5,5.0,50.0,0.0,50.0,0.0,20.0,,20.0,,0.6,,0.6,,0.5,\n"), "{text}");
}

#[test]
fn column_order_aliases_bom_and_spaces() {
    // Columns in any order, canonical ion names, a byte-order mark, spaces around values.
    let text = "\u{feff}feed_Cl_-_mol_m3, permeate_Na_mol_m3 ,synthetic,Jv_m_s,source,membrane,temperature_K,feed_Na_+_mol_m3,rejection_Cl-\n\
                10 , 5 ,TRUE, 1e-5 ,  s ,NF270,298.15,10,0.6\n";
    let data = load(text).unwrap();
    assert_eq!(data.ion_names(), ["Na+", "Cl-"]);
    let r = &data.rows[0];
    assert_eq!(r.source, "s");
    assert!(r.synthetic);
    assert_eq!(r.permeate_mol_m3, [5.0, 4.0]);
    assert_eq!(r.rejection, [0.5, 0.6]);
}

#[test]
fn ions_outside_the_builtin_set_come_after_it_in_order_of_appearance() {
    let mut db = IonDb::builtin();
    let mut no3 = db.get("Cl-").unwrap().clone();
    no3.name = "NO3_-".into();
    db.insert(no3.clone()).unwrap();
    let mut br = no3;
    br.name = "Br_-".into();
    db.insert(br).unwrap();
    let text = "source,membrane,temperature_K,synthetic,Jv_m_s,feed_NO3-_mol_m3,feed_Br-_mol_m3,feed_K+_mol_m3,feed_Na+_mol_m3,rejection_NO3-,rejection_Br-,rejection_K+,rejection_Na+\n\
                s,m,298.15,false,1e-5,5,5,5,5,0.1,0.2,0.3,0.4\n";
    let data = parse_csv(text, FILE, &LoadOptions::default(), &db).unwrap();
    assert_eq!(data.ion_names(), ["Na+", "K+", "NO3-", "Br-"]);
    assert_eq!(data.rows[0].rejection, [0.4, 0.3, 0.1, 0.2]);
    assert_eq!(data.ion_index("NO3_-"), Some(2));
    assert_eq!(data.ion_index("NO3-"), Some(2));
}

#[test]
fn empty_file_and_header_only() {
    let empty = "lab.csv: empty file; expected a header row naming the columns, then one row per measurement (see datasets/README.md)";
    assert_eq!(problems(""), [empty]);
    assert_eq!(problems("\n\r\n"), [empty]);
    assert_eq!(
        problems(&file("", &[])),
        ["lab.csv, line 1: the header has no data rows after it; expected one row per measurement"]
    );
}

#[test]
fn missing_required_columns() {
    let text = "membrane,Jv_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3,permeate_Na+_mol_m3,permeate_Cl-_mol_m3\nNF270,1e-5,10,10,5,4\n";
    assert_eq!(
        problems(text),
        [
            "lab.csv, line 1: missing required column 'source'; expected a column 'source' (where the row comes from: a DOI, a lab notebook id, or e.g. 'ionode-lab surrogate v1')",
            "lab.csv, line 1: missing required column 'temperature_K'; expected a column 'temperature_K' (the temperature in K)",
            "lab.csv, line 1: missing required column 'synthetic'; expected a column 'synthetic' (true for simulated or surrogate data, false for measurements)",
        ]
    );
    assert_eq!(
        problems("source,membrane,temperature_K,synthetic,Jv_m_s\ns,m,298.15,false,1e-5\n"),
        ["lab.csv, line 1: no feed columns; expected a column feed_<ion>_mol_m3 for each ion of the feed, e.g. feed_Na+_mol_m3"]
    );
}

#[test]
fn unknown_columns_get_the_closest_valid_name() {
    let text = file(
        ",feed_Na+_mol_m,Temperature_K,notes,,rejection_Na+_mol_m3",
        &[&format!("{ROW},10,300,hello,,0.5")],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 1, column 'feed_Na+_mol_m': unknown column; did you mean 'feed_Na+_mol_m3'?",
            "lab.csv, line 1, column 'Temperature_K': unknown column; did you mean 'temperature_K'?",
            "lab.csv, line 1, column 'notes': unknown column; expected one of source, membrane, temperature_K, synthetic, Jv_m_s or Jv_LMH, dP_bar, family, sample_id, repeat, rejection_basis, k_film_m_s, feed_<ion>_mol_m3, permeate_<ion>_mol_m3, rejection_<ion>, permeate_<ion>_mol_m3_sd, rejection_<ion>_sd",
            "lab.csv, line 1, column '': empty column name; expected a name for every column (a trailing comma?)",
            "lab.csv, line 1, column 'rejection_Na+_mol_m3': unknown column; expected one of source, membrane, temperature_K, synthetic, Jv_m_s or Jv_LMH, dP_bar, family, sample_id, repeat, rejection_basis, k_film_m_s, feed_<ion>_mol_m3, permeate_<ion>_mol_m3, rejection_<ion>, permeate_<ion>_mol_m3_sd, rejection_<ion>_sd",
        ]
    );
}

#[test]
fn unknown_ions_list_the_known_ones() {
    let text = file(",feed_Fe3+_mol_m3,rejection_NaCl", &[&format!("{ROW},0,")]);
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 1, column 'feed_Fe3+_mol_m3': unknown ion 'Fe3+'; expected one of Na+, K+, Li+, NH4+, Mg^2+, Ca^2+, Cl-, NO3-, SO4^2-, HCO3- (one column per ion, not per salt)",
            "lab.csv, line 1, column 'rejection_NaCl': unknown ion 'NaCl'; expected one of Na+, K+, Li+, NH4+, Mg^2+, Ca^2+, Cl-, NO3-, SO4^2-, HCO3- (one column per ion, not per salt)",
        ]
    );
}

#[test]
fn duplicate_columns_whatever_the_ion_spelling() {
    let text = file(",feed_Na_+_mol_m3,source", &[&format!("{ROW},10,t")]);
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 1, column 'feed_Na_+_mol_m3': duplicate column (same as column 6, 'feed_Na+_mol_m3'); expected each column once",
            "lab.csv, line 1, column 'source': duplicate column (same as column 1, 'source'); expected each column once",
        ]
    );
}

#[test]
fn exactly_one_flux_column() {
    let both = file(",Jv_LMH", &[&format!("{ROW},36")]);
    assert_eq!(
        problems(&both),
        ["lab.csv, line 1: both 'Jv_m_s' and 'Jv_LMH' given; expected exactly one flux column"]
    );
    let neither = "source,membrane,temperature_K,synthetic,feed_Na+_mol_m3,feed_Cl-_mol_m3,permeate_Na+_mol_m3,permeate_Cl-_mol_m3\ns,NF270,298.15,false,10,10,5,4\n";
    assert_eq!(
        problems(neither),
        ["lab.csv, line 1: no flux column; expected exactly one of 'Jv_m_s' (m/s) or 'Jv_LMH' (L/m2/h)"]
    );
}

#[test]
fn non_numeric_and_missing_values() {
    let text = file(
        "",
        &[
            &row_with(4, "abc"),
            &row_with(5, "NaN"),
            &row_with(2, "25 C"),
            &row_with(4, ""),
            &row_with(0, " "),
            &row_with(3, "yes"),
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'Jv_m_s', value 'abc': not a number; expected a water flux > 0 and <= 1e-3 m/s",
            "lab.csv, line 3, column 'feed_Na+_mol_m3', value 'NaN': not a finite number; expected a concentration >= 0 in mol/m3 (0 or empty when the ion is absent)",
            "lab.csv, line 4, column 'temperature_K', value '25 C': not a number; expected a temperature between 273.15 and 373.15 K (kelvin, not Celsius)",
            "lab.csv, line 5, column 'Jv_m_s': missing value; expected a water flux > 0 and <= 1e-3 m/s",
            "lab.csv, line 6, column 'source': missing value; expected a source: a DOI, a lab notebook id, or e.g. 'ionode-lab surrogate v1'",
            "lab.csv, line 7, column 'synthetic', value 'yes': not true or false; expected true or false",
        ]
    );
    let repeat = file(",repeat", &[&format!("{ROW},-1"), &format!("{ROW},1.5")]);
    assert_eq!(
        problems(&repeat),
        [
            "lab.csv, line 2, column 'repeat', value '-1': not a non-negative integer; expected a non-negative integer (0, 1, 2, ...) or empty",
            "lab.csv, line 3, column 'repeat', value '1.5': not a non-negative integer; expected a non-negative integer (0, 1, 2, ...) or empty",
        ]
    );
}

#[test]
fn negative_concentrations_fluxes_and_deviations() {
    let text = file(
        ",permeate_Na+_mol_m3_sd,rejection_Cl-_sd",
        &[
            &format!("{},,", row_with(6, "-10")),
            &format!("{},,", row_with(7, "-5")),
            &format!("{},,", row_with(4, "-1e-5")),
            &format!("{ROW},-0.1,"),
            &format!("{ROW},,-0.01"),
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'feed_Cl-_mol_m3', value '-10': negative concentration; expected a concentration >= 0 in mol/m3 (0 or empty when the ion is absent)",
            "lab.csv, line 3, column 'permeate_Na+_mol_m3', value '-5': negative concentration; expected a concentration >= 0 in mol/m3",
            "lab.csv, line 4, column 'Jv_m_s', value '-1e-5': negative flux; expected a water flux > 0 and <= 1e-3 m/s",
            "lab.csv, line 5, column 'permeate_Na+_mol_m3_sd', value '-0.1': negative standard deviation; expected an absolute standard deviation >= 0 in mol/m3",
            "lab.csv, line 6, column 'rejection_Cl-_sd', value '-0.01': negative standard deviation; expected an absolute standard deviation >= 0 of the rejection",
        ]
    );
}

#[test]
fn flux_temperature_and_pressure_ranges() {
    let lmh_header = HEADER.replace("Jv_m_s", "Jv_LMH");
    let text = format!(
        "{lmh_header},dP_bar\n{}\n{}\n{}\n{}\n{}\n",
        row_with(4, "3600") + ",7",
        row_with(4, "3601") + ",",
        row_with(4, "0") + ",",
        row_with(2, "373.16").replace(",1e-5,", ",36,") + ",",
        row_with(4, "36") + ",0",
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 3, column 'Jv_LMH', value '3601': flux out of range; expected a water flux > 0 and <= 3600 L/m2/h",
            "lab.csv, line 4, column 'Jv_LMH', value '0': flux out of range; expected a water flux > 0 and <= 3600 L/m2/h",
            "lab.csv, line 5, column 'temperature_K', value '373.16': temperature out of range; expected a temperature between 273.15 and 373.15 K (kelvin, not Celsius)",
            "lab.csv, line 6, column 'dP_bar', value '0': pressure out of range; expected a transmembrane pressure > 0 in bar, or empty",
        ]
    );
    assert_eq!(
        problems(&file("", &[&row_with(4, "1.1e-3")])),
        ["lab.csv, line 2, column 'Jv_m_s', value '1.1e-3': flux out of range; expected a water flux > 0 and <= 1e-3 m/s"]
    );
    // The limits themselves are valid.
    let data = load(&file("", &[&row_with(4, "1e-3"), &row_with(2, "273.15")])).unwrap();
    assert_eq!(data.rows[0].jv_m_s, MAX_FLUX_M_S);
    let data = load(&format!("{lmh_header}\n{}\n", row_with(4, "3600"))).unwrap();
    assert_eq!(data.rows[0].jv_m_s, MAX_FLUX_M_S);
}

#[test]
fn electroneutrality_and_balancing() {
    // Na 10, Cl 8: +2 of 18 eq/m3 = 11.1 %.
    let unbalanced = file("", &[&row_with(6, "8"), &row_with(6, "9.5")]);
    assert_eq!(
        problems(&unbalanced),
        ["lab.csv, line 2: feed not electroneutral: sum z*c = +2 eq/m3 is 11.11 % of sum |z|*c = 18 eq/m3; expected at most 5 % (correct the feed, or balance it with one ion: --balance-with ION)"]
    );
    // A wider tolerance accepts it, a tighter one refuses the 2.6 % row too.
    let loose = LoadOptions {
        electroneutrality_tolerance: 0.2,
        ..LoadOptions::default()
    };
    assert_eq!(load_with(&unbalanced, &loose).unwrap().rows.len(), 2);
    let tight = LoadOptions {
        electroneutrality_tolerance: 0.01,
        ..LoadOptions::default()
    };
    assert_eq!(
        problems_with(&unbalanced, &tight)[1],
        "lab.csv, line 3: feed not electroneutral: sum z*c = +0.5 eq/m3 is 2.564 % of sum |z|*c = 19.5 eq/m3; expected at most 1 % (correct the feed, or balance it with one ion: --balance-with ION)"
    );

    // Balancing with Cl- sets its feed; the given permeate is kept, the rejection follows.
    let balance = LoadOptions {
        balance_with: Some("Cl-".into()),
        ..LoadOptions::default()
    };
    let data = load_with(
        &file("", &[&row_with(6, "8"), &row_with(4, "2e-5")]),
        &balance,
    )
    .unwrap();
    let r = &data.rows[0];
    assert_eq!(r.feed_mol_m3, [10.0, 10.0]);
    assert_eq!(r.permeate_mol_m3, [5.0, 4.0]);
    assert_eq!(r.rejection, [0.5, 0.6]);
    assert_eq!(
        data.balance,
        Some(BalanceReport {
            ion: "Cl-".into(),
            adjustments: vec![BalanceAdjustment {
                line: 2,
                before_mol_m3: 8.0,
                after_mol_m3: 10.0
            }],
        })
    );

    // Balancing with an ion the file lacks adds it, and then it needs an outcome.
    let with_so4 = LoadOptions {
        balance_with: Some("SO4".into()),
        ..LoadOptions::default()
    };
    assert_eq!(
        problems_with(&file("", &[&row_with(6, "8")]), &with_so4),
        ["lab.csv, line 2: no permeate or rejection column for SO4^2-, which is in the feed; expected a column 'permeate_SO4^2-_mol_m3' or 'rejection_SO4^2-' (its cell may be left empty in rows where SO4^2- was not measured)"]
    );
    // An exactly neutral row needs none of it.
    let data = load_with(&file("", &[ROW]), &with_so4).unwrap();
    assert_eq!(data.ion_names(), ["Na+", "Cl-", "SO4^2-"]);
    assert_eq!(data.rows[0].present, [true, true, false]);
    assert_eq!(data.balance.unwrap().adjustments, []);

    // A balance ion of the wrong sign.
    let with_na = LoadOptions {
        balance_with: Some("Na+".into()),
        ..LoadOptions::default()
    };
    let text = format!("{HEADER},feed_Mg^2+_mol_m3,rejection_Mg^2+\n{ROW},10,0.9\n");
    assert_eq!(
        problems_with(&text, &with_na),
        ["lab.csv, line 2: cannot balance the feed with Na+: the other ions carry 10 eq/m3, which needs Na+ = -10 mol/m3; expected a balance ion of the opposite sign to that charge"]
    );
}

/// Data to predict may hold feeds only: without outcome columns, every present ion is
/// unmeasured, and the rest of the validation is the same.
#[test]
fn feeds_without_outcomes_load_when_outcomes_are_optional() {
    let text = "source,membrane,temperature_K,synthetic,Jv_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3\ns,NF270,298.15,false,1e-5,10,10\n";
    let optional = LoadOptions {
        outcomes: Outcomes::Optional,
        ..LoadOptions::default()
    };
    let data = load_with(text, &optional).unwrap();
    assert_eq!(data.rows[0].measured, [false, false]);
    assert!(problems(text)[0].contains("no permeate or rejection column for Na+"));
    let bad = text.replace(",10,10", ",10,5");
    assert!(problems_with(&bad, &optional)[0].contains("feed not electroneutral"));
}

#[test]
fn bad_options() {
    let options = LoadOptions {
        balance_with: Some("Fe3+".into()),
        electroneutrality_tolerance: -0.1,
        ..LoadOptions::default()
    };
    assert_eq!(
        problems_with(&file("", &[ROW]), &options),
        [
            "lab.csv: electroneutrality tolerance -0.1 is out of range; expected a number >= 0 and < 1 (0.05 is 5 %)",
            "lab.csv: cannot balance the feeds with 'Fe3+': unknown ion; expected one of Na+, K+, Li+, NH4+, Mg^2+, Ca^2+, Cl-, NO3-, SO4^2-, HCO3-",
        ]
    );
}

#[test]
fn cations_and_anions_are_both_needed() {
    let text = file(
        "",
        &[
            &row_with(6, "0").replace(",4", ","),
            "s,NF270,298.15,false,1e-5,0,,,",
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2: no anion with a feed > 0; expected at least one cation and one anion in the feed",
            "lab.csv, line 3: no ion with a feed > 0; expected at least one cation and one anion in the feed",
        ]
    );
}

#[test]
fn rejection_range() {
    let header = HEADER.replace("permeate_Cl-_mol_m3", "rejection_Cl-");
    let text = format!(
        "{header}\n{}\n{}\n{}\n{}\n",
        row_with(8, "1.5"),
        row_with(8, "-2.5"),
        row_with(8, "-2"),
        "s,NF270,298.15,false,1e-5,10,10,31,0.6"
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'rejection_Cl-', value '1.5': rejection out of range; expected a rejection 1 - c_permeate/c_feed between -2 and 1",
            "lab.csv, line 3, column 'rejection_Cl-', value '-2.5': rejection out of range; expected a rejection 1 - c_permeate/c_feed between -2 and 1",
            "lab.csv, line 5, column 'permeate_Na+_mol_m3', value '31': permeate above 3 times the feed of 10 mol/m3 (rejection -2.1); expected a rejection 1 - c_permeate/c_feed between -2 and 1",
        ]
    );
}

#[test]
fn every_ion_in_the_feed_needs_an_outcome_column() {
    let header = "source,membrane,temperature_K,synthetic,Jv_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3,permeate_Na+_mol_m3";
    let text = format!("{header}\ns,NF270,298.15,false,1e-5,10,10,5\n");
    assert_eq!(
        problems(&text),
        ["lab.csv, line 2, column 'feed_Cl-_mol_m3', value '10': no permeate or rejection column for Cl-, which is in the feed; expected a column 'permeate_Cl-_mol_m3' or 'rejection_Cl-' (its cell may be left empty in rows where Cl- was not measured)"]
    );
}

/// Real data is partial: an empty outcome cell of a present ion means "not measured". The
/// ion stays in the feed; its outcome is NaN and marked unmeasured, and the writer leaves
/// it empty again.
#[test]
fn empty_outcome_cells_are_unmeasured_ions() {
    let text = file(
        ",rejection_Cl-,rejection_Cl-_sd",
        &[
            &format!("{},,", row_with(8, "")),
            &format!("{},0.3,0.01", row_with(8, "")),
        ],
    );
    let data = load(&text).unwrap();
    let (a, b) = (&data.rows[0], &data.rows[1]);
    assert_eq!(a.present, [true, true]);
    assert_eq!(a.measured, [true, false]);
    assert!(a.permeate_mol_m3[1].is_nan() && a.rejection[1].is_nan());
    assert_eq!(a.permeate_sd_mol_m3[1], None);
    assert_eq!(b.measured, [true, true]);
    assert!((b.permeate_mol_m3[1] - 7.0).abs() < 1e-12);
    let again = load(&data.to_csv()).unwrap();
    assert_eq!(again.rows[0].measured, [true, false]);
    let line = data.to_csv().lines().nth(1).unwrap().to_string();
    assert!(line.ends_with(",10.0,10.0,5.0,,0.5,,"), "{line}");
    // An uncertainty without an outcome, or a row with no outcome at all, is refused.
    let text = file(
        ",rejection_Cl-,rejection_Cl-_sd",
        &[
            &format!("{},,0.01", row_with(8, "")),
            &format!("{},,", row_with(7, "").replacen(",4", ",", 1)),
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'rejection_Cl-_sd', value '0.01': uncertainty given for Cl-, whose permeate and rejection are empty (not measured); expected it empty too",
            "lab.csv, line 3: no ion of the row has a measured permeate or rejection; expected at least one outcome per row",
        ]
    );
}

#[test]
fn outcomes_of_absent_ions_must_be_empty_or_zero() {
    let text = file(
        ",feed_K+_mol_m3,permeate_K+_mol_m3,rejection_K+,rejection_K+_sd",
        &[
            &format!("{ROW},0,2,,"),
            &format!("{ROW},,,0.5,0.1"),
            &format!("{ROW},0,0,0,0"),
            &format!("{},,,,", row_with(4, "2e-5")),
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'permeate_K+_mol_m3', value '2': permeate given for K+, which is absent from the feed; expected 0 or empty",
            "lab.csv, line 3, column 'rejection_K+', value '0.5': rejection given for K+, which is absent from the feed; expected 0 or empty",
            "lab.csv, line 3, column 'rejection_K+_sd', value '0.1': uncertainty given for K+, which is absent from the feed; expected 0 or empty",
        ]
    );
}

#[test]
fn permeate_and_rejection_must_agree() {
    let text = file(
        ",rejection_Na+",
        &[
            &format!("{ROW},0.4"),
            &format!("{ROW},0.5000004"),
            &format!("{ROW},0.5000006"),
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'rejection_Na+', value '0.4': disagrees with 'permeate_Na+_mol_m3' = 5: 1 - 5/10 = 0.5; expected both to agree to 1e-6 relative (or only one of them)",
            "lab.csv, line 4, column 'rejection_Na+', value '0.5000006': disagrees with 'permeate_Na+_mol_m3' = 5: 1 - 5/10 = 0.5; expected both to agree to 1e-6 relative (or only one of them)",
        ]
    );
}

#[test]
fn uncertainties_convert_and_must_agree() {
    let text = file(
        ",permeate_Cl-_mol_m3_sd,rejection_Cl-_sd,rejection_Na+_sd",
        &[&format!("{ROW},0.2,0.02,0.01")],
    );
    let data = load(&text).unwrap();
    assert_eq!(
        data.rows[0].permeate_sd_mol_m3,
        [Some(0.01 * 10.0), Some(0.2)]
    );
    let bad = file(
        ",permeate_Cl-_mol_m3_sd,rejection_Cl-_sd",
        &[&format!("{ROW},0.3,0.02")],
    );
    assert_eq!(
        problems(&bad),
        ["lab.csv, line 2, column 'permeate_Cl-_mol_m3_sd', value '0.3': disagrees with 'rejection_Cl-_sd' = 0.02: 0.02 * 10 = 0.2 mol/m3; expected both to agree to 1e-6 relative (or only one of them)"]
    );
}

#[test]
fn duplicate_rows_name_both_lines() {
    let other = row_with(4, "2e-5");
    // The same numbers written differently are the same measurement.
    let same = row_with(4, "1.0E-5");
    let text = file("", &[ROW, &other, &same, ROW]);
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 4: duplicate of line 2 (same source, membrane, temperature, feed, flux and outcome); expected each measurement once",
            "lab.csv, line 5: duplicate of line 2 (same source, membrane, temperature, feed, flux and outcome); expected each measurement once",
        ]
    );
    // A repeat with another outcome is not a duplicate.
    load(&file("", &[ROW, &row_with(7, "5.1")])).unwrap();
}

#[test]
fn rows_with_the_wrong_number_of_fields() {
    let text = file("", &[&format!("{ROW},"), "s,NF270", ROW]);
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2: 10 fields, but the header has 9 columns; expected one value per column (quote values that contain commas)",
            "lab.csv, line 3: 2 fields, but the header has 9 columns; expected one value per column (quote values that contain commas)",
        ]
    );
}

#[test]
fn csv_syntax_errors_are_problems_with_lines() {
    let text = file(
        "",
        &[
            "s\"x,NF270,298.15,false,1e-5,10,10,5,4",
            "\"s\"x,NF270,298.15,false,1e-5,10,10,5,4",
            ROW,
            "\"unterminated,NF270",
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2: double quote inside an unquoted field; expected the whole field in double quotes with inner quotes doubled, e.g. \"5\"\" pipe\"",
            "lab.csv, line 3: text after a closing double quote; expected a comma or the end of the line",
            "lab.csv, line 5: quoted field is never closed; expected a closing double quote at the end of the field",
        ]
    );
}

#[test]
fn every_problem_is_found_and_the_list_is_capped() {
    // Header problems come first, then rows in line order; 30 bad rows + 1 header problem.
    let rows: Vec<String> = (0..30)
        .map(|_| format!("{},x", row_with(4, "fast")))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let text = file(",notes", &refs);
    let err = load(&text).unwrap_err();
    assert_eq!(err.total, 31);
    assert_eq!(err.problems.len(), MAX_PROBLEMS);
    let lines = err.lines();
    assert_eq!(lines.len(), 21);
    assert!(lines[0].starts_with("lab.csv, line 1, column 'notes': unknown column"));
    assert!(lines[1].starts_with("lab.csv, line 2, column 'Jv_m_s', value 'fast': not a number"));
    assert!(lines[19].starts_with("lab.csv, line 20, column 'Jv_m_s'"));
    assert_eq!(lines[20], "... and 11 more problems");
    assert_eq!(err.headline(), "lab.csv: 31 problems; nothing was loaded");
    let shown = err.to_string();
    assert!(shown
        .starts_with("lab.csv: 31 problems; nothing was loaded\nlab.csv, line 1, column 'notes'"));
    assert!(shown.ends_with("\n... and 11 more problems"));
}

#[test]
fn number_formatting_for_messages() {
    use super::load::fmt_num;
    assert_eq!(fmt_num(0.0), "0");
    assert_eq!(fmt_num(2.0), "2");
    assert_eq!(fmt_num(11.111111), "11.11");
    assert_eq!(fmt_num(-10.0), "-10");
    assert_eq!(fmt_num(0.012345), "0.01235");
    assert_eq!(fmt_num(123456.0), "123456");
    assert_eq!(fmt_num(1234567.0), "1.235e6");
    assert_eq!(fmt_num(2.5e-6), "2.5e-6");
}

#[test]
fn every_problem_of_a_row_at_once() {
    // A bad temperature does not hide the row's ion problems.
    let text = file(",rejection_K+", &["s,NF270,25,false,1e-5,10,10,5,,0.5"]);
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'temperature_K', value '25': temperature out of range; expected a temperature between 273.15 and 373.15 K (kelvin, not Celsius)",
            "lab.csv, line 2, column 'rejection_K+', value '0.5': rejection given for K+, which is absent from the feed; expected 0 or empty",
        ]
    );
}

#[test]
fn the_film_model_converts_by_hand() {
    // T = 0.5 and J_v / k = 1: T_obs = 0.5 e / (1 + 0.5 (e - 1)) = e / (1 + e).
    let e = film_factor(1e-5, 1e-5);
    assert!((e - std::f64::consts::E).abs() < 1e-15);
    let t_obs = observed_transmission(0.5, e);
    assert!((t_obs - 0.731_058_578_630_004_9).abs() < 1e-15, "{t_obs}");
    // The classic form (Sutzkover et al. 2000): ln((1 - R_obs)/R_obs) = ln((1 - R)/R) + J_v/k.
    let (r, r_obs) = (0.5f64, 1.0 - t_obs);
    let lhs = ((1.0 - r_obs) / r_obs).ln();
    assert!((lhs - (((1.0 - r) / r).ln() + 1.0)).abs() < 1e-12);
    // The inverse, and E = 1 (no polarisation) leaves a transmission as it is, to the bit.
    assert!((intrinsic_transmission(t_obs, e) - 0.5).abs() < 1e-15);
    for t in [0.0, 0.1234567, 0.5, 0.999, 1.7] {
        assert_eq!(observed_transmission(t, 1.0).to_bits(), f64::to_bits(t));
    }
    // Polarisation lowers the observed rejection (it raises the wall's concentration).
    assert!(observed_transmission(0.2, 2.0) > 0.2);
}

#[test]
fn observed_rows_state_their_basis_and_film_coefficient() {
    let text = file(
        ",rejection_basis,k_film_m_s",
        &[
            &format!("{ROW},observed,2e-5"),
            &format!("{},Observed,", row_with(4, "2e-5")),
            &format!("{},,", row_with(4, "3e-5")),
            &format!("{},intrinsic,", row_with(4, "4e-5")),
        ],
    );
    let data = load(&text).unwrap();
    let r = &data.rows;
    assert_eq!(r[0].basis, RejectionBasis::Observed);
    assert_eq!(r[0].k_film_m_s, Some(2e-5));
    assert!((r[0].film_factor().unwrap() - 0.5f64.exp()).abs() < 1e-15);
    assert_eq!(r[1].basis, RejectionBasis::Observed);
    assert_eq!(r[1].film_factor(), None);
    assert_eq!(r[2].basis, RejectionBasis::Intrinsic);
    assert_eq!(r[3].basis, RejectionBasis::Intrinsic);
    // One note names the observed row without a coefficient.
    assert_eq!(data.unconverted_observed_rows(), [3]);
    assert_eq!(
        data.unconverted_note().unwrap(),
        "lab.csv: 1 row of observed rejections without k_film_m_s (line 3) is used as if intrinsic; give the film mass-transfer coefficient to have them converted"
    );
    // Through the writer and back.
    let again = load(&data.to_csv()).unwrap();
    assert_eq!(again.rows, data.rows);
    // Samples carry the factors (1 where nothing is converted), and the predictions as
    // the rows measured them.
    let s = crate::data::Samples::from_measured(&data, &["Na+", "Cl-"]).unwrap();
    let f = s.film_factor.as_ref().unwrap();
    assert_eq!(f.to_vec(), [0.5f64.exp(), 1.0, 1.0, 1.0]);
    let intrinsic = s.feed_mol_m3.mapv(|c| 0.5 * c);
    let observed = s.observed_basis(&intrinsic);
    assert!((observed[[0, 0]] / 10.0 - observed_transmission(0.5, f[0])).abs() < 1e-15);
    assert_eq!(observed.row(1), intrinsic.row(1));
    // Intrinsic files have none.
    assert!(crate::data::Samples::from_measured(
        &load(&file("", &[ROW])).unwrap(),
        &["Na+", "Cl-"]
    )
    .unwrap()
    .film_factor
    .is_none());
}

#[test]
fn bad_bases_and_film_coefficients_are_located() {
    let text = file(
        ",rejection_basis,k_film_m_s",
        &[
            &format!("{ROW},polarised,"),
            &format!("{},observed,0", row_with(4, "2e-5")),
            &format!("{},intrinsic,1e-5", row_with(4, "3e-5")),
            &format!("{},observed,1e-9", row_with(4, "4e-5")),
        ],
    );
    assert_eq!(
        problems(&text),
        [
            "lab.csv, line 2, column 'rejection_basis', value 'polarised': unknown rejection basis; expected intrinsic or observed (empty: intrinsic)",
            "lab.csv, line 3, column 'k_film_m_s', value '0': coefficient out of range; expected a film mass-transfer coefficient > 0 in m/s (typically 1e-6 to 1e-4), or empty",
            "lab.csv, line 4, column 'k_film_m_s', value '1e-5': a film coefficient on a row of intrinsic rejections; expected it only where rejection_basis = observed (it converts those to the intrinsic ones the models predict)",
            "lab.csv, line 5, column 'k_film_m_s', value '1e-9': J_v / k = 40000 gives a polarisation modulus exp(J_v / k) above e^10; expected a film mass-transfer coefficient > 0 in m/s (typically 1e-6 to 1e-4), or empty (is it in m/s?)",
        ]
    );
}
