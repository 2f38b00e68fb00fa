//! The rule-fixture corpus as typed cases: each
//! `fixtures/rules/cases/<rule-id>/<case>.json` is a JSON patch on
//! `fixtures/rules/base.json` (a compliant test + prod estate), an optional
//! config, and the findings it must produce.

use std::path::{Path, PathBuf};

use dbaudit::config::Config;
use dbaudit::finding::{Finding, Outcome};
use dbaudit::rules::RuleSet;
use dbaudit::snapshot::Snapshot;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCase {
    pub description: String,
    pub patch: Vec<PatchOp>,
    /// dbaudit.toml for the case; none: the defaults.
    #[serde(default)]
    pub config: Option<String>,
    pub expect: Vec<Expected>,
}

/// One RFC 6902 operation (`add`, `replace`, `remove`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub rule: String,
    pub account: String,
    pub resource: String,
    /// The outcome; leave it out with `absent: true` for "no finding" (the
    /// rule does not apply).
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub absent: bool,
    #[serde(default)]
    pub message_contains: Option<String>,
    #[serde(default)]
    pub message_max_chars: Option<usize>,
}

impl RuleCase {
    pub fn load(path: &Path) -> RuleCase {
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// What is wrong with the findings of this case's estate, if anything.
    pub fn check(&self) -> Result<(), String> {
        let mut snap = base();
        apply_patch(&mut snap, &self.patch);
        let findings = run(&snap, self.config.as_deref());
        let mut problems = Vec::new();
        for e in &self.expect {
            let found = findings.iter().find(|f| {
                *f.rule_id == *e.rule && *f.resource_id == *e.resource && *f.account == *e.account
            });
            if e.absent || e.outcome.is_none() {
                assert!(
                    e.absent && e.outcome.is_none(),
                    "give an outcome, or absent: true"
                );
                if let Some(f) = found {
                    problems.push(format!(
                        "{} on {} is {} ({}), expected no finding",
                        e.rule,
                        e.resource,
                        f.outcome.as_str(),
                        f.message
                    ));
                }
                continue;
            }
            let Some(f) = found else {
                problems.push(format!(
                    "no finding for {} on {}/{}",
                    e.rule, e.account, e.resource
                ));
                continue;
            };
            let expected = e.outcome.unwrap_or(f.outcome);
            if f.outcome != expected {
                problems.push(format!(
                    "{} on {} is {} ({}), expected {}",
                    e.rule,
                    e.resource,
                    f.outcome.as_str(),
                    f.message,
                    expected.as_str()
                ));
            }
            if let Some(max) = e.message_max_chars
                && f.message.chars().count() > max
            {
                problems.push(format!(
                    "message has {} characters (at most {max}): {}",
                    f.message.chars().count(),
                    f.message
                ));
            }
            if let Some(words) = &e.message_contains
                && !f.message.contains(words.as_str())
            {
                problems.push(format!("message `{}` lacks `{words}`", f.message));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}:\n{}", self.description, problems.join("\n")))
        }
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn base() -> Value {
    let text = std::fs::read_to_string(root().join("fixtures/rules/base.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn run(snapshot: &Value, config: Option<&str>) -> Vec<Finding> {
    let text = serde_json::to_string(snapshot).unwrap();
    let snap = Snapshot::parse(&text, Path::new("case.json")).expect("patched snapshot is valid");
    let config = match config {
        Some(c) => Config::parse(c, Path::new("case.toml")).expect("case config is valid"),
        None => Config {
            service_tag: "service".into(),
            ..Config::default()
        },
    };
    let rules = RuleSet::load(&[], &[]).unwrap();
    dbaudit::evaluate::evaluate(&snap, &rules, &config)
}

/// Applies RFC 6902 `add`, `replace` and `remove` operations.
pub fn apply_patch(doc: &mut Value, ops: &[PatchOp]) {
    for op in ops {
        let path = op.path.as_str();
        let (parent, last) = path.rsplit_once('/').unwrap();
        let target = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent} in base"));
        match (op.op.as_str(), target) {
            ("add", Value::Array(a)) if last == "-" => a.push(op.value.clone()),
            ("add", Value::Array(a)) => a.insert(last.parse().unwrap(), op.value.clone()),
            ("add" | "replace", Value::Object(m)) => {
                m.insert(last.to_string(), op.value.clone());
            }
            ("replace", Value::Array(a)) => a[last.parse::<usize>().unwrap()] = op.value.clone(),
            ("remove", Value::Array(a)) => {
                a.remove(last.parse().unwrap());
            }
            ("remove", Value::Object(m)) => {
                m.remove(last)
                    .unwrap_or_else(|| panic!("nothing to remove at {path}"));
            }
            (k, _) => panic!("unsupported patch op {k} at {path}"),
        }
    }
}

/// Patch operations written inline in a test.
pub fn patch(json: &str) -> Vec<PatchOp> {
    serde_json::from_str(json).unwrap()
}

/// Every case file, sorted.
pub fn case_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root().join("fixtures/rules/cases")).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}
