//! The bundled NF270 measurements, as the integration tests of this crate load them.
#![allow(dead_code)] // each test file uses its own part

use ionode_physics::IonDb;
use ionode_train::data::Samples;
use ionode_train::measured::{parse_csv, LoadOptions, MeasuredData};

/// The six ions of the file, with their charges, as model slots.
pub const SLOTS: [(&str, f64); 6] = [
    ("Na+", 1.0),
    ("NH4+", 1.0),
    ("Mg^2+", 2.0),
    ("Cl-", -1.0),
    ("NO3-", -1.0),
    ("SO4^2-", -2.0),
];

/// `datasets/measured/nf270_fdl2021.csv`, loaded.
pub fn nf270_data() -> MeasuredData {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/measured/nf270_fdl2021.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    parse_csv(&text, path, &LoadOptions::default(), &IonDb::builtin()).unwrap()
}

/// Its rows over [`SLOTS`].
pub fn samples(data: &MeasuredData) -> Samples {
    let names: Vec<&str> = SLOTS.iter().map(|(n, _)| *n).collect();
    Samples::from_measured(data, &names).unwrap()
}

/// The bundled measurements over [`SLOTS`].
pub fn measured() -> Samples {
    samples(&nf270_data())
}
