//! The loader's typed error: every problem of a file, each naming the file, line, column
//! and value and saying what would be valid.

use std::fmt;

/// At most this many problems are kept (and shown); [`LoadError::total`] counts them all.
pub const MAX_PROBLEMS: usize = 20;

/// One thing wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (as named by the caller).
    pub file: String,
    /// 1-based line (the header is line 1 in a file that starts with it); `None` for
    /// problems of the whole file or of the load options.
    pub line: Option<usize>,
    /// The column name as written in the header.
    pub column: Option<String>,
    /// The offending value as written (trimmed); `None` when it is empty or not applicable.
    pub value: Option<String>,
    /// What is wrong and what would be valid: `REASON; expected WHAT`.
    pub message: String,
}

/// Shows a value on one line: control characters escaped, long values shortened.
fn shown(value: &str) -> String {
    let mut escaped = String::new();
    for c in value.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    if escaped.chars().count() > 60 {
        let head: String = escaped.chars().take(57).collect();
        format!("{head}...")
    } else {
        escaped
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column '{}'", shown(column))?;
        }
        if let Some(value) = &self.value {
            write!(f, ", value '{}'", shown(value))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A file that was refused. Nothing of it was loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file (as named by the caller).
    pub file: String,
    /// The first [`MAX_PROBLEMS`] problems, in line order (file-wide ones first).
    pub problems: Vec<Problem>,
    /// How many problems there are in all.
    pub total: usize,
}

impl LoadError {
    /// One problem per line, then `... and N more problems` when some were left out.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.problems.iter().map(Problem::to_string).collect();
        let more = self.total - self.problems.len();
        if more > 0 {
            lines.push(format!(
                "... and {more} more problem{}",
                if more == 1 { "" } else { "s" }
            ));
        }
        lines
    }

    /// `FILE: N problems; nothing was loaded`.
    pub fn headline(&self) -> String {
        format!(
            "{}: {} problem{}; nothing was loaded",
            self.file,
            self.total,
            if self.total == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        for line in self.lines() {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

/// Collects problems while a file is checked.
#[derive(Debug)]
pub(crate) struct Problems {
    file: String,
    list: Vec<Problem>,
}

impl Problems {
    pub(crate) fn new(file: &str) -> Self {
        Problems {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Adds a problem; an empty `value` is left out.
    pub(crate) fn add(
        &mut self,
        line: Option<usize>,
        column: Option<&str>,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.list.push(Problem {
            file: self.file.clone(),
            line,
            column: column.map(str::to_string),
            value: value.filter(|v| !v.is_empty()).map(str::to_string),
            message: message.into(),
        });
    }

    /// A problem of a whole line.
    pub(crate) fn line(&mut self, line: usize, message: impl Into<String>) {
        self.add(Some(line), None, None, message);
    }

    /// A problem of the whole file or of the options.
    pub(crate) fn file(&mut self, message: impl Into<String>) {
        self.add(None, None, None, message);
    }

    /// `Ok(value)` when there were no problems, else the error (sorted by line, stable).
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, LoadError> {
        if self.list.is_empty() {
            return Ok(value);
        }
        self.list.sort_by_key(|p| p.line);
        let total = self.list.len();
        self.list.truncate(MAX_PROBLEMS);
        Err(LoadError {
            file: self.file,
            problems: self.list,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_on_one_line() {
        assert_eq!(shown("a \"b\" 'c'"), "a \"b\" 'c'");
        assert_eq!(shown("two\r\nlines\t"), "two\\r\\nlines\\t");
        assert_eq!(shown(&"x".repeat(100)), format!("{}...", "x".repeat(57)));
    }
}
