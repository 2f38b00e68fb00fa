//! The HTML report as its readers get it: self-contained (no external
//! reference), valid for a conforming HTML5 parser (html5lib, strict), and
//! rendered by Debian's headless Chromium through Selenium with the verdict,
//! the plots and the topology displayed (tests/browser/check_html.py). For
//! the demo (with a findings history of three runs) and for a 2,000-cluster
//! estate, which must stay under 5 MB.
//!
//! scripts/test provides the browser environment (scripts/setup-browser).
//! Outside CI a missing one skips the browser half with a loud message; with
//! CI=true it fails. The checks that need no browser always run.

// A skipped half says so on stderr, loudly.
#![allow(clippy::print_stderr)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::root;

use serde_json::{Value, json};

fn dbaudit(args: &[&str], dir: &Path) -> std::process::Output {
    support::dbaudit_in(dir, args)
}

/// What a self-contained page may not have: anything loaded from
/// elsewhere. The SVG namespace (`xmlns=`) is a name, not a reference.
fn external_references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", " src=", " href=", "url(",
        "@import", "srcset=",
    ]
    .iter()
    .filter(|needle| lower.contains(*needle))
    .map(|n| n.to_string())
    .collect()
}

/// The browser check's findings, or `None` (skipped loudly) without a
/// browser environment outside CI.
fn browser_check(html: &Path, name: &str) -> Option<Value> {
    let Ok(python) = std::env::var("DBAUDIT_BROWSER_PYTHON") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and no browser environment: scripts/test sets one up (scripts/setup-browser)"
            );
        }
        eprintln!(
            "\n*** SKIPPED the browser check of {name}: DBAUDIT_BROWSER_PYTHON is not set (run the tests with scripts/test) ***\n"
        );
        return None;
    };
    let shot = html.with_extension("png");
    let out = Command::new(python)
        .arg(root().join("tests/browser/check_html.py"))
        .arg(html)
        .arg(&shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "check_html.py printed no result:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{name}: {result:#}");
    // Kept for a person to look at (target/…/html-*.png).
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("html-{name}.png"));
    std::fs::copy(&shot, &keep).unwrap();
    Some(result)
}

fn demo_value() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/demo/snapshot.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn the_demo_report_is_self_contained_valid_and_shows_verdict_plots_and_topology() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = root().join("fixtures/demo/dbaudit.toml");
    // Three nights: the trend plot has points to draw.
    let mut v = demo_value();
    for (day, at) in [
        "2026-11-27T02:00:00Z",
        "2026-11-28T02:00:00Z",
        "2026-11-29T02:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        v["collected_at"] = json!(at);
        if day == 1 {
            // A fix between the first and second night.
            for a in v["accounts"].as_array_mut().unwrap() {
                for r in a["regions"].as_array_mut().unwrap() {
                    for c in r["db_clusters"].as_array_mut().unwrap() {
                        if c["id"] == "prod-catalog" {
                            c["deletion_protection"] = json!(true);
                        }
                    }
                }
            }
        }
        let snap = dir.path().join(format!("night{day}.json"));
        std::fs::write(&snap, v.to_string()).unwrap();
        let out = dbaudit(
            &[
                "evaluate",
                snap.to_str().unwrap(),
                "-c",
                cfg.to_str().unwrap(),
                "--history",
                "history.db",
                "--html",
                "report.html",
                "--as-of",
                "2026-11-30",
                "-o",
                "report.txt",
            ],
            dir.path(),
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = dir.path().join("report.html");
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(
        external_references(&html).is_empty(),
        "{:?}",
        external_references(&html)
    );
    // The gate, per environment, the plots from the history, the topology
    // with the planted violations marked, evidence and remediation, waivers.
    for needle in [
        "Gate: FAIL",
        "Summary per environment",
        "Open findings in prod over the last 3 runs",
        "Open findings by age",
        "Topology of prod (prod) in eu-west-1",
        "class=\"edge bad\"",
        "0.0.0.0/0",
        "sits in public subnet",
        "<strong>Remediation:</strong>",
        "Evidence",
        "open since 2026-11-27T02:00:00Z",
        "history: history.db",
    ] {
        assert!(html.contains(needle), "the demo report lacks {needle:?}");
    }
    if let Some(r) = browser_check(&path, "demo") {
        assert_eq!(r["verdict"], "Gate: FAIL (exit code 1)", "{r:#}");
        assert!(r["plots"].as_u64().unwrap() >= 4, "{r:#}");
        assert_eq!(r["topology"], 2, "{r:#}");
        assert!(r["bad_edges"].as_u64().unwrap() >= 3, "{r:#}");
        assert_eq!(r["narrow_overflow_px"], 0, "{r:#}");
        assert!(r["screenshot"].as_u64().unwrap() > 10_000, "{r:#}");
    }
}

#[test]
fn a_2000_cluster_report_stays_under_5_mb_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("estate.json");
    std::fs::write(&snap, dbaudit::synth::snapshot(2_000, 3, 0).to_json()).unwrap();
    let out = dbaudit(
        &[
            "evaluate",
            snap.to_str().unwrap(),
            "--html",
            "report.html",
            "--as-of",
            "2026-11-30",
            "-o",
            "report.txt",
        ],
        dir.path(),
    );
    assert!(
        matches!(out.status.code(), Some(0..=3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("report.html");
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.len() <= 5 << 20, "{} bytes", html.len());
    assert!(external_references(&html).is_empty());
    // Without a history the page says where the trends would come from.
    assert!(html.contains("--history FILE"));
    // Large regions are drawn in part, and say so.
    assert!(html.contains("databases drawn (those with failing findings first)"));
    if let Some(r) = browser_check(&path, "2000-clusters") {
        assert!(
            r["verdict"].as_str().unwrap().starts_with("Gate: "),
            "{r:#}"
        );
        assert!(r["plots"].as_u64().unwrap() >= 1, "{r:#}");
        assert_eq!(r["topology"], 2, "{r:#}");
        assert_eq!(r["narrow_overflow_px"], 0, "{r:#}");
    }
}

/// A saved report rendered again has no snapshot: the page says why the
/// topology is missing instead of drawing an empty one.
#[test]
fn an_html_report_without_a_snapshot_says_why_there_is_no_topology() {
    let report: dbaudit::report::Report = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/golden/demo.json"))
            .unwrap()
            .replace("\"commit\": \"COMMIT\"", "\"commit\": \"x\""),
    )
    .unwrap();
    use dbaudit::report::render::Renderer;
    let ctx = dbaudit::report::render::RenderContext::new(None);
    let mut out = Vec::new();
    dbaudit::report::render::Html
        .render(&report, &ctx, &mut out)
        .unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.contains("The topology is drawn from the audited snapshot"));
    assert!(!html.contains("<svg class=\"topology\""));
}
