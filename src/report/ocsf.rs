//! OCSF findings, one JSON object per line, OCSF 1.5.0 (the version PyPI
//! `py-ocsf-models` 0.10.0 models and tests/ocsf.rs validates with):
//!
//! * `--report ocsf=PATH`: Compliance Finding (class 2003), the compliance
//!   object filled in its own fields: `standards` (the frameworks of the
//!   rule's controls), `requirements` (`fsbp RDS.27`, …), `control` (the
//!   rule), `status_id`/`status` (Pass, Fail, Unknown for missing data).
//! * `--report ocsf-detection=PATH`: Detection Finding (class 2004), for
//!   pipelines that ingest only 2004; the compliance object then goes to
//!   `unmapped`, as OCSF says for attributes outside the class.
//!
//! Both carry the `cloud` profile (account, region, partition), the
//! resource, the remediation and the finding's fingerprint as `uid` (stable
//! across runs). Passing findings are included (a compliance result is a
//! result); a baseline's fixed failure is a Close activity with status
//! Resolved.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{FindingSummary, Report, RuleDocs};
use crate::finding::{Finding, Outcome, Severity};

pub const OCSF_VERSION: &str = "1.5.0";

/// The account object's `type_id` for an AWS account.
const AWS_ACCOUNT: i64 = 10;

/// Which OCSF class to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2003.
    Compliance,
    /// 2004.
    Detection,
}

impl Class {
    fn uid(self) -> i64 {
        match self {
            Class::Compliance => 2003,
            Class::Detection => 2004,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::Compliance => "Compliance Finding",
            Class::Detection => "Detection Finding",
        }
    }
}

pub fn render(report: &Report, class: Class, out: &mut dyn Write) -> io::Result<()> {
    let time = millis(&report.collected_at);
    let docs = report.rule_docs();
    for chunk in report.findings.chunks() {
        for f in chunk?.iter() {
            serde_json::to_writer(&mut *out, &event(report, &docs, class, f, time))?;
            out.write_all(b"\n")?;
        }
    }
    for fixed in report.fixed.iter().flatten() {
        serde_json::to_writer(&mut *out, &closed(report, &docs, class, fixed, time))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// RFC 3339 (`2026-11-27T02:00:00Z`) as milliseconds since the epoch; 0
/// when it cannot be read (the snapshot's time is always RFC 3339).
fn millis(rfc3339: &str) -> i64 {
    crate::model::lifecycle::epoch(rfc3339).map_or(0, |s| s * 1000)
}

fn severity(s: Severity) -> (i64, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// The compliance object of a rule's finding.
fn compliance(docs: &RuleDocs, rule: &str, status: (i64, &str)) -> Value {
    let doc = docs.get(rule);
    let mut v = json!({
        "control": rule,
        "status_id": status.0,
        "status": status.1,
    });
    let Some(d) = doc else {
        return v;
    };
    v["desc"] = json!(d.title);
    let standards: Vec<String> = crate::compliance::frameworks()
        .into_iter()
        .filter(|f| d.compliance.get(*f).is_some_and(|ids| !ids.is_empty()))
        .filter_map(crate::compliance::catalogue)
        .map(|c| c.label())
        .collect();
    if !standards.is_empty() {
        v["standards"] = json!(standards);
        v["requirements"] = json!(d.requirements());
    }
    v
}

fn metadata(report: &Report, uid: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "uid": uid,
        "profiles": ["cloud"],
        "product": {
            "name": "dbaudit",
            "vendor_name": "dbaudit",
            "version": report.tool.version,
        },
    })
}

fn event(report: &Report, docs: &RuleDocs, class: Class, f: &Finding, time: i64) -> Value {
    let status = match f.outcome {
        Outcome::Pass => (1, "Pass"),
        Outcome::Fail | Outcome::Waived => (3, "Fail"),
        Outcome::Error | Outcome::Unknown => (0, "Unknown"),
    };
    let (severity_id, severity_name) = severity(f.severity);
    let region = f.region.as_deref().unwrap_or_default();
    let partition = f
        .resource_arn
        .split(':')
        .nth(1)
        .filter(|p| p.starts_with("aws"))
        .unwrap_or("aws");
    let doc = docs.get(&*f.rule_id);
    let mut v = json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class.uid(),
        "class_name": class.name(),
        "type_uid": class.uid() * 100 + 1,
        "type_name": format!("{}: Create", class.name()),
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": if f.waiver.is_some() { 3 } else { 1 },
        "status": if f.waiver.is_some() { "Suppressed" } else { "New" },
        "time": time,
        "message": &*f.message,
        "metadata": metadata(report, &f.fingerprint),
        "finding_info": {
            "uid": f.fingerprint,
            "title": &*f.title,
            "desc": &*f.message,
            "types": [format!("dbaudit/{}", f.rule_id)],
            "created_time": time,
        },
        "cloud": {
            "provider": "AWS",
            "account": {
                "uid": &*f.account_id,
                "name": &*f.account,
                "type_id": AWS_ACCOUNT,
                "type": "AWS Account",
            },
        },
        "resources": [{
            "uid": &*f.resource_arn,
            "name": &*f.resource_id,
            "type": f.resource_kind.as_str(),
            "cloud_partition": partition,
            "labels": [format!("environment:{}", f.environment)],
        }],
        "unmapped": {
            "dbaudit": {
                "rule": &*f.rule_id,
                "outcome": f.outcome.as_str(),
                "environment": &*f.environment,
            }
        },
    });
    if !region.is_empty() {
        v["cloud"]["region"] = json!(region);
        v["resources"][0]["region"] = json!(region);
    }
    if let Some(w) = &f.waiver {
        v["unmapped"]["dbaudit"]["waiver"] = json!(w.reason);
    }
    if let Some(d) = doc {
        v["remediation"] = json!({"desc": d.remediation, "references": d.references});
    }
    attach_compliance(&mut v, class, compliance(docs, &f.rule_id, status));
    v
}

/// A baseline failure that is gone: a Close activity, status Resolved.
fn closed(
    report: &Report,
    docs: &RuleDocs,
    class: Class,
    fixed: &FindingSummary,
    time: i64,
) -> Value {
    let (severity_id, severity_name) = severity(fixed.severity);
    let title = docs
        .get(fixed.rule_id.as_str())
        .map_or(fixed.rule_id.clone(), |d| d.title.clone());
    let account_id = report
        .accounts
        .iter()
        .find(|a| a.name == fixed.account)
        .map(|a| a.account_id.clone())
        .unwrap_or_default();
    let mut v = json!({
        "activity_id": 3,
        "activity_name": "Close",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class.uid(),
        "class_name": class.name(),
        "type_uid": class.uid() * 100 + 3,
        "type_name": format!("{}: Close", class.name()),
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": 4,
        "status": "Resolved",
        "time": time,
        "message": format!("fixed since the baseline: {}", fixed.message),
        "metadata": metadata(report, &fixed.fingerprint),
        "finding_info": {
            "uid": fixed.fingerprint,
            "title": title,
            "types": [format!("dbaudit/{}", fixed.rule_id)],
            "modified_time": time,
        },
        "cloud": {
            "provider": "AWS",
            "account": {
                "uid": account_id,
                "name": fixed.account,
                "type_id": AWS_ACCOUNT,
                "type": "AWS Account",
            },
        },
        "resources": [{"uid": fixed.resource_arn}],
        "unmapped": {"dbaudit": {"rule": fixed.rule_id, "outcome": "fixed"}},
    });
    attach_compliance(&mut v, class, compliance(docs, &fixed.rule_id, (1, "Pass")));
    v
}

fn attach_compliance(v: &mut Value, class: Class, compliance: Value) {
    match class {
        Class::Compliance => v["compliance"] = compliance,
        Class::Detection => v["unmapped"]["compliance"] = compliance,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_epoch_milliseconds() {
        assert_eq!(super::millis("1970-01-01T00:00:01Z"), 1000);
        assert_eq!(super::millis("2026-11-27T02:00:00Z"), 1_795_744_800_000);
        assert_eq!(super::millis("garbage"), 0);
    }
}
