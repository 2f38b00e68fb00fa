//! Terminal table: grouped by account, most severe first, with a summary line.

use std::io::{self, Write};

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use super::{Finding, Outcome, Report};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Colours (a TTY without `NO_COLOR`).
    pub color: bool,
    /// Also list passing findings.
    pub show_passed: bool,
    /// Terminal width, if known.
    pub width: Option<u16>,
}

pub fn render(report: &Report, out: &mut dyn Write, style: Style) -> io::Result<()> {
    for account in &report.accounts {
        let c = account.counts;
        let id = if account.account_id.is_empty() {
            "unknown id".to_string()
        } else {
            account.account_id.clone()
        };
        writeln!(
            out,
            "{} ({}, {id}): {} failed, {} error, {} waived, {} passed",
            paint(&account.name, style.color, "1"),
            account.environment,
            c.fail,
            c.error,
            c.waived,
            c.pass
        )?;
        for gap in &account.gaps {
            writeln!(out, "  gap: {gap}")?;
        }
        // An account that could not be reached: every rule errors for the
        // same reason, said once above; one line instead of a row per rule.
        if account.gaps.iter().any(|g| g.service == "sts") {
            writeln!(
                out,
                "  not evaluated: {} rule(s) report error because the account could not be reached\n",
                c.error
            )?;
            continue;
        }
        writeln!(out, "  audited: {}", account.inventory.describe())?;
        let mut rows: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| *f.account == *account.name)
            .filter(|f| style.show_passed || f.outcome != Outcome::Pass)
            .collect();
        rows.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.outcome.cmp(&a.outcome))
                .then(a.rule_id.cmp(&b.rule_id))
                .then(a.resource_id.cmp(&b.resource_id))
        });
        if rows.is_empty() {
            writeln!(out, "  no findings to show\n")?;
            continue;
        }
        let mut table = Table::new();
        table
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(w) = style.width {
            table.set_width(w);
        } else {
            table.set_width(160);
        }
        if style.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table.set_header([
            "Severity", "Outcome", "Rule", "Resource", "Region", "Message",
        ]);
        for f in rows {
            let sev = Cell::new(f.severity.as_str());
            // With a baseline, failures say whether they are new.
            let outcome = Cell::new(match (f.outcome, f.baseline) {
                (Outcome::Fail, Some(crate::baseline::BaselineState::New)) => "fail NEW",
                (Outcome::Fail, Some(crate::baseline::BaselineState::Existing)) => "fail EXISTING",
                (o, _) => o.as_str(),
            });
            let (sev, outcome) = if style.color {
                let sev_color = match f.severity {
                    crate::rules::Severity::Critical => Color::Magenta,
                    crate::rules::Severity::High => Color::Red,
                    crate::rules::Severity::Medium => Color::Yellow,
                    _ => Color::Blue,
                };
                let out_color = match f.outcome {
                    Outcome::Fail => Color::Red,
                    Outcome::Error => Color::Yellow,
                    Outcome::Pass => Color::Green,
                    Outcome::Waived => Color::Cyan,
                };
                (
                    sev.fg(sev_color),
                    outcome.fg(out_color).add_attribute(Attribute::Bold),
                )
            } else {
                (sev, outcome)
            };
            table.add_row(vec![
                sev,
                outcome,
                Cell::new(&f.rule_id),
                Cell::new(&f.resource_id),
                Cell::new(f.region.as_deref().unwrap_or("-")),
                Cell::new(&f.message),
            ]);
        }
        writeln!(out, "{table}\n")?;
    }
    for w in report.waivers.iter().filter(|w| w.status != "applied") {
        let what = match w.status {
            "expired" => format!(
                "expired on {}: it no longer applies",
                w.waiver.expires.as_deref().unwrap_or("?")
            ),
            _ => "unused: it matched no failing finding".to_string(),
        };
        writeln!(
            out,
            "waiver {} (rule {}): {what}",
            w.waiver.location, w.rule
        )?;
    }
    if !report.not_evaluated.is_empty() {
        let mut by_reason: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for n in &report.not_evaluated {
            by_reason.entry(&n.reason).or_default().push(&n.rule);
        }
        for (reason, rules) in by_reason {
            writeln!(
                out,
                "not evaluated ({reason}): {} rule(s): {}",
                rules.len(),
                rules.join(", ")
            )?;
        }
    }
    if let Some(fixed) = &report.fixed {
        let new = report
            .findings
            .iter()
            .filter(|f| f.baseline == Some(crate::baseline::BaselineState::New))
            .count();
        writeln!(
            out,
            "baseline: {new} new failing finding(s), {} fixed since the baseline",
            fixed.len()
        )?;
    }
    let t = report.summary.total;
    let g = &report.gate;
    let verdict = match g.status {
        "fail" => paint("FAILED", style.color, "31;1"),
        "incomplete" => paint("INCOMPLETE", style.color, "33;1"),
        _ => paint("PASSED", style.color, "32;1"),
    };
    writeln!(
        out,
        "{} rules, {} findings: {} failed, {} error, {} waived, {} passed. Gate {verdict} (exit {}): {}.",
        report.rules.len(),
        t.pass + t.fail + t.error + t.waived,
        t.fail,
        t.error,
        t.waived,
        t.pass,
        g.exit_code,
        g.reason
    )
}

fn paint(text: &str, color: bool, code: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
