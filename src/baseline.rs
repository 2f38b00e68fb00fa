//! Baselines: gate only on what is new since a previous JSON report.
//!
//! A finding is *existing* when the baseline report had a failing (or waived)
//! finding with the same fingerprint (rule id + account id + resource ARN),
//! else *new*. Baseline findings that no longer fail are *fixed*.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location};
use crate::report::{Finding, Outcome};

/// What a previous report says, as far as baselines and diffs need.
#[derive(Debug, Clone, Deserialize)]
pub struct PreviousReport {
    pub schema: String,
    pub findings: Vec<PreviousFinding>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PreviousFinding {
    pub fingerprint: String,
    pub rule_id: String,
    pub severity: crate::rules::Severity,
    pub outcome: String,
    pub account: String,
    pub resource_arn: String,
    #[serde(default)]
    pub message: String,
}

impl PreviousFinding {
    pub fn failing(&self) -> bool {
        self.outcome == "fail" || self.outcome == "waived"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineState {
    New,
    Existing,
}

impl PreviousReport {
    pub fn load(path: &Path) -> Result<PreviousReport, Error> {
        let text = crate::error::read_to_string_limited(path, crate::error::MAX_LARGE_INPUT)?;
        let probe: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Input {
            location: Location::new(path, e.line(), e.column()),
            message: format!("not valid JSON: {e}"),
        })?;
        if probe.get("schema").and_then(|s| s.as_str()) != Some(crate::report::SCHEMA) {
            return Err(Error::Input {
                location: Location::new(path, 1, 1),
                message: format!(
                    "not a dbaudit JSON report: expected \"schema\": \"{}\" (write one with --format json or --json FILE)",
                    crate::report::SCHEMA
                ),
            });
        }
        serde_json::from_str(&text).map_err(|e| Error::Input {
            location: Location::new(path, e.line(), e.column()),
            message: format!("invalid report: {e}"),
        })
    }
}

/// Marks each failing finding new or existing; returns the fixed ones.
pub fn annotate(findings: &mut [Finding], previous: &PreviousReport) -> Vec<PreviousFinding> {
    let before: BTreeMap<&str, &PreviousFinding> = previous
        .findings
        .iter()
        .filter(|f| f.failing())
        .map(|f| (f.fingerprint.as_str(), f))
        .collect();
    let mut still: HashSet<String> = HashSet::new();
    for f in findings.iter_mut() {
        if matches!(f.outcome, Outcome::Fail | Outcome::Waived) {
            let state = if before.contains_key(f.fingerprint.as_str()) {
                still.insert(f.fingerprint.clone());
                BaselineState::Existing
            } else {
                BaselineState::New
            };
            f.baseline = Some(state);
        }
    }
    before
        .into_iter()
        .filter(|(fp, _)| !still.contains(*fp))
        .map(|(_, f)| f.clone())
        .collect()
}
