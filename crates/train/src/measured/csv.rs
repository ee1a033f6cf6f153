//! A small RFC 4180 CSV reader and writer: comma-separated fields, fields optionally in
//! double quotes (then they may hold commas, line breaks and doubled quotes `""`), records
//! ended by LF or CRLF.
//!
//! The reader is strict where a lenient one would silently change data: a double quote
//! inside an unquoted field, or text after a closing quote, is an error rather than a
//! guess. Blank lines (nothing between two line ends) are skipped. Fields are returned as
//! written (not trimmed); line numbers are 1-based physical lines, so a record whose quoted
//! field spans lines reports the line it starts on.

use std::fmt::Write as _;

/// One record (row) of a CSV text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line on which the record starts.
    pub line: usize,
    pub fields: Vec<String>,
}

/// A malformed record. The reader skips to the end of its line and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// `line` is where the quoted field opens.
    #[error(
        "quoted field is never closed; expected a closing double quote at the end of the field"
    )]
    UnterminatedQuote { line: usize },
    #[error("double quote inside an unquoted field; expected the whole field in double quotes with inner quotes doubled, e.g. \"5\"\" pipe\"")]
    StrayQuote { line: usize },
    #[error("text after a closing double quote; expected a comma or the end of the line")]
    TextAfterQuote { line: usize },
}

impl SyntaxError {
    /// The 1-based line of the error.
    pub fn line(&self) -> usize {
        match self {
            SyntaxError::UnterminatedQuote { line }
            | SyntaxError::StrayQuote { line }
            | SyntaxError::TextAfterQuote { line } => *line,
        }
    }
}

/// Splits `text` into records, in order; a malformed record is an `Err` in its place.
pub fn read(text: &str) -> Vec<Result<Record, SyntaxError>> {
    let b = text.as_bytes();
    let n = b.len();
    // All delimiters are ASCII, so every index we slice at is a char boundary.
    let line_end =
        |i: usize| i >= n || b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) == Some(&b'\n'));
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < n {
        if line_end(i) {
            i += if b[i] == b'\r' { 2 } else { 1 };
            line += 1;
            continue;
        }
        let start = line;
        let mut fields = Vec::new();
        let mut error = None;
        loop {
            let mut field = String::new();
            if b.get(i) == Some(&b'"') {
                let opened = line;
                i += 1;
                let mut segment = i;
                let mut closed = false;
                while i < n {
                    match b[i] {
                        b'"' if b.get(i + 1) == Some(&b'"') => {
                            field.push_str(&text[segment..=i]);
                            i += 2;
                            segment = i;
                        }
                        b'"' => {
                            field.push_str(&text[segment..i]);
                            i += 1;
                            closed = true;
                            break;
                        }
                        c => {
                            line += usize::from(c == b'\n');
                            i += 1;
                        }
                    }
                }
                if !closed {
                    error = Some(SyntaxError::UnterminatedQuote { line: opened });
                } else if !(line_end(i) || b[i] == b',') {
                    error = Some(SyntaxError::TextAfterQuote { line });
                }
            } else {
                let segment = i;
                while !line_end(i) && b[i] != b',' {
                    if b[i] == b'"' && error.is_none() {
                        error = Some(SyntaxError::StrayQuote { line });
                    }
                    i += 1;
                }
                field.push_str(&text[segment..i]);
            }
            if error.is_some() {
                break;
            }
            fields.push(field);
            if i < n && b[i] == b',' {
                i += 1;
            } else {
                break;
            }
        }
        if error.is_some() {
            while !line_end(i) {
                i += 1;
            }
        }
        if i < n {
            i += if b[i] == b'\r' { 2 } else { 1 };
            line += 1;
        }
        out.push(match error {
            Some(e) => Err(e),
            None => Ok(Record {
                line: start,
                fields,
            }),
        });
    }
    out
}

/// Appends one field, quoted when it must be (a comma, quote, line break, or leading or
/// trailing space).
pub fn write_field(out: &mut String, field: &str) {
    let quote = field.contains([',', '"', '\n', '\r'])
        || field.starts_with(char::is_whitespace)
        || field.ends_with(char::is_whitespace);
    if quote {
        let _ = write!(out, "\"{}\"", field.replace('"', "\"\""));
    } else {
        out.push_str(field);
    }
}

/// Appends one record and a `\n`.
pub fn write_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (k, field) in fields.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        write_field(out, field.as_ref());
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(usize, Vec<String>)> {
        read(text)
            .into_iter()
            .map(|r| r.expect("valid CSV"))
            .map(|r| (r.line, r.fields))
            .collect()
    }

    fn rec(line: usize, fields: &[&str]) -> (usize, Vec<String>) {
        (line, fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn plain_fields_lf_and_crlf() {
        let expected = vec![rec(1, &["a", "b", "c"]), rec(2, &["1", "", "3"])];
        assert_eq!(ok("a,b,c\n1,,3\n"), expected);
        assert_eq!(ok("a,b,c\r\n1,,3\r\n"), expected);
        assert_eq!(ok("a,b,c\r\n1,,3"), expected, "no final line end");
        assert_eq!(ok(""), vec![]);
    }

    #[test]
    fn blank_lines_are_skipped_and_counted() {
        assert_eq!(
            ok("a,b\n\n1,2\r\n\r\n3,4\n"),
            vec![
                rec(1, &["a", "b"]),
                rec(3, &["1", "2"]),
                rec(5, &["3", "4"])
            ]
        );
        // A line of spaces is not blank: it is one field.
        assert_eq!(ok("a\n \n"), vec![rec(1, &["a"]), rec(2, &[" "])]);
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        let text =
            "name,note\n\"Smith, J.\",\"a \"\"5\"\" pipe\"\n\"two\r\nlines\",\"\"\nx,\"\"\"\"\n";
        assert_eq!(
            ok(text),
            vec![
                rec(1, &["name", "note"]),
                rec(2, &["Smith, J.", "a \"5\" pipe"]),
                rec(3, &["two\r\nlines", ""]),
                rec(5, &["x", "\""]),
            ]
        );
        // Trailing comma: one more, empty field.
        assert_eq!(ok("a,\"b\",\n"), vec![rec(1, &["a", "b", ""])]);
        // Non-ASCII text passes through.
        assert_eq!(
            ok("\"µS/cm, 25 °C\",é\n"),
            vec![rec(1, &["µS/cm, 25 °C", "é"])]
        );
    }

    #[test]
    fn malformed_records_are_errors_and_reading_goes_on() {
        let r = read("a,b\n1,x\"y\n\"q\"z,2\n3,4\n\"open,5\n6,7\n");
        assert_eq!(r[0].as_ref().unwrap().fields, vec!["a", "b"]);
        assert_eq!(r[1], Err(SyntaxError::StrayQuote { line: 2 }));
        assert_eq!(r[2], Err(SyntaxError::TextAfterQuote { line: 3 }));
        assert_eq!(
            r[3],
            Ok(Record {
                line: 4,
                fields: vec!["3".into(), "4".into()]
            })
        );
        assert_eq!(r[4], Err(SyntaxError::UnterminatedQuote { line: 5 }));
        assert_eq!(r.len(), 5);
        assert_eq!(r[4].as_ref().unwrap_err().line(), 5);
    }

    #[test]
    fn written_records_read_back() {
        let rows = vec![
            vec!["plain", "with, comma", "with \"quotes\""],
            vec!["two\nlines", " padded ", ""],
        ];
        let mut text = String::new();
        for row in &rows {
            write_record(&mut text, row);
        }
        assert_eq!(
            text,
            "plain,\"with, comma\",\"with \"\"quotes\"\"\"\n\"two\nlines\",\" padded \",\n"
        );
        let back: Vec<Vec<String>> = read(&text).into_iter().map(|r| r.unwrap().fields).collect();
        assert_eq!(back, rows);
    }
}
