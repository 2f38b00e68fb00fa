//! Accounts from AWS Organizations: the mapping of each account to an
//! environment (`[[organization.environment]]`, first match wins), its
//! audit role from the template, and the resolved list that `dbaudit
//! accounts -o FILE` writes and scans read back, so that N shards do not
//! each list the organization. The listing itself is in
//! `collect::organizations` (AWS); this module is pure.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{AccountConfig, Config, OrganizationConfig};
use crate::error::{Error, Location};

/// The schema tag of a resolved account list.
pub const SCHEMA: &str = "dbaudit.accounts/v1";

/// An account as Organizations lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct OrgAccount {
    pub name: String,
    pub id: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
    /// OU names from the root, `/`-separated (empty: directly under the
    /// root); `None` when its parent could not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou_path: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Why it is unmapped or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An account to scan: mapped to an environment, with its audit role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolvedAccount {
    pub name: String,
    pub id: String,
    pub environment: String,
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Which mapping entry matched (`ou Workloads/Prod`, `tag env=prod`).
    pub source: String,
}

/// The organization, resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Resolved {
    pub schema: String,
    pub accounts: Vec<ResolvedAccount>,
    /// Active accounts no entry maps: reported, not scanned.
    pub unmapped: Vec<OrgAccount>,
    /// Suspended or closing accounts: listed, not scanned.
    pub skipped: Vec<OrgAccount>,
}

impl Resolved {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    pub fn load(path: &Path) -> Result<Resolved, Error> {
        let text = crate::error::read_to_string_limited(path, crate::error::MAX_LARGE_INPUT)?;
        Resolved::parse(&text, path)
    }

    /// An account list's text; `path` names it in errors (a file, or an
    /// `s3://` URL).
    pub fn parse(text: &str, path: &Path) -> Result<Resolved, Error> {
        let r: Resolved = serde_json::from_str(text).map_err(|e| Error::Input {
            location: Location::new(path, e.line(), e.column()),
            message: format!("invalid account list: {e}"),
        })?;
        if r.schema != SCHEMA {
            return Err(Error::Input {
                location: Location::new(path, 1, 1),
                message: format!(
                    "not an account list (`dbaudit accounts -o FILE` writes one): schema `{}`, expected `{SCHEMA}`",
                    r.schema
                ),
            });
        }
        Ok(r)
    }
}

fn fill(template: &str, a: &OrgAccount) -> String {
    template
        .replace("{account_id}", &a.id)
        .replace("{name}", &a.name)
}

/// Maps the listed accounts (first matching entry wins) and names their
/// audit roles.
pub fn resolve(org: &OrganizationConfig, listed: Vec<OrgAccount>, partition: &str) -> Resolved {
    let mut out = Resolved {
        schema: SCHEMA.to_string(),
        ..Resolved::default()
    };
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for a in &listed {
        *names.entry(a.name.clone()).or_default() += 1;
    }
    for mut a in listed {
        if a.status != "ACTIVE" {
            a.note = Some(format!("status {}", a.status));
            out.skipped.push(a);
            continue;
        }
        let matched = org.environments.iter().find_map(|m| {
            let ou_ok = match (&m.ou, &a.ou_path) {
                (None, _) => Some(None),
                (Some(p), Some(path)) => {
                    crate::glob::matches(p, path).then(|| Some(format!("ou {path}")))
                }
                (Some(_), None) => None,
            }?;
            let tag_ok = match &m.tag {
                None => None,
                Some((k, v)) => {
                    if a.tags.get(k) == Some(v) {
                        Some(format!("tag {k}={v}"))
                    } else {
                        return None;
                    }
                }
            };
            let why: Vec<String> = ou_ok.into_iter().chain(tag_ok).collect();
            Some((m.environment.clone(), why.join(", ")))
        });
        let Some((environment, source)) = matched else {
            a.note = Some(match &a.ou_path {
                Some(p) => format!("no [[organization.environment]] matches ou `{p}` or its tags"),
                None => "its OU could not be listed".to_string(),
            });
            out.unmapped.push(a);
            continue;
        };
        // Names are what --account takes: unique, so a repeated one gets its id.
        let name = if names.get(&a.name).copied().unwrap_or(0) > 1 || a.name.is_empty() {
            format!("{}-{}", a.name, a.id)
                .trim_start_matches('-')
                .to_string()
        } else {
            a.name.clone()
        };
        let role_arn = if org.audit_role.starts_with("arn:") {
            fill(&org.audit_role, &a)
        } else {
            format!(
                "arn:{partition}:iam::{}:role/{}",
                a.id,
                fill(&org.audit_role, &a)
            )
        };
        out.accounts.push(ResolvedAccount {
            name,
            id: a.id.clone(),
            environment,
            role_arn,
            external_id: org.audit_external_id.as_deref().map(|t| fill(t, &a)),
            source: format!("organization: {source}"),
        });
    }
    out.accounts.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The config with the resolved accounts added (an account declared with
/// `[[account]]`, by id or by name, keeps its declaration).
pub fn with_accounts(config: &Config, resolved: &Resolved) -> Config {
    let mut c = config.clone();
    for r in &resolved.accounts {
        if c.accounts
            .iter()
            .any(|a| a.account_id == r.id || a.name == r.name)
        {
            continue;
        }
        c.accounts.push(AccountConfig {
            name: r.name.clone(),
            environment: r.environment.clone(),
            account_id: r.id.clone(),
            role_arn: Some(r.role_arn.clone()),
            external_id: r.external_id.clone(),
            ..AccountConfig::default()
        });
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvironmentMapping;

    fn acct(name: &str, id: &str, ou: &str, tags: &[(&str, &str)], status: &str) -> OrgAccount {
        OrgAccount {
            name: name.into(),
            id: id.into(),
            status: status.into(),
            ou_path: Some(ou.into()),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            note: None,
        }
    }

    #[test]
    fn first_match_wins_and_nothing_is_dropped_silently() {
        let org = OrganizationConfig {
            audit_role: "dbaudit-audit".into(),
            audit_external_id: Some("ext-{account_id}".into()),
            environments: vec![
                EnvironmentMapping {
                    environment: "prod".into(),
                    ou: Some("Workloads/*/Prod".into()),
                    tag: None,
                },
                EnvironmentMapping {
                    environment: "test".into(),
                    ou: Some("Workloads/*".into()),
                    tag: None,
                },
                EnvironmentMapping {
                    environment: "prod".into(),
                    ou: None,
                    tag: Some(("env".into(), "prod".into())),
                },
            ],
            ..OrganizationConfig::default()
        };
        let listed = vec![
            acct(
                "pay-prod",
                "111111111111",
                "Workloads/Payments/Prod",
                &[],
                "ACTIVE",
            ),
            acct(
                "pay-test",
                "222222222222",
                "Workloads/Payments/Test",
                &[],
                "ACTIVE",
            ),
            acct(
                "legacy",
                "333333333333",
                "Sandbox",
                &[("env", "prod")],
                "ACTIVE",
            ),
            acct("scratch", "444444444444", "Sandbox", &[], "ACTIVE"),
            acct(
                "old",
                "555555555555",
                "Workloads/Payments/Prod",
                &[],
                "SUSPENDED",
            ),
            acct("dup", "666666666666", "Workloads/A/Prod", &[], "ACTIVE"),
            acct("dup", "777777777777", "Workloads/B/Prod", &[], "ACTIVE"),
        ];
        let r = resolve(&org, listed, "aws");
        let envs: Vec<(&str, &str)> = r
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.environment.as_str()))
            .collect();
        assert_eq!(
            envs,
            [
                ("dup-666666666666", "prod"),
                ("dup-777777777777", "prod"),
                ("legacy", "prod"),
                ("pay-prod", "prod"),
                ("pay-test", "test"),
            ]
        );
        let pay = r.accounts.iter().find(|a| a.name == "pay-prod").unwrap();
        assert_eq!(pay.role_arn, "arn:aws:iam::111111111111:role/dbaudit-audit");
        assert_eq!(pay.external_id.as_deref(), Some("ext-111111111111"));
        assert_eq!(pay.source, "organization: ou Workloads/Payments/Prod");
        assert_eq!(r.unmapped.len(), 1);
        assert_eq!(r.unmapped[0].name, "scratch");
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].note.as_deref(), Some("status SUSPENDED"));
        // Round trip through the cache file's form.
        let back: Resolved = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }
}
