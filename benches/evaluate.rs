//! Benchmark: evaluate every built-in rule on a large synthetic estate.
//! `cargo bench --bench evaluate [-- CLUSTERS INSTANCES_PER_CLUSTER EXTRA_SGS PRINCIPALS]`
//! (default 10,000 clusters × 3 instances = 30,000 instances, 20,000 security
//! groups, 2,000 IAM principals with realistic policies). Evaluates the estate
//! with and without its principals in the same run, so the cost of the IAM
//! rules is the difference. Prints wall times and the peak RSS; figures go in
//! docs/performance.md.

mod support;

use std::time::Instant;

use support::{Counter, peak_rss_mb};

use dbaudit::config::Config;
use dbaudit::report::{Report, gate};
use dbaudit::rules::{RuleSet, Severity};

/// Evaluation runs per benchmark (`DBAUDIT_BENCH_RUNS` for a quick look).
fn runs() -> usize {
    std::env::var("DBAUDIT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5)
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clusters = args.first().copied().unwrap_or(10_000);
    let per = args.get(1).copied().unwrap_or(3);
    let clusters_sgs = clusters;
    let extra = args
        .get(2)
        .copied()
        .unwrap_or(20_000usize.saturating_sub(clusters_sgs));
    let principals = args.get(3).copied().unwrap_or(2_000);

    let t = Instant::now();
    let snapshot =
        dbaudit::synth::with_principals(dbaudit::synth::snapshot(clusters, per, extra), principals);
    let json = snapshot.to_json();
    let gen_s = t.elapsed().as_secs_f64();

    drop(snapshot);
    let t = Instant::now();
    let snapshot =
        dbaudit::snapshot::Snapshot::parse(&json, std::path::Path::new("synthetic.json")).unwrap();
    let load_s = t.elapsed().as_secs_f64();
    let json_len = json.len();
    // As `dbaudit evaluate` does: the file's text is dropped once parsed.
    drop(json);

    let rules = RuleSet::load(&[], &[]).unwrap();
    let config = Config {
        service_tag: "service".into(),
        developers: dbaudit::config::DeveloperSelectors {
            groups: vec!["developers".into()],
            ..Default::default()
        },
        ..Config::default()
    };
    // Several runs: on a shared 2-core VM one run can be 50% slower than the
    // next, so the minimum and median are reported, not one sample.
    let runs = runs();
    let mut times = Vec::new();
    let mut findings = Vec::new();
    for _ in 0..runs {
        drop(findings);
        let t = Instant::now();
        findings = dbaudit::evaluate::evaluate(&snapshot, &rules, &config);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let eval_s = times[runs / 2];

    // The same estate without principals: what the IAM rules add.
    let mut bare = snapshot.clone();
    for a in &mut bare.accounts {
        a.iam = Some(Default::default());
    }
    let mut bare_times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let f = dbaudit::evaluate::evaluate(&bare, &rules, &config);
        bare_times.push(t.elapsed().as_secs_f64());
        drop(f);
    }
    drop(bare);
    bare_times.sort_by(f64::total_cmp);
    let bare_s = bare_times[runs / 2];
    let t = Instant::now();
    let mut iam_findings = 0;
    for a in &snapshot.accounts {
        iam_findings += dbaudit::iam::principal_facts(a, &config.developers).map_or(0, |p| p.len());
    }
    let facts_s = t.elapsed().as_secs_f64();
    // Of which: the accounts' resources as IAM sees them (ARNs, tags as keys).
    let t = Instant::now();
    for a in &snapshot.accounts {
        drop(dbaudit::iam::targets::AccountTargets::new(a));
    }
    let targets_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let g = gate::decide(&findings, Severity::High, gate::OnIncomplete::Fail);
    let n = findings.len();
    let report = Report::build(&snapshot, &rules, findings, g);
    // Rendered to a sink, as to a file: the report is not held in memory.
    let mut out = Counter(0);
    dbaudit::report::json::render(&report, &mut out).unwrap();
    let report_s = t.elapsed().as_secs_f64();

    let sgs: usize = snapshot
        .accounts
        .iter()
        .map(|a| a.regions[0].security_groups.len())
        .sum();
    let instances: usize = snapshot
        .accounts
        .iter()
        .map(|a| a.regions[0].db_instances.len())
        .sum();
    println!(
        "estate: {clusters} clusters, {instances} instances, {sgs} security groups ({:.1} MB snapshot JSON)",
        json_len as f64 / 1e6
    );
    println!("IAM principals: {principals} ({iam_findings} analysed)");
    println!("rules: {}, findings: {n}", rules.rules.len());
    println!("generate+serialise: {gen_s:.3} s");
    println!("load snapshot:      {load_s:.3} s");
    println!(
        "evaluate:           {eval_s:.3} s median of {runs} (min {:.3} s, max {:.3} s; {:.2} µs per finding)",
        times[0],
        times[runs - 1],
        eval_s * 1e6 / n as f64
    );
    println!(
        "without principals: {bare_s:.3} s median; IAM rules add {:.3} s (principal facts alone: {facts_s:.3} s, of which resource contexts {targets_s:.3} s)",
        eval_s - bare_s
    );
    println!(
        "report (JSON):      {report_s:.3} s ({:.1} MB)",
        out.0 as f64 / 1e6
    );
    println!(
        "load + evaluate + report: {:.3} s",
        load_s + eval_s + report_s
    );
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}
