//! One serde report model; every output format is a projection of it.
//!
//! JSON is the model serialised (versioned `dbaudit.report/v1`); the table and
//! other formats are small renderers writing to `&mut dyn Write`. The gate is
//! decided once, from findings, in [`gate`], never by a renderer.

pub mod asff;
pub mod evidence;
pub mod gate;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod ocsf;
pub mod render;
pub mod ruledoc;
pub mod sarif;
pub mod svg;
pub mod table;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location};
pub use crate::finding::{Finding, Outcome, RepoLocation, fingerprint};
use crate::rules::{RuleSet, Severity};
use crate::snapshot::{Gap, Snapshot};
pub use gate::{Gate, OnIncomplete};

pub const SCHEMA: &str = "dbaudit.report/v1";

/// A run against a baseline, in numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// Failing (or waived) findings the baseline did not have.
    pub new: usize,
    /// Failing (or waived) findings the baseline had too.
    pub existing: usize,
    /// Failures of the baseline that are gone.
    pub fixed: usize,
}

/// A finding in short: what `fixed` and `dbaudit diff` list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FindingSummary {
    pub fingerprint: String,
    pub rule_id: String,
    pub severity: Severity,
    pub outcome: Outcome,
    pub account: String,
    pub resource_arn: String,
    #[serde(default)]
    pub message: String,
}

impl FindingSummary {
    pub fn of(f: &Finding) -> FindingSummary {
        FindingSummary {
            fingerprint: f.fingerprint.clone(),
            rule_id: f.rule_id.to_string(),
            severity: f.severity,
            outcome: f.outcome,
            account: f.account.to_string(),
            resource_arn: f.resource_arn.to_string(),
            message: f.message.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    /// `collected_at` of the evaluated snapshot(s): the report has no clock of
    /// its own, so evaluating the same snapshot twice gives identical bytes.
    pub collected_at: String,
    pub accounts: Vec<AccountSummary>,
    pub rules: Vec<RuleSummary>,
    /// In report order; spooled to a temporary file when the command
    /// streams (`crate::findings`).
    pub findings: crate::findings::Findings,
    pub summary: Summary,
    pub gate: Gate,
    /// What became of each waiver (applied, expired, unused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<crate::waivers::WaiverStatus>,
    /// With `--baseline`: failures of the baseline that are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<Vec<FindingSummary>>,
    /// With `--baseline`: how many failures are new, existing and fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    /// Rules of the pack this run did not evaluate, and why (selection
    /// flags, `[rules] disable`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated: Vec<crate::selection::NotEvaluated>,
    /// What the snapshot was meant to hold and did not, accounts left out
    /// on purpose, or that coverage was not checked (absent when the
    /// snapshot held everything its plan or configuration names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<crate::expected::Completeness>,
    /// With `--framework`: a scorecard per framework (docs/compliance.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<Scorecard>,
    /// `dbaudit plan`: the Terraform plan evaluated on the live snapshot,
    /// each change and what became of it (docs/plan.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// A digest of the snapshot as evaluated, when asked for
    /// (`AuditOptions::digest`): the history records an input once. Not
    /// part of the report's JSON.
    #[serde(skip)]
    pub input_digest: Option<String>,
    /// The HTML report's topology, drawn while the parts of a sharded run
    /// were read (`AuditOptions::topology`; a run with the whole snapshot
    /// draws it from that). Not part of the report's JSON.
    #[serde(skip)]
    pub topology: Option<html::Topology>,
}

/// A Terraform plan as `dbaudit plan` applied it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanSummary {
    /// The plan file as given.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_version: Option<String>,
    /// The account and region the plan changes.
    pub account: String,
    pub region: String,
    pub changes: Vec<PlanChange>,
    /// Values the plan left unknown that dbaudit read elsewhere (the prior
    /// state, a data source, another planned resource).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<String>,
    /// Whether existing failures gate too (`--gate-existing`); by default
    /// only failures the plan introduces do.
    pub gate_existing: bool,
}

/// One resource change of a plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanChange {
    pub address: String,
    #[serde(rename = "type")]
    pub tf_type: String,
    /// create, update, delete, replace, no-op, other.
    pub action: String,
    /// `applied`, `no-change`, `not-read` (no rule reads the type) or
    /// `not-predicted` (rules read what it changes; dbaudit cannot apply
    /// it: the gate is incomplete).
    pub treatment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Attributes known only after apply that facts read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<RepoLocation>,
}

/// One framework's controls, judged by the findings of the rules that map
/// to each.
/// The report's rule docs by id, built once where a renderer looks one up
/// per finding.
pub type RuleDocs<'a> = std::collections::HashMap<&'a str, &'a ruledoc::RuleDoc>;

impl Report {
    pub fn rule_docs(&self) -> RuleDocs<'_> {
        self.rules
            .iter()
            .map(|r| (r.doc.id.as_str(), &r.doc))
            .collect()
    }

    /// The scorecard of each framework key given, from the rules of the
    /// pack (those this run left out included: their controls are then
    /// not evaluated, never passed) and the report's findings; an unknown
    /// key is a usage error.
    pub fn scorecards(
        &self,
        pack: &RuleSet,
        frameworks: &[String],
    ) -> Result<Vec<Scorecard>, crate::error::Error> {
        let mut out = Vec::new();
        for key in frameworks {
            let catalogue = crate::compliance::catalogue(key).ok_or_else(|| {
                crate::error::Error::Usage(format!(
                    "unknown framework `{key}`; expected one of: {}",
                    crate::compliance::frameworks().join(", ")
                ))
            })?;
            let mut controls = Vec::new();
            // Counted in one pass over the findings (a spooled store is read
            // once, not once per control).
            let mut by_rule: HashMap<Arc<str>, (Counts, std::collections::BTreeSet<Arc<str>>)> =
                HashMap::new();
            for chunk in self.findings.chunks() {
                for f in chunk.map_err(crate::findings::spool_error)?.iter() {
                    let (counts, failing) = by_rule.entry(f.rule_id.clone()).or_default();
                    counts.add(f.outcome);
                    if f.outcome == Outcome::Fail {
                        failing.insert(f.account.clone());
                    }
                }
            }
            for c in &catalogue.controls {
                let rules: Vec<&str> = pack
                    .rules
                    .iter()
                    .filter(|r| r.compliance.get(key).is_some_and(|ids| ids.contains(&c.id)))
                    .map(|r| r.id.as_str())
                    .collect();
                let mut counts = Counts::default();
                let mut failing = std::collections::BTreeSet::new();
                for r in &rules {
                    if let Some((c, accounts)) = by_rule.get(*r) {
                        counts.absorb(*c);
                        failing.extend(accounts.iter().map(|a| a.to_string()));
                    }
                }
                let status = if rules.is_empty() {
                    c.coverage.as_str()
                } else if counts.fail > 0 {
                    "fail"
                } else if counts.error > 0 {
                    "error"
                } else if counts.pass + counts.waived > 0 {
                    "pass"
                } else {
                    "not_evaluated"
                };
                controls.push(ControlScore {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    coverage: c.coverage.as_str().to_string(),
                    status: status.to_string(),
                    rules: rules.iter().map(|r| r.to_string()).collect(),
                    counts,
                    accounts_failing: failing.into_iter().collect(),
                });
            }
            out.push(Scorecard {
                framework: catalogue.framework.clone(),
                name: catalogue.name.clone(),
                version: catalogue.version.clone(),
                controls,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scorecard {
    pub framework: String,
    pub name: String,
    pub version: String,
    pub controls: Vec<ControlScore>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlScore {
    pub id: String,
    pub title: String,
    /// The catalogue's coverage (`automated`, `partial`, `manual`,
    /// `not_applicable`).
    pub coverage: String,
    /// `fail` (a rule failed on some resource), `error` (none failed, data
    /// was missing), `pass`, `not_evaluated` (its rules evaluated nothing
    /// here, or were not run), `manual` or `not_applicable` (no rule).
    pub status: String,
    /// The rules that map to it (from the rules' `compliance`).
    pub rules: Vec<String>,
    pub counts: Counts,
    /// Accounts with a failing finding of its rules.
    pub accounts_failing: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// The git commit the binary was built from ("unknown" outside git).
    #[serde(default)]
    pub commit: String,
    /// The built-in rule pack's digest (`rules::pack_digest`).
    #[serde(default)]
    pub rule_pack: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountSummary {
    pub name: String,
    pub environment: String,
    pub account_id: String,
    pub counts: Counts,
    #[serde(default)]
    pub gaps: Vec<Gap>,
    #[serde(default)]
    pub inventory: Inventory,
}

/// What the snapshot holds for an account. A scan that found no database at
/// all (a wrong `regions` list, a role in the wrong account) passes every
/// resource rule vacuously; the inventory is where that shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Regions with data.
    pub regions: Vec<String>,
    pub db_clusters: usize,
    pub db_instances: usize,
    /// IAM users and roles; absent when IAM was not collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_principals: Option<usize>,
}

impl Inventory {
    pub fn of(account: &crate::snapshot::Account) -> Inventory {
        Inventory {
            regions: account.regions.iter().map(|r| r.name.clone()).collect(),
            db_clusters: account.regions.iter().map(|r| r.db_clusters.len()).sum(),
            db_instances: account.regions.iter().map(|r| r.db_instances.len()).sum(),
            iam_principals: account.iam.as_ref().map(|i| i.users.len() + i.roles.len()),
        }
    }

    /// One line for the table and Markdown: what was audited, and a warning
    /// when no database was found.
    pub fn describe(&self) -> String {
        let regions = if self.regions.is_empty() {
            "no region".to_string()
        } else {
            self.regions.join(", ")
        };
        let n = |count: usize, what: &str| {
            format!("{count} {what}{}", if count == 1 { "" } else { "s" })
        };
        let iam = self
            .iam_principals
            .map(|count| format!("; {} (users and roles)", n(count, "IAM principal")))
            .unwrap_or_default();
        let mut line = format!(
            "{}, {} in {regions}{iam}",
            n(self.db_clusters, "DB cluster"),
            n(self.db_instances, "DB instance")
        );
        if self.db_clusters + self.db_instances == 0 {
            line.push_str(
                " (no database found: check the account's `regions` and role if it should have some)",
            );
        }
        line
    }
}

/// A rule that was evaluated: its documentation and its outcome counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleSummary {
    #[serde(flatten)]
    pub doc: ruledoc::RuleDoc,
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub waived: usize,
    /// `dbaudit plan`: outcomes unknown until apply (absent elsewhere).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Counts {
    /// Adds another set of counts to these.
    fn absorb(&mut self, other: Counts) {
        let Counts {
            pass,
            fail,
            error,
            waived,
            unknown,
        } = other;
        self.pass += pass;
        self.fail += fail;
        self.error += error;
        self.waived += waived;
        self.unknown += unknown;
    }

    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Error => self.error += 1,
            Outcome::Waived => self.waived += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub total: Counts,
    /// Failing and erroring findings per severity.
    pub by_severity: BTreeMap<Severity, Counts>,
}

/// The report's counts (total, per severity, rule and account) and the
/// baseline states, added a finding at a time.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub total: Counts,
    pub by_severity: BTreeMap<Severity, Counts>,
    pub per_rule: HashMap<Arc<str>, Counts>,
    pub per_account: HashMap<Arc<str>, Counts>,
    /// Failing findings new and existing since the baseline.
    pub new: usize,
    pub existing: usize,
}

impl Tally {
    pub fn add(&mut self, f: &Finding) {
        self.total.add(f.outcome);
        self.by_severity
            .entry(f.severity)
            .or_default()
            .add(f.outcome);
        match self.per_rule.get_mut(&f.rule_id) {
            Some(c) => c.add(f.outcome),
            None => self
                .per_rule
                .entry(f.rule_id.clone())
                .or_default()
                .add(f.outcome),
        }
        match self.per_account.get_mut(&f.account) {
            Some(c) => c.add(f.outcome),
            None => (self.per_account.entry(f.account.clone()).or_default()).add(f.outcome),
        }
        match f.baseline {
            Some(crate::finding::BaselineState::New) => self.new += 1,
            Some(crate::finding::BaselineState::Existing) => self.existing += 1,
            None => {}
        }
    }

    pub fn baseline_summary(&self, fixed: usize) -> BaselineSummary {
        BaselineSummary {
            new: self.new,
            existing: self.existing,
            fixed,
        }
    }
}

impl Report {
    /// Reads a JSON report (`--baseline`, `dbaudit diff`): any report this
    /// schema version wrote, including those from before fields were added.
    pub fn load(path: &Path) -> Result<Report, Error> {
        let text = crate::error::read_to_string_limited(path, crate::error::MAX_LARGE_INPUT)?;
        let probe: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Input {
            location: Location::new(path, e.line(), e.column()),
            message: format!("not valid JSON: {e}"),
        })?;
        if probe.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            return Err(Error::Input {
                location: Location::new(path, 1, 1),
                message: format!(
                    "not a dbaudit JSON report: expected \"schema\": \"{SCHEMA}\" (write one with --format json or --json FILE)"
                ),
            });
        }
        serde_json::from_str(&text).map_err(|e| Error::Input {
            location: Location::new(path, e.line(), e.column()),
            message: format!("invalid report: {e}"),
        })
    }

    /// The baseline summary: as recorded, or counted from the findings for
    /// a report that predates the field.
    pub fn baseline_summary(&self) -> io::Result<Option<BaselineSummary>> {
        let Some(fixed) = self.fixed.as_ref() else {
            return Ok(None);
        };
        if let Some(b) = self.baseline {
            return Ok(Some(b));
        }
        let mut tally = Tally::default();
        for c in self.findings.chunks() {
            c?.iter().for_each(|f| tally.add(f));
        }
        Ok(Some(tally.baseline_summary(fixed.len())))
    }

    pub fn build(
        snapshot: &Snapshot,
        rules: &RuleSet,
        findings: Vec<Finding>,
        gate: Gate,
    ) -> Report {
        let mut tally = Tally::default();
        findings.iter().for_each(|f| tally.add(f));
        Report::build_counted(snapshot, rules, findings.into(), &tally, gate)
    }

    /// As [`Report::build`], from findings already counted as they were
    /// made (spooled ones are not read again).
    pub fn build_counted(
        snapshot: &Snapshot,
        rules: &RuleSet,
        findings: crate::findings::Findings,
        tally: &Tally,
        gate: Gate,
    ) -> Report {
        let Tally {
            total,
            by_severity,
            per_rule,
            per_account,
            ..
        } = tally;
        let (total, by_severity) = (*total, by_severity.clone());
        let accounts = snapshot
            .accounts
            .iter()
            .map(|a| AccountSummary {
                name: a.name.clone(),
                environment: a.environment.clone(),
                account_id: a.account_id.clone(),
                counts: per_account
                    .get(a.name.as_str())
                    .copied()
                    .unwrap_or_default(),
                gaps: a.gaps.clone(),
                inventory: Inventory::of(a),
            })
            .collect();
        let rules = rules
            .rules
            .iter()
            .map(|r| RuleSummary {
                doc: ruledoc::RuleDoc::of(r),
                counts: per_rule.get(r.id.as_str()).copied().unwrap_or_default(),
            })
            .collect();
        Report {
            schema: SCHEMA.to_string(),
            tool: Tool {
                name: "dbaudit".to_string(),
                version: crate::VERSION.to_string(),
                commit: crate::COMMIT.to_string(),
                rule_pack: crate::rules::pack_digest().to_string(),
            },
            collected_at: snapshot.collected_at.clone(),
            accounts,
            rules,
            findings,
            summary: Summary { total, by_severity },
            gate,
            waivers: Vec::new(),
            fixed: None,
            baseline: None,
            not_evaluated: Vec::new(),
            completeness: None,
            frameworks: Vec::new(),
            plan: None,
            input_digest: None,
            topology: None,
        }
    }
}

/// The demo estate, its built-in rules and one failing finding of it: what
/// renderer tests multiply into many findings.
#[cfg(test)]
pub(crate) fn demo_failing() -> (Snapshot, RuleSet, Finding) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let snapshot = Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap();
    let config = crate::config::Config::load(&root.join("fixtures/demo/dbaudit.toml")).unwrap();
    let rules = RuleSet::load(&[], &[]).unwrap();
    let failing = crate::evaluate::evaluate(&snapshot, &rules, &config)
        .into_iter()
        .find(|f| f.outcome == Outcome::Fail)
        .unwrap();
    (snapshot, rules, failing)
}

/// A report of `findings` as the demo's audit builds one (gate on high).
#[cfg(test)]
pub(crate) fn report_of(snapshot: &Snapshot, rules: &RuleSet, findings: Vec<Finding>) -> Report {
    let gate = gate::decide(&findings, Severity::High, OnIncomplete::Fail);
    Report::build(snapshot, rules, findings, gate)
}

#[cfg(test)]
mod tests {
    use super::Inventory;

    #[test]
    fn inventory_says_what_was_audited_and_warns_when_empty() {
        let one = Inventory {
            regions: vec!["eu-west-1".into()],
            db_clusters: 1,
            db_instances: 3,
            iam_principals: Some(1),
        };
        assert_eq!(
            one.describe(),
            "1 DB cluster, 3 DB instances in eu-west-1; 1 IAM principal (users and roles)"
        );
        let empty = Inventory {
            regions: vec!["us-east-1".into()],
            ..Inventory::default()
        };
        let line = empty.describe();
        assert!(
            line.starts_with("0 DB clusters, 0 DB instances in us-east-1 (no database found"),
            "{line}"
        );
        assert!(
            !line.contains("IAM"),
            "IAM not collected: not counted as zero: {line}"
        );
    }

    #[test]
    fn fingerprint_is_stable_hex() {
        let f = super::fingerprint(
            "db.x",
            "111111111111",
            "arn:aws:rds:eu-west-1:111111111111:cluster:a",
        );
        assert_eq!(f.len(), 32);
        // Pinned: baselines and code-scanning alerts are keyed on it, so the
        // encoding must never change (sha256 of the NUL-terminated parts,
        // first 16 bytes, lower-case hex).
        assert_eq!(f, "81af23f5489fcb691ad3e3dc12a3de93");
        assert!(
            f.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            f,
            super::fingerprint(
                "db.x",
                "111111111111",
                "arn:aws:rds:eu-west-1:111111111111:cluster:a"
            )
        );
        assert_ne!(
            f,
            super::fingerprint(
                "db.x",
                "111111111111",
                "arn:aws:rds:eu-west-1:111111111111:cluster:b"
            )
        );
    }
}
