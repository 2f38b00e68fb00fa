//! An auditor's evidence pack (`dbaudit evidence`): per control of a
//! framework, the run's findings of the rules that map to it, the waivers
//! of those rules with owner, reason and expiry, the control's history over
//! the recorded runs, and the digests of what the run evaluated. Files are
//! produced here as (relative path, text); the command writes them.

use serde_json::json;

use super::{ControlScore, Report, Scorecard};
use crate::finding::Outcome;

/// One recorded run as a control's history sees it (from the findings
/// history: `History::rule_history`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleRun {
    pub seq: i64,
    pub run_id: String,
    pub at: String,
    /// Its findings are still kept (not pruned).
    pub kept: bool,
    /// The digest of the snapshot, rules and configuration it evaluated.
    pub input_digest: String,
    pub gate_status: String,
    pub fail: usize,
    pub waived: usize,
}

/// What identifies the evaluated run.
pub struct RunIdentity {
    /// SHA-256 of the snapshot as evaluated (its canonical JSON).
    pub snapshot_sha256: String,
    /// The history's input digest of the run (snapshot, rules,
    /// configuration, selection, `--fail-on`).
    pub input_digest: String,
}

/// Every file of the pack for one framework's scorecard. `history`: the
/// recorded runs with the counts of each control's rules, when a history
/// is open (`None`: the pack says none was given).
pub fn files(
    report: &Report,
    card: &Scorecard,
    id: &RunIdentity,
    history: &dyn Fn(&[String]) -> Option<Vec<RuleRun>>,
) -> std::io::Result<Vec<(String, String)>> {
    // The pages list every finding that did not pass and count the passes:
    // the passes are counted as the findings are read (an account at a
    // time when spooled), never held.
    let mut failing = Vec::new();
    let mut passed: std::collections::HashMap<std::sync::Arc<str>, usize> = Default::default();
    for chunk in report.findings.chunks() {
        for f in chunk?.iter() {
            if f.outcome == Outcome::Pass {
                *passed.entry(f.rule_id.clone()).or_default() += 1;
            } else {
                failing.push(f.clone());
            }
        }
    }
    let findings = Seen { failing, passed };
    let mut out = Vec::new();
    let mut index = format!(
        "# Evidence: {} {}\n\n{}\n\n| control | title | coverage | status | rules |\n|---|---|---|---|---|\n",
        card.name,
        card.version,
        run_lines(report, id)
    );
    let mut all = Vec::new();
    for c in &card.controls {
        let page = format!("{}.md", file_name(&c.id));
        let file = format!("{}/{page}", card.framework);
        index.push_str(&format!(
            "| [{}]({page}) | {} | {} | {} | {} |\n",
            c.id,
            c.title,
            c.coverage,
            c.status,
            c.rules.join(", ")
        ));
        let runs = history(&c.rules);
        out.push((
            file,
            control_page(report, &findings, card, c, id, runs.as_deref()),
        ));
        all.push(json!({
            "control": c,
            "history": runs,
        }));
    }
    out.push((format!("{}/index.md", card.framework), index));
    let doc = json!({
        "framework": card.framework,
        "name": card.name,
        "version": card.version,
        "collected_at": report.collected_at,
        "tool": report.tool,
        "snapshot_sha256": id.snapshot_sha256,
        "input_digest": id.input_digest,
        "gate": report.gate,
        "controls": all,
    });
    out.push((
        format!("{0}/{0}.json", card.framework),
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
    ));
    Ok(out)
}

/// A control id as a file name (`AC-6(5)` → `AC-6_5_`).
fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run_lines(report: &Report, id: &RunIdentity) -> String {
    format!(
        "- snapshot collected: {}\n- snapshot SHA-256: `{}`\n- run input digest: `{}`\n- dbaudit {} (commit {}, rule pack {})\n- gate: {} (exit {}): {}",
        report.collected_at,
        id.snapshot_sha256,
        id.input_digest,
        report.tool.version,
        report.tool.commit,
        report.tool.rule_pack,
        report.gate.status.as_str(),
        report.gate.exit_code,
        report.gate.reason
    )
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// What the pages show of the run's findings: those that did not pass, and
/// each rule's passes counted.
struct Seen {
    failing: Vec<crate::finding::Finding>,
    passed: std::collections::HashMap<std::sync::Arc<str>, usize>,
}

fn control_page(
    report: &Report,
    findings: &Seen,
    card: &Scorecard,
    c: &ControlScore,
    id: &RunIdentity,
    history: Option<&[RuleRun]>,
) -> String {
    let mut p = format!(
        "# {} {}: {}\n\n- framework: {} {}\n- coverage: {}\n- status in this run: **{}**\n- rules: {}\n{}\n",
        card.framework,
        c.id,
        c.title,
        card.name,
        card.version,
        c.coverage,
        c.status,
        if c.rules.is_empty() {
            "none (checked by a person)".to_string()
        } else {
            c.rules
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        run_lines(report, id)
    );
    let rules: std::collections::BTreeSet<&str> = c.rules.iter().map(String::as_str).collect();
    let passed: usize = (rules.iter()).filter_map(|r| findings.passed.get(*r)).sum();
    let findings: Vec<_> = (findings.failing.iter())
        .filter(|f| rules.contains(&*f.rule_id))
        .collect();
    p.push_str(&format!(
        "\n## Findings of this run\n\n{} passed; the others:\n\n| outcome | rule | account | region | resource | message |\n|---|---|---|---|---|---|\n",
        passed
    ));
    for f in &findings {
        p.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            f.outcome.as_str(),
            f.rule_id,
            f.account,
            f.region.as_deref().unwrap_or("-"),
            cell(&f.resource_arn),
            cell(&f.message)
        ));
    }
    p.push_str("\n## Waivers of its rules\n\n| rule | state | waived | reason | owner | ticket | expires | defined at |\n|---|---|---|---|---|---|---|---|\n");
    for w in report.waivers.iter().filter(|w| {
        c.rules
            .iter()
            .any(|r| crate::glob::matches(&w.rule, r) || w.rule == *r)
    }) {
        p.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            w.rule,
            w.status.as_str(),
            w.waived,
            cell(&w.waiver.reason),
            w.waiver.owner.as_deref().unwrap_or("-"),
            w.waiver.ticket.as_deref().unwrap_or("-"),
            w.waiver.expires.as_deref().unwrap_or("never"),
            w.waiver.location
        ));
    }
    p.push_str("\n## History over the recorded runs\n\n");
    match history {
        None => p.push_str(
            "No findings history was given (`--history FILE|URL` or `[history] store`).\n",
        ),
        Some(runs) => {
            p.push_str("| run | snapshot collected | gate | failing | waived | findings kept | input digest |\n|---|---|---|---|---|---|---|\n");
            for r in runs {
                p.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | `{}` |\n",
                    r.run_id,
                    r.at,
                    r.gate_status,
                    r.fail,
                    r.waived,
                    if r.kept { "yes" } else { "no (pruned)" },
                    r.input_digest
                ));
            }
        }
    }
    p
}
