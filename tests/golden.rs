//! Golden files: the demo's table, JSON, SARIF, JUnit, Markdown and HTML outputs
//! are pinned byte for byte (tests/golden/), so a refactoring of the
//! renderers or the report model shows every change it makes to what users
//! see. Volatile fields (the build's commit) are redacted.
//! `DBAUDIT_BLESS=1 cargo test --test golden` rewrites them; review the diff.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn output(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .env_remove("DBAUDIT_CONFIG")
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0..=3)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The build's commit is the one volatile field (JSON `tool.commit`,
    // the HTML page's header).
    String::from_utf8(o.stdout)
        .unwrap()
        .replace(
            &format!("\"commit\": \"{}\"", dbaudit::COMMIT),
            "\"commit\": \"COMMIT\"",
        )
        .replace(&format!("(commit {},", dbaudit::COMMIT), "(commit COMMIT,")
}

fn check(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("DBAUDIT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "tests/golden/{name} differs from the output at line {}:\n  golden: {:?}\n  output: {:?}\n\
             run `DBAUDIT_BLESS=1 cargo test --test golden` if the change is intended",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

const DEMO: [&str; 4] = [
    "evaluate",
    "fixtures/demo/snapshot.json",
    "--config",
    "fixtures/demo/dbaudit.toml",
];

#[test]
fn demo_outputs_are_pinned() {
    for (format, file) in [
        ("table", "demo.txt"),
        ("json", "demo.json"),
        ("sarif", "demo.sarif"),
        ("junit", "demo.junit.xml"),
        ("markdown", "demo.md"),
        ("html", "demo.html"),
        ("asff", "demo.asff.json"),
        ("ocsf", "demo.ocsf.jsonl"),
    ] {
        let mut args = DEMO.to_vec();
        args.extend(["--format", format, "--as-of", "2026-11-30"]);
        check(file, &output(&args));
    }
}

/// The unhappy paths (fixtures/unhappy/gen.py plants each): an unreachable
/// account, a failed listing in one region, a region the snapshot lacks,
/// an applied and an expired waiver, a baseline with new, existing and
/// fixed failures, rules left out by a selection, `error` outcomes.
const UNHAPPY: [&str; 10] = [
    "evaluate",
    "fixtures/unhappy/snapshot.json",
    "--config",
    "fixtures/unhappy/dbaudit.toml",
    "--baseline",
    "fixtures/unhappy/baseline.json",
    "--skip-rule",
    "db.engine.*",
    "--as-of",
    "2026-11-30",
];

#[test]
fn unhappy_outputs_are_pinned() {
    for (format, file) in [
        ("table", "unhappy.txt"),
        ("json", "unhappy.json"),
        ("sarif", "unhappy.sarif"),
        ("junit", "unhappy.junit.xml"),
        ("markdown", "unhappy.md"),
        ("html", "unhappy.html"),
        ("asff", "unhappy.asff.json"),
        ("ocsf", "unhappy.ocsf.jsonl"),
    ] {
        let mut args = UNHAPPY.to_vec();
        args.extend(["--format", format]);
        check(file, &output(&args));
    }
}

/// Each planted path is in the pinned outputs, so a bless cannot quietly
/// lose one.
#[test]
fn the_unhappy_estate_shows_every_planted_path() {
    let mut args = UNHAPPY.to_vec();
    args.extend(["--format", "json"]);
    let r: serde_json::Value = serde_json::from_str(&output(&args)).unwrap();
    let findings = r["findings"].as_array().unwrap();
    let of = |account: &'static str| findings.iter().filter(move |f| f["account"] == account);
    // 1. The unreachable account: every finding an error.
    assert!(of("prod-dr").count() > 10);
    assert!(of("prod-dr").all(|f| f["outcome"] == "error"));
    // 2. The failed listing: test's network rules are errors.
    assert!(of("test").any(|f| {
        f["rule_id"] == "db.network.sg-eks-only"
            && f["outcome"] == "error"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("DescribeSecurityGroups")
    }));
    // 3. The region the snapshot lacks.
    assert_eq!(
        r["completeness"]["missing"],
        serde_json::json!(["prod/eu-central-1"])
    );
    assert!(
        findings
            .iter()
            .any(|f| f["region"] == "eu-central-1" && f["outcome"] == "error")
    );
    // 4. One waiver applied, one expired.
    let states: Vec<&str> = r["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["status"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"applied") && states.contains(&"expired"),
        "{states:?}"
    );
    // 5. The baseline: new, existing and fixed, named in the verdict.
    let b = &r["baseline"];
    assert!(b["new"].as_u64().unwrap() >= 1 && b["existing"].as_u64().unwrap() >= 1);
    assert_eq!(b["fixed"], 1);
    assert!(
        r["gate"]["reason"]
            .as_str()
            .unwrap()
            .contains("baseline: report fixtures/unhappy/baseline.json")
    );
    // 6. The rules left out.
    assert_eq!(r["not_evaluated"].as_array().unwrap().len(), 5);
    // The HTML topology says what was not read, never "nothing admitted".
    let mut args = UNHAPPY.to_vec();
    args.extend(["--format", "html"]);
    let html = output(&args);
    assert!(
        html.contains("not collected (UnauthorizedOperation on DescribeSecurityGroups)"),
        "the topology of test marks its unread groups"
    );
    assert!(
        html.contains("The security groups were not collected"),
        "and says so above the drawing, so no empty violation list reads as all-clear"
    );
}

/// A JSON report written by an earlier dbaudit (frozen in tests/expected)
/// still loads as the report model, and as `--baseline`: everything in
/// it is existing, so nothing is new and the baseline gates nothing.
#[test]
fn a_report_from_an_earlier_version_loads_and_serves_as_baseline() {
    let old = root().join("tests/expected/report-from-0.1.0-4844e9c.json");
    let report = dbaudit::report::Report::load(&old).unwrap();
    assert!(report.findings.len() > 50, "{}", report.findings.len());
    assert_eq!(report.gate.status, dbaudit::report::gate::GateStatus::Fail);
    let mut args = DEMO.to_vec();
    let old_arg = old.display().to_string();
    args.extend([
        "--format",
        "json",
        "--as-of",
        "2026-11-30",
        "--baseline",
        &old_arg,
    ]);
    let now: serde_json::Value = serde_json::from_str(&output(&args)).unwrap();
    // Everything the old pack found is carried by the baseline.
    assert!(
        now["gate"]["reason"]
            .as_str()
            .unwrap()
            .contains("12 existing failure(s) carried by the baseline"),
        "{}",
        now["gate"]
    );
    let findings = now["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["baseline"] == "existing"));
    // Only rules that report did not have can bring new failures.
    let old_rules: Vec<&str> = report.rules.iter().map(|r| r.doc.id.as_str()).collect();
    let new: Vec<&str> = findings
        .iter()
        .filter(|f| f["baseline"] == "new")
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(!new.is_empty());
    assert!(new.iter().all(|r| !old_rules.contains(r)), "{new:?}");
}

/// The JSON report is the model: loading and writing it again gives the
/// same bytes.
#[test]
fn the_json_report_round_trips_through_the_model() {
    let mut args = DEMO.to_vec();
    args.extend(["--format", "json", "--as-of", "2026-11-30"]);
    let text = output(&args);
    let report: dbaudit::report::Report = serde_json::from_str(&text).unwrap();
    let mut again = serde_json::to_string_pretty(&report).unwrap();
    again.push('\n');
    assert_eq!(again, text);
}

/// `dbaudit plan`: the findings a plan introduces, on the .tf lines that
/// cause them (a module called with for_each; a new cluster whose
/// encryption is unknown until apply).
#[test]
fn plan_outputs_are_pinned() {
    for (case, outputs) in [
        (
            "module-for-each",
            &[
                ("table", "plan-module.txt"),
                ("sarif", "plan-module.sarif"),
                ("markdown", "plan-module.md"),
            ][..],
        ),
        (
            "new-cluster-unknown-encryption",
            &[
                ("sarif", "plan-unknown.sarif"),
                ("junit", "plan-unknown.junit.xml"),
            ][..],
        ),
    ] {
        let dir = format!("fixtures/plan/cases/{case}");
        let plan = format!("{dir}/plan.json");
        for (format, file) in outputs {
            check(
                file,
                &output(&[
                    "plan",
                    &plan,
                    "--snapshot",
                    "fixtures/demo/snapshot.json",
                    "--config",
                    "fixtures/demo/dbaudit.toml",
                    "--tf-dir",
                    &dir,
                    "--as-of",
                    "2026-11-30",
                    "--format",
                    format,
                ]),
            );
        }
    }
}

/// A run that records into a history reads the spooled findings once more
/// (an account at a time, into the store) and writes the same bytes: the
/// goldens (the HTML report, which shows the history, is compared below).
#[test]
fn a_recorded_run_renders_the_goldens_too() {
    let dir = tempfile::tempdir().unwrap();
    for (estate, args) in [("demo", &DEMO[..]), ("unhappy", &UNHAPPY[..])] {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if estate == "demo" {
            args.extend(["--as-of".into(), "2026-11-30".into()]);
        }
        let formats = [
            ("table", "txt"),
            ("json", "json"),
            ("sarif", "sarif"),
            ("junit", "junit.xml"),
            ("markdown", "md"),
            ("asff", "asff.json"),
            ("ocsf", "ocsf.jsonl"),
        ];
        let history = dir.path().join(format!("{estate}.sqlite"));
        args.extend(["--history".into(), history.display().to_string()]);
        for (format, ext) in formats {
            let path = dir.path().join(format!("{estate}.{ext}"));
            args.extend(["--report".into(), format!("{format}={}", path.display())]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        output(&args);
        for (_, ext) in formats {
            let name = format!("{estate}.{ext}");
            let written = std::fs::read_to_string(dir.path().join(&name))
                .unwrap()
                .replace(
                    &format!("\"commit\": \"{}\"", dbaudit::COMMIT),
                    "\"commit\": \"COMMIT\"",
                )
                .replace(&format!("(commit {},", dbaudit::COMMIT), "(commit COMMIT,");
            if std::env::var_os("DBAUDIT_BLESS").is_none() {
                check(&name, &written);
            }
        }
    }
}

/// Shard parts of an estate's snapshot, as `collect --shard K/N` writes
/// them, into `dir` (every part but `leave_out`).
fn write_parts(estate: &str, dir: &std::path::Path, count: usize, leave_out: Option<usize>) {
    let path = root().join(format!("fixtures/{estate}/snapshot.json"));
    let whole = dbaudit::snapshot::Snapshot::load(&path).unwrap();
    for (i, p) in dbaudit::shard::parts_of(&whole, count, "golden")
        .into_iter()
        .enumerate()
        .filter(|(i, _)| Some(i + 1) != leave_out)
    {
        std::fs::write(dir.join(format!("part-{}.json", i + 1)), p.to_json()).unwrap();
    }
}

/// `evaluate DIR` reads a sharded run's parts twice, one at a time (a third
/// time for the HTML report's topology), never holding the merged snapshot
/// (docs/performance.md); it must write what evaluating their merge
/// writes, byte for byte, in every format, with every part and with one
/// missing (its accounts are gaps).
#[test]
fn parts_evaluated_one_at_a_time_write_what_their_merge_does() {
    let demo: Vec<&str> = DEMO
        .iter()
        .copied()
        .chain(["--as-of", "2026-11-30"])
        .collect();
    for (estate, args) in [("demo", demo), ("unhappy", UNHAPPY.to_vec())] {
        for leave_out in [None, Some(2)] {
            let parts = tempfile::tempdir().unwrap();
            write_parts(estate, parts.path(), 3, leave_out);
            let merged = tempfile::tempdir().unwrap();
            let merged = merged.path().join("merged.json");
            let o = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
                .args(["merge"])
                .arg(parts.path())
                .arg("-o")
                .arg(&merged)
                .output()
                .unwrap();
            // A missing part (or an account not reached) is a gap: merge
            // says so with exit 3.
            let code = o.status.code();
            assert!(
                code == Some(3) || (code == Some(0) && leave_out.is_none()),
                "{code:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let (dir, file) = (
                parts.path().display().to_string(),
                merged.display().to_string(),
            );
            // The directory takes the part-at-a-time path.
            let mut a = args.clone();
            a[1] = &dir;
            let o = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
                .args(&a)
                .current_dir(root())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(stderr.contains("a part at a time"), "{stderr}");
            recorded_as_their_merge(&args, &dir, &file);
            for format in [
                "table", "json", "sarif", "junit", "markdown", "asff", "ocsf", "html",
            ] {
                let with = |snapshot: &str| {
                    let mut a = args.clone();
                    a[1] = snapshot;
                    a.extend(["--format", format]);
                    output(&a)
                };
                let (streamed, whole) = (with(&dir), with(&file));
                assert!(
                    streamed == whole,
                    "{estate} ({leave_out:?} left out), {format}: the parts' output differs from the merge's at line {}",
                    streamed
                        .lines()
                        .zip(whole.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0)
                        + 1
                );
            }
        }
    }
}

/// Parts recorded into the history a part at a time are the run their merge
/// records: the same input (recording the merge next is refused as already
/// held) and the same periods open.
fn recorded_as_their_merge(args: &[&str], dir: &str, merged: &str) {
    let stores = tempfile::tempdir().unwrap();
    let store = |name: &str| stores.path().join(name).display().to_string();
    let record = |snapshot: &str, history: &str| {
        let mut a = args.to_vec();
        a[1] = snapshot;
        a.extend(["--history", history, "--format", "json"]);
        let o = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
            .args(&a)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(matches!(o.status.code(), Some(0..=3)));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let (parts_store, merged_store) = (store("parts.db"), store("merged.db"));
    let err = record(dir, &parts_store);
    assert!(
        err.contains("a part at a time") && err.contains("history: recorded run"),
        "{err}"
    );
    let err = record(merged, &parts_store);
    assert!(err.contains("already holds this snapshot"), "{err}");
    let err = record(merged, &merged_store);
    assert!(err.contains("history: recorded run"), "{err}");
    let open = |history: &str| output(&["history", "open", "--history", history]);
    let open_parts = open(&parts_store);
    assert!(open_parts.lines().count() > 3, "{open_parts}");
    assert_eq!(open_parts, open(&merged_store));
}

/// Every format is the same from spooled findings as from findings held in
/// memory (what a library caller gets with `spool: false`). The HTML report
/// chooses its capped sections in one pass over the findings.
#[test]
fn every_format_is_the_same_from_spooled_and_held_findings() {
    use dbaudit::audit::{AuditOptions, audit};
    use dbaudit::report::render::{Format, RenderContext, renderer};
    let snapshot =
        dbaudit::snapshot::Snapshot::load(&root().join("fixtures/unhappy/snapshot.json")).unwrap();
    let config =
        dbaudit::config::Config::load(&root().join("fixtures/unhappy/dbaudit.toml")).unwrap();
    let rules = dbaudit::rules::RuleSet::load(&[], &[]).unwrap();
    let page = |spool: bool, format: Format| {
        let opts = AuditOptions {
            fail_on: dbaudit::rules::Severity::High,
            on_incomplete: dbaudit::report::OnIncomplete::Fail,
            waivers: config.waivers.clone(),
            baseline: None,
            as_of: dbaudit::waivers::Date::parse("2026-11-30").unwrap(),
            selection: Default::default(),
            spool,
            digest: false,
            topology: false,
        };
        let report = audit(&snapshot, &rules, &config, &opts).unwrap();
        let ctx = RenderContext::new(Some(&snapshot));
        let style = dbaudit::report::table::Style {
            color: false,
            show_passed: false,
            width: Some(120),
            tty: false,
            compact: true,
        };
        let mut out = Vec::new();
        renderer(format, style)
            .render(&report, &ctx, &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    };
    let held = page(false, Format::Html);
    assert!(held.contains("<html"), "a page");
    assert_eq!(page(true, Format::Html), held);
    for format in Format::ALL {
        let held = page(false, format);
        assert!(held.len() > 1000, "{format:?}: findings rendered");
        assert_eq!(page(true, format), held, "{format:?}");
    }
}
