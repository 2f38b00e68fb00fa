//! What a snapshot was meant to hold, checked before anything is evaluated.
//!
//! The reference is the collection's own plan (`Snapshot::plan`: every
//! account it set out to read, with its regions), or, for a snapshot
//! without one (older, hand-made), every account the configuration
//! declares, narrowed by `--environment`. An account or region of the
//! reference that the snapshot lacks becomes a gap, so every rule that
//! needed it is an `error`: a snapshot missing the prod account never
//! passes a gate. Accounts left out on purpose (a `--account` or
//! `--environment` selection) are listed as not evaluated; without any
//! reference the report says that coverage was not checked. A snapshot
//! account whose id or environment contradicts the configuration is a
//! usage error naming both.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;
use crate::snapshot::{Account, Gap, PlannedAccount, Snapshot};
use crate::vocab::{Scope, Service};

/// The gap code of an account or region the snapshot should hold and does not.
pub const NOT_IN_SNAPSHOT: &str = "NotInSnapshot";

/// How the snapshot compared with what it was meant to hold (in the
/// report only when there is something to say).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completeness {
    /// `plan` (the collection's own), `configuration`, or `none`: coverage
    /// was not checked.
    pub against: String,
    /// Accounts (`NAME`) and regions (`NAME/REGION`) that were meant to be
    /// there and are not: each is a gap, its rules `error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Accounts the configuration declares that this run left out on
    /// purpose, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated: Vec<AccountLeftOut>,
    /// One line for people.
    pub note: String,
}

/// An account not evaluated, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLeftOut {
    pub account: String,
    pub environment: String,
    pub reason: String,
}

impl Completeness {
    /// Whether the report needs to mention it (something missing, left
    /// out, or nothing checked).
    pub fn noteworthy(&self) -> bool {
        self.against == "none" || !self.missing.is_empty() || !self.not_evaluated.is_empty()
    }
}

/// Checks `snapshot` (already narrowed to `environments`) against what it
/// was meant to hold. Returns the snapshot with a gap for each missing
/// account and region (`None`: nothing to add) and what was found.
pub fn check(
    snapshot: &Snapshot,
    config: &Config,
    environments: &[String],
) -> Result<(Option<Snapshot>, Completeness), Error> {
    let configured = config.path.is_some();
    if configured {
        contradictions(snapshot, config)?;
    }
    let selected = |env: &str| environments.is_empty() || environments.iter().any(|e| e == env);
    let mut out = Completeness::default();
    let reference: Vec<PlannedAccount> = if let Some(plan) = &snapshot.plan {
        out.against = "plan".to_string();
        plan.clone()
    } else if configured && !config.accounts.is_empty() {
        out.against = "configuration".to_string();
        config.plan(&config.accounts)
    } else {
        out.against = "none".to_string();
        out.note = if configured {
            "not checked: the configuration lists no accounts (they come from AWS Organizations) and the snapshot has no collection plan".to_string()
        } else {
            "not checked: no configuration declares which accounts and regions the snapshot should hold (give --config)".to_string()
        };
        return Ok((None, out));
    };

    // Declared accounts this run did not set out to read, on purpose.
    if configured {
        for a in &config.accounts {
            let in_reference = reference.iter().any(|p| p.name == a.name);
            let reason = if !selected(&a.environment) {
                Some("not selected by --environment".to_string())
            } else if !in_reference {
                Some("not in the collection's plan (collected with --account or a narrower selection)".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                out.not_evaluated.push(AccountLeftOut {
                    account: a.name.clone(),
                    environment: a.environment.clone(),
                    reason,
                });
            }
        }
    }

    // What is missing is found first: the snapshot is copied (to add the
    // gaps) only when something is, never for a complete one (a copy of
    // an organization's snapshot is hundreds of megabytes). `None`: the
    // whole account.
    let by_name: std::collections::HashMap<&str, usize> = (snapshot.accounts.iter())
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut lacking: Vec<(&PlannedAccount, Option<&String>)> = Vec::new();
    for planned in reference.iter().filter(|p| selected(&p.environment)) {
        match by_name
            .get(planned.name.as_str())
            .map(|&i| &snapshot.accounts[i])
        {
            None => lacking.push((planned, None)),
            // An unreached account is already an error everywhere.
            Some(account) if Gap::unreached(&account.gaps) => {}
            Some(account) => {
                let present = |region: &String| {
                    account.regions.iter().any(|r| &r.name == region)
                        || (account.gaps.iter())
                            .any(|g| g.region.as_deref() == Some(region.as_str()))
                };
                lacking.extend(
                    (planned.regions.iter())
                        .filter(|r| !present(r))
                        .map(|r| (planned, Some(r))),
                );
            }
        }
    }
    let augmented = if lacking.is_empty() {
        None
    } else {
        let mut augmented = snapshot.clone();
        for (planned, region) in lacking {
            let Some(region) = region else {
                out.missing.push(planned.name.clone());
                augmented.accounts.push(Account {
                    name: planned.name.clone(),
                    environment: planned.environment.clone(),
                    account_id: planned.account_id.clone(),
                    partition: "aws".to_string(),
                    gaps: vec![Gap {
                        service: Service::Sts,
                        region: None,
                        operation: "(snapshot)".to_string(),
                        code: NOT_IN_SNAPSHOT.to_string(),
                        message: format!(
                            "account `{}` was meant to be in the snapshot ({}) but has no data in it",
                            planned.name,
                            source_of(&out.against)
                        ),
                    }],
                    ..Account::default()
                });
                continue;
            };
            out.missing.push(format!("{}/{region}", planned.name));
            let account = &mut augmented.accounts[by_name[planned.name.as_str()]];
            for service in Service::ALL
                .into_iter()
                .filter(|s| s.scope() == Scope::Regional)
            {
                account.gaps.push(Gap {
                    service,
                    region: Some(region.clone()),
                    operation: "(snapshot)".to_string(),
                    code: NOT_IN_SNAPSHOT.to_string(),
                    message: format!(
                        "region {region} of account `{}` was meant to be in the snapshot ({}) but has no data in it",
                        planned.name,
                        source_of(&out.against)
                    ),
                });
            }
        }
        augmented.normalize();
        Some(augmented)
    };
    let mut parts = Vec::new();
    if !out.missing.is_empty() {
        parts.push(format!(
            "{} expected ({}) but not in the snapshot: {}; their rules are errors",
            plural(
                out.missing.len(),
                "account or region",
                "accounts or regions"
            ),
            source_of(&out.against),
            out.missing.join(", ")
        ));
    }
    if !out.not_evaluated.is_empty() {
        parts.push(format!(
            "{} not evaluated: {}",
            plural(out.not_evaluated.len(), "account", "accounts"),
            out.not_evaluated
                .iter()
                .map(|a| format!("{} ({})", a.account, a.reason))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.note = if parts.is_empty() {
        format!(
            "every account and region of the {} is in the snapshot",
            source_of(&out.against)
        )
    } else {
        parts.join("; ")
    };
    Ok((augmented, out))
}

fn source_of(against: &str) -> &'static str {
    match against {
        "plan" => "the collection's plan",
        _ => "declared in the configuration",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A snapshot account named like a configured one must be that account:
/// the same id and environment.
fn contradictions(snapshot: &Snapshot, config: &Config) -> Result<(), Error> {
    for a in &snapshot.accounts {
        let Some(c) = config.accounts.iter().find(|c| c.name == a.name) else {
            continue;
        };
        let at = c
            .declared_at
            .as_ref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        if !c.account_id.is_empty() && !a.account_id.is_empty() && c.account_id != a.account_id {
            return Err(Error::Usage(format!(
                "account `{}`: the snapshot has account id {} but the configuration{at} declares {}; a snapshot of another account cannot stand for it",
                a.name, a.account_id, c.account_id
            )));
        }
        if c.environment != a.environment {
            return Err(Error::Usage(format!(
                "account `{}`: the snapshot has environment `{}` but the configuration{at} declares `{}`",
                a.name, a.environment, c.environment
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Snapshot, Config) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        (
            Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap(),
            Config::load(&root.join("fixtures/demo/dbaudit.toml")).unwrap(),
        )
    }

    #[test]
    fn a_complete_snapshot_adds_nothing() {
        let (s, c) = demo();
        let (augmented, found) = check(&s, &c, &[]).unwrap();
        assert!(augmented.is_none());
        assert!(!found.noteworthy(), "{found:?}");
        assert_eq!(found.against, "configuration");
    }

    #[test]
    fn a_missing_account_and_region_become_gaps() {
        let (mut s, mut c) = demo();
        s.accounts.retain(|a| a.name != "prod");
        c.accounts[0].regions = vec!["eu-west-1".into(), "eu-central-1".into()];
        let (augmented, found) = check(&s, &c, &[]).unwrap();
        let augmented = augmented.unwrap();
        assert_eq!(found.missing, vec!["test/eu-central-1", "prod"]);
        let prod = augmented
            .accounts
            .iter()
            .find(|a| a.name == "prod")
            .unwrap();
        assert!(Gap::unreached(&prod.gaps));
        let test = augmented
            .accounts
            .iter()
            .find(|a| a.name == "test")
            .unwrap();
        assert!(
            test.gaps
                .iter()
                .any(|g| g.service == Service::Rds && g.region.as_deref() == Some("eu-central-1"))
        );
        // Narrowed to test, prod is left out on purpose, not missing.
        let (_, found) = check(&s, &c, &["test".to_string()]).unwrap();
        assert_eq!(found.missing, vec!["test/eu-central-1"]);
        assert_eq!(found.not_evaluated[0].account, "prod");
    }

    #[test]
    fn the_plan_wins_over_the_configuration() {
        let (mut s, c) = demo();
        s.accounts.retain(|a| a.name == "prod");
        s.plan = Some(vec![PlannedAccount {
            name: "prod".into(),
            environment: "prod".into(),
            account_id: "222222222222".into(),
            shard: 0,
            regions: vec!["eu-west-1".into()],
        }]);
        let (augmented, found) = check(&s, &c, &[]).unwrap();
        assert!(augmented.is_none());
        assert_eq!(found.against, "plan");
        assert_eq!(found.not_evaluated.len(), 1);
        assert_eq!(found.not_evaluated[0].account, "test");
    }

    #[test]
    fn a_contradiction_names_both_values() {
        let (s, mut c) = demo();
        c.accounts[1].account_id = "999999999999".into();
        let e = check(&s, &c, &[]).unwrap_err().to_string();
        assert!(
            e.contains("222222222222") && e.contains("999999999999"),
            "{e}"
        );
        let (s, mut c) = demo();
        c.accounts[1].environment = "staging".into();
        let e = check(&s, &c, &[]).unwrap_err().to_string();
        assert!(e.contains("`prod`") && e.contains("`staging`"), "{e}");
    }

    #[test]
    fn without_a_configuration_coverage_is_not_checked() {
        let (s, _) = demo();
        let (augmented, found) = check(&s, &Config::default(), &[]).unwrap();
        assert!(augmented.is_none());
        assert_eq!(found.against, "none");
        assert!(found.note.starts_with("not checked"));
    }
}
