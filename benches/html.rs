//! Benchmark: the HTML report and the findings history at 2,000 clusters.
//! `cargo bench --bench html [-- CLUSTERS]` (default 2,000 clusters × 3
//! instances over a test and a prod account). Audits the synthetic estate
//! once, then measures in the same run: rendering the HTML report without
//! and with a history view (median of five), its size, and recording the
//! run into a fresh SQLite history (and a second run, which applies the
//! periods). The targets are ≤ 5 MB and ≤ 5 s to render; figures go
//! in docs/performance.md.

mod support;

use std::time::Instant;

use dbaudit::audit::{AuditOptions, audit};
use dbaudit::report::render::{Html, RenderContext, Renderer};
use dbaudit::rules::{RuleSet, Severity};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[allow(clippy::print_stdout)]
fn main() {
    let clusters = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000usize);
    let snapshot = dbaudit::synth::snapshot(clusters, 3, 0);
    let rules = RuleSet::load(&[], &[]).unwrap();
    let config = dbaudit::config::Config {
        service_tag: "service".into(),
        ..Default::default()
    };
    let opts = AuditOptions {
        fail_on: Severity::High,
        on_incomplete: dbaudit::report::gate::OnIncomplete::Fail,
        waivers: vec![],
        baseline: None,
        as_of: dbaudit::waivers::Date::parse("2026-11-30").unwrap(),
        selection: Default::default(),
        spool: false,
        digest: false,
        topology: false,
    };
    let t = Instant::now();
    let report = audit(&snapshot, &rules, &config, &opts).unwrap();
    let audit_s = t.elapsed().as_secs_f64();

    let render = |ctx: &RenderContext| {
        let mut out = support::Counter(0);
        Html.render(&report, ctx, &mut out).unwrap();
        out.0
    };
    let plain = RenderContext::new(Some(&snapshot));
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        bytes = render(&plain);
        times.push(t.elapsed().as_secs_f64());
    }
    let render_s = median(times);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = path.display().to_string();
    // Each record on a freshly opened store, closed after it (the
    // write-ahead log is then checkpointed into the file) to see its size.
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let record = |at: &str| {
        let mut h = dbaudit::history::History::open(&store).unwrap();
        let t = Instant::now();
        h.record(&report, at).unwrap();
        t.elapsed().as_secs_f64()
    };
    let first_s = record("2026-11-30T00:00:00Z");
    let after_first = size();
    let second_s = record("2026-11-30T00:00:01Z");
    let after_second = size();
    let mut h = dbaudit::history::History::open(&store).unwrap();
    let t = Instant::now();
    let view = h.view(30).unwrap();
    let view_s = t.elapsed().as_secs_f64();
    let mut ctx = RenderContext::new(Some(&snapshot));
    ctx.history = Some(view);
    let mut times = Vec::new();
    let mut with_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        with_bytes = render(&ctx);
        times.push(t.elapsed().as_secs_f64());
    }
    let with_s = median(times);

    println!(
        "estate: {clusters} clusters, {} instances, {} findings ({} not passing); audit {audit_s:.2} s",
        clusters * 3,
        report.findings.len(),
        report
            .findings
            .load()
            .unwrap()
            .iter()
            .filter(|f| f.outcome != dbaudit::finding::Outcome::Pass)
            .count()
    );
    println!(
        "html: {:.2} MB, render {render_s:.3} s (median of 5); with a history view: {:.2} MB, {with_s:.3} s",
        bytes as f64 / 1e6,
        with_bytes as f64 / 1e6
    );
    println!(
        "history (SQLite): record run 1 {first_s:.3} s, run 2 {second_s:.3} s, read the view {view_s:.3} s; store {:.1} MB after run 1, +{:.1} MB per further run",
        after_first as f64 / 1e6,
        (after_second - after_first) as f64 / 1e6
    );
    println!(
        "targets: ≤ 5 MB: {}; ≤ 5 s: {}",
        bytes <= 5_000_000,
        render_s <= 5.0
    );
    println!("peak RSS {} MB", support::peak_rss_mb());
}
