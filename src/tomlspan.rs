//! A small reader over span-preserving TOML (`toml::de::DeTable`) that checks
//! types and unknown keys by hand, so that one pass reports *every* problem of
//! a file with its `file:line:col`, instead of stopping at the first one as
//! serde's `deny_unknown_fields` does.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Problem};

pub type Table<'i> = DeTable<'i>;
pub type Value<'i> = Spanned<DeValue<'i>>;

/// Collects problems while reading one file.
pub struct Reader<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Reader {
            path,
            text,
            problems: Vec::new(),
        }
    }

    /// Parses the document; syntax errors are fatal for the file.
    pub fn parse(&mut self) -> Result<Spanned<Table<'a>>, Error> {
        DeTable::parse(self.text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            Error::Invalid(vec![Problem::at(
                self.path,
                self.text,
                offset,
                format!("TOML syntax error: {}", e.message().trim()),
            )])
        })
    }

    pub fn problem(&mut self, offset: usize, message: impl Into<String>) {
        self.problems
            .push(Problem::at(self.path, self.text, offset, message));
    }

    pub fn finish(mut self) -> Result<(), Error> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            self.problems.sort();
            Err(Error::Invalid(self.problems))
        }
    }

    /// Reports keys of `table` that are not in `known`.
    pub fn deny_unknown(&mut self, table: &Table<'_>, what: &str, known: &[&str]) {
        for (key, _) in table.iter() {
            if !known.contains(&key.get_ref().as_ref()) {
                let hint = closest(key.get_ref(), known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                self.problem(
                    key.span().start,
                    format!(
                        "unknown key `{}` in {what}{hint}; expected one of: {}",
                        key.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
    }

    fn type_problem(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        self.problem(
            v.span().start,
            format!(
                "`{key}` must be {expected}, found {}",
                v.get_ref().type_str()
            ),
        );
    }

    pub fn required<'t>(
        &mut self,
        table: &'t Table<'a>,
        start: usize,
        key: &str,
        what: &str,
    ) -> Option<&'t Value<'a>> {
        let v = table.get(key);
        if v.is_none() {
            self.problem(start, format!("{what} is missing the required key `{key}`"));
        }
        v
    }

    pub fn string(&mut self, v: Option<&Value<'_>>, key: &str) -> Option<String> {
        let v = v?;
        match v.get_ref().as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.type_problem(v, key, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, v: Option<&Value<'_>>, key: &str) -> Option<bool> {
        let v = v?;
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.type_problem(v, key, "a boolean (true or false)");
                None
            }
        }
    }

    pub fn integer(&mut self, v: Option<&Value<'_>>, key: &str) -> Option<i64> {
        let v = v?;
        match to_json(v.get_ref()) {
            serde_json::Value::Number(n) if n.is_i64() => n.as_i64(),
            _ => {
                self.type_problem(v, key, "an integer");
                None
            }
        }
    }

    pub fn string_array(&mut self, v: Option<&Value<'_>>, key: &str) -> Option<Vec<String>> {
        let v = v?;
        let Some(items) = v.get_ref().as_array() else {
            self.type_problem(v, key, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref().as_str() {
                Some(s) => out.push(s.to_string()),
                None => self.type_problem(item, key, "an array of strings"),
            }
        }
        Some(out)
    }

    pub fn table<'t>(
        &mut self,
        v: Option<&'t Value<'a>>,
        key: &str,
    ) -> Option<(&'t Table<'a>, usize)> {
        let v = v?;
        match v.get_ref().as_table() {
            Some(t) => Some((t, v.span().start)),
            None => {
                self.type_problem(v, key, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[key]]`), each with its span.
    pub fn table_array<'t>(
        &mut self,
        v: Option<&'t Value<'a>>,
        key: &str,
    ) -> Vec<Spanned<&'t Table<'a>>> {
        let Some(v) = v else { return Vec::new() };
        let Some(items) = v.get_ref().as_array() else {
            self.type_problem(v, key, &format!("an array of tables (`[[{key}]]`)"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref().as_table() {
                Some(t) => out.push(Spanned::new(item.span(), t)),
                None => self.type_problem(item, key, "a table"),
            }
        }
        out
    }

    /// A table of scalar parameters, as JSON values.
    pub fn params(
        &mut self,
        v: Option<&Value<'_>>,
        key: &str,
    ) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        let Some(v) = v else { return out };
        let Some(t) = v.get_ref().as_table() else {
            self.type_problem(v, key, "a table");
            return out;
        };
        for (k, val) in t.iter() {
            out.insert(k.get_ref().to_string(), to_json(val.get_ref()));
        }
        out
    }
}

/// Converts a TOML value to JSON (datetimes become strings).
pub fn to_json(v: &DeValue<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(J::from)
            .unwrap_or(J::Null),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(J::Number)
            .unwrap_or(J::Null),
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => J::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}

/// The known key nearest to a misspelt one, if it is close enough to help.
pub fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) || (word.len() >= 3 && k.starts_with(word)))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
