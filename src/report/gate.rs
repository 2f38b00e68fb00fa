//! The release gate: the exit code, decided once from findings.

use serde::{Deserialize, Serialize};

use super::{Finding, Outcome};
use crate::rules::Severity;

/// What to do when some outcomes are `error` (data not collected or a rule
/// that could not be evaluated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnIncomplete {
    /// Exit 3: an incomplete audit is not a passing audit.
    Fail,
    /// Report the errors but let the gate pass on them.
    Warn,
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INCOMPLETE: i32 = 3;

/// The gate's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    Pass,
    Fail,
    Incomplete,
}

crate::names::names!(GateStatus {
    Pass => "pass",
    Fail => "fail",
    Incomplete => "incomplete",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub status: GateStatus,
    pub exit_code: i32,
    pub fail_on: Severity,
    pub on_incomplete: OnIncomplete,
    /// Failing findings at or above `fail_on`.
    pub failing: usize,
    /// Error outcomes at or above `fail_on`.
    pub errors: usize,
    /// `dbaudit plan`: outcomes at or above `fail_on` unknown until apply.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown: usize,
    /// `dbaudit plan`: what `unknown` outcomes do to the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unknown: Option<OnIncomplete>,
    pub reason: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Exit 1 when a finding at or above `fail_on` fails; otherwise exit 3 when
/// one at or above `fail_on` is an error and `on_incomplete` is `fail`;
/// otherwise 0. Failures take precedence: a known violation matters more than
/// an unknown.
///
/// Waived failures never gate. With a baseline, only failures that are new
/// since it gate; errors gate regardless (an incomplete audit is incomplete).
///
/// When nothing was evaluated at all — no finding, or every outcome an
/// error (every account unreachable, say) — the gate is incomplete (exit 3)
/// whatever `on_incomplete` says: `warn` tolerates gaps in an audit, not the
/// absence of one.
pub fn decide(findings: &[Finding], fail_on: Severity, on_incomplete: OnIncomplete) -> Gate {
    decide_with(findings, fail_on, on_incomplete, None)
}

/// As [`decide`], for `dbaudit plan`: `unknown` outcomes (facts known only
/// after apply) count as errors, so that an audit that cannot know is not
/// a pass, unless `on_unknown` is `warn`.
pub fn decide_with(
    findings: &[Finding],
    fail_on: Severity,
    on_incomplete: OnIncomplete,
    on_unknown: Option<OnIncomplete>,
) -> Gate {
    let mut tally = GateTally::new(fail_on);
    findings.iter().for_each(|f| tally.add(f));
    tally.decide(on_incomplete, on_unknown)
}

/// What the gate counts, added a finding at a time (an account's findings
/// are counted as they are written, then dropped).
#[derive(Debug, Clone, Copy)]
pub struct GateTally {
    fail_on: Severity,
    /// Findings at all.
    findings: usize,
    failing: usize,
    errors: usize,
    unknown: usize,
    /// Failures at or above the threshold that the baseline already had.
    carried: usize,
    /// Whether any finding has a baseline state.
    baseline: bool,
    /// Whether any outcome is neither an error nor unknown.
    evaluated: bool,
}

impl GateTally {
    pub fn new(fail_on: Severity) -> GateTally {
        GateTally {
            fail_on,
            findings: 0,
            failing: 0,
            errors: 0,
            unknown: 0,
            carried: 0,
            baseline: false,
            evaluated: false,
        }
    }

    pub fn add(&mut self, f: &Finding) {
        self.findings += 1;
        self.baseline |= f.baseline.is_some();
        self.evaluated |= !matches!(f.outcome, Outcome::Error | Outcome::Unknown);
        if f.severity < self.fail_on {
            return;
        }
        let existing = f.baseline == Some(crate::finding::BaselineState::Existing);
        match f.outcome {
            Outcome::Fail if existing => self.carried += 1,
            Outcome::Fail => self.failing += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Unknown => self.unknown += 1,
            Outcome::Pass | Outcome::Waived => {}
        }
    }

    /// The verdict on what was counted.
    pub fn decide(&self, on_incomplete: OnIncomplete, on_unknown: Option<OnIncomplete>) -> Gate {
        let fail_on = self.fail_on;
        let (failing, errors, unknown, carried) =
            (self.failing, self.errors, self.unknown, self.carried);
        let baseline = self.baseline;
        let evaluated = self.evaluated;
        let unknown_gates =
            unknown > 0 && on_unknown.unwrap_or(on_incomplete) == OnIncomplete::Fail;
        let new = if baseline { "new " } else { "" };
        let carried_note = if carried > 0 {
            format!("; {carried} existing failure(s) carried by the baseline")
        } else {
            String::new()
        };
        let (status, exit_code, reason) = if failing > 0 {
            (
                GateStatus::Fail,
                EXIT_FAILED,
                format!("{failing} {new}failing finding(s) at or above {fail_on}{carried_note}"),
            )
        } else if !evaluated {
            (
                GateStatus::Incomplete,
                EXIT_INCOMPLETE,
                if self.findings == 0 {
                    "nothing was evaluated: no finding at all".to_string()
                } else {
                    format!(
                        "nothing was evaluated: all {} outcome(s) are errors (no account's data could be read); exit 3 whatever --on-incomplete says",
                        self.findings
                    )
                },
            )
        } else if unknown_gates {
            (
                GateStatus::Incomplete,
                EXIT_INCOMPLETE,
                format!(
                    "{unknown} finding(s) at or above {fail_on} are unknown until apply (the plan leaves facts they read unknown){}{carried_note}",
                    if errors > 0 {
                        format!("; {errors} could not be evaluated")
                    } else {
                        String::new()
                    }
                ),
            )
        } else if errors > 0 && on_incomplete == OnIncomplete::Fail {
            (
                GateStatus::Incomplete,
                EXIT_INCOMPLETE,
                format!(
                    "{errors} finding(s) at or above {fail_on} could not be evaluated (data missing or rule error){carried_note}"
                ),
            )
        } else if errors > 0 {
            (
                GateStatus::Pass,
                EXIT_OK,
                format!(
                    "no {new}failing findings at or above {fail_on}{carried_note}; {errors} error(s) ignored (--on-incomplete warn)"
                ),
            )
        } else {
            (
                GateStatus::Pass,
                EXIT_OK,
                format!("no {new}failing findings at or above {fail_on}{carried_note}"),
            )
        };
        let reason = if unknown > 0 && !unknown_gates {
            format!("{reason}; {unknown} unknown until apply ignored (--on-unknown warn)")
        } else {
            reason
        };
        Gate {
            status,
            exit_code,
            fail_on,
            on_incomplete,
            failing,
            errors,
            unknown,
            on_unknown,
            reason,
        }
    }
}
