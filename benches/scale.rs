//! Benchmark: organization scale, the offline half. A synthetic organization
//! of ACCOUNTS accounts × CLUSTERS clusters (three members each, PRINCIPALS
//! IAM principals per account) is split into SHARDS parts as `collect
//! --shard K/N` would write them; then, timed: parsing the parts, `merge`,
//! evaluating every built-in rule, and the JSON report.
//! `cargo bench --bench scale [-- ACCOUNTS CLUSTERS PRINCIPALS SHARDS]
//! [--shared-services]` (default 1,000 × 20, 10 principals, 4 shards).
//! Prints wall times and the peak RSS; figures go in docs/performance.md.
//! With `--shared-services` every account serves the same service names,
//! and the evaluation is timed again without the parity rules: parity's
//! cost as a ratio of the same run with `--skip-rule 'parity.*'`.
//! Then `dbaudit evaluate DIR` on the parts as files, as users run it
//! (JSON, JUnit, SARIF directory and the table; timed with its peak RSS by
//! GNU time), and with `--bin PATH` another build's binary the same way.
//! `--command-only` runs only that (for 10,000 accounts: it needs about
//! 14 GB of disk for the outputs and the spool, in `TMPDIR`).

mod support;

use std::time::Instant;

use support::{Counter, peak_rss_mb, rss_mb};

use dbaudit::config::Config;
use dbaudit::rules::RuleSet;
use dbaudit::snapshot::Snapshot;

// A benchmark's output is its figures, on stdout.
#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (accounts, clusters, principals, shards) =
        (arg(0, 1000), arg(1, 20), arg(2, 10), arg(3, 4));
    let shared = std::env::args().any(|a| a == "--shared-services");

    let t = Instant::now();
    let whole = dbaudit::synth::organization_with(accounts, clusters, principals, shared);
    let parts: Vec<String> = dbaudit::shard::parts_of(&whole, shards, "bench")
        .iter()
        .map(Snapshot::to_json)
        .collect();
    drop(whole);
    let bytes: usize = parts.iter().map(String::len).sum();
    // The same parts as files, for the command run at the end.
    let part_files = tempfile::tempdir().unwrap();
    for (i, text) in parts.iter().enumerate() {
        std::fs::write(part_files.path().join(format!("part-{}.json", i + 1)), text).unwrap();
    }
    let config = "service_tag = \"service\"\n\n[developers]\ngroups = [\"developers\"]\n";
    // `--keep-parts DIR`: a copy of the parts (DIR/parts) and the
    // configuration (DIR/dbaudit.toml), to run the command by hand.
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--keep-parts") {
        let keep = std::path::Path::new(&argv[i + 1]);
        std::fs::create_dir_all(keep.join("parts")).unwrap();
        for (i, text) in parts.iter().enumerate() {
            std::fs::write(keep.join(format!("parts/part-{}.json", i + 1)), text).unwrap();
        }
        std::fs::write(keep.join("dbaudit.toml"), config).unwrap();
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("dbaudit.toml");
    std::fs::write(&cfg, config).unwrap();
    println!(
        "organization: {accounts} accounts × {clusters} clusters (3 members), {principals} principals each; {shards} parts, {:.1} MB of JSON (generated in {:.2} s)",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // `--command-only`: only the command (the organization of 10,000
    // accounts: the in-process evaluation below holds every finding).
    if argv.iter().any(|a| a == "--command-only") {
        drop(parts);
        command(&part_files, &cfg, accounts);
        return;
    }
    // The parts are parsed one at a time as the merge takes them
    // (`dbaudit merge` reads a directory so): timed together.
    let start = Instant::now();
    let (merged, summary) = dbaudit::shard::merge_each(
        parts.into_iter().enumerate().map(|(i, text)| {
            let name = format!("part-{}.json", i + 1);
            Snapshot::parse(&text, std::path::Path::new(&name)).map(|s| (name, s))
        }),
        None,
    )
    .unwrap();
    let peak_parse = peak_rss_mb();
    let t_parse = start.elapsed();
    let (rss_merged, peak_merge) = (rss_mb(), peak_rss_mb());
    assert_eq!(merged.accounts.len(), accounts);
    assert!(summary.missing_parts.is_empty());
    let rules = RuleSet::load(&[], &[]).unwrap();
    let config = Config {
        service_tag: "service".into(),
        developers: dbaudit::config::DeveloperSelectors {
            groups: vec!["developers".into()],
            ..Default::default()
        },
        ..Config::default()
    };
    let t = Instant::now();
    let findings = dbaudit::evaluate::evaluate(&merged, &rules, &config);
    let t_eval = t.elapsed();
    let (rss_eval, peak_eval) = (rss_mb(), peak_rss_mb());
    let n = findings.len();
    if shared {
        // The same evaluation without the parity rules, as
        // `--skip-rule 'parity.*'` would run it; the longest parity
        // message, which a summary keeps short.
        let long = findings
            .iter()
            .filter(|f| f.rule_id.starts_with("parity."))
            .max_by_key(|f| f.message.chars().count());
        let longest = long.map_or(0, |f| f.message.chars().count());
        if let Some(f) = long.filter(|_| std::env::var_os("DBAUDIT_BENCH_SHOW").is_some()) {
            println!(
                "{}: {}",
                f.rule_id,
                f.message.chars().take(600).collect::<String>()
            );
        }
        let mut without = rules.clone();
        without.rules.retain(|r| !r.id.starts_with("parity."));
        let t = Instant::now();
        let rest = dbaudit::evaluate::evaluate(&merged, &without, &config);
        let t_rest = t.elapsed();
        println!(
            "evaluate without parity.*: {:.3} s ({} findings); with parity {:.3} s: ratio {:.2}; longest parity message {longest} characters",
            t_rest.as_secs_f64(),
            rest.len(),
            t_eval.as_secs_f64(),
            t_eval.as_secs_f64() / t_rest.as_secs_f64()
        );
    }
    let t = Instant::now();
    let g = dbaudit::report::gate::decide(
        &findings,
        dbaudit::rules::Severity::High,
        dbaudit::report::gate::OnIncomplete::Fail,
    );
    let report = dbaudit::report::Report::build(&merged, &rules, findings, g);
    // Rendered to a sink, as to a file: the report is not held in memory.
    let mut out = Counter(0);
    dbaudit::report::json::render(&report, &mut out).unwrap();
    let t_report = t.elapsed();
    let total = start.elapsed();
    println!(
        "parse + merge:      {:.3} s (one part at a time)",
        t_parse.as_secs_f64()
    );
    println!(
        "evaluate:           {:.3} s ({n} findings, {} threads)",
        t_eval.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "gate + JSON report: {:.3} s ({:.0} MB)",
        t_report.as_secs_f64(),
        out.0 as f64 / 1e6
    );
    println!(
        "parse + merge + evaluate + report: {:.3} s",
        total.as_secs_f64()
    );
    println!("peak RSS through the JSON report: {:.0} MB", peak_rss_mb());
    println!(
        "  memory by phase: parse + merge peak {peak_parse:.0} MB; merged snapshot {rss_merged:.0} MB resident (peak {peak_merge:.0}); with the findings {rss_eval:.0} MB (peak {peak_eval:.0})"
    );
    // The other formats of the same report, each to a sink (after the
    // total above: these are the optional outputs of the night).
    use dbaudit::report::render::{Format, RenderContext, renderer};
    let ctx = RenderContext::new(Some(&merged));
    for format in [
        Format::Table,
        Format::Sarif,
        Format::Junit,
        Format::Markdown,
        Format::Html,
    ] {
        let style = dbaudit::report::table::Style {
            color: false,
            show_passed: false,
            width: Some(120),
            tty: false,
            compact: true,
        };
        let mut out = Counter(0);
        let t = Instant::now();
        renderer(format, style)
            .render(&report, &ctx, &mut out)
            .unwrap();
        println!(
            "{:<19} {:.3} s ({:.1} MB)",
            format!("{}:", format.as_str()),
            t.elapsed().as_secs_f64(),
            out.0 as f64 / 1e6
        );
    }
    println!("peak RSS with every format: {:.0} MB", peak_rss_mb());
    drop((report, merged));
    command(&part_files, &cfg, accounts);
}

/// `dbaudit evaluate DIR` on the parts as files, as users run it:
/// merge + evaluate + JSON report + SARIF directory + JUnit, timed with
/// its peak RSS read by GNU time (`/usr/bin/time`). With `--bin PATH`,
/// another build's binary runs the same command after this one (the build
/// before a change, in the same sitting).
#[allow(clippy::print_stdout)]
fn command(parts: &tempfile::TempDir, cfg: &std::path::Path, accounts: usize) {
    let args: Vec<String> = std::env::args().collect();
    let mut bins = vec![(
        "this build".to_string(),
        env!("CARGO_BIN_EXE_dbaudit").to_string(),
    )];
    if let Some(i) = args.iter().position(|a| a == "--bin") {
        bins.push(("--bin".to_string(), args[i + 1].clone()));
    }
    // `dbaudit evaluate DIR` with `extra` flags, under GNU time: its wall
    // time, peak RSS (MB) and the bytes it wrote into `out`.
    let run = |bin: &str, out: &std::path::Path, extra: &[String]| -> (f64, f64, u64) {
        let o = std::process::Command::new("/usr/bin/time")
            .args(["-f", "%e s %M KB"])
            .arg(bin)
            .args(["evaluate"])
            .arg(parts.path())
            .arg("--config")
            .arg(cfg)
            .arg("--no-history")
            .args(extra)
            .stdout(std::process::Stdio::null())
            .output()
            .expect("/usr/bin/time (GNU time) runs the command");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(matches!(o.status.code(), Some(0..=3)), "{bin}: {stderr}");
        let figures = stderr.lines().last().unwrap_or_default();
        let (secs, kb) = figures
            .split_once(" s ")
            .map(|(s, k)| {
                (
                    s.parse::<f64>().unwrap_or(f64::NAN),
                    k.trim_end_matches(" KB").parse::<f64>().unwrap_or(f64::NAN),
                )
            })
            .unwrap_or((f64::NAN, f64::NAN));
        (secs, kb / 1024.0, walk(out))
    };
    let shared = args.iter().any(|a| a == "--shared-services");
    for (label, bin) in bins {
        let out = tempfile::tempdir().unwrap();
        let at = |name: &str| out.path().join(name).display().to_string();
        if shared {
            // Parity's cost as the command runs it: the table alone, with
            // and without the parity rules; then the parity rules' findings
            // alone as JSON, for their longest message.
            let (with, rss, _) = run(&bin, out.path(), &["--report".into(), "table".into()]);
            let (without, _, _) = run(
                &bin,
                out.path(),
                &[
                    "--report".into(),
                    "table".into(),
                    "--skip-rule".into(),
                    "parity.*".into(),
                ],
            );
            let json = at("parity.json");
            run(
                &bin,
                out.path(),
                &[
                    "--report".into(),
                    format!("json={json}"),
                    "--rule".into(),
                    "parity.*".into(),
                ],
            );
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            let longest = (report["findings"].as_array().into_iter().flatten())
                .filter_map(|f| f["message"].as_str())
                .map(|m| m.chars().count())
                .max()
                .unwrap_or(0);
            println!(
                "dbaudit evaluate of the {accounts} accounts' parts ({label}), every service in every account: {with:.2} s with parity, {without:.2} s with --skip-rule 'parity.*': ratio {:.2}; peak RSS {rss:.0} MB; longest parity message {longest} characters",
                with / without
            );
            continue;
        }
        let (secs, rss, size) = run(
            &bin,
            out.path(),
            &[
                "--report".into(),
                format!("json={}", at("report.json")),
                "--report".into(),
                format!("junit={}", at("report.xml")),
                "--sarif-dir".into(),
                at("sarif"),
                "--report".into(),
                "table".into(),
            ],
        );
        println!(
            "dbaudit evaluate of the {accounts} accounts' parts ({label}): {secs:.2} s, peak RSS {rss:.0} MB, {:.0} MB written (JSON + JUnit + SARIF dir)",
            size as f64 / 1e6
        );
    }
}

/// Bytes under a directory.
fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}
