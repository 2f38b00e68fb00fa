//! Terminal table: a per-rule summary (rule, severity, counts, example
//! resources), then the findings grouped by account, most severe first, then
//! a summary line. Fits the width it is given: below 100 columns the severity
//! and outcome share a column and the region moves under the resource.

use std::io::{self, Write};

use comfy_table::{
    Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width, presets,
};

use super::gate::GateStatus;
use super::{Finding, Outcome, Report};
use crate::waivers::WaiverState;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Colours (a TTY without `NO_COLOR`).
    pub color: bool,
    /// Also list passing findings.
    pub show_passed: bool,
    /// Width to fit (`COLUMNS` or the terminal's); `None`: the terminal's
    /// when on one, else 160.
    pub width: Option<u16>,
    /// stdout is a terminal.
    pub tty: bool,
    /// The per-rule summary only, no finding rows.
    pub compact: bool,
}

/// Example resources named per rule in the summary.
const EXAMPLES: usize = 3;
/// Below this width, columns are merged.
const NARROW: u16 = 100;

fn new_table(style: &Style) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    match style.width {
        Some(w) => {
            table.set_width(w);
        }
        // On a terminal comfy-table measures it; into a file or a pipe, a
        // fixed width keeps the output the same everywhere.
        None if style.tty => {}
        None => {
            table.set_width(160);
        }
    }
    if style.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table
}

/// Rule ids are never broken across lines (`db.network.not-publicl` /
/// `y-accessible` cannot be searched for): the column is at least as wide
/// as its longest id; the other columns wrap instead.
fn keep_ids_whole<'a>(table: &mut Table, column: usize, ids: impl Iterator<Item = &'a str>) {
    let widest = ids.map(|id| id.chars().count()).max().unwrap_or(0);
    if let Some(c) = table.column_mut(column) {
        // Plus the cell's padding, one space on each side.
        let width = u16::try_from(widest + 2).unwrap_or(u16::MAX);
        c.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(width)));
    }
}

fn narrow(style: &Style) -> bool {
    style.width.is_some_and(|w| w < NARROW)
}

/// Rules with failures or errors: severity, counts and a few resources.
fn rule_summary(report: &Report, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let mut rules: Vec<&super::RuleSummary> = report
        .rules
        .iter()
        .filter(|r| r.counts.fail > 0 || r.counts.error > 0)
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    rules.sort_by(|a, b| {
        b.doc
            .severity
            .cmp(&a.doc.severity)
            .then(b.counts.fail.cmp(&a.counts.fail))
            .then(a.doc.id.cmp(&b.doc.id))
    });
    let mut table = new_table(style);
    // Narrow: the rule id keeps its whole width (ids are never broken), so
    // the severity goes under it and the counts share a column.
    let narrow = narrow(style);
    if narrow {
        table.set_header(["Rule", "Fail/Err", "Examples"]);
    } else {
        table.set_header(["Severity", "Rule", "Failed", "Errors", "Examples"]);
    }
    // The first few failing or erroring resources of each rule, in report
    // order, and how many (the rule's counts). The findings are read (an
    // account at a time when spooled) only until every rule listed has its
    // examples: in an organization's run, the first accounts.
    let many = |r: &super::RuleSummary| r.counts.fail + r.counts.error + r.counts.unknown;
    let mut wanted: std::collections::HashMap<&str, usize> = rules
        .iter()
        .map(|r| (r.doc.id.as_str(), many(r).min(EXAMPLES)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut shown: std::collections::HashMap<std::sync::Arc<str>, Vec<String>> = Default::default();
    for chunk in report.findings.chunks_where(crate::findings::not_passed) {
        if wanted.is_empty() {
            break;
        }
        for f in chunk?
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Fail | Outcome::Error | Outcome::Unknown))
        {
            let Some(left) = wanted.get_mut(&*f.rule_id) else {
                continue;
            };
            *left -= 1;
            if *left == 0 {
                wanted.remove(&*f.rule_id);
            }
            shown
                .entry(f.rule_id.clone())
                .or_default()
                .push(format!("{}/{}", f.account, f.resource_id));
        }
    }
    for r in rules {
        let mut examples = shown.remove(r.doc.id.as_str()).unwrap_or_default();
        let n = many(r);
        if n > EXAMPLES {
            examples.push(format!("and {} more", n - EXAMPLES));
        }
        if narrow {
            table.add_row(vec![
                Cell::new(format!("{}\n{}", r.doc.id, r.doc.severity.as_str())),
                Cell::new(format!("{}/{}", r.counts.fail, r.counts.error)),
                Cell::new(examples.join(", ")),
            ]);
            continue;
        }
        table.add_row(vec![
            Cell::new(r.doc.severity.as_str()),
            Cell::new(&r.doc.id),
            Cell::new(r.counts.fail),
            Cell::new(r.counts.error),
            Cell::new(examples.join(", ")),
        ]);
    }
    keep_ids_whole(&mut table, usize::from(!narrow), rules_ids(report));
    writeln!(out, "Rules with failures or errors:")?;
    writeln!(out, "{table}\n")
}

pub fn render(report: &Report, out: &mut dyn Write, style: Style) -> io::Result<()> {
    rule_summary(report, out, &style)?;
    let by_account = report.findings.by_account();
    for account in &report.accounts {
        let c = account.counts;
        let id = if account.account_id.is_empty() {
            "unknown id".to_string()
        } else {
            account.account_id.clone()
        };
        let head = format!(
            "{} ({}, {id}): {} failed, {} error, {} waived, {} passed",
            paint(&account.name, style.color, "1"),
            account.environment,
            c.fail,
            c.error,
            c.waived,
            c.pass
        );
        line(out, &style, "", &head)?;
        for gap in &account.gaps {
            line(out, &style, "  ", &format!("gap: {gap}"))?;
        }
        // An account that could not be reached: every rule errors for the
        // same reason, said once above; one line instead of a row per rule.
        if crate::snapshot::Gap::unreached(&account.gaps) {
            writeln!(
                out,
                "  not evaluated: {} rule(s) report error because the account could not be reached\n",
                c.error
            )?;
            continue;
        }
        line(
            out,
            &style,
            "  ",
            &format!("audited: {}", account.inventory.describe()),
        )?;
        let keep = match style.show_passed {
            true => crate::findings::every,
            false => crate::findings::not_passed,
        };
        let findings = by_account.get_where(account.name.as_str(), keep)?;
        let mut rows: Vec<&Finding> = findings
            .iter()
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
        if style.compact {
            writeln!(out, "  ({} finding(s) not listed: --compact)\n", rows.len())?;
            continue;
        }
        let narrow = narrow(&style);
        let mut table = new_table(&style);
        if narrow {
            table.set_header(["Finding", "Message"]);
        } else {
            table.set_header([
                "Severity", "Outcome", "Rule", "Resource", "Region", "Message",
            ]);
        }
        for f in rows.iter().copied() {
            let sev = Cell::new(f.severity.as_str());
            let outcome = Cell::new(outcome_text(f));
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
                    Outcome::Unknown => Color::DarkYellow,
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
            if narrow {
                // The rule id whole on its line, then severity and outcome,
                // then the resource and region; the message beside them.
                let resource = match f.region.as_deref() {
                    Some(r) => format!("{} ({r})", f.resource_id),
                    None => f.resource_id.to_string(),
                };
                let finding = format!(
                    "{}\n{} {}\n{resource}",
                    f.rule_id,
                    f.severity.as_str(),
                    outcome_text(f)
                );
                table.add_row(vec![Cell::new(finding), Cell::new(&f.message)]);
                continue;
            }
            table.add_row(vec![
                sev,
                outcome,
                Cell::new(&f.rule_id),
                Cell::new(&f.resource_id),
                Cell::new(f.region.as_deref().unwrap_or("-")),
                Cell::new(&f.message),
            ]);
        }
        keep_ids_whole(
            &mut table,
            if narrow { 0 } else { 2 },
            rows.iter().map(|f| &*f.rule_id),
        );
        writeln!(out, "{table}\n")?;
    }
    for w in report.waivers.iter().filter(|w| w.needs_attention()) {
        let what = match w.status {
            WaiverState::Expired => format!(
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
    if let Some(c) = &report.completeness {
        line(out, &style, "", &format!("coverage: {}", c.note))?;
    }
    if !report.not_evaluated.is_empty() {
        let mut by_reason: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for n in &report.not_evaluated {
            by_reason.entry(&n.reason).or_default().push(&n.rule);
        }
        for (reason, rules) in by_reason {
            let text = format!(
                "not evaluated ({reason}): {} rule(s): {}",
                rules.len(),
                rules.join(", ")
            );
            line(out, &style, "", &text)?;
        }
    }
    if let Some(plan) = &report.plan {
        plan_section(out, &style, plan)?;
    }
    for card in &report.frameworks {
        scorecard(out, &style, card)?;
    }
    if let Some(b) = report.baseline_summary()? {
        writeln!(
            out,
            "baseline: {} new failing finding(s), {} fixed since the baseline",
            b.new, b.fixed
        )?;
    }
    let t = report.summary.total;
    let g = &report.gate;
    let verdict = match g.status {
        GateStatus::Fail => paint("FAILED", style.color, "31;1"),
        GateStatus::Incomplete => paint("INCOMPLETE", style.color, "33;1"),
        GateStatus::Pass => paint("PASSED", style.color, "32;1"),
    };
    let unknown = if t.unknown > 0 {
        format!(", {} unknown until apply", t.unknown)
    } else {
        String::new()
    };
    let text = format!(
        "{} rules, {} findings: {} failed, {} error{unknown}, {} waived, {} passed. Gate {verdict} (exit {}): {}.",
        report.rules.len(),
        t.pass + t.fail + t.error + t.waived + t.unknown,
        t.fail,
        t.error,
        t.waived,
        t.pass,
        g.exit_code,
        g.reason
    );
    line(out, &style, "", &text)
}

/// `dbaudit plan`: each change of the plan and what became of it.
fn plan_section(
    out: &mut dyn Write,
    style: &Style,
    plan: &crate::report::PlanSummary,
) -> io::Result<()> {
    let count = |t: &str| plan.changes.iter().filter(|c| c.treatment == t).count();
    line(
        out,
        style,
        "",
        &format!(
            "plan {} (terraform {}) on account {} in {}: {} change(s) applied, {} not read by any rule, {} not predicted, {} without change",
            plan.file,
            plan.terraform_version.as_deref().unwrap_or("?"),
            plan.account,
            plan.region,
            count("applied"),
            count("not-read"),
            count("not-predicted"),
            count("no-change"),
        ),
    )?;
    for c in plan.changes.iter().filter(|c| c.treatment != "no-change") {
        let mut text = format!("{} {} [{}]", c.action, c.address, c.treatment);
        if let Some(l) = &c.location {
            text.push_str(&format!(" at {}:{}", l.path, l.line));
        }
        if !c.unknown.is_empty() {
            text.push_str(&format!("; known after apply: {}", c.unknown.join(", ")));
        }
        if let Some(n) = &c.note {
            text.push_str(&format!("; {n}"));
        }
        line(out, style, "  ", &text)?;
    }
    for r in &plan.resolved {
        line(out, style, "  ", &format!("resolved: {r}"))?;
    }
    Ok(())
}

/// Characters a terminal shows (ANSI colour sequences take no room).
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// A line of prose, word-wrapped to the style's width when it has one;
/// continuation lines are indented two more spaces.
/// A framework's scorecard: a count per status, then each control that is
/// not a plain pass with its status, rules and failing accounts.
fn scorecard(out: &mut dyn Write, style: &Style, card: &super::Scorecard) -> io::Result<()> {
    let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
    for c in &card.controls {
        *by_status.entry(c.status.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(
        out,
        "\ncompliance: {} {} ({}): {} controls: {}",
        card.name,
        card.version,
        card.framework,
        card.controls.len(),
        counts.join(", ")
    )?;
    for c in card.controls.iter().filter(|c| c.status != "pass") {
        let mut text = format!("{} {}: {} — {}", c.status, c.id, c.title, {
            if c.rules.is_empty() {
                "no rule checks it".to_string()
            } else {
                format!("rules {}", c.rules.join(", "))
            }
        });
        if !c.accounts_failing.is_empty() {
            text.push_str(&format!("; failing in {}", c.accounts_failing.join(", ")));
        }
        line(out, style, "  ", &text)?;
    }
    Ok(())
}

fn line(out: &mut dyn Write, style: &Style, indent: &str, text: &str) -> io::Result<()> {
    // `COLUMNS`, else the terminal's width; into a file or a pipe, whole lines.
    let width = style
        .width
        .or_else(|| {
            if style.tty {
                Table::new().width()
            } else {
                None
            }
        })
        .map(usize::from);
    let Some(width) = width else {
        return writeln!(out, "{indent}{text}");
    };
    let mut current = indent.to_string();
    let mut len = visible_len(indent);
    let mut first = true;
    for word in text.split(' ') {
        let w = visible_len(word);
        if !first && len + 1 + w > width {
            writeln!(out, "{current}")?;
            current = format!("{indent}  ");
            len = current.len();
            first = true;
        }
        if !first {
            current.push(' ');
            len += 1;
        }
        current.push_str(word);
        len += w;
        first = false;
    }
    writeln!(out, "{current}")
}

/// The outcome; with a baseline, failures say whether they are new.
fn outcome_text(f: &Finding) -> &'static str {
    match (f.outcome, f.baseline) {
        (Outcome::Fail, Some(crate::finding::BaselineState::New)) => "fail NEW",
        (Outcome::Fail, Some(crate::finding::BaselineState::Existing)) => "fail EXISTING",
        (o, _) => o.as_str(),
    }
}

fn paint(text: &str, color: bool, code: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The ids of the rules the summary lists.
fn rules_ids(report: &Report) -> impl Iterator<Item = &str> {
    report
        .rules
        .iter()
        .filter(|r| r.counts.fail > 0 || r.counts.error > 0)
        .map(|r| r.doc.id.as_str())
}
