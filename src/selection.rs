//! Which rules and accounts a run evaluates: `--rule`, `--skip-rule`,
//! `--severity`, `--environment` and the config's `[rules] disable`. Every
//! rule left out is listed in the report with the reason, so that nobody
//! reads a rule that did not run as a rule that passed.

use serde::Serialize;

use crate::error::Error;
use crate::rules::{RuleSet, Severity};
use crate::snapshot::Snapshot;

/// What the command line and the config select.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Rule ids or globs to evaluate (empty: all).
    pub rules: Vec<String>,
    /// Rule ids or globs to leave out.
    pub skip: Vec<String>,
    /// Only rules of at least this severity.
    pub min_severity: Option<Severity>,
    /// Only accounts of these environments (empty: all).
    pub environments: Vec<String>,
    /// `[rules] disable` of the config.
    pub disabled: Vec<String>,
}

/// A rule that was not evaluated, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NotEvaluated {
    pub rule: String,
    pub reason: String,
}

fn matches_any(patterns: &[String], id: &str) -> bool {
    patterns.iter().any(|p| crate::glob::matches(p, id))
}

/// Every pattern must match some rule: a typo would otherwise select
/// nothing (or skip nothing) without a word.
fn check_patterns(set: &RuleSet, patterns: &[String], what: &str) -> Result<(), Error> {
    for p in patterns {
        if !set.rules.iter().any(|r| crate::glob::matches(p, &r.id)) {
            let hint = crate::iam::catalogue::nearest(p, set.rules.iter().map(|r| r.id.as_str()))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "{what} `{p}` matches no rule{hint} (`dbaudit rules list` lists them)"
            )));
        }
    }
    Ok(())
}

impl Selection {
    /// The rules to evaluate, and those left out with the reason.
    pub fn rules(&self, set: &RuleSet) -> Result<(RuleSet, Vec<NotEvaluated>), Error> {
        check_patterns(set, &self.rules, "--rule")?;
        check_patterns(set, &self.skip, "--skip-rule")?;
        check_patterns(set, &self.disabled, "[rules] disable entry")?;
        let mut kept = set.clone();
        let mut out = Vec::new();
        kept.rules.retain(|r| {
            let reason = if matches_any(&self.disabled, &r.id) {
                Some("disabled in the configuration ([rules] disable)".to_string())
            } else if !self.rules.is_empty() && !matches_any(&self.rules, &r.id) {
                Some("not selected by --rule".to_string())
            } else if matches_any(&self.skip, &r.id) {
                Some("skipped with --skip-rule".to_string())
            } else {
                self.min_severity
                    .filter(|m| r.severity < *m)
                    .map(|min| format!("below --severity {min}"))
            };
            match reason {
                Some(reason) => {
                    out.push(NotEvaluated {
                        rule: r.id.clone(),
                        reason,
                    });
                    false
                }
                None => true,
            }
        });
        Ok((kept, out))
    }

    /// The snapshot restricted to the selected environments; an unknown
    /// environment is a usage error listing the known ones.
    pub fn accounts(&self, snapshot: &Snapshot) -> Result<Option<Snapshot>, Error> {
        if self.environments.is_empty() {
            return Ok(None);
        }
        let known: std::collections::BTreeSet<&str> = snapshot
            .accounts
            .iter()
            .map(|a| a.environment.as_str())
            .collect();
        for e in &self.environments {
            if !known.contains(e.as_str()) {
                return Err(Error::Usage(format!(
                    "no environment `{e}` in the snapshot; known: {}",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let mut s = snapshot.clone();
        s.accounts
            .retain(|a| self.environments.contains(&a.environment));
        Ok(Some(s))
    }
}

/// Parity rules need both of their environments in the run: `scan
/// --account prod`, `--environment prod` or one shard of a sharded run
/// leaves them out, listed as not evaluated (not `error`: the run did not
/// ask for the comparison, so it must not change the exit code).
pub fn pairs_in_run(mut set: RuleSet, snapshot: &Snapshot) -> (RuleSet, Vec<NotEvaluated>) {
    let present = |env: &str| snapshot.accounts.iter().any(|a| a.environment == env);
    let mut left_out = Vec::new();
    set.rules.retain(|r| {
        let Some(pair) = &r.pair else { return true };
        // One shard holds some accounts of each environment: a comparison
        // on it would be made on part of the estate.
        if let Some(part) = &snapshot.shard {
            left_out.push(NotEvaluated {
                rule: r.id.clone(),
                reason: format!(
                    "part {} of {} of a sharded run: parity rules run on the merged snapshot (`dbaudit merge`)",
                    part.index, part.count
                ),
            });
            return false;
        }
        let absent: Vec<&str> = [pair.left.as_str(), pair.right.as_str()]
            .into_iter()
            .filter(|e| !present(e))
            .collect();
        if absent.is_empty() {
            return true;
        }
        left_out.push(NotEvaluated {
            rule: r.id.clone(),
            reason: format!(
                "compares {} with {}, but the run has no account of {}",
                pair.left,
                pair.right,
                absent.join(" or ")
            ),
        });
        false
    });
    (set, left_out)
}
