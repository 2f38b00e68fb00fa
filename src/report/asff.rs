//! AWS Security Finding Format (ASFF), for AWS Security Hub CSPM: a JSON
//! array of findings, as `BatchImportFindings` (`dbaudit publish
//! securityhub`) and `aws securityhub batch-import-findings --findings
//! file://…` take them. One finding per rule × resource: `Compliance.Status`
//! FAILED (failures and waived failures, the waiver in `ProductFields`),
//! NOT_AVAILABLE (errors: data missing), PASSED; with a baseline, a fixed
//! finding is PASSED with `RecordState` ARCHIVED. `Id` is the finding's
//! fingerprint, stable across runs, so a re-import updates the same
//! finding. `Workflow`, `Note` and `UserDefinedFields` belong to the
//! customer and are never set.
//!
//! Required fields and types: the botocore `securityhub` model
//! (`AwsSecurityFinding`), which tests/asff.rs validates every finding
//! against; limits: 256 characters of `Title`, 1,024 of `Description`, 512
//! of a recommendation's text, 32 `RelatedRequirements`, 50
//! `ProductFields` (the API reference of `AwsSecurityFinding`).

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{FindingSummary, Report, RuleDocs};
use crate::facts::ResourceKind;
use crate::finding::{Finding, Outcome, Severity};

pub const SCHEMA_VERSION: &str = "2018-10-08";

/// The region a finding without one (account-wide, IAM) is filed in: the
/// account's first audited region, else this.
const FALLBACK_REGION: &str = "us-east-1";

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<Vec<String>> {
    let (findings, warnings) = findings(report)?;
    serde_json::to_writer_pretty(&mut *out, &findings)?;
    out.write_all(b"\n")?;
    Ok(warnings)
}

/// Every finding as ASFF, and what was left out (findings of accounts
/// whose id is not known: ASFF needs the 12-digit id).
pub fn findings(report: &Report) -> io::Result<(Vec<Value>, Vec<String>)> {
    let docs = report.rule_docs();
    let mut out = Vec::new();
    let mut skipped = std::collections::BTreeSet::new();
    for chunk in report.findings.chunks() {
        for f in chunk?.iter() {
            if !is_account_id(&f.account_id) {
                skipped.insert(f.account.to_string());
                continue;
            }
            out.push(finding(report, &docs, f));
        }
    }
    for fixed in report.fixed.iter().flatten() {
        if let Some(v) = archived(report, &docs, fixed) {
            out.push(v);
        }
    }
    let warnings = skipped
        .into_iter()
        .map(|a| {
            format!(
                "ASFF: left out the findings of account {a}: its AWS account id is not known (it could not be reached)"
            )
        })
        .collect();
    Ok((out, warnings))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
        Severity::Info => "INFORMATIONAL",
    }
}

/// The ASFF resource type of a kind (`Other` where ASFF has none).
fn resource_type(k: ResourceKind) -> &'static str {
    match k {
        ResourceKind::DbCluster => "AwsRdsDbCluster",
        ResourceKind::DbInstance => "AwsRdsDbInstance",
        ResourceKind::DbClusterSnapshot => "AwsRdsDbClusterSnapshot",
        ResourceKind::Account => "AwsAccount",
        ResourceKind::IamPrincipal => "AwsIamRole",
        ResourceKind::DbProxy | ResourceKind::ServicePair | ResourceKind::PgDatabase => "Other",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

fn partition(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| p.starts_with("aws"))
        .unwrap_or("aws")
}

/// The region a finding is filed in.
fn region_of(report: &Report, account: &str, region: Option<&str>) -> String {
    region
        .filter(|r| !r.is_empty() && *r != "*")
        .map(str::to_string)
        .or_else(|| {
            report
                .accounts
                .iter()
                .find(|a| a.name == account)
                .and_then(|a| a.inventory.regions.first().cloned())
        })
        .unwrap_or_else(|| FALLBACK_REGION.to_string())
}

fn product_arn(partition: &str, region: &str, account_id: &str) -> String {
    format!("arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default")
}

/// `fsbp RDS.27`, … of the rule, at most 32 (ASFF's limit).
fn requirements(docs: &RuleDocs, rule: &str) -> Vec<String> {
    let mut r = docs.get(rule).map(|d| d.requirements()).unwrap_or_default();
    r.truncate(32);
    r
}

fn finding(report: &Report, docs: &RuleDocs, f: &Finding) -> Value {
    let region = region_of(report, &f.account, f.region.as_deref());
    let partition = partition(&f.resource_arn);
    let status = match f.outcome {
        Outcome::Pass => "PASSED",
        Outcome::Fail | Outcome::Waived => "FAILED",
        Outcome::Error | Outcome::Unknown => "NOT_AVAILABLE",
    };
    let doc = docs.get(&*f.rule_id);
    let mut product_fields = serde_json::Map::new();
    product_fields.insert("dbaudit/rule".into(), json!(&*f.rule_id));
    product_fields.insert("dbaudit/environment".into(), json!(&*f.environment));
    product_fields.insert("dbaudit/account".into(), json!(&*f.account));
    product_fields.insert("dbaudit/outcome".into(), json!(f.outcome.as_str()));
    product_fields.insert("dbaudit/resource".into(), json!(&*f.resource_id));
    if let Some(w) = &f.waiver {
        product_fields.insert("dbaudit/waiver".into(), json!(truncate(&w.reason, 512)));
    }
    if let Some(b) = &f.baseline {
        let state = match b {
            crate::finding::BaselineState::New => "new",
            crate::finding::BaselineState::Existing => "existing",
        };
        product_fields.insert("dbaudit/baseline".into(), json!(state));
    }
    let mut v = json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": format!("dbaudit/{}", f.fingerprint),
        "ProductArn": product_arn(partition, &region, &f.account_id),
        "ProductName": "dbaudit",
        "CompanyName": "dbaudit",
        "GeneratorId": format!("dbaudit/{}", f.rule_id),
        "AwsAccountId": &*f.account_id,
        "Region": region,
        "CreatedAt": report.collected_at,
        "UpdatedAt": report.collected_at,
        "Title": truncate(&f.title, 256),
        "Description": truncate(&f.message, 1024),
        "FindingProviderFields": {
            "Severity": {"Label": label(f.severity), "Original": f.severity.as_str()},
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        },
        "Resources": [{
            "Type": resource_type(f.resource_kind),
            "Id": &*f.resource_arn,
            "Partition": partition,
            "Region": region_of(report, &f.account, f.region.as_deref()),
        }],
        "Compliance": {"Status": status},
        "RecordState": "ACTIVE",
        "ProductFields": product_fields,
    });
    let related = requirements(docs, &f.rule_id);
    if !related.is_empty() {
        v["Compliance"]["RelatedRequirements"] = json!(related);
    }
    if let Some(d) = doc {
        v["Remediation"] =
            json!({"Recommendation": {"Text": truncate(&d.remediation.replace('\n', " "), 512)}});
    }
    v
}

/// A failure of the baseline that is gone: PASSED and ARCHIVED under the
/// same `Id`, so Security Hub closes it.
fn archived(report: &Report, docs: &RuleDocs, fixed: &FindingSummary) -> Option<Value> {
    let account = report.accounts.iter().find(|a| a.name == fixed.account)?;
    if !is_account_id(&account.account_id) {
        return None;
    }
    let arn_region = fixed
        .resource_arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty());
    let region = region_of(report, &fixed.account, arn_region);
    let partition = partition(&fixed.resource_arn);
    let doc = docs.get(fixed.rule_id.as_str());
    let mut v = json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": format!("dbaudit/{}", fixed.fingerprint),
        "ProductArn": product_arn(partition, &region, &account.account_id),
        "ProductName": "dbaudit",
        "CompanyName": "dbaudit",
        "GeneratorId": format!("dbaudit/{}", fixed.rule_id),
        "AwsAccountId": account.account_id,
        "Region": region,
        "CreatedAt": report.collected_at,
        "UpdatedAt": report.collected_at,
        "Title": truncate(doc.map_or(&fixed.rule_id, |d| &d.title), 256),
        "Description": truncate(&format!("fixed since the baseline: {}", fixed.message), 1024),
        "FindingProviderFields": {
            "Severity": {"Label": label(fixed.severity), "Original": fixed.severity.as_str()},
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        },
        "Resources": [{
            "Type": "Other",
            "Id": fixed.resource_arn,
            "Partition": partition,
            "Region": region,
        }],
        "Compliance": {"Status": "PASSED"},
        "RecordState": "ARCHIVED",
        "ProductFields": {
            "dbaudit/rule": fixed.rule_id,
            "dbaudit/account": fixed.account,
            "dbaudit/outcome": "fixed",
        },
    });
    let related = requirements(docs, &fixed.rule_id);
    if !related.is_empty() {
        v["Compliance"]["RelatedRequirements"] = json!(related);
    }
    Some(v)
}
