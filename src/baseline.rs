//! Baselines: gate only on what is new since a previous JSON report.
//!
//! A finding is *existing* when the baseline report had a failing (or waived)
//! finding with the same fingerprint (rule id + account id + resource ARN),
//! else *new*. Baseline findings that no longer fail are *fixed*.

use std::collections::{BTreeMap, HashSet};

pub use crate::finding::BaselineState;
use crate::finding::{Finding, Outcome};
use crate::report::{FindingSummary, Report};

/// The failing (and waived) findings of a previous report: a baseline.
pub fn failing_in(previous: &Report) -> Vec<FindingSummary> {
    (previous.findings.iter())
        .filter(|f| f.outcome.is_failing())
        .map(FindingSummary::of)
        .collect()
}

/// Marks each failing finding new or existing against the baseline's
/// failing findings; returns the fixed ones.
pub fn annotate(findings: &mut [Finding], previous: &[FindingSummary]) -> Vec<FindingSummary> {
    let before: BTreeMap<&str, &FindingSummary> = previous
        .iter()
        .filter(|f| f.outcome.is_failing())
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
