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
    let (ko, kn) = (kind(old)?, kind(new)?);
    if ko != kn {
        return Err(Error::Usage(format!(
            "cannot diff a `{ko}` with a `{kn}`: give two reports or two snapshots"
        )));
    }
    match ko.as_str() {
        crate::report::SCHEMA => Ok(reports(&Report::load(old)?, &Report::load(new)?)),
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

fn reports(old: &Report, new: &Report) -> Diff {
    let failing = |r: &Report| -> BTreeMap<String, FindingSummary> {
        r.findings
            .iter()
            .filter(|f| f.outcome.is_failing())
            .map(|f| (f.fingerprint.clone(), FindingSummary::of(f)))
            .collect()
    };
    let (o, n) = (failing(old), failing(new));
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
    Diff::Report {
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
    }
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
    }
    Ok(())
}
