//! Any bytes as a measured-data CSV file: the loader returns the data or every problem
//! with its line and column, and never panics.
#![no_main]

use ionode_physics::IonDb;
use ionode_train::measured::{parse_csv, LoadOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static DB: OnceLock<IonDb> = OnceLock::new();
    let db = DB.get_or_init(IonDb::builtin);
    let text = String::from_utf8_lossy(data);
    for balance in [None, Some("Cl-".to_string())] {
        let options = LoadOptions {
            balance_with: balance,
            ..LoadOptions::default()
        };
        if let Err(e) = parse_csv(&text, "fuzz.csv", &options, db) {
            assert!(!e.lines().is_empty(), "an error names its problems");
        }
    }
});
