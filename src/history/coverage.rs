//! What a run evaluated: which rules, on which accounts and regions, with
//! data. Only there may a run close a period.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::finding::Outcome;
use crate::report::Report;

/// The (rule, account, region) cells a run evaluated with data.
#[derive(Debug, Default)]
pub struct Coverage {
    rules: BTreeSet<String>,
    /// Account name → its regions with data.
    accounts: HashMap<String, HashSet<String>>,
    /// (rule, account, region) with an `error` outcome; region "" for an
    /// account-wide (or global) error, which covers every region.
    errors: HashSet<(String, String, String)>,
}

impl Coverage {
    pub fn of(report: &Report) -> std::io::Result<Coverage> {
        let rules = report.rules.iter().map(|r| r.doc.id.clone()).collect();
        // An account that could not be reached covers nothing, whatever
        // else its findings say.
        let accounts = report
            .accounts
            .iter()
            .filter(|a| !crate::snapshot::Gap::unreached(&a.gaps))
            .map(|a| {
                (
                    a.name.clone(),
                    a.inventory.regions.iter().cloned().collect(),
                )
            })
            .collect();
        let mut errors = HashSet::new();
        for chunk in report.findings.chunks() {
            errors.extend(
                chunk?
                    .iter()
                    .filter(|f| f.outcome == Outcome::Error)
                    .map(|f| {
                        (
                            f.rule_id.to_string(),
                            f.account.to_string(),
                            f.region.as_deref().unwrap_or_default().to_string(),
                        )
                    }),
            );
        }
        Ok(Coverage {
            rules,
            accounts,
            errors,
        })
    }

    /// The coverage of a recorded run, from what the store keeps of it:
    /// its rules, its accounts' regions with data, and its `error` cells
    /// (rule, account, region; "" for account-wide).
    pub(crate) fn from_parts(
        rules: BTreeSet<String>,
        accounts: HashMap<String, HashSet<String>>,
        errors: HashSet<(String, String, String)>,
    ) -> Coverage {
        Coverage {
            rules,
            accounts,
            errors,
        }
    }

    /// The rules evaluated.
    pub fn rules(&self) -> Vec<&str> {
        self.rules.iter().map(String::as_str).collect()
    }

    /// Whether the run evaluated `rule` on `account` in `region` ("" for a
    /// global resource) and had the data to: then a finding it did not
    /// produce is gone.
    pub fn covers(&self, rule: &str, account: &str, region: &str) -> bool {
        if !self.rules.contains(rule) {
            return false;
        }
        let Some(regions) = self.accounts.get(account) else {
            return false;
        };
        let key = |r: &str| (rule.to_string(), account.to_string(), r.to_string());
        if self.errors.contains(&key("")) {
            return false;
        }
        if region.is_empty() {
            return true;
        }
        regions.contains(region) && !self.errors.contains(&key(region))
    }
}
