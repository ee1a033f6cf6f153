//! Tables in CSV or Parquet, chosen by the file's extension.
//!
//! The measured-data format is defined once, on CSV text (`ionode_train::measured`). A
//! Parquet file is read with polars and turned into that text (floats written in their
//! shortest round-trip form, nulls as empty fields), so both formats pass through the same
//! validator and give the same messages; writing goes the other way. Parquet line numbers
//! in messages count the header as line 1, as for CSV.

use crate::errors::OrUsage;
use crate::errors::{Context, Result};
use crate::output;
use polars::prelude::{
    CsvReadOptions, CsvWriter, ParquetReader, ParquetWriter, SerReader, SerWriter,
};
use std::io::Cursor;
use std::path::Path;

/// Whether a path names a Parquet file (`.parquet` or `.pq`).
pub fn is_parquet(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("parquet" | "pq")
    )
}

/// Reads a table as CSV text.
pub fn read_text(path: &Path) -> Result<String> {
    if !is_parquet(path) {
        let bytes = crate::limits::read_file(path, crate::limits::MAX_DATA_FILE_BYTES)
            .or_usage(|| format!("cannot read data file '{}'", path.display()))?;
        // The error names the line of the first invalid byte.
        return String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            crate::usage!(
                "data file '{}', line {line}: not UTF-8 text; expected a UTF-8 CSV file (in a spreadsheet: save as \"CSV UTF-8\")",
                path.display()
            )
        });
    }
    let bytes = crate::limits::read_file(path, crate::limits::MAX_DATA_FILE_BYTES)
        .or_usage(|| format!("cannot read data file '{}'", path.display()))?;
    let mut df = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .or_usage(|| format!("'{}' is not a readable Parquet file", path.display()))?;
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf)
        .include_header(true)
        .finish(&mut df)
        .with_context(|| format!("cannot convert '{}' to text", path.display()))?;
    String::from_utf8(buf).context("polars wrote non-UTF-8 CSV")
}

/// Writes CSV text as a CSV or Parquet file (atomically). For Parquet, column types are
/// inferred from the whole text: numbers as f64 (i64 for whole-number columns), `true`/
/// `false` as booleans, empty fields as nulls.
pub fn write_text(path: &Path, csv: &str) -> Result<()> {
    if !is_parquet(path) {
        return output::write_text(path, csv);
    }
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .into_reader_with_file_handle(Cursor::new(csv.as_bytes()))
        .finish()
        .context("cannot turn the table into a data frame")?;
    output::write_atomically(path, |tmp| {
        let mut file = std::fs::File::create(tmp)
            .with_context(|| format!("cannot write '{}'", tmp.display()))?;
        ParquetWriter::new(&mut file)
            .finish(&mut df)
            .with_context(|| format!("cannot write Parquet '{}'", tmp.display()))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_round_trips_text_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let csv = "source,synthetic,repeat,Jv_m_s,feed_Na+_mol_m3,rejection_Cl-\n\
                   \"a, b\",true,0,1.3888888888888887e-6,50.0,0.25\n\
                   c,false,1,2e-6,10.5,\n";
        write_text(&path, csv).unwrap();
        assert!(is_parquet(&path));
        let back = read_text(&path).unwrap();
        let expected = "source,synthetic,repeat,Jv_m_s,feed_Na+_mol_m3,rejection_Cl-\n\
                        \"a, b\",true,0,1.3888888888888887e-6,50.0,0.25\n\
                        c,false,1,2e-6,10.5,\n";
        assert_eq!(back, expected);
    }
}
