//! `dbaudit publish securityhub REPORT.json`: a report's findings imported
//! into each account's AWS Security Hub (CSPM) with `BatchImportFindings`,
//! the one write dbaudit makes outside the shard store. The findings are
//! the ASFF of `report::asff` (the same `Id`s: importing twice updates, it
//! does not duplicate). With the default product ARN Security Hub requires
//! the caller's account to be the finding's `AwsAccountId`, so each account
//! is published with its own session (its `role_arn` in dbaudit.toml: a
//! role with docs/audit-role/securityhub-publish-policy.json, not the
//! read-only audit role), per region, in batches of at most 100 findings
//! and 6 MB (the API's limits). Every client carries the publish guard:
//! the session's calls and this one operation, nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::{Region, SdkConfig};
use aws_sdk_securityhub as sh;
use serde_json::Value;

use super::registry::client;
use super::{ReadOnlyGuard, Stats, session};
use crate::config::Config;
use crate::report::Report;

/// BatchImportFindings' limits.
const MAX_FINDINGS: usize = 100;
const MAX_BYTES: usize = 6 * 1024 * 1024;

/// What was imported where.
#[derive(Debug, Default)]
pub struct Published {
    /// (account, region, findings imported).
    pub imported: Vec<(String, String, usize)>,
    /// One line per account or batch that could not be imported.
    pub failures: Vec<String>,
    /// Findings ASFF cannot carry (accounts without a known id).
    pub left_out: Vec<String>,
}

/// Imports `report`'s findings into the Security Hub of each of its
/// accounts.
pub async fn securityhub(report: &Report, config: &Config, base: &SdkConfig) -> Published {
    let (findings, left_out) = match crate::report::asff::findings(report) {
        Ok(f) => f,
        Err(e) => {
            return Published {
                failures: vec![format!("reading the report's findings: {e}")],
                ..Published::default()
            };
        }
    };
    let mut out = Published {
        left_out,
        ..Published::default()
    };
    // account id → region → findings.
    let mut by_account: BTreeMap<String, BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    for f in &findings {
        let account = f["AwsAccountId"].as_str().unwrap_or_default().to_string();
        let region = f["Region"].as_str().unwrap_or_default().to_string();
        by_account
            .entry(account)
            .or_default()
            .entry(region)
            .or_default()
            .push(f);
    }
    let guard = ReadOnlyGuard::for_publish(Arc::new(Stats::default()));
    for (account_id, regions) in by_account {
        let Some(acct) = config.accounts.iter().find(|a| a.account_id == account_id) else {
            out.failures.push(format!(
                "account {account_id}: not in the configuration, so there is no role to publish with"
            ));
            continue;
        };
        let conf = match session::open(acct, base, &guard).await {
            Ok((conf, _)) => conf,
            Err(gap) => {
                out.failures.push(format!(
                    "account {} ({account_id}): {}: {}",
                    acct.name, gap.code, gap.message
                ));
                continue;
            }
        };
        for (region, findings) in regions {
            let conf = conf
                .clone()
                .into_builder()
                .region(Region::new(region.clone()))
                .build();
            let task = super::registry::Task {
                conf,
                guard: guard.clone(),
                account_id: account_id.clone(),
                calls: super::Calls::new(crate::vocab::Service::SecurityHub, Some(&region)),
            };
            let hub = client!(sh, task);
            let mut imported = 0;
            for batch in batches(&findings) {
                let sdk: Vec<sh::types::AwsSecurityFinding> =
                    batch.iter().map(|f| to_sdk(f)).collect();
                let n = sdk.len();
                match hub
                    .batch_import_findings()
                    .set_findings(Some(sdk))
                    .send()
                    .await
                {
                    Ok(r) => {
                        let failed = r.failed_count().unwrap_or_default();
                        imported += n.saturating_sub(usize::try_from(failed).unwrap_or(0));
                        for f in r.failed_findings() {
                            out.failures.push(format!(
                                "account {} in {region}: finding {} refused: {} {}",
                                acct.name,
                                f.id().unwrap_or_default(),
                                f.error_code().unwrap_or_default(),
                                f.error_message().unwrap_or_default()
                            ));
                        }
                    }
                    Err(e) => {
                        let (code, message) = super::error::classify(&e);
                        out.failures.push(format!(
                            "account {} in {region}: BatchImportFindings of {n} finding(s) failed: {code}: {message}",
                            acct.name
                        ));
                    }
                }
            }
            out.imported.push((acct.name.clone(), region, imported));
        }
    }
    out
}

/// Consecutive batches within the API's limits (a finding is far below
/// 6 MB: ASFF's fields are bounded).
fn batches<'a>(findings: &'a [&'a Value]) -> Vec<Vec<&'a Value>> {
    let mut out: Vec<Vec<&Value>> = Vec::new();
    let mut bytes = 0;
    for f in findings {
        let size = f.to_string().len();
        let full = out
            .last()
            .is_none_or(|b| b.len() >= MAX_FINDINGS || bytes + size > MAX_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = out.last_mut() {
            b.push(f);
        }
    }
    out
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The SDK's finding from the ASFF JSON `report::asff` writes (the fields
/// it sets, nothing else).
fn to_sdk(f: &Value) -> sh::types::AwsSecurityFinding {
    use sh::types::*;
    let resources: Vec<Resource> = f["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            Resource::builder()
                .set_type(text(r, "Type"))
                .set_id(text(r, "Id"))
                .set_partition(text(r, "Partition").map(|p| Partition::from(p.as_str())))
                .set_region(text(r, "Region"))
                .build()
        })
        .collect();
    let compliance = &f["Compliance"];
    let related: Option<Vec<String>> = compliance["RelatedRequirements"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    let provider = &f["FindingProviderFields"];
    let product_fields: Option<std::collections::HashMap<String, String>> =
        f["ProductFields"].as_object().map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        });
    AwsSecurityFinding::builder()
        .set_schema_version(text(f, "SchemaVersion"))
        .set_id(text(f, "Id"))
        .set_product_arn(text(f, "ProductArn"))
        .set_product_name(text(f, "ProductName"))
        .set_company_name(text(f, "CompanyName"))
        .set_generator_id(text(f, "GeneratorId"))
        .set_aws_account_id(text(f, "AwsAccountId"))
        .set_region(text(f, "Region"))
        .set_created_at(text(f, "CreatedAt"))
        .set_updated_at(text(f, "UpdatedAt"))
        .set_title(text(f, "Title"))
        .set_description(text(f, "Description"))
        .set_resources(Some(resources))
        .compliance(
            Compliance::builder()
                .set_status(text(compliance, "Status").map(|s| ComplianceStatus::from(s.as_str())))
                .set_related_requirements(related)
                .build(),
        )
        .finding_provider_fields(
            FindingProviderFields::builder()
                .severity(
                    FindingProviderSeverity::builder()
                        .set_label(
                            text(&provider["Severity"], "Label")
                                .map(|l| SeverityLabel::from(l.as_str())),
                        )
                        .set_original(text(&provider["Severity"], "Original"))
                        .build(),
                )
                .set_types(provider["Types"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                }))
                .build(),
        )
        .set_record_state(text(f, "RecordState").map(|s| RecordState::from(s.as_str())))
        .set_product_fields(product_fields)
        .set_remediation(f.get("Remediation").map(|r| {
            Remediation::builder()
                .recommendation(
                    Recommendation::builder()
                        .set_text(text(&r["Recommendation"], "Text"))
                        .build(),
                )
                .build()
        }))
        .build()
}

#[cfg(test)]
mod tests {
    /// At most 100 findings per call; a new batch when the bytes would
    /// pass 6 MB.
    #[test]
    fn batches_keep_the_api_limits() {
        let small = serde_json::json!({"Id": "x"});
        let many: Vec<&serde_json::Value> = std::iter::repeat_n(&small, 250).collect();
        let b = super::batches(&many);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let big = serde_json::json!({"Description": "x".repeat(2 * 1024 * 1024)});
        let three: Vec<&serde_json::Value> = vec![&big, &big, &big, &big];
        assert_eq!(super::batches(&three).len(), 2);
        assert!(super::batches(&[]).is_empty());
    }
}
