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
pub fn failing_in(previous: &Report) -> std::io::Result<Vec<FindingSummary>> {
    let mut out = Vec::new();
    for chunk in previous.findings.chunks() {
        out.extend(
            (chunk?.iter())
                .filter(|f| f.outcome.is_failing())
                .map(FindingSummary::of),
        );
    }
    Ok(out)
}

/// Marks each failing finding new or existing against the baseline's
/// failing findings; returns the fixed ones.
pub fn annotate(findings: &mut [Finding], previous: &[FindingSummary]) -> Vec<FindingSummary> {
    let mut a = Annotator::new(previous);
    a.annotate(findings);
    a.fixed()
}

/// [`annotate`] a chunk of findings at a time (an account's, as they are
/// spooled); the fixed ones once every chunk was seen.
pub struct Annotator<'a> {
    before: BTreeMap<&'a str, &'a FindingSummary>,
    /// Fingerprints of the baseline's failures seen failing again.
    still: HashSet<&'a str>,
}

impl<'a> Annotator<'a> {
    pub fn new(previous: &'a [FindingSummary]) -> Annotator<'a> {
        Annotator {
            before: previous
                .iter()
                .filter(|f| f.outcome.is_failing())
                .map(|f| (f.fingerprint.as_str(), f))
                .collect(),
            still: HashSet::new(),
        }
    }

    pub fn annotate(&mut self, findings: &mut [Finding]) {
        for f in findings.iter_mut() {
            if matches!(f.outcome, Outcome::Fail | Outcome::Waived) {
                let state = match self.before.get_key_value(f.fingerprint.as_str()) {
                    Some((fp, _)) => {
                        self.still.insert(fp);
                        BaselineState::Existing
                    }
                    None => BaselineState::New,
                };
                f.baseline = Some(state);
            }
        }
    }

    /// The baseline's failures no chunk had failing.
    pub fn fixed(self) -> Vec<FindingSummary> {
        let still = self.still;
        self.before
            .into_iter()
            .filter(|(fp, _)| !still.contains(fp))
            .map(|(_, f)| f.clone())
            .collect()
    }
}
