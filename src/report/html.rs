//! The HTML report: one self-contained page (no script, no external style,
//! font or image) for people — the gate and a summary per environment,
//! plots, the estate's topology per account with the violating edges
//! marked, every rule that did not pass with its failing resources,
//! evidence and remediation, and the waivers.
//!
//! The page is a minijinja template (`html/report.html`, autoescaped) over
//! a model built here; the plots and diagrams are SVG written by
//! [`super::svg`]. The trend and age plots come from the findings history
//! when the run records into one ([`super::render::HistoryView`]); the
//! topology from the audited snapshot, when there is one, or from a
//! sharded run's parts as they are read ([`Report::topology`],
//! [`TopologyBuilder`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::sync::OnceLock;

use serde::Serialize;

use super::render::RenderContext;
use super::svg::{self, Edge, Node};
use super::{Counts, Report};
use crate::finding::{Finding, Outcome, Severity};

/// Findings listed per rule; the rest are counted (the JSON and SARIF
/// reports have them all). Keeps the page small at any estate size.
pub const MAX_ROWS_PER_RULE: usize = 200;
/// Evidence shown per finding, in characters.
pub const MAX_EVIDENCE: usize = 1_500;
/// DB clusters and instances drawn per account and region; those with
/// findings first.
pub const MAX_DBS_DRAWN: usize = 30;
/// Ingress sources drawn per diagram.
const MAX_SOURCES_DRAWN: usize = 24;
/// Topology diagrams drawn (account × region), those with violations
/// first; the rest are listed in a table. At 1,000 accounts a diagram each
/// made a 27 MB page.
pub const MAX_DIAGRAMS: usize = 24;
/// Runs in the trend plot.
pub const TREND_RUNS: usize = 30;

fn template() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.add_template("report.html", include_str!("html/report.html"))
            .expect("the report template parses (tested)");
        env
    })
}

pub fn render(report: &Report, ctx: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
    // The page's sections are capped (rows per rule, diagrams): one pass
    // over the findings, an account at a time, keeps what they show.
    let seen = Seen::of(report)?;
    let page = Page::build(report, &seen, ctx)?;
    let tmpl = template()
        .get_template("report.html")
        .map_err(io::Error::other)?;
    let mut w = io::BufWriter::new(out);
    tmpl.render_captured_to(&page, &mut w)
        .map_err(io::Error::other)?;
    w.flush()
}

/// What the page shows of the findings, gathered in one pass: each
/// environment's counts, each rule's first rows in the page's order (at
/// most [`MAX_ROWS_PER_RULE`], chosen as a stable sort of every finding
/// would) and how many, and the failing rules of each resource for the
/// diagrams.
#[derive(Default)]
struct Seen {
    /// Environment → outcome counts and failing findings per severity.
    envs: HashMap<String, (Counts, BTreeMap<Severity, usize>)>,
    /// Rule → its non-passing findings kept (with their order in the
    /// report) and how many there are.
    rows: HashMap<String, (Vec<(usize, Finding)>, usize)>,
    /// Resource ARN → its failing rules.
    failing: HashMap<String, BTreeSet<String>>,
}

impl Seen {
    fn of(report: &Report) -> io::Result<Seen> {
        let mut seen = Seen::default();
        let key = |(i, f): &(usize, Finding)| {
            (
                outcome_rank(f.outcome),
                f.account.clone(),
                f.resource_id.clone(),
                *i,
            )
        };
        let mut at = 0;
        for chunk in report.findings.chunks() {
            for f in chunk?.iter() {
                at += 1;
                let (counts, failing) = seen.envs.entry(f.environment.to_string()).or_default();
                counts.add(f.outcome);
                if f.outcome == Outcome::Fail {
                    *failing.entry(f.severity).or_default() += 1;
                    seen.failing
                        .entry(f.resource_arn.to_string())
                        .or_default()
                        .insert(f.rule_id.to_string());
                }
                if f.outcome == Outcome::Pass {
                    continue;
                }
                let (kept, n) = seen.rows.entry(f.rule_id.to_string()).or_default();
                *n += 1;
                kept.push((at, f.clone()));
                // Keep the first rows only: trimmed now and then, so that
                // a rule failing everywhere does not hold every finding.
                if kept.len() >= 2 * MAX_ROWS_PER_RULE {
                    kept.sort_by_key(key);
                    kept.truncate(MAX_ROWS_PER_RULE);
                }
            }
        }
        for (kept, _) in seen.rows.values_mut() {
            kept.sort_by_key(key);
            kept.truncate(MAX_ROWS_PER_RULE);
        }
        Ok(seen)
    }
}

#[derive(Serialize)]
struct Page {
    collected_at: String,
    tool: String,
    gate: GateView,
    environments: Vec<EnvView>,
    accounts: Vec<AccountView>,
    plots: Vec<Plot>,
    plot_note: String,
    topology: Vec<Diagram>,
    topology_note: String,
    rules: Vec<RuleView>,
    passed_rules: usize,
    not_evaluated: usize,
    coverage: Option<String>,
    /// With `--framework`: a section per framework.
    frameworks: Vec<super::Scorecard>,
    waivers: Vec<WaiverView>,
    baseline: Option<String>,
    history: Option<String>,
}

#[derive(Serialize)]
struct GateView {
    status: &'static str,
    label: &'static str,
    reason: String,
    exit_code: i32,
}

#[derive(Serialize)]
struct EnvView {
    name: String,
    accounts: usize,
    counts: Counts,
    /// Failing findings per severity, highest first (all five).
    failing: Vec<(String, usize)>,
}

#[derive(Serialize)]
struct AccountView {
    name: String,
    environment: String,
    account_id: String,
    inventory: String,
    counts: Counts,
    gaps: Vec<String>,
}

#[derive(Serialize)]
struct Plot {
    title: String,
    svg: String,
    /// The plotted numbers as a table (for screen readers and copying).
    table_head: Vec<String>,
    table: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagram {
    account: String,
    environment: String,
    region: String,
    svg: String,
    violations: Vec<String>,
    note: String,
    /// Databases drawn with failing findings.
    failing_dbs: usize,
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    title: String,
    severity: String,
    counts: Counts,
    rationale: String,
    remediation: String,
    references: Vec<String>,
    findings: Vec<FindingView>,
    more: usize,
    open: bool,
}

#[derive(Serialize)]
struct FindingView {
    outcome: &'static str,
    account: String,
    region: String,
    resource: String,
    arn: String,
    message: String,
    evidence: Option<String>,
    waiver: Option<String>,
    baseline: Option<&'static str>,
    open_since: Option<String>,
    location: Option<String>,
}

#[derive(Serialize)]
struct WaiverView {
    rule: String,
    status: String,
    reason: String,
    owner: String,
    ticket: String,
    expires: String,
    location: String,
    waived: usize,
}

impl Page {
    fn build(report: &Report, seen: &Seen, ctx: &RenderContext) -> io::Result<Page> {
        let gate = &report.gate;
        let (status, label) = match gate.status {
            super::gate::GateStatus::Pass => ("pass", "PASS"),
            super::gate::GateStatus::Fail => ("fail", "FAIL"),
            super::gate::GateStatus::Incomplete => ("incomplete", "INCOMPLETE"),
        };
        let mut envs: BTreeMap<&str, EnvView> = BTreeMap::new();
        for a in &report.accounts {
            let e = envs.entry(&a.environment).or_insert_with(|| EnvView {
                name: a.environment.clone(),
                accounts: 0,
                counts: Counts::default(),
                failing: Severity::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
            });
            e.accounts += 1;
        }
        for (env, (counts, failing)) in &seen.envs {
            if let Some(e) = envs.get_mut(env.as_str()) {
                e.counts = *counts;
                for (severity, n) in failing {
                    if let Some(slot) = e.failing.iter_mut().find(|(s, _)| s == severity.as_str()) {
                        slot.1 += n;
                    }
                }
            }
        }
        let environments: Vec<EnvView> = envs.into_values().collect();
        let (plots, plot_note) = plots(&environments, ctx);
        let (topology, topology_note) = match (ctx.snapshot, &report.topology) {
            (Some(s), _) => {
                let failing = borrowed(&seen.failing);
                let accounts: BTreeSet<&str> =
                    report.accounts.iter().map(|a| a.name.as_str()).collect();
                let mut topology = TopologyBuilder::default();
                for account in (s.accounts.iter()).filter(|a| accounts.contains(a.name.as_str())) {
                    topology.add_account(account, &failing);
                }
                let t = topology.finish();
                (t.diagrams, t.note)
            }
            // Drawn while the parts were read (`audit::audit_parts`).
            (None, Some(t)) => (t.diagrams.clone(), t.note.clone()),
            (None, None) => (
                Vec::new(),
                "The topology is drawn from the audited snapshot: render the HTML report in the run that evaluates it (evaluate or scan with --html)."
                    .to_string(),
            ),
        };
        let open_since = ctx.history.as_ref().map(|h| &h.open_since);
        Ok(Page {
            collected_at: report.collected_at.clone(),
            tool: format!(
                "dbaudit {} (commit {}, rule pack {})",
                report.tool.version, report.tool.commit, report.tool.rule_pack
            ),
            gate: GateView {
                status,
                label,
                reason: gate.reason.clone(),
                exit_code: gate.exit_code,
            },
            accounts: report
                .accounts
                .iter()
                .map(|a| AccountView {
                    name: a.name.clone(),
                    environment: a.environment.clone(),
                    account_id: a.account_id.clone(),
                    inventory: a.inventory.describe(),
                    counts: a.counts,
                    gaps: a.gaps.iter().map(|g| g.to_string()).collect(),
                })
                .collect(),
            environments,
            plots,
            plot_note,
            topology,
            topology_note,
            rules: rules(report, seen, open_since),
            passed_rules: report
                .rules
                .iter()
                .filter(|r| r.counts.fail + r.counts.error + r.counts.waived == 0)
                .count(),
            not_evaluated: report.not_evaluated.len(),
            coverage: report.completeness.as_ref().map(|c| c.note.clone()),
            frameworks: report.frameworks.clone(),
            waivers: report
                .waivers
                .iter()
                .map(|w| WaiverView {
                    rule: w.rule.clone(),
                    status: format!("{:?}", w.status).to_lowercase(),
                    reason: w.waiver.reason.clone(),
                    owner: w.waiver.owner.clone().unwrap_or_default(),
                    ticket: w.waiver.ticket.clone().unwrap_or_default(),
                    expires: w.waiver.expires.clone().unwrap_or_else(|| "never".into()),
                    location: w.waiver.location.clone(),
                    waived: w.waived,
                })
                .collect(),
            baseline: report.baseline_summary()?.map(|b| {
                format!(
                    "{} new, {} existing, {} fixed since the baseline",
                    b.new, b.existing, b.fixed
                )
            }),
            history: ctx.history.as_ref().map(|h| h.store.clone()),
        })
    }
}

fn rules(
    report: &Report,
    seen: &Seen,
    open_since: Option<&HashMap<String, (String, f64)>>,
) -> Vec<RuleView> {
    let none = (Vec::new(), 0);
    let mut out: Vec<RuleView> = report
        .rules
        .iter()
        .filter(|r| r.counts.fail + r.counts.error + r.counts.waived > 0)
        .map(|r| {
            let (fs, n) = seen.rows.get(r.doc.id.as_str()).unwrap_or(&none);
            let more = n.saturating_sub(MAX_ROWS_PER_RULE);
            RuleView {
                id: r.doc.id.clone(),
                title: r.doc.title.clone(),
                severity: r.doc.severity.to_string(),
                counts: r.counts,
                rationale: r.doc.rationale.clone(),
                remediation: r.doc.remediation.clone(),
                references: r.doc.references.clone(),
                open: r.doc.severity >= Severity::High && r.counts.fail > 0,
                findings: fs.iter().map(|(_, f)| finding(f, open_since)).collect(),
                more,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let sev = |r: &RuleView| Severity::parse(&r.severity).unwrap_or(Severity::Info);
        sev(b)
            .cmp(&sev(a))
            .then(b.counts.fail.cmp(&a.counts.fail))
            .then(a.id.cmp(&b.id))
    });
    out
}

fn outcome_rank(o: Outcome) -> u8 {
    match o {
        Outcome::Fail => 0,
        Outcome::Error | Outcome::Unknown => 1,
        Outcome::Waived => 2,
        Outcome::Pass => 3,
    }
}

fn finding(f: &Finding, open_since: Option<&HashMap<String, (String, f64)>>) -> FindingView {
    let evidence = f.evidence.as_ref().map(|e| {
        let text = serde_json::to_string_pretty(e).unwrap_or_default();
        if text.chars().count() > MAX_EVIDENCE {
            format!(
                "{}\n… (cut at {MAX_EVIDENCE} characters: the JSON report has all of it)",
                text.chars().take(MAX_EVIDENCE).collect::<String>()
            )
        } else {
            text
        }
    });
    FindingView {
        outcome: f.outcome.as_str(),
        account: f.account.to_string(),
        region: f.region.as_deref().unwrap_or("global").to_string(),
        resource: f.resource_id.to_string(),
        arn: f.resource_arn.to_string(),
        message: f.message.to_string(),
        evidence,
        waiver: f.waiver.as_ref().map(|w| {
            let mut s = w.reason.clone();
            if let Some(e) = &w.expires {
                s.push_str(&format!(" — expires {e}"));
            }
            s
        }),
        baseline: f.baseline.map(|b| match b {
            crate::finding::BaselineState::New => "new",
            crate::finding::BaselineState::Existing => "existing",
        }),
        open_since: open_since
            .and_then(|m| m.get(&f.fingerprint))
            .map(|(at, days)| format!("{at} ({days:.0} days)")),
        location: f
            .location
            .as_ref()
            .map(|l| format!("{}:{}", l.path, l.line)),
    }
}

/// Failing findings per environment and severity (this run), then the
/// history's trend and open ages when there is one.
fn plots(envs: &[EnvView], ctx: &RenderContext) -> (Vec<Plot>, String) {
    let mut plots = Vec::new();
    let groups: Vec<(String, Vec<svg::Bar>)> = envs
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                e.failing
                    .iter()
                    .map(|(s, n)| {
                        (
                            svg::severity_short(s).to_string(),
                            *n,
                            svg::severity_style(s).0.to_string(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    plots.push(Plot {
        title:
            "Failing findings per environment and severity (this run; waived findings not counted)"
                .to_string(),
        svg: svg::bars("Failing findings per environment and severity", &groups),
        table_head: std::iter::once("environment".to_string())
            .chain(Severity::ALL.iter().map(|s| s.to_string()))
            .collect(),
        table: envs
            .iter()
            .map(|e| {
                std::iter::once(e.name.clone())
                    .chain(e.failing.iter().map(|(_, n)| n.to_string()))
                    .collect()
            })
            .collect(),
    });
    let Some(h) = &ctx.history else {
        return (
            plots,
            "Trends over runs and the age of open findings come from a findings history: run with --history FILE (or [history] in dbaudit.toml)."
                .to_string(),
        );
    };
    let runs: BTreeMap<i64, String> = h.trend.iter().map(|p| (p.seq, p.at.clone())).collect();
    let xs: Vec<String> = runs
        .values()
        .map(|at| at.get(..10).unwrap_or(at).to_string())
        .collect();
    let seqs: Vec<i64> = runs.keys().copied().collect();
    let environments: BTreeSet<&str> = h.trend.iter().map(|p| p.environment.as_str()).collect();
    for env in environments {
        let series: Vec<(String, String, Vec<usize>)> = Severity::ALL
            .iter()
            .filter_map(|sev| {
                let values: Vec<usize> = seqs
                    .iter()
                    .map(|seq| {
                        h.trend
                            .iter()
                            .find(|p| {
                                p.seq == *seq && p.environment == env && p.severity == sev.as_str()
                            })
                            .map_or(0, |p| p.open)
                    })
                    .collect();
                values.iter().any(|v| *v > 0).then(|| {
                    (
                        sev.to_string(),
                        svg::severity_style(sev.as_str()).0.to_string(),
                        values,
                    )
                })
            })
            .collect();
        // Periods stay open while a finding is waived, and for accounts a
        // run did not look at: this counts more than this run's bars.
        let title = format!(
            "Open findings in {env} over the last {} runs (failing or waived; a finding stays open until a run that evaluated it sees it pass)",
            xs.len()
        );
        plots.push(Plot {
            svg: svg::lines(&title, &xs, &series),
            table_head: std::iter::once("run".to_string())
                .chain(series.iter().map(|(n, _, _)| n.clone()))
                .collect(),
            table: xs
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    std::iter::once(x.clone())
                        .chain(series.iter().map(|(_, _, v)| v[i].to_string()))
                        .collect()
                })
                .collect(),
            title,
        });
    }
    let groups = vec![(
        "open findings".to_string(),
        h.ages
            .iter()
            .map(|b| (b.label.to_string(), b.open, "s-age".to_string()))
            .collect(),
    )];
    plots.push(Plot {
        title: "Open findings by age".to_string(),
        svg: svg::bars("Open findings by age", &groups),
        table_head: vec!["age".to_string(), "open".to_string()],
        table: h
            .ages
            .iter()
            .map(|b| vec![b.label.to_string(), b.open.to_string()])
            .collect(),
    });
    (plots, String::new())
}

/// Resource ARN → its failing rules, as [`Seen`] gathers them.
pub type Failing = HashMap<String, BTreeSet<String>>;

/// The failing rules of each resource, from every failing finding of the
/// report (a spool is read past everything else).
pub fn failing_of(report: &Report) -> io::Result<Failing> {
    let mut failing = Failing::new();
    for chunk in report.findings.chunks_where(|o| o == Outcome::Fail) {
        for f in chunk?.iter().filter(|f| f.outcome == Outcome::Fail) {
            (failing.entry(f.resource_arn.to_string()).or_default()).insert(f.rule_id.to_string());
        }
    }
    Ok(failing)
}

/// [`Failing`] as [`TopologyBuilder::add_account`] reads it.
pub fn borrowed(failing: &Failing) -> HashMap<&str, BTreeSet<&str>> {
    failing
        .iter()
        .map(|(arn, rules)| (arn.as_str(), rules.iter().map(String::as_str).collect()))
        .collect()
}

/// The page's topology: the diagrams drawn and a note naming the others.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    diagrams: Vec<Diagram>,
    note: String,
}

/// A diagram not drawn: what the note says of it.
struct Left {
    account: String,
    environment: String,
    region: String,
    failing_dbs: usize,
    violations: usize,
}

/// Gathers one diagram per account and region with databases (subnets
/// grouped by VPC → DB clusters and instances → security groups → who they
/// admit), an account at a time, holding at most twice
/// [`MAX_DIAGRAMS`] of them: the page draws those with the most violating
/// paths, then the most failing databases, and names the rest in a note.
/// The choice does not depend on the order accounts come in.
#[derive(Default)]
pub struct TopologyBuilder {
    drawn: Vec<Diagram>,
    left: Vec<Left>,
}

/// Most violating paths first, then most failing databases, then by name.
fn rank(
    violations: usize,
    failing_dbs: usize,
    account: &str,
    region: &str,
) -> (
    std::cmp::Reverse<usize>,
    std::cmp::Reverse<usize>,
    String,
    String,
) {
    (
        std::cmp::Reverse(violations),
        std::cmp::Reverse(failing_dbs),
        account.to_string(),
        region.to_string(),
    )
}

impl TopologyBuilder {
    /// The diagrams of one account's regions, against the failing rules of
    /// every resource of the report.
    pub fn add_account(
        &mut self,
        account: &crate::snapshot::Account,
        failing: &HashMap<&str, BTreeSet<&str>>,
    ) {
        for region in &account.regions {
            if region.db_clusters.is_empty() && region.db_instances.is_empty() {
                continue;
            }
            self.drawn.push(diagram(
                &account.name,
                &account.environment,
                region,
                &account.gaps,
                failing,
            ));
            if self.drawn.len() >= 2 * MAX_DIAGRAMS {
                self.keep_best();
            }
        }
    }

    /// Keeps the [`MAX_DIAGRAMS`] best-ranked diagrams; the others become
    /// lines of the note.
    fn keep_best(&mut self) {
        self.drawn
            .sort_by_cached_key(|d| rank(d.violations.len(), d.failing_dbs, &d.account, &d.region));
        let rest = self.drawn.split_off(self.drawn.len().min(MAX_DIAGRAMS));
        self.left.extend(rest.into_iter().map(|d| Left {
            violations: d.violations.len(),
            failing_dbs: d.failing_dbs,
            account: d.account,
            environment: d.environment,
            region: d.region,
        }));
    }

    pub fn finish(mut self) -> Topology {
        self.keep_best();
        let mut drawn = self.drawn;
        drawn.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        let mut left = self.left;
        left.sort_by_cached_key(|d| rank(d.violations, d.failing_dbs, &d.account, &d.region));
        let note = if left.is_empty() {
            String::new()
        } else {
            format!(
                "{} of {} account/region diagrams drawn (those with violations first); the others: {}",
                drawn.len(),
                drawn.len() + left.len(),
                left.iter()
                    .map(|d| format!(
                        "{} ({}) {}: {} failing database(s), {} violating path(s)",
                        d.account, d.environment, d.region, d.failing_dbs, d.violations
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        Topology {
            diagrams: drawn,
            note,
        }
    }
}

/// Why a kind of EC2 data is missing in a region, from the account's gaps:
/// `not collected (AccessDenied on DescribeSecurityGroups)`. `None` when it
/// was read (then a missing item is really absent).
fn not_collected(gaps: &[crate::snapshot::Gap], region: &str, operation: &str) -> Option<String> {
    gaps.iter()
        .find(|g| {
            g.service == crate::vocab::Service::Ec2
                && (g.operation == operation || g.operation == "(snapshot)")
                && g.region.as_deref().is_none_or(|r| r == region)
        })
        .map(|g| format!("not collected ({} on {})", g.code, g.operation))
}

fn diagram(
    account: &str,
    environment: &str,
    region: &crate::snapshot::Region,
    gaps: &[crate::snapshot::Gap],
    failing: &HashMap<&str, BTreeSet<&str>>,
) -> Diagram {
    let idx = crate::model::RegionIndex::new(region);
    // What could not be read is drawn as such, never as verified absence.
    let groups_missing = not_collected(
        gaps,
        &region.name,
        crate::vocab::op::DESCRIBE_SECURITY_GROUPS.name,
    );
    let subnets_missing =
        not_collected(gaps, &region.name, crate::vocab::op::DESCRIBE_SUBNETS.name);
    // The DBs: clusters, and instances outside any cluster.
    struct Db<'a> {
        id: &'a str,
        arn: &'a str,
        kind: &'static str,
        subnet_group: Option<&'a str>,
        groups: &'a [String],
        port: i64,
    }
    let mut dbs: Vec<Db> = region
        .db_clusters
        .iter()
        .map(|c| Db {
            id: &c.id,
            arn: &c.arn,
            kind: "cluster",
            subnet_group: c.db_subnet_group.as_deref(),
            groups: &c.vpc_security_group_ids,
            port: c
                .port
                .map(i64::from)
                .unwrap_or_else(|| crate::model::network::default_port(&c.engine)),
        })
        .chain(
            region
                .db_instances
                .iter()
                .filter(|i| i.cluster_id.is_none())
                .map(|i| Db {
                    id: &i.id,
                    arn: &i.arn,
                    kind: "instance",
                    subnet_group: i.db_subnet_group.as_deref(),
                    groups: &i.vpc_security_group_ids,
                    port: crate::model::network::default_port(&i.engine),
                }),
        )
        .collect();
    let total = dbs.len();
    dbs.sort_by_key(|d| (failing.get(d.arn).is_none(), d.id));
    dbs.truncate(MAX_DBS_DRAWN);

    let mut subnets: BTreeMap<String, Node> = BTreeMap::new();
    let mut groups: BTreeMap<String, Node> = BTreeMap::new();
    let mut sources: BTreeMap<String, Node> = BTreeMap::new();
    let mut db_nodes = Vec::new();
    let mut edges = Vec::new();
    let mut violations = BTreeSet::new();
    for d in &dbs {
        let mut unknown = Vec::new();
        let n = idx.network(d.subnet_group, d.groups, d.port, &mut unknown);
        let rules = failing.get(d.arn);
        let db_id = format!("db:{}", d.id);
        db_nodes.push(Node {
            id: db_id.clone(),
            label: d.id.to_string(),
            note: match rules {
                Some(r) => format!("{} · {} failing rule(s)", d.kind, r.len()),
                None => format!("{} · port {}", d.kind, d.port),
            },
            title: match rules {
                Some(r) => format!(
                    "{} {}: failing {}",
                    d.kind,
                    d.arn,
                    r.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                None => format!("{} {}", d.kind, d.arn),
            },
            bad: rules.is_some(),
        });
        for s in n.subnets.iter().flatten() {
            let vpc = n.vpc_id.as_deref().unwrap_or("?");
            let id = format!("subnet:{}", s.id);
            subnets
                .entry(format!("{vpc}/{}", s.id))
                .or_insert_with(|| Node {
                    id: id.clone(),
                    label: s.id.clone(),
                    note: format!(
                        "{} · {} · {}",
                        if s.public { "PUBLIC" } else { "private" },
                        s.availability_zone,
                        vpc
                    ),
                    title: format!("{} in {vpc}: {}", s.id, s.evidence),
                    bad: s.public,
                });
            if s.public {
                violations.insert(format!(
                    "{} {} sits in public subnet {} ({})",
                    d.kind, d.id, s.id, s.evidence
                ));
            }
            edges.push(Edge {
                from: id,
                to: db_id.clone(),
                title: format!("{} is in {}", d.id, s.id),
                bad: s.public,
            });
        }
        for g in d.groups {
            let id = format!("sg:{g}");
            groups.entry(g.clone()).or_insert_with(|| Node {
                id: id.clone(),
                label: g.clone(),
                note: region
                    .security_groups
                    .iter()
                    .find(|x| &x.id == g)
                    .map(|x| x.name.clone())
                    .or_else(|| groups_missing.clone())
                    .unwrap_or_else(|| "not in the snapshot".to_string()),
                title: match &groups_missing {
                    Some(why) => format!("{g}: {why}: its rules are unknown"),
                    None => g.clone(),
                },
                bad: false,
            });
            edges.push(Edge {
                from: db_id.clone(),
                to: id,
                title: format!("{} uses {g}", d.id),
                bad: false,
            });
        }
        let sg_rule_failing =
            rules.is_some_and(|r| r.iter().any(|id| id.starts_with("db.network.sg")));
        for i in n.ingress.iter().flatten() {
            let trusted = matches!(i.kind.as_str(), "eks_cluster_sg" | "rds_proxy_sg" | "self");
            let bad = i.open_to_world || (!trusted && sg_rule_failing);
            if i.kind == "self" {
                continue;
            }
            let src = format!("src:{}", i.source);
            if !sources.contains_key(&i.source) && sources.len() >= MAX_SOURCES_DRAWN {
                continue;
            }
            sources.entry(i.source.clone()).or_insert_with(|| Node {
                id: src.clone(),
                label: if i.open_to_world {
                    format!("Internet {}", i.source)
                } else {
                    i.source.clone()
                },
                note: match &i.eks_cluster {
                    Some(c) => format!("EKS cluster {c}"),
                    None => i.kind.replace('_', " "),
                },
                title: format!("{} {}", i.kind, i.source),
                bad: false,
            });
            if let Some(node) = sources.get_mut(&i.source) {
                node.bad |= bad;
            }
            if let Some(node) = groups.get_mut(&i.security_group_id) {
                node.bad |= bad;
            }
            if bad {
                violations.insert(format!(
                    "{} → {} ({}) → {} {}",
                    i.source, i.security_group_id, i.rule, d.kind, d.id
                ));
            }
            // Drawn from the group to its source, left to right.
            edges.push(Edge {
                from: format!("sg:{}", i.security_group_id),
                to: src,
                title: format!("{} admits {} ({})", i.security_group_id, i.source, i.rule),
                bad,
            });
        }
    }
    // Unread groups admit unknown sources: say so in the column, which
    // would otherwise read as "nothing admitted".
    if let Some(why) = &groups_missing {
        sources.insert(
            "\u{0}unknown".to_string(),
            Node {
                id: "src:unknown".to_string(),
                label: "? unknown sources".to_string(),
                note: why.clone(),
                title: format!("the security groups' rules were {why}: what they admit is unknown"),
                bad: false,
            },
        );
    }
    if let (Some(why), true) = (&subnets_missing, subnets.is_empty()) {
        subnets.insert(
            "\u{0}unknown".to_string(),
            Node {
                id: "subnet:unknown".to_string(),
                label: "? subnets unknown".to_string(),
                note: why.clone(),
                title: format!("the subnets were {why}: whether they are private is unknown"),
                bad: false,
            },
        );
    }
    edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    edges.dedup_by(|a, b| a.from == b.from && a.to == b.to && a.bad == b.bad);
    let columns = vec![
        subnets.into_values().collect::<Vec<_>>(),
        db_nodes,
        groups.into_values().collect(),
        sources.into_values().collect(),
    ];
    let title = format!("Topology of {account} ({environment}) in {}", region.name);
    let mut note = if total > dbs.len() {
        format!(
            "{} of {total} databases drawn (those with failing findings first); the findings below list them all.",
            dbs.len()
        )
    } else {
        String::new()
    };
    // What could not be read is said above the drawing, so that an empty
    // list of violations below it is not read as an all-clear.
    for (what, why) in [
        ("security groups", &groups_missing),
        ("subnets", &subnets_missing),
    ] {
        if let Some(why) = why {
            if !note.is_empty() {
                note.push(' ');
            }
            note.push_str(&format!(
                "The {what} were {why}: what they would show is unknown, not verified, and their rules are errors."
            ));
        }
    }
    Diagram {
        account: account.to_string(),
        environment: environment.to_string(),
        region: region.name.clone(),
        svg: svg::topology(
            &title,
            &[
                "Subnets (VPC)",
                "Databases",
                "Security groups",
                "Admitted sources",
            ],
            &columns,
            &edges,
        ),
        violations: violations.into_iter().collect(),
        note,
        failing_dbs: dbs.iter().filter(|d| failing.contains_key(d.arn)).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The topology gathered an account at a time, holding at most twice
    /// the page's diagrams, draws what ranking every diagram at once
    /// would, in whatever order the accounts come.
    #[test]
    fn the_topology_drawn_an_account_at_a_time_is_the_best_ranked() {
        let snapshot = crate::synth::organization(4 * MAX_DIAGRAMS, 4, 0);
        // Failing databases in a pattern that ties some ranks.
        let mut failing = Failing::new();
        for (i, a) in snapshot.accounts.iter().enumerate() {
            for c in a.regions.iter().flat_map(|r| &r.db_clusters).take(i % 5) {
                failing.entry(c.arn.clone()).or_default().insert("r".into());
            }
        }
        let failing = borrowed(&failing);
        let mut all: Vec<Diagram> = Vec::new();
        for a in &snapshot.accounts {
            let mut one = TopologyBuilder::default();
            one.add_account(a, &failing);
            all.extend(one.drawn);
        }
        assert!(all.len() > 2 * MAX_DIAGRAMS);
        all.sort_by_key(|d| rank(d.violations.len(), d.failing_dbs, &d.account, &d.region));
        let expected: Vec<(String, String, String)> = {
            let mut best: Vec<&Diagram> = all.iter().take(MAX_DIAGRAMS).collect();
            best.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
            (best.iter())
                .map(|d| (d.account.clone(), d.region.clone(), d.svg.clone()))
                .collect()
        };
        let drawn = |t: &Topology| -> Vec<(String, String, String)> {
            (t.diagrams.iter())
                .map(|d| (d.account.clone(), d.region.clone(), d.svg.clone()))
                .collect()
        };
        let gathered = |accounts: Vec<&crate::snapshot::Account>| {
            let mut t = TopologyBuilder::default();
            for a in accounts {
                t.add_account(a, &failing);
            }
            t.finish()
        };
        let forward = gathered(snapshot.accounts.iter().collect());
        let backward = gathered(snapshot.accounts.iter().rev().collect());
        assert_eq!(drawn(&forward), expected);
        assert_eq!(drawn(&backward), expected);
        assert_eq!(forward.note, backward.note);
        // The note names every diagram not drawn, best ranked first.
        let first_left = &all[MAX_DIAGRAMS];
        assert!(forward.note.starts_with(&format!(
            "{MAX_DIAGRAMS} of {} account/region diagrams drawn (those with violations first); the others: {} ({}) {}:",
            all.len(),
            first_left.account,
            first_left.environment,
            first_left.region
        )));
        assert_eq!(
            forward.note.matches("failing database(s)").count(),
            all.len() - MAX_DIAGRAMS
        );
    }

    /// A rule failing far more often than the page shows keeps the rows a
    /// stable sort of all its findings would put first, and counts the
    /// rest.
    #[test]
    fn the_first_rows_of_a_rule_are_those_of_a_sort_of_all() {
        let (snapshot, rules, base) = crate::report::demo_failing();
        // 2,000 findings of one rule: outcomes and resources shuffled by a
        // fixed stride, several accounts, ties in the page's order.
        let outcomes = [
            Outcome::Fail,
            Outcome::Error,
            Outcome::Waived,
            Outcome::Pass,
        ];
        let mut findings: Vec<Finding> = (0..2000usize)
            .map(|i| {
                let mut f = base.clone();
                f.account = format!("acct-{}", i % 7).into();
                f.resource_id = format!("db-{}", (i * 7919) % 300).into();
                f.outcome = outcomes[(i * 31) % 4];
                f.message = format!("m{i}").into();
                f
            })
            .collect();
        findings.sort_by(|a, b| a.account.cmp(&b.account));
        let report = crate::report::report_of(&snapshot, &rules, findings.clone());
        let seen = Seen::of(&report).unwrap();
        let mut all: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.outcome != Outcome::Pass)
            .collect();
        let n = all.len();
        all.sort_by_key(|f| (outcome_rank(f.outcome), &*f.account, &f.resource_id));
        let (kept, count) = &seen.rows[&*base.rule_id];
        assert_eq!(*count, n);
        assert_eq!(kept.len(), MAX_ROWS_PER_RULE);
        let kept: Vec<&str> = kept.iter().map(|(_, f)| &*f.message).collect();
        let expected: Vec<&str> = all
            .iter()
            .take(MAX_ROWS_PER_RULE)
            .map(|f| &*f.message)
            .collect();
        assert_eq!(kept, expected);
    }
}
