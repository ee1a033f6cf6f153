//! The filter language of `ablate runs --where`: a condition over a run's facts
//! ([`ionode_study::facts`]), its tags and its note.
//!
//! ```text
//! metrics.measured.validation.mae < 0.05 and config.model.variant = 'node'
//! not (tags = 'bad' or study ~ '^smoke') and axes.seed in (1, 2, 3)
//! ```
//!
//! - A field is a dotted key of the facts (`config.model.hidden`,
//!   `metrics.measured.test.mae.Li+`), or `run`, `study`, `path`, `kind`, `tags`, `note`.
//! - Comparisons: `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=` against a number, a quoted
//!   string (`'...'` or `"..."`, a backslash escapes the quote), `true`, `false` or `null`;
//!   `in (v, ...)` and `not in (...)`; `~` and `!~` match a regular expression (Rust
//!   `regex` syntax, anywhere in the text unless anchored).
//! - `and` binds tighter than `or`; `not` negates; parentheses group. Keywords are
//!   case-insensitive.
//! - A field a run does not have (or an empty list) is null: `x = null` holds and `=`,
//!   `<`, `<=`, `>`, `>=`, `in` and `~` are false; `!=`, `not in` and `!~` are their
//!   negations (`not =`, ...), so they hold. A list field (`tags`) compares element-wise:
//!   `tags = 'best'` holds when one of its tags is `best`.
//!
//! Problems are located: a malformed expression, a field no run has (with the nearest
//! one), a value of the wrong kind for its field (`config.model.hidden = '32'` when the
//! field is a number in every run) and a bad regular expression each give the column in
//! the expression and what would be valid.

use crate::error::ExprError;
use regex::Regex;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use winnow::ascii::multispace0;
use winnow::combinator::{alt, cut_err, eof, opt, preceded, separated};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::LocatingSlice;
use winnow::token::{one_of, take_while};

type Input<'a> = LocatingSlice<&'a str>;
type PResult<T> = ModalResult<T>;

/// The longest expression accepted (characters): an expression is typed by a person.
pub const MAX_EXPR_CHARS: usize = 10_000;
/// The deepest nesting of parentheses and `not`.
const MAX_DEPTH: usize = 64;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
    Null,
}

impl Literal {
    fn kind(&self) -> Kind {
        match self {
            Literal::Number(_) => Kind::Number,
            Literal::Text(_) => Kind::Text,
            Literal::Bool(_) => Kind::Bool,
            Literal::Null => Kind::Null,
        }
    }
}

/// The kind of a value, for the check of a comparison against the runs' fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Number,
    Text,
    Bool,
    Null,
}

impl Kind {
    fn of(v: &Value) -> Kind {
        match v {
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::Text,
            Value::Bool(_) => Kind::Bool,
            // Lists compare element-wise; other shapes (objects) as their text.
            Value::Null => Kind::Null,
            Value::Array(_) | Value::Object(_) => Kind::Text,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "text",
            Kind::Bool => "true or false",
            Kind::Null => "null",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
}

/// A parsed condition, with the spans (byte ranges in the expression) its checks point at.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        field: String,
        field_span: Range<usize>,
        op: Op,
        value: Literal,
        value_span: Range<usize>,
    },
    In {
        field: String,
        field_span: Range<usize>,
        values: Vec<(Literal, Range<usize>)>,
        negated: bool,
    },
    /// A regular-expression match, compiled once.
    Match {
        field: String,
        regex: Regex,
        negated: bool,
    },
}

/// A condition ready to be evaluated: parsed, and checked against the runs' fields.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
}

/// The fields every run has a place for (the finder adds the last four), known to a
/// filter or a column even when no run has a value.
pub const ALWAYS: [&str; 7] = ["run", "study", "path", "kind", "tags", "note", "study_note"];

/// The fields that occur in the runs, with the kinds of their values and how many runs
/// have each (what a filter is checked against, and what `--fields` lists).
///
/// Every fact of every run a query reads passes through here, so it remembers the order of
/// the last run's keys: the runs of a study have the same keys in the same order, and a key
/// found where the last run had it costs one comparison instead of a hash lookup.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    index: std::collections::HashMap<String, usize>,
    fields: Vec<(String, Field)>,
    /// The field of each key of the last run, in its order.
    layout: Vec<usize>,
    cursor: usize,
}

#[derive(Debug, Default, Clone)]
struct Field {
    kinds: BTreeSet<Kind>,
    runs: usize,
}

impl Fields {
    /// Adds one run's fields.
    pub fn add(&mut self, facts: &BTreeMap<String, Value>) {
        self.next_run();
        for (k, v) in facts {
            self.add_value(k, v);
        }
    }

    /// Starts the next run's keys.
    pub fn next_run(&mut self) {
        self.layout.truncate(self.cursor);
        self.cursor = 0;
    }

    fn field(&mut self, key: &str) -> &mut Field {
        let at = self.cursor;
        self.cursor += 1;
        let known = self
            .layout
            .get(at)
            .copied()
            .filter(|&i| self.fields[i].0 == key);
        let i = match known {
            Some(i) => i,
            None => {
                let i = match self.index.get(key) {
                    Some(&i) => i,
                    None => {
                        self.fields.push((key.to_string(), Field::default()));
                        self.index.insert(key.to_string(), self.fields.len() - 1);
                        self.fields.len() - 1
                    }
                };
                if at < self.layout.len() {
                    self.layout[at] = i;
                } else {
                    self.layout.push(i);
                }
                i
            }
        };
        let f = &mut self.fields[i].1;
        f.runs += 1;
        f
    }

    /// Adds one run's value of a field.
    pub fn add_value(&mut self, key: &str, v: &Value) {
        let f = self.field(key);
        match v {
            Value::Array(items) => f.kinds.extend(items.iter().map(Kind::of)),
            v => {
                f.kinds.insert(Kind::of(v));
            }
        }
    }

    /// Adds one run's value of a field, still JSON text: its kind from its first character
    /// (only a list is parsed, for its elements' kinds).
    pub fn add_raw(&mut self, key: &str, raw: &RawValue) {
        let text = raw.get().trim_start();
        let kind = match text.as_bytes().first() {
            Some(b'"') | Some(b'{') => Kind::Text,
            Some(b't') | Some(b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            Some(b'[') => match serde_json::from_str::<Value>(text) {
                Ok(v) => return self.add_value(key, &v),
                Err(_) => Kind::Text,
            },
            _ => Kind::Number,
        };
        self.field(key).kinds.insert(kind);
    }

    /// Adds another set of fields (of other runs).
    pub fn merge(&mut self, other: Fields) {
        for (k, f) in other.fields {
            let i = match self.index.get(&k) {
                Some(&i) => i,
                None => {
                    self.fields.push((k.clone(), Field::default()));
                    self.index.insert(k, self.fields.len() - 1);
                    self.fields.len() - 1
                }
            };
            let mine = &mut self.fields[i].1;
            mine.kinds.extend(f.kinds);
            mine.runs += f.runs;
        }
    }

    /// Fields every run has a place for, whether or not any run has a value.
    pub fn always(name: &str) -> bool {
        ALWAYS.contains(&name)
    }

    fn kinds(&self, name: &str) -> Option<&BTreeSet<Kind>> {
        self.index.get(name).map(|&i| &self.fields[i].1.kinds)
    }

    /// The known field nearest to `name` (for "did you mean"; the first in key order of
    /// equally near ones).
    pub fn nearest(&self, name: &str) -> Option<&str> {
        self.names()
            .map(|k| (strsim::levenshtein(k, name), k))
            .filter(|(d, _)| *d <= (name.chars().count() / 3).max(1))
            .min()
            .map(|(_, k)| k)
    }

    /// The fields, in key order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// Each field with the number of runs that have it, in key order.
    pub fn counts(&self) -> impl Iterator<Item = (&str, usize)> {
        self.names().map(|k| (k, self.fields[self.index[k]].1.runs))
    }
}

// ---------------------------------------------------------------------------------------
// Parsing

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

/// A keyword (case-insensitive) not followed by a field character.
fn keyword<'a>(word: &'static str) -> impl Parser<Input<'a>, (), ErrMode<ContextError>> {
    move |input: &mut Input<'a>| {
        // Spaces first, so a failure points at the word, not at the spaces before it.
        multispace0.parse_next(input)?;
        let start = input.checkpoint();
        let w = take_while(1.., is_field_char).parse_next(input)?;
        if w.eq_ignore_ascii_case(word) {
            Ok(())
        } else {
            winnow::stream::Stream::reset(input, &start);
            Err(ErrMode::Backtrack(ContextError::new()))
        }
    }
}

fn is_field_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || "_.+^-".contains(c)
}

const KEYWORDS: [&str; 7] = ["and", "or", "not", "in", "true", "false", "null"];

fn field(input: &mut Input<'_>) -> PResult<(String, Range<usize>)> {
    multispace0.parse_next(input)?;
    let start = input.checkpoint();
    let (name, span) = (one_of(is_field_start), take_while(0.., is_field_char))
        .take()
        .with_span()
        .parse_next(input)?;
    if KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k)) {
        winnow::stream::Stream::reset(input, &start);
        return Err(ErrMode::Backtrack(ContextError::new()));
    }
    Ok((name.to_string(), span))
}

fn quoted(input: &mut Input<'_>) -> PResult<String> {
    let quote = one_of(['\'', '"']).parse_next(input)?;
    let mut out = String::new();
    loop {
        let c = cut_err(winnow::token::any)
            .context(expected("the closing quote"))
            .parse_next(input)?;
        match c {
            '\\' => {
                let next = cut_err(winnow::token::any)
                    .context(expected("a character after the backslash"))
                    .parse_next(input)?;
                out.push(next);
            }
            c if c == quote => return Ok(out),
            c => out.push(c),
        }
    }
}

fn number(input: &mut Input<'_>) -> PResult<f64> {
    (
        opt(one_of(['-', '+'])),
        take_while(1.., |c: char| c.is_ascii_digit()),
        opt(('.', take_while(0.., |c: char| c.is_ascii_digit()))),
        opt((
            one_of(['e', 'E']),
            opt(one_of(['-', '+'])),
            cut_err(take_while(1.., |c: char| c.is_ascii_digit()))
                .context(expected("the exponent's digits")),
        )),
    )
        .take()
        .try_map(str::parse::<f64>)
        .parse_next(input)
}

fn literal(input: &mut Input<'_>) -> PResult<(Literal, Range<usize>)> {
    preceded(
        multispace0,
        alt((
            quoted.map(Literal::Text),
            number.map(Literal::Number),
            keyword("true").map(|_| Literal::Bool(true)),
            keyword("false").map(|_| Literal::Bool(false)),
            keyword("null").map(|_| Literal::Null),
        ))
        .with_span(),
    )
    .parse_next(input)
}

fn value(input: &mut Input<'_>) -> PResult<(Literal, Range<usize>)> {
    cut_err(literal)
        .context(expected(
            "a value: a number, a 'quoted string', true, false or null",
        ))
        .parse_next(input)
}

fn token<'a>(t: &'static str) -> impl Parser<Input<'a>, &'a str, ErrMode<ContextError>> {
    preceded(multispace0, t)
}

fn op(input: &mut Input<'_>) -> PResult<Op> {
    alt((
        token("==").value(Op::Eq),
        token("!=").value(Op::Ne),
        token("<=").value(Op::Le),
        token(">=").value(Op::Ge),
        token("!~").value(Op::NotMatch),
        token("=").value(Op::Eq),
        token("<").value(Op::Lt),
        token(">").value(Op::Gt),
        token("~").value(Op::Match),
    ))
    .parse_next(input)
}

/// What a comparison parses to before its regex is compiled.
enum Tail {
    Op(Op, Literal, Range<usize>),
    In(bool, Vec<(Literal, Range<usize>)>),
}

fn list(input: &mut Input<'_>) -> PResult<Vec<(Literal, Range<usize>)>> {
    preceded(
        cut_err(token("(")).context(expected("'(' and the values after 'in'")),
        cut_err((
            separated::<_, _, Vec<_>, _, _, _, _>(1.., value, token(",")),
            cut_err(token(")")).context(expected("',' or ')' after a value")),
        ))
        .map(|(v, _)| v),
    )
    .parse_next(input)
}

fn comparison(input: &mut Input<'_>) -> PResult<Expr> {
    let (field, field_span) = field.parse_next(input)?;
    multispace0.parse_next(input)?;
    let tail = cut_err(alt((
        (op, value).map(|(o, (v, s))| Tail::Op(o, v, s)),
        preceded(keyword("in"), list).map(|v| Tail::In(false, v)),
        preceded((keyword("not"), cut_err(keyword("in"))), list).map(|v| Tail::In(true, v)),
    )))
    .context(expected(
        "a comparison after the field: =, !=, <, <=, >, >=, ~, !~, in or not in",
    ))
    .parse_next(input)?;
    Ok(match tail {
        Tail::Op(op, value, value_span) => Expr::Compare {
            field,
            field_span,
            op,
            value,
            value_span,
        },
        Tail::In(negated, values) => Expr::In {
            field,
            field_span,
            values,
            negated,
        },
    })
}

/// Parsing with a depth, so `((((...` cannot overflow the stack.
struct Parse {
    depth: usize,
}

impl Parse {
    fn primary(&mut self, input: &mut Input<'_>) -> PResult<Expr> {
        if token("(").parse_next(input).is_ok() {
            self.deeper(input)?;
            let e = self.or(input)?;
            cut_err(token(")"))
                .context(expected("'and', 'or' or ')'"))
                .parse_next(input)?;
            self.depth -= 1;
            return Ok(e);
        }
        multispace0.parse_next(input)?;
        cut_err(comparison)
            .context(expected("a field name, 'not' or '('"))
            .parse_next(input)
    }

    fn deeper(&mut self, input: &mut Input<'_>) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return cut_err(winnow::combinator::fail)
                .context(expected("at most 64 nested parentheses or 'not's"))
                .parse_next(input);
        }
        Ok(())
    }

    fn unary(&mut self, input: &mut Input<'_>) -> PResult<Expr> {
        if keyword("not").parse_next(input).is_ok() {
            self.deeper(input)?;
            let e = self.unary(input)?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary(input)
    }

    fn and(&mut self, input: &mut Input<'_>) -> PResult<Expr> {
        let mut e = self.unary(input)?;
        while keyword("and").parse_next(input).is_ok() {
            let rhs = self.unary(input)?;
            e = Expr::And(Box::new(e), Box::new(rhs));
        }
        Ok(e)
    }

    fn or(&mut self, input: &mut Input<'_>) -> PResult<Expr> {
        let mut e = self.and(input)?;
        while keyword("or").parse_next(input).is_ok() {
            let rhs = self.and(input)?;
            e = Expr::Or(Box::new(e), Box::new(rhs));
        }
        Ok(e)
    }
}

/// The 1-based character column of a byte offset.
fn column(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].chars().count() + 1
}

/// What is at a byte offset, for "found ...".
fn found(text: &str, offset: usize) -> String {
    let rest = text[offset.min(text.len())..].trim_start();
    match rest.split_whitespace().next() {
        None => "the end of the expression".into(),
        Some(w) => format!("'{}'", w.chars().take(24).collect::<String>()),
    }
}

fn located(text: &str, offset: usize, message: String) -> ExprError {
    ExprError {
        expression: text.to_string(),
        column: column(text, offset),
        message,
    }
}

/// Parses an expression (not yet checked against any runs).
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let chars = text.chars().count();
    if chars > MAX_EXPR_CHARS {
        return Err(located(
            text,
            0,
            format!("the expression has {chars} characters; at most {MAX_EXPR_CHARS} are read"),
        ));
    }
    let mut p = Parse { depth: 0 };
    let mut input = LocatingSlice::new(text);
    let parsed = p.or(&mut input).and_then(|e| {
        cut_err(preceded(multispace0, eof))
            .context(expected("'and', 'or' or the end of the expression"))
            .parse_next(&mut input)?;
        Ok(e)
    });
    match parsed {
        Ok(e) => Ok(e),
        Err(ErrMode::Backtrack(e) | ErrMode::Cut(e)) => {
            let offset = text.len() - winnow::stream::Stream::eof_offset(&input);
            let wanted: Vec<String> = e
                .context()
                .filter_map(|c| match c {
                    StrContext::Expected(v) => Some(v.to_string()),
                    _ => None,
                })
                .collect();
            // The innermost expectation is the most precise; the outer ones repeat it.
            let what = wanted
                .first()
                .cloned()
                .unwrap_or_else(|| "a condition".into());
            Err(located(
                text,
                offset,
                format!("expected {what}, found {}", found(text, offset)),
            ))
        }
        Err(ErrMode::Incomplete(_)) => Err(located(
            text,
            text.len(),
            "the expression ends too early".into(),
        )),
    }
}

/// The fields an expression reads (what a query must keep of each run).
pub fn fields_of(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            fields_of(a, out);
            fields_of(b, out);
        }
        Expr::Not(a) => fields_of(a, out),
        Expr::Compare { field, .. } | Expr::In { field, .. } | Expr::Match { field, .. } => {
            out.push(field.clone())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checking

impl Filter {
    /// Parses `text` and checks it against the fields of the runs it will filter.
    pub fn new(text: &str, fields: &Fields) -> Result<Filter, ExprError> {
        Filter::checked(text, parse(text)?, fields)
    }

    /// Checks an expression parsed from `text` against the runs' fields.
    pub fn checked(text: &str, expr: Expr, fields: &Fields) -> Result<Filter, ExprError> {
        Ok(Filter {
            expr: check(text, expr, fields)?,
        })
    }

    /// Whether a run's facts satisfy the condition.
    pub fn matches(&self, facts: &BTreeMap<String, Value>) -> bool {
        eval(&self.expr, facts)
    }
}

fn check_field(
    text: &str,
    field: &str,
    span: &Range<usize>,
    fields: &Fields,
) -> Result<(), ExprError> {
    if Fields::always(field) || fields.kinds(field).is_some() {
        return Ok(());
    }
    let hint = match fields.nearest(field) {
        Some(near) => format!("; did you mean '{near}'?"),
        None => "; `ablate runs --fields` lists the fields".into(),
    };
    Err(located(
        text,
        span.start,
        format!("no run has a field '{field}'{hint}"),
    ))
}

fn check_kind(
    text: &str,
    field: &str,
    value: &Literal,
    span: &Range<usize>,
    fields: &Fields,
) -> Result<(), ExprError> {
    let Some(kinds) = fields.kinds(field) else {
        return Ok(());
    };
    let have: BTreeSet<Kind> = kinds.iter().copied().filter(|k| *k != Kind::Null).collect();
    let want = value.kind();
    if want == Kind::Null || have.is_empty() || have.contains(&want) {
        return Ok(());
    }
    let names: Vec<&str> = have.iter().map(|k| k.name()).collect();
    Err(located(
        text,
        span.start,
        format!(
            "'{field}' is {} in every run that has it, so {} never equals it; write {}",
            names.join(" or "),
            want.name(),
            match have.iter().next() {
                Some(Kind::Number) => "a number such as 32",
                Some(Kind::Bool) => "true or false",
                _ => "a 'quoted string'",
            }
        ),
    ))
}

fn check(text: &str, e: Expr, fields: &Fields) -> Result<Expr, ExprError> {
    Ok(match e {
        Expr::And(a, b) => Expr::And(
            Box::new(check(text, *a, fields)?),
            Box::new(check(text, *b, fields)?),
        ),
        Expr::Or(a, b) => Expr::Or(
            Box::new(check(text, *a, fields)?),
            Box::new(check(text, *b, fields)?),
        ),
        Expr::Not(a) => Expr::Not(Box::new(check(text, *a, fields)?)),
        Expr::Compare {
            field,
            field_span,
            op,
            value,
            value_span,
        } => {
            check_field(text, &field, &field_span, fields)?;
            match op {
                Op::Match | Op::NotMatch => {
                    let Literal::Text(pattern) = &value else {
                        return Err(located(
                            text,
                            value_span.start,
                            "~ and !~ take a regular expression as a 'quoted string'".into(),
                        ));
                    };
                    let regex = regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| {
                            let first = e.to_string();
                            let last = first.lines().last().unwrap_or("").trim().to_string();
                            located(
                                text,
                                value_span.start,
                                format!("'{pattern}' is not a regular expression ({last})"),
                            )
                        })?;
                    Expr::Match {
                        field,
                        regex,
                        negated: op == Op::NotMatch,
                    }
                }
                Op::Lt | Op::Le | Op::Gt | Op::Ge
                    if matches!(value, Literal::Bool(_) | Literal::Null) =>
                {
                    return Err(located(
                        text,
                        value_span.start,
                        "<, <=, > and >= compare numbers or text, not true, false or null".into(),
                    ));
                }
                _ => {
                    check_kind(text, &field, &value, &value_span, fields)?;
                    Expr::Compare {
                        field,
                        field_span,
                        op,
                        value,
                        value_span,
                    }
                }
            }
        }
        Expr::In {
            field,
            field_span,
            values,
            negated,
        } => {
            check_field(text, &field, &field_span, fields)?;
            for (v, span) in &values {
                check_kind(text, &field, v, span, fields)?;
            }
            Expr::In {
                field,
                field_span,
                values,
                negated,
            }
        }
        m @ Expr::Match { .. } => m,
    })
}

// ---------------------------------------------------------------------------------------
// Evaluating

/// The values a field compares as: a list's elements, else the value itself.
fn items(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    }
}

fn equals(v: &Value, l: &Literal) -> bool {
    match (v, l) {
        (Value::Number(n), Literal::Number(x)) => n.as_f64() == Some(*x),
        (Value::String(s), Literal::Text(t)) => s == t,
        (Value::Bool(b), Literal::Bool(c)) => b == c,
        _ => false,
    }
}

fn order(v: &Value, l: &Literal) -> Option<std::cmp::Ordering> {
    match (v, l) {
        (Value::Number(n), Literal::Number(x)) => n.as_f64()?.partial_cmp(x),
        (Value::String(s), Literal::Text(t)) => Some(s.as_str().cmp(t.as_str())),
        _ => None,
    }
}

fn eq_field(facts: &BTreeMap<String, Value>, field: &str, l: &Literal) -> bool {
    let vs = items(facts.get(field));
    match l {
        Literal::Null => vs.is_empty(),
        l => vs.iter().any(|v| equals(v, l)),
    }
}

fn eval(e: &Expr, facts: &BTreeMap<String, Value>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match e {
        Expr::And(a, b) => eval(a, facts) && eval(b, facts),
        Expr::Or(a, b) => eval(a, facts) || eval(b, facts),
        Expr::Not(a) => !eval(a, facts),
        Expr::Compare {
            field, op, value, ..
        } => match op {
            Op::Eq => eq_field(facts, field, value),
            Op::Ne => !eq_field(facts, field, value),
            op => items(facts.get(field)).iter().any(|v| {
                matches!(
                    (op, order(v, value)),
                    (Op::Lt, Some(Less))
                        | (Op::Le, Some(Less | Equal))
                        | (Op::Gt, Some(Greater))
                        | (Op::Ge, Some(Greater | Equal))
                )
            }),
        },
        Expr::In {
            field,
            values,
            negated,
            ..
        } => values.iter().any(|(l, _)| eq_field(facts, field, l)) != *negated,
        Expr::Match {
            field,
            regex,
            negated,
        } => {
            let hit = items(facts.get(field)).iter().any(|v| match v {
                Value::String(s) => regex.is_match(s),
                v => regex.is_match(&v.to_string()),
            });
            hit != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    fn runs() -> Vec<BTreeMap<String, Value>> {
        vec![
            run(
                json!({"run": "a", "study": "smoke", "config.model.variant": "node",
                "config.model.hidden": 32, "metrics.measured.validation.mae": 0.04,
                "metrics.measured.test.mae.Li+": 0.1, "tags": ["best", "v2"],
                "synthetic": true}),
            ),
            run(
                json!({"run": "b", "study": "paper", "config.model.variant": "attention_node",
                "config.model.hidden": 64, "metrics.measured.validation.mae": 0.06,
                "tags": [], "synthetic": false, "note": "diverged once"}),
            ),
            run(
                json!({"run": "c", "study": "paper", "config.model.variant": "mlp",
                "config.model.hidden": 16, "tags": ["bad"], "synthetic": false}),
            ),
        ]
    }

    fn fields() -> Fields {
        let mut f = Fields::default();
        for r in runs() {
            f.add(&r);
        }
        f
    }

    /// The runs an expression keeps, by id.
    fn kept(expr: &str) -> String {
        let f = Filter::new(expr, &fields()).unwrap_or_else(|e| panic!("{expr}: {e}"));
        runs()
            .iter()
            .filter(|r| f.matches(r))
            .map(|r| r["run"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn comparisons_logic_lists_and_missing_fields_evaluate_as_documented() {
        let cases = [
            ("metrics.measured.validation.mae < 0.05", "a"),
            ("metrics.measured.validation.mae <= 0.06", "ab"),
            (
                "metrics.measured.validation.mae >= 0.04 and config.model.hidden > 32",
                "b",
            ),
            ("config.model.variant = 'node'", "a"),
            ("config.model.variant == \"node\"", "a"),
            ("config.model.variant != 'node'", "bc"),
            ("config.model.variant ~ 'node$'", "ab"),
            ("config.model.variant !~ '^att'", "ac"),
            ("config.model.hidden in (16, 64)", "bc"),
            ("config.model.hidden not in (16, 64)", "a"),
            ("tags = 'best'", "a"),
            ("tags != 'bad'", "ab"),
            ("tags ~ '^v'", "a"),
            ("note = null", "ac"),
            ("note ~ 'diverged'", "b"),
            ("metrics.measured.validation.mae = null", "c"),
            // A missing value is neither below nor above anything.
            (
                "metrics.measured.validation.mae > 0 or config.model.hidden < 20",
                "abc",
            ),
            ("not metrics.measured.validation.mae < 0.05", "bc"),
            (
                "NOT (study = 'paper' AND synthetic = false) OR run = 'c'",
                "ac",
            ),
            ("study = 'paper' and run = 'b' or run = 'a'", "ab"),
            ("study = 'paper' and (run = 'b' or run = 'a')", "b"),
            ("not not run = 'a'", "a"),
            ("synthetic = true", "a"),
            ("metrics.measured.test.mae.Li+ > 5e-2", "a"),
            ("run > 'a'", "bc"),
            ("config.model.hidden = -1.5e1 or run = 'it\\'s'", ""),
        ];
        for (expr, want) in cases {
            assert_eq!(kept(expr), want, "{expr}");
        }
    }

    fn error(expr: &str) -> ExprError {
        match Filter::new(expr, &fields()) {
            Ok(_) => panic!("{expr} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_malformed_expression_is_located_with_what_was_expected() {
        // (expression, column, words of the message)
        let cases: [(&str, usize, &[&str]); 20] = [
            (
                "",
                1,
                &["a field name, 'not' or '('", "the end of the expression"],
            ),
            ("run", 4, &["a comparison after the field", "the end"]),
            ("run 'a'", 5, &["a comparison after the field", "''a''"]),
            ("run = ", 7, &["a value", "the end"]),
            ("run = abc", 7, &["a value", "'abc'"]),
            ("run = 'a", 9, &["the closing quote"]),
            (
                "run = 'a' nd run = 'b'",
                11,
                &["'and', 'or' or the end", "'nd'"],
            ),
            ("run = 'a' and", 14, &["a field name, 'not' or '('"]),
            ("(run = 'a'", 11, &["'and', 'or' or ')'"]),
            ("run = 'a')", 10, &["'and', 'or' or the end", "')'"]),
            ("run in 'a'", 8, &["'(' and the values after 'in'"]),
            ("run in ('a' 'b')", 13, &["',' or ')' after a value"]),
            ("run in ()", 9, &["a value"]),
            ("run not 'a'", 9, &["a comparison after the field"]),
            ("config.model.hidden = 1e", 25, &["the exponent's digits"]),
            ("= 3", 1, &["a field name"]),
            ("and run = 'a'", 1, &["a field name"]),
            ("run = 'a' or or", 14, &["a field name"]),
            ("run < true", 7, &["compare numbers or text"]),
            ("run ~ 3", 7, &["regular expression"]),
        ];
        for (expr, col, words) in cases {
            let e = error(expr);
            assert_eq!(e.column, col, "{expr}: {e}");
            for w in words {
                assert!(e.message.contains(w), "{expr}: {e} lacks {w}");
            }
            assert!(e.to_string().contains(&format!("column {col}")), "{e}");
        }
    }

    #[test]
    fn fields_values_and_patterns_are_checked_against_the_runs() {
        let e = error("metrics.measured.validaton.mae < 1");
        assert_eq!(e.column, 1);
        assert!(
            e.message
                .contains("did you mean 'metrics.measured.validation.mae'"),
            "{e}"
        );
        let e = error("run = 'a' and zzz = 1");
        assert_eq!(e.column, 15);
        assert!(e.message.contains("no run has a field 'zzz'"), "{e}");
        let e = error("config.model.hidden = '32'");
        assert_eq!(e.column, 23);
        assert!(e.message.contains("is a number in every run"), "{e}");
        assert!(e.message.contains("a number such as 32"), "{e}");
        let e = error("config.model.hidden in (16, 'x')");
        assert_eq!(e.column, 29);
        let e = error("synthetic = 'yes'");
        assert!(e.message.contains("true or false"), "{e}");
        let e = error("study ~ '(unclosed'");
        assert_eq!(e.column, 9);
        assert!(e.message.contains("is not a regular expression"), "{e}");
        // Fields every run has a place for are known even when no run has a value.
        assert_eq!(kept("kind = 'train'"), "");
        // Too deep, too long.
        let deep = format!("{}run = 'a'{}", "(".repeat(100), ")".repeat(100));
        assert!(error(&deep).message.contains("at most 64 nested"));
        let deep_not = format!("{}run = 'a'", "not ".repeat(100));
        assert!(error(&deep_not).message.contains("at most 64 nested"));
        let long = "run = 'a' or ".repeat(1000) + "run = 'b'";
        assert!(error(&long).message.contains("at most 10000"));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = error("study = 'é' and ?");
        assert_eq!(e.column, 17, "{e}");
    }
}
