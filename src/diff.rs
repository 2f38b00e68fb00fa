//! `dbaudit diff OLD NEW`: what changed between two reports (new, fixed and
//! unchanged failures, by fingerprint) or two snapshots (resources added,
//! removed, and changed fields) — drift of the same accounts between nights.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Location};
use crate::report::{FindingSummary, Report};
use crate::snapshot::Snapshot;

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Diff {
    Report {
        new: Vec<FindingSummary>,
        fixed: Vec<FindingSummary>,
        unchanged: Vec<FindingSummary>,
    },
    Snapshot {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<Changed>,
    },
    /// Two environments of one estate, per service (`--environment`).
    Environments {
        left: String,
        right: String,
        /// Services with databases on both sides, and what differs.
        services: Vec<ServiceDrift>,
        /// Services with databases on the left side only.
        only_left: Vec<String>,
        /// Services with databases on the right side only.
        only_right: Vec<String>,
    },
}

/// One service on both sides of an environment diff.
#[derive(Debug, Serialize)]
pub struct ServiceDrift {
    pub service: String,
    /// `account/region/id` of each database on each side.
    pub left: Vec<String>,
    pub right: Vec<String>,
    /// Settings whose values differ between the sides (empty: in step).
    pub differences: Vec<SettingDrift>,
}

/// A setting and its values on each side (one per database).
#[derive(Debug, Serialize)]
pub struct SettingDrift {
    /// A setting (`engine_major`, `iam_auth`, …) or `parameter NAME`.
    pub setting: String,
    pub left: Vec<String>,
    pub right: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Changed {
    /// `account/region/collection/id`.
    pub resource: String,
    pub fields: Vec<String>,
}

pub fn load(old: &Path, new: &Path) -> Result<Diff, Error> {
    let kind = |p: &Path| -> Result<String, Error> {
        let text = crate::error::read_to_string_limited(p, crate::error::MAX_LARGE_INPUT)?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::Input {
            location: Location::new(p, e.line(), e.column()),
            message: format!("not valid JSON: {e}"),
        })?;
        Ok(v.get("schema")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    };
    // Snapshots of different minors of one schema compare fine.
    let family = |k: String| {
        if Snapshot::is_schema(&k) {
            crate::snapshot::SCHEMA.to_string()
        } else {
            k
        }
    };
    let (ko, kn) = (family(kind(old)?), family(kind(new)?));
    if ko != kn {
        return Err(Error::Usage(format!(
            "cannot diff a `{ko}` with a `{kn}`: give two reports or two snapshots"
        )));
    }
    match ko.as_str() {
        crate::report::SCHEMA => {
            reports(&Report::load(old)?, &Report::load(new)?).map_err(crate::findings::spool_error)
        }
        crate::snapshot::SCHEMA => Ok(snapshots(&Snapshot::load(old)?, &Snapshot::load(new)?)),
        other => Err(Error::Input {
            location: Location::new(old, 1, 1),
            message: format!(
                "unknown schema `{other}`: expected a report ({}) or a snapshot ({})",
                crate::report::SCHEMA,
                crate::snapshot::SCHEMA
            ),
        }),
    }
}

fn reports(old: &Report, new: &Report) -> std::io::Result<Diff> {
    let failing = |r: &Report| -> std::io::Result<BTreeMap<String, FindingSummary>> {
        let mut out = BTreeMap::new();
        for chunk in r.findings.chunks() {
            out.extend(
                (chunk?.iter())
                    .filter(|f| f.outcome.is_failing())
                    .map(|f| (f.fingerprint.clone(), FindingSummary::of(f))),
            );
        }
        Ok(out)
    };
    let (o, n) = (failing(old)?, failing(new)?);
    // Most severe first, then by rule and resource: what matters on top.
    let sorted = |mut v: Vec<FindingSummary>| {
        v.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.rule_id.cmp(&b.rule_id))
                .then(a.account.cmp(&b.account))
                .then(a.resource_arn.cmp(&b.resource_arn))
        });
        v
    };
    Ok(Diff::Report {
        new: sorted(
            n.iter()
                .filter(|(k, _)| !o.contains_key(*k))
                .map(|(_, f)| f.clone())
                .collect(),
        ),
        fixed: sorted(
            o.iter()
                .filter(|(k, _)| !n.contains_key(*k))
                .map(|(_, f)| f.clone())
                .collect(),
        ),
        unchanged: sorted(
            n.iter()
                .filter(|(k, _)| o.contains_key(*k))
                .map(|(_, f)| f.clone())
                .collect(),
        ),
    })
}

/// Every identifiable object of a snapshot, keyed by account/region/collection/id.
fn resources(s: &Snapshot) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for a in &s.accounts {
        for r in &a.regions {
            let v = serde_json::to_value(r).unwrap_or_default();
            for (coll, items) in v.as_object().into_iter().flatten() {
                for item in items.as_array().into_iter().flatten() {
                    let id = item
                        .get("id")
                        .or_else(|| item.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    out.insert(format!("{}/{}/{coll}/{id}", a.name, r.name), item.clone());
                }
            }
        }
        if let Some(iam) = &a.iam {
            let v = serde_json::to_value(iam).unwrap_or_default();
            for (coll, items) in v.as_object().into_iter().flatten() {
                for item in items.as_array().into_iter().flatten() {
                    let id = item
                        .get("arn")
                        .and_then(Value::as_str)
                        .or_else(|| item.as_str())
                        .unwrap_or_default();
                    out.insert(format!("{}/iam/{coll}/{id}", a.name), item.clone());
                }
            }
        }
    }
    out
}

fn snapshots(old: &Snapshot, new: &Snapshot) -> Diff {
    let (o, n) = (resources(old), resources(new));
    let mut changed = Vec::new();
    for (k, nv) in &n {
        if let Some(ov) = o.get(k)
            && ov != nv
        {
            let mut fields: Vec<String> = Vec::new();
            let (oo, no) = (ov.as_object(), nv.as_object());
            if let (Some(oo), Some(no)) = (oo, no) {
                for key in oo.keys().chain(no.keys()) {
                    if oo.get(key) != no.get(key) && !fields.contains(key) {
                        fields.push(key.clone());
                    }
                }
            }
            fields.sort();
            changed.push(Changed {
                resource: k.clone(),
                fields,
            });
        }
    }
    Diff::Snapshot {
        added: n.keys().filter(|k| !o.contains_key(*k)).cloned().collect(),
        removed: o.keys().filter(|k| !n.contains_key(*k)).cloned().collect(),
        changed,
    }
}

/// Test ↔ prod drift per service: the settings that should be the same on
/// both sides (scale and backups may differ by design, so they are not
/// compared).
/// What `diff --environment` compares: by default the differences the
/// parity rules gate on (major version, IAM authentication, cluster
/// parameters other than `may_differ`); with `all`, every compared
/// setting and parameter.
pub struct EnvironmentScope<'a> {
    pub service_tag: &'a str,
    /// `parity_may_differ` of the right-hand environment (as
    /// `parity.parameters` reads it).
    pub may_differ: &'a [String],
    pub all: bool,
}

pub fn environments(
    snapshot: &Snapshot,
    left: &str,
    right: &str,
    scope: &EnvironmentScope,
) -> Result<Diff, Error> {
    let service_tag = scope.service_tag;
    let of = |env: &str| -> Vec<&crate::snapshot::Account> {
        snapshot
            .accounts
            .iter()
            .filter(|a| a.environment == env)
            .collect()
    };
    let (l, r) = (of(left), of(right));
    for (env, accounts) in [(left, &l), (right, &r)] {
        if accounts.is_empty() {
            let known: std::collections::BTreeSet<&str> = snapshot
                .accounts
                .iter()
                .map(|a| a.environment.as_str())
                .collect();
            return Err(Error::Usage(format!(
                "no account of environment `{env}` in the snapshot(s); found: {}",
                known.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    // diff compares settings, not roles: no schema mapping needed.
    let pairs = crate::model::parity::service_pairs(
        (left, &l),
        (right, &r),
        service_tag,
        &Default::default(),
    );
    let name =
        |d: &crate::model::parity::PairDatabase| format!("{}/{}/{}", d.account, d.region, d.id);
    type Get = fn(&crate::model::parity::PairDatabase) -> String;
    // (setting, value, gated by a parity rule)
    let settings: [(&'static str, Get, bool); 6] = [
        ("engine", |d| d.engine.clone(), false),
        ("engine_major", |d| d.engine_major.clone(), true),
        ("engine_version", |d| d.engine_version.clone(), false),
        ("iam_auth", |d| known(d.iam_auth), true),
        ("storage_encrypted", |d| known(d.storage_encrypted), false),
        ("serverless_v2", |d| d.serverless_v2.to_string(), false),
    ];
    let (mut services, mut only_left, mut only_right) = (Vec::new(), Vec::new(), Vec::new());
    for p in pairs {
        match (p.left.is_empty(), p.right.is_empty()) {
            (false, true) => only_left.push(p.service),
            (true, false) => only_right.push(p.service),
            _ => {
                let set =
                    |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
                let mut differences: Vec<SettingDrift> = settings
                    .iter()
                    .filter(|(_, _, gated)| *gated || scope.all)
                    .filter_map(|(setting, get, _)| {
                        let values = |dbs: &[crate::model::parity::PairDatabase]| -> Vec<String> {
                            dbs.iter().map(get).collect()
                        };
                        let (lv, rv) = (values(&p.left), values(&p.right));
                        (set(&lv) != set(&rv)).then(|| SettingDrift {
                            setting: setting.to_string(),
                            left: lv,
                            right: rv,
                        })
                    })
                    .collect();
                // Cluster parameters: the differences parity.parameters
                // itself reads (the pair's own), less those allowed to differ.
                let differing = p.parameter_differences.iter().flatten();
                for d in differing {
                    let name = d.name.as_str();
                    if !scope.all && scope.may_differ.iter().any(|m| m == name) {
                        continue;
                    }
                    let values = |dbs: &[crate::model::parity::PairDatabase]| -> Vec<String> {
                        dbs.iter()
                            .map(|db| crate::model::parity::parameter_value(db, name))
                            .collect()
                    };
                    differences.push(SettingDrift {
                        setting: format!("parameter {name}"),
                        left: values(&p.left),
                        right: values(&p.right),
                    });
                }
                services.push(ServiceDrift {
                    service: p.service,
                    left: p.left.iter().map(name).collect(),
                    right: p.right.iter().map(name).collect(),
                    differences,
                });
            }
        }
    }
    Ok(Diff::Environments {
        left: left.to_string(),
        right: right.to_string(),
        services,
        only_left,
        only_right,
    })
}

pub fn render_text(d: &Diff, out: &mut dyn Write, markdown: bool) -> io::Result<()> {
    let bullet = if markdown { "- " } else { "  " };
    let head = |out: &mut dyn Write, t: &str, n: usize| -> io::Result<()> {
        if markdown {
            writeln!(out, "\n### {t} ({n})\n")
        } else {
            writeln!(out, "{t} ({n}):")
        }
    };
    match d {
        Diff::Report {
            new,
            fixed,
            unchanged,
        } => {
            if markdown {
                writeln!(out, "## dbaudit report diff")?;
            }
            for (title, list) in [
                ("New failures", new),
                ("Fixed", fixed),
                ("Unchanged failures", unchanged),
            ] {
                head(out, title, list.len())?;
                for f in list {
                    writeln!(
                        out,
                        "{bullet}{} {} {} ({})",
                        f.severity, f.rule_id, f.resource_arn, f.account
                    )?;
                }
            }
        }
        Diff::Snapshot {
            added,
            removed,
            changed,
        } => {
            if markdown {
                writeln!(out, "## dbaudit snapshot diff")?;
            }
            head(out, "Added", added.len())?;
            for r in added {
                writeln!(out, "{bullet}{r}")?;
            }
            head(out, "Removed", removed.len())?;
            for r in removed {
                writeln!(out, "{bullet}{r}")?;
            }
            head(out, "Changed", changed.len())?;
            for c in changed {
                writeln!(out, "{bullet}{}: {}", c.resource, c.fields.join(", "))?;
            }
        }
        Diff::Environments {
            left,
            right,
            services,
            only_left,
            only_right,
        } => {
            if markdown {
                writeln!(out, "## dbaudit {left} ↔ {right} diff")?;
            }
            let drifting: Vec<&ServiceDrift> = services
                .iter()
                .filter(|s| !s.differences.is_empty())
                .collect();
            head(
                out,
                &format!("Services that differ between {left} and {right}"),
                drifting.len(),
            )?;
            for s in &drifting {
                writeln!(
                    out,
                    "{bullet}{} ({left}: {}; {right}: {})",
                    s.service,
                    s.left.join(", "),
                    s.right.join(", ")
                )?;
                for d in &s.differences {
                    writeln!(
                        out,
                        "{bullet}  {}: {left} {} vs {right} {}",
                        d.setting,
                        d.left.join(", "),
                        d.right.join(", ")
                    )?;
                }
            }
            for (env, only) in [(right, only_right), (left, only_left)] {
                head(out, &format!("Only in {env}"), only.len())?;
                for s in only {
                    writeln!(out, "{bullet}{s}")?;
                }
            }
            let same: Vec<&str> = services
                .iter()
                .filter(|s| s.differences.is_empty())
                .map(|s| s.service.as_str())
                .collect();
            head(out, "In step", same.len())?;
            if !same.is_empty() {
                writeln!(out, "{bullet}{}", same.join(", "))?;
            }
        }
    }
    Ok(())
}

/// A setting the API may not have reported, as the diff shows it.
fn known(v: Option<bool>) -> String {
    v.map_or_else(|| "unknown".to_string(), |b| b.to_string())
}
