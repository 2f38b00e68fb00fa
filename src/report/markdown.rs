//! Markdown summary for `$GITHUB_STEP_SUMMARY` and pull-request comments.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::gate::GateStatus;
use super::{Finding, Outcome, Report};
use crate::rules::Severity;

/// Failing resources shown per rule before "and N more".
const RESOURCES_SHOWN: usize = 5;

/// A rule's failures: the first few as `account/resource`, each marked
/// **NEW** or existing when there is a baseline, and how many in all.
#[derive(Default)]
struct Failing {
    shown: Vec<String>,
    count: usize,
}

impl Failing {
    fn add(&mut self, f: &Finding) {
        self.count += 1;
        if self.shown.len() < RESOURCES_SHOWN {
            let mark = match f.baseline {
                Some(crate::finding::BaselineState::New) => " **NEW**",
                Some(crate::finding::BaselineState::Existing) => " (existing)",
                None => "",
            };
            self.shown.push(format!(
                "`{}/{}`{mark}",
                f.account,
                f.resource_id.replace('|', "\\|")
            ));
        }
    }

    fn describe(&self) -> String {
        let mut names = self.shown.clone();
        if self.count > RESOURCES_SHOWN {
            names.push(format!("and {} more", self.count - RESOURCES_SHOWN));
        }
        names.join(", ")
    }
}

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let g = &report.gate;
    let verdict = match g.status {
        GateStatus::Fail => "❌ FAILED",
        GateStatus::Incomplete => "⚠️ INCOMPLETE",
        GateStatus::Pass => "✅ PASSED",
    };
    writeln!(out, "## dbaudit: {verdict} (exit {})\n", g.exit_code)?;
    writeln!(out, "{}.\n", g.reason)?;
    writeln!(
        out,
        "Snapshot collected at {}; dbaudit {}.\n",
        report.collected_at, report.tool.version
    )?;

    // Totals per environment and severity (failing findings).
    let mut envs: BTreeMap<&str, BTreeMap<Severity, usize>> = BTreeMap::new();
    let mut other: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    // One pass over the findings (an account at a time when spooled).
    let mut failing_of: std::collections::HashMap<String, Failing> = Default::default();
    let env_names: std::collections::BTreeSet<&str> = report
        .accounts
        .iter()
        .map(|a| a.environment.as_str())
        .collect();
    for chunk in report.findings.chunks() {
        for f in chunk?.iter() {
            if f.outcome == Outcome::Fail {
                failing_of.entry(f.rule_id.to_string()).or_default().add(f);
            }
            // The environment as the report's accounts spell it (a finding's
            // own string does not outlive its chunk).
            let Some(e) = env_names.get(&*f.environment).copied() else {
                continue;
            };
            envs.entry(e).or_default();
            let o = other.entry(e).or_default();
            match f.outcome {
                Outcome::Fail => *envs.get_mut(e).unwrap().entry(f.severity).or_default() += 1,
                // `dbaudit plan`'s unknown-until-apply counts with errors
                // here; the plan section lists them.
                Outcome::Error | Outcome::Unknown => o[0] += 1,
                Outcome::Waived => o[1] += 1,
                Outcome::Pass => o[2] += 1,
            }
        }
    }
    writeln!(
        out,
        "| environment | critical | high | medium | low | info | errors | waived | passed |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for (env, sev) in &envs {
        let n = |s| sev.get(&s).copied().unwrap_or(0);
        let o = other[env];
        writeln!(
            out,
            "| {env} | {} | {} | {} | {} | {} | {} | {} | {} |",
            n(Severity::Critical),
            n(Severity::High),
            n(Severity::Medium),
            n(Severity::Low),
            n(Severity::Info),
            o[0],
            o[1],
            o[2]
        )?;
    }
    let failing: Vec<&super::RuleSummary> =
        report.rules.iter().filter(|r| r.counts.fail > 0).collect();
    if !failing.is_empty() {
        writeln!(out, "\n### Failing rules\n")?;
        writeln!(
            out,
            "| rule | severity | failures | failing resources | title |"
        )?;
        writeln!(out, "|---|---|---|---|---|")?;
        let mut failing = failing;
        failing.sort_by(|a, b| {
            b.doc
                .severity
                .cmp(&a.doc.severity)
                .then(a.doc.id.cmp(&b.doc.id))
        });
        for r in failing {
            writeln!(
                out,
                "| [`{}`]({}/blob/main/docs/rules.md#{}) | {} | {} | {} | {} |",
                r.doc.id,
                super::sarif::INFORMATION_URI,
                r.doc.anchor(),
                r.doc.severity,
                r.counts.fail,
                failing_of
                    .get(r.doc.id.as_str())
                    .map(Failing::describe)
                    .unwrap_or_default(),
                r.doc.title
            )?;
        }
    }
    writeln!(out, "\n### Accounts audited\n")?;
    for a in &report.accounts {
        if crate::snapshot::Gap::unreached(&a.gaps) {
            writeln!(out, "- **{}** ({}): not reached", a.name, a.environment)?;
        } else {
            writeln!(
                out,
                "- **{}** ({}): {}",
                a.name,
                a.environment,
                a.inventory.describe()
            )?;
        }
    }
    let gaps: Vec<_> = report
        .accounts
        .iter()
        .flat_map(|a| a.gaps.iter().map(move |g| (a, g)))
        .collect();
    if !gaps.is_empty() {
        writeln!(out, "\n### Data not collected\n")?;
        for (a, g) in gaps {
            writeln!(out, "- **{}**: {g}", a.name)?;
        }
    }
    let attention: Vec<_> = report
        .waivers
        .iter()
        .filter(|w| w.needs_attention())
        .collect();
    if !attention.is_empty() {
        writeln!(out, "\n### Waivers needing attention\n")?;
        for w in attention {
            writeln!(
                out,
                "- `{}` ({}): {} — {}",
                w.rule, w.waiver.location, w.status, w.waiver.reason
            )?;
        }
    }
    if let Some(c) = &report.completeness {
        writeln!(out, "\n### Coverage\n\n{}.", c.note)?;
    }
    if !report.not_evaluated.is_empty() {
        writeln!(out, "\n### Rules not evaluated\n")?;
        for n in &report.not_evaluated {
            writeln!(out, "- `{}`: {}", n.rule, n.reason)?;
        }
    }
    for card in &report.frameworks {
        writeln!(
            out,
            "\n### Compliance: {} {}\n\n| control | title | status | rules | failing accounts |\n|---|---|---|---|---|",
            card.name, card.version
        )?;
        for c in &card.controls {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                c.id,
                c.title.replace('|', "\\|"),
                c.status,
                if c.rules.is_empty() {
                    "—".to_string()
                } else {
                    c.rules
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                if c.accounts_failing.is_empty() {
                    "—".to_string()
                } else {
                    c.accounts_failing.join(", ")
                }
            )?;
        }
    }
    if let Some(b) = report.baseline_summary()? {
        writeln!(
            out,
            "\n### Against the baseline\n\n{} new, {} existing, {} fixed.",
            b.new, b.existing, b.fixed
        )?;
    }
    if let Some(plan) = &report.plan {
        plan_section(report, plan, out)?;
    }
    Ok(())
}

/// `dbaudit plan`: the changes, and the findings the plan introduces or
/// leaves unknown, with the .tf line of each.
fn plan_section(
    report: &Report,
    plan: &crate::report::PlanSummary,
    out: &mut dyn Write,
) -> io::Result<()> {
    let cell = |s: &str| s.replace('|', "\\|");
    writeln!(
        out,
        "\n### Plan `{}` on {} ({})\n",
        cell(&plan.file),
        plan.account,
        plan.region
    )?;
    writeln!(out, "| change | action | dbaudit | where | note |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for c in plan.changes.iter().filter(|c| c.treatment != "no-change") {
        let mut note = c.note.clone().unwrap_or_default();
        if !c.unknown.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!("known after apply: {}", c.unknown.join(", ")));
        }
        writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            cell(&c.address),
            c.action,
            c.treatment,
            c.location
                .as_ref()
                .map(|l| format!("`{}:{}`", cell(&l.path), l.line))
                .unwrap_or_else(|| "—".into()),
            cell(&note)
        )?;
    }
    let findings = report.findings.load()?;
    let shown: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.outcome == Outcome::Unknown
                || (f.outcome == Outcome::Fail
                    && f.baseline == Some(crate::finding::BaselineState::New))
        })
        .collect();
    if !shown.is_empty() {
        writeln!(out, "\n| outcome | rule | resource | where | message |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for f in shown.iter().take(RESOURCES_SHOWN * 10) {
            let outcome = match f.outcome {
                Outcome::Unknown => "unknown",
                _ => "**new fail**",
            };
            writeln!(
                out,
                "| {outcome} | `{}` | `{}/{}` | {} | {} |",
                f.rule_id,
                f.account,
                cell(&f.resource_id),
                f.location
                    .as_ref()
                    .map(|l| format!("`{}:{}`", cell(&l.path), l.line))
                    .unwrap_or_else(|| "—".into()),
                cell(&f.message)
            )?;
        }
        if shown.len() > RESOURCES_SHOWN * 10 {
            writeln!(out, "\nand {} more.", shown.len() - RESOURCES_SHOWN * 10)?;
        }
    }
    Ok(())
}
