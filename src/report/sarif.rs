//! SARIF 2.1.0 for GitHub code scanning.
//!
//! Cloud resources have no file, which is why other scanners' uploads are
//! rejected or their alerts duplicate. Every result here gets a location in
//! the user's repository: the resource's source tag (`dbaudit:source =
//! infra/prod/rds.tf#L12`), else a `[[sarif.location]]` mapping from the
//! config (ARN glob → path and line), else the line of dbaudit.toml declaring
//! the account. `partialFingerprints` come from the finding's fingerprint
//! (rule id + account id + resource ARN), so an alert survives reruns and
//! moved lines. One run per account, each with its own
//! `automationDetails.id` (`dbaudit/<environment>/<account>/`): GitHub no
//! longer accepts several runs of one tool and category in an upload.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde_sarif::sarif;

use super::ruledoc::RuleDoc;
use super::{Finding, Outcome, Report};
use crate::rules::Severity;

/// GitHub's limits for one upload.
pub const MAX_RESULTS_PER_RUN: usize = 25_000;
pub const MAX_RUNS: usize = 20;
const FULL_DESCRIPTION_MAX: usize = 1024;

pub const INFORMATION_URI: &str = "https://github.com/dbaudit/dbaudit";

/// `security-severity` as GitHub reads it (critical > 9.0, high 7.0–8.9,
/// medium 4.0–6.9, low 0.1–3.9).
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.5",
    }
}

fn level(s: Severity) -> sarif::ResultLevel {
    match s {
        Severity::Critical | Severity::High => sarif::ResultLevel::Error,
        Severity::Medium => sarif::ResultLevel::Warning,
        Severity::Low | Severity::Info => sarif::ResultLevel::Note,
    }
}

/// The SARIF files of `--sarif-dir`: per environment, at most
/// [`MAX_RUNS`] accounts (runs) each, so that no account is left out
/// however many there are. Each entry is the file's name stem, which is
/// also the upload's category (`dbaudit-prod`, `dbaudit-prod-2`, …), and
/// its accounts.
pub fn split(report: &Report) -> Vec<(String, Vec<&super::AccountSummary>)> {
    let mut by_env: BTreeMap<&str, Vec<&super::AccountSummary>> = BTreeMap::new();
    for a in &report.accounts {
        by_env.entry(a.environment.as_str()).or_default().push(a);
    }
    let mut out = Vec::new();
    for (env, mut accounts) in by_env {
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
        let safe: String = env
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let chunks: Vec<Vec<&super::AccountSummary>> =
            accounts.chunks(MAX_RUNS).map(<[_]>::to_vec).collect();
        let many = chunks.len() > 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let stem = if many {
                format!("dbaudit-{safe}-{}", i + 1)
            } else {
                format!("dbaudit-{safe}")
            };
            out.push((stem, chunk));
        }
    }
    out
}

/// Renders the SARIF log; returns warnings for stderr (limits applied).
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut accounts: Vec<&super::AccountSummary> = report.accounts.iter().collect();
    if accounts.len() > MAX_RUNS {
        // Keep the accounts with the most severe failures.
        let mut worst_of: std::collections::HashMap<std::sync::Arc<str>, Severity> =
            Default::default();
        for chunk in report.findings.chunks_where(|o| o == Outcome::Fail) {
            for f in chunk?.iter().filter(|f| f.outcome == Outcome::Fail) {
                let w = worst_of.entry(f.account.clone()).or_insert(f.severity);
                *w = (*w).max(f.severity);
            }
        }
        let worst = |name: &str| worst_of.get(name).copied();
        accounts.sort_by(|a, b| {
            worst(&b.name)
                .cmp(&worst(&a.name))
                .then(a.name.cmp(&b.name))
        });
        let dropped: Vec<String> = accounts[MAX_RUNS..]
            .iter()
            .map(|a| a.name.clone())
            .collect();
        warnings.push(format!(
            "SARIF: GitHub accepts at most {MAX_RUNS} runs per file; left out the accounts with the least severe findings (--sarif-dir DIR writes every account, in files of at most {MAX_RUNS}): {}",
            dropped.join(", ")
        ));
        accounts.truncate(MAX_RUNS);
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
    }
    render_accounts(report, &accounts, out, warnings)
}

/// Renders one SARIF log with a run for each of `accounts` (at most
/// [`MAX_RUNS`]). Each run is built from its account's findings as it is
/// written, then dropped: a file's runs are never all in memory.
pub fn render_accounts(
    report: &Report,
    accounts: &[&super::AccountSummary],
    out: &mut dyn Write,
    warnings: Vec<String>,
) -> io::Result<Vec<String>> {
    let log = Log {
        runs: Runs {
            report,
            accounts,
            by_account: report.findings.by_account(),
            warnings: std::cell::RefCell::new(warnings),
        },
    };
    // Small writes into a buffer of a known type (as the JSON report).
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, &log)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(log.runs.warnings.into_inner())
}

/// A SARIF log as `serde_sarif`'s `Sarif` serialises it (its fields in its
/// order; the optional ones it leaves out are absent), each run built while
/// the log is written (the same bytes: the goldens).
struct Log<'a> {
    runs: Runs<'a>,
}

impl serde::Serialize for Log<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("Sarif", 3)?;
        st.serialize_field("$schema", sarif::SCHEMA_URL)?;
        st.serialize_field("runs", &self.runs)?;
        st.serialize_field("version", "2.1.0")?;
        st.end()
    }
}

/// The runs of a [`Log`]: each account's, built when it is reached.
struct Runs<'a> {
    report: &'a Report,
    accounts: &'a [&'a super::AccountSummary],
    by_account: crate::findings::ByAccount<'a>,
    warnings: std::cell::RefCell<Vec<String>>,
}

impl serde::Serialize for Runs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.accounts.len()))?;
        for account in self.accounts {
            let run = run_of(
                self.report,
                &self.by_account,
                account,
                &mut self.warnings.borrow_mut(),
            )
            .map_err(|e| S::Error::custom(format!("reading the findings: {e}")))?;
            seq.serialize_element(&run)?;
        }
        seq.end()
    }
}

/// A run as `serde_sarif`'s `Run` serialises it (its fields in its
/// alphabetical order): everything but the results built with its types,
/// the results written straight from the findings ([`SarifResult`]), which
/// are most of an organization's SARIF and were a dozen allocations each.
struct RunOut<'a> {
    run: sarif::Run,
    findings: std::borrow::Cow<'a, [Finding]>,
    /// Which of `findings` are results, in order.
    results: Vec<usize>,
}

impl serde::Serialize for RunOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Results<'a>(&'a RunOut<'a>);
        impl serde::Serialize for Results<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let run = self.0;
                serializer.collect_seq(run.results.iter().map(|&i| SarifResult(&run.findings[i])))
            }
        }
        let run = &self.run;
        let mut st = serializer.serialize_struct("Run", 4)?;
        st.serialize_field("automationDetails", &run.automation_details)?;
        st.serialize_field("invocations", &run.invocations)?;
        st.serialize_field("results", &Results(self))?;
        st.serialize_field("tool", &run.tool)?;
        st.end()
    }
}

/// One account's run: its results (the most severe [`MAX_RESULTS_PER_RUN`]
/// when there are more) and its gaps as notifications.
fn run_of<'a>(
    report: &Report,
    by_account: &'a crate::findings::ByAccount<'_>,
    account: &super::AccountSummary,
    warnings: &mut Vec<String>,
) -> io::Result<RunOut<'a>> {
    let findings = by_account.get_where(account.name.as_str(), crate::findings::not_passed)?;
    // The results, as positions among the account's findings.
    let mut results: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].outcome != Outcome::Pass)
        .collect();
    let mut notifications = Vec::new();
    for g in &account.gaps {
        notifications.push(
            sarif::Notification::builder()
                .level(serde_json::json!("warning"))
                .message(text(&format!("data not collected: {g}")))
                .build(),
        );
    }
    if results.len() > MAX_RESULTS_PER_RUN {
        results.sort_by(|&a, &b| {
            let (a, b) = (&findings[a], &findings[b]);
            b.severity
                .cmp(&a.severity)
                .then(outcome_rank(a).cmp(&outcome_rank(b)))
        });
        let n = results.len();
        results.truncate(MAX_RESULTS_PER_RUN);
        let msg = format!(
            "SARIF: account {} has {n} results; GitHub accepts {MAX_RESULTS_PER_RUN} per run, so the {} least severe were left out",
            account.name,
            n - MAX_RESULTS_PER_RUN
        );
        notifications.push(
            sarif::Notification::builder()
                .level(serde_json::json!("warning"))
                .message(text(&msg))
                .build(),
        );
        warnings.push(msg);
        results.sort_by(|&a, &b| {
            let (a, b) = (&findings[a], &findings[b]);
            (&a.rule_id, &a.resource_arn).cmp(&(&b.rule_id, &b.resource_arn))
        });
    }
    let used: BTreeSet<&str> = results.iter().map(|&i| &*findings[i].rule_id).collect();
    let rules: Vec<sarif::ReportingDescriptor> = report
        .rules
        .iter()
        .filter(|r| used.contains(r.doc.id.as_str()))
        .map(|r| descriptor(&r.doc))
        .collect();
    let driver = sarif::ToolComponent::builder()
        .name("dbaudit")
        .version(crate::VERSION)
        .semantic_version(crate::VERSION)
        .information_uri(INFORMATION_URI)
        .rules(rules)
        .build();
    // The gate's verdict and reason (which baseline, and why), as every
    // other format carries it; code scanning ignores the bag.
    let gate = &report.gate;
    let invocation = sarif::Invocation::builder()
        .execution_successful(true)
        .tool_execution_notifications(notifications)
        .properties(
            sarif::PropertyBag::builder()
                .additional_properties(std::collections::BTreeMap::from([(
                    "dbaudit/gate".to_string(),
                    serde_json::json!({
                        "status": gate.status.as_str(),
                        "exitCode": gate.exit_code,
                        "reason": gate.reason,
                    }),
                )]))
                .build(),
        )
        .build();
    let run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .automation_details(
            sarif::RunAutomationDetails::builder()
                .id(format!("dbaudit/{}/{}/", account.environment, account.name))
                .build(),
        )
        .invocations(vec![invocation])
        .build();
    Ok(RunOut {
        run,
        findings,
        results,
    })
}

fn outcome_rank(f: &Finding) -> u8 {
    match f.outcome {
        Outcome::Fail => 0,
        Outcome::Error | Outcome::Unknown => 1,
        _ => 2,
    }
}

fn text(s: &str) -> sarif::Message {
    sarif::Message::builder().text(s.to_string()).build()
}

fn descriptor(r: &RuleDoc) -> sarif::ReportingDescriptor {
    let mut full = r.rationale.replace('\n', " ");
    if full.len() > FULL_DESCRIPTION_MAX {
        let mut end = FULL_DESCRIPTION_MAX - 1;
        while !full.is_char_boundary(end) {
            end -= 1;
        }
        full.truncate(end);
        full.push('…');
    }
    let help_text = format!(
        "{}\n\nWhy: {}\n\nFix: {}",
        r.title,
        r.rationale.replace('\n', " "),
        r.remediation.replace('\n', " ")
    );
    let mut props = BTreeMap::new();
    props.insert(
        "security-severity".to_string(),
        serde_json::json!(security_severity(r.severity)),
    );
    props.insert("precision".to_string(), serde_json::json!("very-high"));
    // FSBP and CIS ids as tags (code scanning filters on them); every
    // framework's ids in a property. GitHub rejects more than 20 tags.
    let mut tags = vec![
        "security".to_string(),
        "aws".to_string(),
        r.resource.as_str().to_string(),
        r.severity.as_str().to_string(),
    ];
    for framework in ["fsbp", "cis_aws_v5"] {
        for id in r.compliance.get(framework).into_iter().flatten() {
            if tags.len() < MAX_TAGS {
                tags.push(format!("{framework}/{id}"));
            }
        }
    }
    if !r.compliance.is_empty() {
        props.insert(
            "dbaudit/compliance".to_string(),
            serde_json::json!(r.compliance),
        );
    }
    let mut descriptor = sarif::ReportingDescriptor::builder()
        .id(r.id.clone())
        .name(r.id.clone())
        .short_description(
            sarif::MultiformatMessageString::builder()
                .text(r.title.clone())
                .build(),
        )
        .full_description(
            sarif::MultiformatMessageString::builder()
                .text(full)
                .build(),
        )
        .help(
            sarif::MultiformatMessageString::builder()
                .text(help_text)
                .markdown(r.markdown(2))
                .build(),
        )
        .default_configuration(
            sarif::ReportingConfiguration::builder()
                .level(serde_json::to_value(level(r.severity)).unwrap_or_default())
                .build(),
        )
        .properties(
            sarif::PropertyBag::builder()
                .tags(tags)
                .additional_properties(props)
                .build(),
        )
        .build();
    descriptor.help_uri = help_uri(r);
    descriptor
}

/// GitHub code scanning accepts at most this many tags per rule.
const MAX_TAGS: usize = 20;

/// The rule's page: dbaudit's rules reference for built-in rules; for a
/// user's rule, its first https reference (dbaudit's docs know nothing of
/// it), else none.
fn help_uri(r: &RuleDoc) -> Option<String> {
    if r.defined_in.builtin {
        return Some(format!(
            "{INFORMATION_URI}/blob/main/docs/rules.md#{}",
            r.anchor()
        ));
    }
    r.references
        .iter()
        .find(|u| u.starts_with("https://"))
        .cloned()
}

/// A result as `serde_sarif`'s `Result` serialises the fields set here
/// (alphabetical, absent ones left out), written from the finding with
/// only its message and line hash allocated. The goldens hold it to the
/// same bytes.
struct SarifResult<'a>(&'a Finding);

impl serde::Serialize for SarifResult<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let f = self.0;
        let (level, message) = match f.outcome {
            Outcome::Error => (
                sarif::ResultLevel::Note,
                format!(
                    "Could not evaluate {} on {}: {}",
                    f.rule_id, f.resource_id, f.message
                ),
            ),
            Outcome::Unknown => (
                sarif::ResultLevel::Warning,
                format!(
                    "Unknown until apply: {} on {}: {}",
                    f.rule_id, f.resource_id, f.message
                ),
            ),
            _ => (
                level(f.severity),
                format!("{} [{} in {}]", f.message, f.resource_arn, f.account),
            ),
        };
        let mut st = serializer.serialize_struct("Result", 7)?;
        st.serialize_field("level", &level)?;
        st.serialize_field("locations", &[ResultLocation(f)])?;
        st.serialize_field("message", &Text { text: &message })?;
        st.serialize_field(
            "partialFingerprints",
            &Fingerprints {
                dbaudit: &f.fingerprint,
                line_hash: &format!("{}:1", f.fingerprint),
            },
        )?;
        st.serialize_field(
            "properties",
            &Properties {
                account: &f.account,
                environment: &f.environment,
                outcome: f.outcome.as_str(),
            },
        )?;
        st.serialize_field("ruleId", &*f.rule_id)?;
        if let Some(w) = &f.waiver {
            st.serialize_field(
                "suppressions",
                &[Suppression {
                    justification: format!("{} (waiver at {})", w.reason, w.location),
                    kind: "external",
                    status: "accepted",
                }],
            )?;
        }
        st.end()
    }
}

#[derive(serde::Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(serde::Serialize)]
struct Fingerprints<'a> {
    #[serde(rename = "dbaudit/v1")]
    dbaudit: &'a str,
    #[serde(rename = "primaryLocationLineHash")]
    line_hash: &'a str,
}

#[derive(serde::Serialize)]
struct Properties<'a> {
    account: &'a str,
    environment: &'a str,
    outcome: &'a str,
}

#[derive(serde::Serialize)]
struct Suppression<'a> {
    justification: String,
    kind: &'a str,
    status: &'a str,
}

/// The resource's place in the repository (reports that predate resolved
/// locations point at the config) and its ARN as a logical location.
struct ResultLocation<'a>(&'a Finding);

impl serde::Serialize for ResultLocation<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(serde::Serialize)]
        struct Logical<'a> {
            #[serde(rename = "fullyQualifiedName")]
            fully_qualified_name: &'a str,
            kind: &'a str,
            name: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Physical<'a> {
            #[serde(rename = "artifactLocation")]
            artifact_location: Artifact<'a>,
            region: Region,
        }
        #[derive(serde::Serialize)]
        struct Artifact<'a> {
            uri: &'a str,
            #[serde(rename = "uriBaseId")]
            uri_base_id: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Region {
            #[serde(rename = "startLine")]
            start_line: i64,
        }
        let f = self.0;
        let (uri, line) = (f.location.as_ref()).map_or(("dbaudit.toml", 1), |l| (&*l.path, l.line));
        let mut st = serializer.serialize_struct("Location", 2)?;
        st.serialize_field(
            "logicalLocations",
            &[Logical {
                fully_qualified_name: &f.resource_arn,
                kind: "resource",
                name: &f.resource_id,
            }],
        )?;
        st.serialize_field(
            "physicalLocation",
            &Physical {
                artifact_location: Artifact {
                    uri,
                    uri_base_id: "%SRCROOT%",
                },
                region: Region {
                    start_line: line as i64,
                },
            },
        )?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account with more results than GitHub takes keeps the most
    /// severe (failures before errors at a severity), listed by rule and
    /// resource, and says how many it left out; spooled or in memory, the
    /// same bytes.
    #[test]
    fn a_run_over_githubs_limit_keeps_the_most_severe_results() {
        let (snapshot, rules, base) = crate::report::demo_failing();
        let severities = [
            Severity::Low,
            Severity::Critical,
            Severity::Medium,
            Severity::High,
        ];
        let outcomes = [
            Outcome::Fail,
            Outcome::Pass,
            Outcome::Error,
            Outcome::Waived,
            Outcome::Fail,
        ];
        // A fifth pass: 32,000 results.
        let n = 40_000;
        let mut findings: Vec<Finding> = (0..n)
            .map(|i| {
                let mut f = base.clone();
                f.severity = severities[(i * 7) % 4];
                f.outcome = outcomes[(i * 3) % 5];
                f.resource_id = format!("db-{i}").into();
                f.resource_arn =
                    format!("arn:aws:rds:eu-west-1:1:cluster:db-{:05}", (i * 7919) % n).into();
                f.message = format!("m{i}").into();
                f
            })
            .collect();
        findings.sort_by(|a, b| a.resource_arn.cmp(&b.resource_arn));
        let mut report = crate::report::report_of(&snapshot, &rules, findings.clone());
        let account = (report.accounts.iter())
            .find(|a| a.name == *base.account)
            .unwrap()
            .clone();
        let render_one = |report: &Report| {
            let mut out = Vec::new();
            let warnings = render_accounts(report, &[&account], &mut out, Vec::new()).unwrap();
            (String::from_utf8(out).unwrap(), warnings)
        };
        let (memory, warnings) = render_one(&report);

        // Expected: a stable sort of the results by severity (most severe
        // first), then failures before errors and waivers; the first ones.
        let mut results: Vec<&Finding> = (findings.iter())
            .filter(|f| f.outcome != Outcome::Pass)
            .collect();
        let total = results.len();
        results.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(outcome_rank(a).cmp(&outcome_rank(b)))
        });
        results.truncate(MAX_RESULTS_PER_RUN);
        results.sort_by(|a, b| a.resource_arn.cmp(&b.resource_arn));
        let expected: Vec<&str> = results.iter().map(|f| &*f.resource_arn).collect();

        let log: serde_json::Value = serde_json::from_str(&memory).unwrap();
        let got: Vec<&str> = (log["runs"][0]["results"].as_array().unwrap().iter())
            .map(|r| {
                r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(got.len(), MAX_RESULTS_PER_RUN);
        assert_eq!(got, expected);
        let left_out = total - MAX_RESULTS_PER_RUN;
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("has {total} results"))
                    && w.contains(&format!("the {left_out} least severe"))),
            "{warnings:?}"
        );

        // The same log from a spool (the results read past the passes).
        let mut spool = crate::findings::SpoolWriter::new().unwrap();
        spool.push(&findings).unwrap();
        report.findings = crate::findings::Findings::Spooled(spool.finish().unwrap());
        let (spooled, _) = render_one(&report);
        assert!(spooled == memory, "spooled and in-memory SARIF differ");
    }
}
