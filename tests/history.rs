//! The findings history over several runs of the demo estate with changes
//! between them — a violation fixed, a new one, a waived one, an account
//! not collected, a narrower selection, a resource deleted — on both
//! stores: an SQLite file and a real PostgreSQL server (started by
//! scripts/test from Debian's package; see scripts/setup-postgres).
//! Outside CI a missing server skips the PostgreSQL half with a loud
//! message; with CI=true it fails.

// A skipped half says so on stderr, loudly.
#![allow(clippy::print_stderr)]

mod support;

use std::path::Path;
use std::process::Command;
use support::root;

use dbaudit::audit::{AuditOptions, audit};
use dbaudit::config::Config;
use dbaudit::history::{History, OpenFilter, Period};
use dbaudit::report::Report;
use dbaudit::report::gate::OnIncomplete;
use dbaudit::rules::{RuleSet, Severity};
use dbaudit::selection::Selection;
use dbaudit::snapshot::Snapshot;
use dbaudit::waivers::Date;
use serde_json::{Value, json};

fn demo() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/demo/snapshot.json")).unwrap(),
    )
    .unwrap()
}

fn config() -> Config {
    Config::load(&root().join("fixtures/demo/dbaudit.toml")).unwrap()
}

/// A store for one test: a fresh SQLite file, or a fresh database on the
/// PostgreSQL server.
struct Store {
    spec: String,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite() -> Store {
    let dir = tempfile::tempdir().unwrap();
    Store {
        spec: dir.path().join("history.db").display().to_string(),
        _dir: Some(dir),
    }
}

/// A new database on the test server, or `None` (skipped loudly) when
/// there is no server outside CI.
fn postgres(name: &str) -> Option<Store> {
    let Ok(url) = std::env::var("DBAUDIT_POSTGRES_URL") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and no PostgreSQL: scripts/test starts one (scripts/setup-postgres)");
        }
        eprintln!(
            "\n*** SKIPPED {name} on PostgreSQL: DBAUDIT_POSTGRES_URL is not set (run the tests with scripts/test, which starts a server) ***\n"
        );
        return None;
    };
    let db = format!(
        "dbaudit_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id()
    );
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // One statement per call: several would run as one transaction,
    // where CREATE DATABASE cannot.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    let (url, query) = match url.split_once('?') {
        Some((u, q)) => (u.to_string(), format!("?{q}")),
        None => (url.clone(), String::new()),
    };
    let base = url.rsplit_once('/').unwrap().0;
    Some(Store {
        spec: format!("{base}/{db}{query}"),
        _dir: None,
    })
}

fn options(selection: Selection, waivers: Vec<dbaudit::waivers::Waiver>) -> AuditOptions {
    AuditOptions {
        fail_on: Severity::High,
        on_incomplete: OnIncomplete::Fail,
        waivers,
        baseline: None,
        as_of: Date::parse("2026-12-01").unwrap(),
        selection,
        spool: false,
        digest: false,
        topology: false,
    }
}

fn report(v: &Value, at: &str, opts: &AuditOptions) -> Report {
    let mut v = v.clone();
    v["collected_at"] = json!(at);
    let snapshot = Snapshot::parse(&v.to_string(), Path::new("demo.json")).unwrap();
    let rules = RuleSet::load(&[], &[]).unwrap();
    audit(&snapshot, &rules, &config(), opts).unwrap()
}

fn cluster<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    v["accounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|a| a["regions"].as_array_mut().unwrap().iter_mut())
        .flat_map(|r| r["db_clusters"].as_array_mut().unwrap().iter_mut())
        .find(|c| c["id"] == id)
        .unwrap()
}

fn account<'a>(v: &'a mut Value, name: &str) -> &'a mut Value {
    v["accounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == name)
        .unwrap()
}

fn periods(h: &mut History, rule: &str, resource: &str) -> Vec<Period> {
    h.finding(rule, Some(resource)).unwrap()
}

fn waivers() -> Vec<dbaudit::waivers::Waiver> {
    waivers_of(
        "[[waiver]]\nrule = \"db.network.sg-eks-only\"\nresource = \"*:cluster:prod-billing\"\nreason = \"migrating to the EKS group\"\nexpires = \"2027-01-31\"\n",
    )
}

/// Waivers from a waivers file holding `text`.
fn waivers_of(text: &str) -> Vec<dbaudit::waivers::Waiver> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("waivers.toml");
    std::fs::write(&p, text).unwrap();
    dbaudit::waivers::load_file(&p).unwrap()
}

/// The scenario, on one store.
/// `spool`: the findings spooled an account at a time (as `evaluate` and
/// `scan` of several accounts do) or held; the store records either the
/// same way.
fn periods_follow_what_runs_covered(spec: &str, spool: bool) {
    let mut h = History::open(spec).unwrap();
    let options = |selection, waivers| AuditOptions {
        spool,
        ..options(selection, waivers)
    };
    let all = || options(Selection::default(), vec![]);

    // Run 1: the demo as it is: every failure opens a period.
    let mut v = demo();
    let r1 = report(&v, "2026-11-27T02:00:00Z", &all());
    let run1 = h.record(&r1, "2026-11-27T03:00:00Z").unwrap();
    let r1_findings = r1.findings.load().unwrap();
    let failing: std::collections::BTreeSet<&str> = r1_findings
        .iter()
        .filter(|f| f.outcome.is_failing())
        .map(|f| f.fingerprint.as_str())
        .collect();
    assert_eq!(run1.opened, failing.len());
    assert_eq!(run1.closed, 0);

    // Run 2, a day later: prod-catalog fixed, prod-orders newly without
    // deletion protection, prod-billing's SG finding waived, and the test
    // account not reachable.
    cluster(&mut v, "prod-catalog")["deletion_protection"] = json!(true);
    cluster(&mut v, "prod-orders")["deletion_protection"] = json!(false);
    let saved_test = account(&mut v, "test").clone();
    {
        let t = account(&mut v, "test");
        t["regions"] = json!([]);
        t["iam"] = Value::Null;
        t["gaps"] = json!([{"service": "sts", "operation": "AssumeRole", "code": "AccessDenied", "message": "not authorized"}]);
    }
    let r2 = report(
        &v,
        "2026-11-28T02:00:00Z",
        &options(Selection::default(), waivers()),
    );
    let run2 = h.record(&r2, "2026-11-28T03:00:00Z").unwrap();
    assert_eq!((run2.opened, run2.closed), (1, 1), "{run2:?}");

    let catalog = periods(&mut h, "db.deletion-protection", "prod-catalog");
    assert_eq!(catalog.len(), 1);
    assert_eq!(catalog[0].closed_by.as_deref(), Some("passed"));
    assert_eq!(
        catalog[0].closed_at.as_deref(),
        Some("2026-11-28T02:00:00Z")
    );
    assert_eq!(catalog[0].days, 1.0);
    let orders = periods(&mut h, "db.deletion-protection", "prod-orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].opened_at, "2026-11-28T02:00:00Z");
    assert!(orders[0].closed_seq.is_none());
    let billing = periods(&mut h, "db.network.sg-eks-only", "prod-billing");
    assert_eq!(billing.len(), 1, "waived is still open: one period");
    assert!(billing[0].closed_seq.is_none());
    assert!(
        billing[0]
            .waiver
            .as_deref()
            .is_some_and(|w| w.contains("migrating") && w.contains("2027-01-31")),
        "{billing:?}"
    );
    // Unscanned is not fixed: test's periods are untouched.
    let encryption = periods(&mut h, "db.encryption.at-rest", "test-shared");
    assert_eq!(encryption.len(), 1);
    assert!(encryption[0].closed_seq.is_none(), "{encryption:?}");
    let test_open = h
        .open_periods(&OpenFilter {
            environments: vec!["test".into()],
            ..OpenFilter::default()
        })
        .unwrap();
    // All five of test's failures of run 1.
    assert_eq!(test_open.len(), 5, "{test_open:#?}");
    assert!(test_open.iter().all(|p| p.opened_seq == 1));

    // Run 3: test is back with test-shared encrypted; prod-reporting (a
    // cluster and its instance) was deleted.
    *account(&mut v, "test") = saved_test;
    cluster(&mut v, "test-shared")["storage_encrypted"] = json!(true);
    for a in v["accounts"].as_array_mut().unwrap() {
        for r in a["regions"].as_array_mut().unwrap() {
            r["db_clusters"]
                .as_array_mut()
                .unwrap()
                .retain(|c| c["id"] != "prod-reporting");
            r["db_instances"]
                .as_array_mut()
                .unwrap()
                .retain(|i| i["cluster_id"] != "prod-reporting");
        }
    }
    let r3 = report(&v, "2026-11-30T02:00:00Z", &all());
    h.record(&r3, "2026-11-30T03:00:00Z").unwrap();
    let encryption = periods(&mut h, "db.encryption.at-rest", "test-shared");
    assert_eq!(encryption[0].closed_by.as_deref(), Some("passed"));
    assert_eq!(encryption[0].days, 3.0);
    let reporting = periods(&mut h, "db.network.sg-not-open-to-world", "prod-reporting");
    assert_eq!(
        reporting[0].closed_by.as_deref(),
        Some("gone"),
        "{reporting:?}"
    );
    let instance = periods(
        &mut h,
        "db.network.not-publicly-accessible",
        "prod-reporting-1",
    );
    assert_eq!(instance[0].closed_by.as_deref(), Some("gone"));
    let billing = periods(&mut h, "db.network.sg-eks-only", "prod-billing");
    assert!(
        billing[0].waiver.is_none(),
        "the waiver is gone from this run"
    );

    // Run 4: only test is evaluated, and prod-orders was fixed meanwhile:
    // prod is not covered, so its period stays open.
    cluster(&mut v, "prod-orders")["deletion_protection"] = json!(true);
    let only_test = Selection {
        environments: vec!["test".into()],
        ..Selection::default()
    };
    let r4 = report(&v, "2026-12-01T02:00:00Z", &options(only_test, vec![]));
    let run4 = h.record(&r4, "2026-12-01T03:00:00Z").unwrap();
    assert_eq!((run4.opened, run4.closed), (0, 0));
    assert!(
        periods(&mut h, "db.deletion-protection", "prod-orders")[0]
            .closed_seq
            .is_none()
    );

    // Run 5: a rule selection that leaves deletion protection out changes
    // nothing for it either.
    let other_rules = Selection {
        rules: vec!["db.encryption.*".into()],
        ..Selection::default()
    };
    let r5 = report(&v, "2026-12-01T12:00:00Z", &options(other_rules, vec![]));
    h.record(&r5, "2026-12-01T13:00:00Z").unwrap();
    assert!(
        periods(&mut h, "db.deletion-protection", "prod-orders")[0]
            .closed_seq
            .is_none()
    );

    // Run 6: everything again: prod-orders closes after 4 days.
    let r6 = report(&v, "2026-12-02T02:00:00Z", &all());
    h.record(&r6, "2026-12-02T03:00:00Z").unwrap();
    let orders = periods(&mut h, "db.deletion-protection", "prod-orders");
    assert_eq!(orders[0].closed_by.as_deref(), Some("passed"));
    assert_eq!(orders[0].days, 4.0);

    // Stats: prod's deletion protection was fixed twice, in 1 and 4 days.
    let stats = h.stats(10, &["prod".into()]).unwrap();
    let dp = stats
        .rows
        .iter()
        .find(|r| r.rule_id == "db.deletion-protection")
        .unwrap();
    assert_eq!(dp.fixed, 2);
    assert_eq!(dp.mean_days_to_fix, Some(2.5));
    assert_eq!(dp.median_days_to_fix, Some(2.5));
    assert_eq!(dp.open, 0);
    // Open at each run: catalog (1), orders (2, 3, 4, 5), none at 6.
    assert_eq!(dp.open_over_time, vec![1, 1, 1, 1, 1, 0]);
    let runs = h.runs(10).unwrap();
    assert_eq!(runs.len(), 6);
    assert_eq!(runs[0].seq, 6);

    // --baseline last: a run whose gate failed is never a baseline; once
    // run 6 is accepted it is, for itself and for the narrower run 4 (it
    // covers every cell of both).
    // Run 5 (encryption rules only) passed its gate: it is the only
    // candidate, and it did not evaluate the other rules, which are listed.
    let choice = h.baseline_for(&r6).unwrap();
    if let Some(run) = &choice.run {
        assert_ne!(run.seq, 6, "a failed run is never a baseline");
        assert_eq!(run.gate.as_deref(), Some("pass"));
        assert!(!choice.uncovered.is_empty(), "{}", choice.why);
    }
    h.accept("6", "alice", "reviewed", "2026-12-02T04:00:00Z")
        .unwrap();
    let choice = h.baseline_for(&r6).unwrap();
    assert_eq!(choice.run.as_ref().unwrap().seq, 6);
    assert!(choice.uncovered.is_empty());
    assert_eq!(
        choice.findings.len(),
        r6.findings
            .load()
            .unwrap()
            .iter()
            .filter(|f| f.outcome.is_failing())
            .count()
    );
    let choice = h.baseline_for(&r4).unwrap();
    assert_eq!(choice.run.unwrap().seq, 6, "an accepted run covering test");
    // Only the test account's failures are the narrower run's baseline:
    // prod's are not reported fixed by a run that did not look at prod.
    assert!(choice.findings.iter().all(|f| f.account == "test"));

    // The trend and ages the HTML report draws.
    let view = h.view(30).unwrap();
    assert!(
        view.trend
            .iter()
            .any(|p| p.environment == "prod" && p.seq == 1)
    );
    assert_eq!(
        view.ages.iter().map(|b| b.open).sum::<usize>(),
        h.open_periods(&OpenFilter::default()).unwrap().len()
    );
}

#[test]
fn sqlite_periods_follow_what_runs_covered() {
    for spool in [false, true] {
        let s = sqlite();
        periods_follow_what_runs_covered(&s.spec, spool);
    }
}

#[test]
fn postgres_periods_follow_what_runs_covered() {
    if let Some(s) = postgres("periods") {
        periods_follow_what_runs_covered(&s.spec, true);
    }
}

/// Writers at once: each run is recorded whole, none is lost, and the
/// periods are those of one run after the other.
fn concurrent_writers_lose_nothing(spec: &str) {
    let v = demo();
    let reports: Vec<Report> = (0..6)
        .map(|i| {
            report(
                &v,
                &format!("2026-11-2{}T02:00:00Z", i + 1),
                &options(Selection::default(), vec![]),
            )
        })
        .collect();
    // Six writers open a store that does not exist yet (creating its
    // schema is raced too) and record at once.
    std::thread::scope(|s| {
        for r in &reports {
            s.spawn(move || {
                let mut h = History::open(spec).unwrap();
                h.record(r, "2026-11-30T00:00:00Z").unwrap();
            });
        }
    });
    let mut h = History::open(spec).unwrap();
    let runs = h.runs(100).unwrap();
    assert_eq!(runs.len(), 6);
    let mut seqs: Vec<i64> = runs.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    // Exactly one run opened the periods; the others found them open.
    let opened: usize = runs.iter().map(|r| r.opened).sum();
    let failing = reports[0]
        .findings
        .load()
        .unwrap()
        .iter()
        .filter(|f| f.outcome.is_failing())
        .map(|f| &f.fingerprint)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(opened, failing);
    assert_eq!(
        h.open_periods(&OpenFilter::default()).unwrap().len(),
        failing
    );
}

#[test]
fn sqlite_concurrent_writers_lose_nothing() {
    let s = sqlite();
    concurrent_writers_lose_nothing(&s.spec);
}

#[test]
fn postgres_concurrent_writers_lose_nothing() {
    if let Some(s) = postgres("concurrent") {
        concurrent_writers_lose_nothing(&s.spec);
    }
}

/// A write that fails half-way (here: the periods insert, after the run
/// and its findings were written) leaves no trace of the run.
fn interrupted_write_leaves_no_run(spec: &str, break_periods: &dyn Fn()) {
    let v = demo();
    let mut h = History::open(spec).unwrap();
    let r1 = report(
        &v,
        "2026-11-27T02:00:00Z",
        &options(Selection::default(), vec![]),
    );
    break_periods();
    let err = h.record(&r1, "2026-11-27T03:00:00Z").unwrap_err();
    assert!(err.to_string().contains("history"), "{err}");
    let mut h = History::open(spec).unwrap();
    assert!(h.runs(10).unwrap().is_empty(), "no partial run");
    assert!(h.open_periods(&OpenFilter::default()).unwrap().is_empty());
    assert!(h.baseline_for(&r1).unwrap().run.is_none());
}

#[test]
fn sqlite_interrupted_write_leaves_no_run() {
    let s = sqlite();
    let path = s.spec.clone();
    interrupted_write_leaves_no_run(&s.spec, &|| {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TRIGGER fail_periods BEFORE INSERT ON dbaudit_periods BEGIN SELECT RAISE(ABORT, 'disk went away'); END;",
        )
        .unwrap();
    });
    // The findings were written before the failure, and rolled back too.
    let c = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM dbaudit_findings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn postgres_interrupted_write_leaves_no_run() {
    if let Some(s) = postgres("interrupted") {
        let url = s.spec.clone();
        interrupted_write_leaves_no_run(&s.spec, &|| {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(
                "CREATE FUNCTION fail_periods() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk went away'; END $$;
                 CREATE TRIGGER fail_periods BEFORE INSERT ON dbaudit_periods FOR EACH ROW EXECUTE FUNCTION fail_periods();",
            )
            .unwrap();
        });
        let mut c = postgres::Client::connect(&s.spec, postgres::NoTls).unwrap();
        let n: i64 = c
            .query_one("SELECT COUNT(*) FROM dbaudit_findings", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }
}

/// A store written by a newer dbaudit is refused, not downgraded.
fn a_newer_schema_is_refused(spec: &str, set_version: &dyn Fn()) {
    History::open(spec).unwrap();
    set_version();
    let err = History::open(spec).err().unwrap().to_string();
    assert!(err.contains("newer dbaudit") && err.contains("99"), "{err}");
}

#[test]
fn sqlite_newer_schema_is_refused() {
    let s = sqlite();
    let path = s.spec.clone();
    a_newer_schema_is_refused(&s.spec, &|| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("UPDATE dbaudit_meta SET value = '99' WHERE key = 'schema_version'")
            .unwrap();
    });
}

#[test]
fn postgres_newer_schema_is_refused() {
    if let Some(s) = postgres("newer") {
        let url = s.spec.clone();
        a_newer_schema_is_refused(&s.spec, &|| {
            postgres::Client::connect(&url, postgres::NoTls)
                .unwrap()
                .batch_execute("UPDATE dbaudit_meta SET value = '99' WHERE key = 'schema_version'")
                .unwrap();
        });
    }
}

fn dbaudit(args: &[&str], dir: &Path) -> std::process::Output {
    support::dbaudit_in(dir, args)
}

/// A file that is not a dbaudit history (garbage, another program's
/// SQLite database) is a clear error, exit 2, and stays byte for byte.
#[test]
fn a_corrupt_or_foreign_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database, but somebody's notes\n".repeat(200),
    )
    .unwrap();
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada');")
        .unwrap();
    let snapshot = root().join("fixtures/demo/snapshot.json");
    let cfg = root().join("fixtures/demo/dbaudit.toml");
    for (file, expect) in [
        (&garbage, "not a dbaudit history file"),
        (
            &foreign,
            "not a dbaudit history (it holds other tables: users)",
        ),
    ] {
        let before = std::fs::read(file).unwrap();
        let out = dbaudit(
            &[
                "evaluate",
                snapshot.to_str().unwrap(),
                "-c",
                cfg.to_str().unwrap(),
                "--history",
                file.to_str().unwrap(),
                "--html",
                "report.html",
            ],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(file.to_str().unwrap()) && stderr.contains(expect),
            "{stderr}"
        );
        assert_eq!(std::fs::read(file).unwrap(), before, "left as it was");
        assert!(!dir.path().join("report.html").exists(), "nothing written");
        // The queries refuse it the same way.
        let out = dbaudit(
            &["history", "runs", "--history", file.to_str().unwrap()],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2));
    }
}

/// The commands end to end: `--history` and `[history]`, `--baseline
/// last`, and each query as text and JSON.
#[test]
fn the_history_commands_answer_from_recorded_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = std::fs::read_to_string(root().join("fixtures/demo/dbaudit.toml")).unwrap();
    std::fs::write(
        dir.path().join("dbaudit.toml"),
        format!("{cfg_text}\n[history]\nstore = \"nightly.db\"\n"),
    )
    .unwrap();
    let mut v = demo();
    std::fs::write(dir.path().join("day1.json"), v.to_string()).unwrap();
    v["collected_at"] = json!("2026-11-29T02:00:00Z");
    cluster(&mut v, "prod-catalog")["deletion_protection"] = json!(true);
    std::fs::write(dir.path().join("day2.json"), v.to_string()).unwrap();

    let out = dbaudit(
        &["evaluate", "day1.json", "--as-of", "2026-11-30"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        dir.path().join("nightly.db").exists(),
        "[history] store, next to the config"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("history: recorded run"));
    // Day 1 failed its gate: it becomes a baseline only once accepted.
    let out = dbaudit(
        &[
            "history", "accept", "1", "--reason", "reviewed", "--by", "ops",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Day 2 against the accepted run: one failure fixed, none new,
    // so the gate passes on new failures only.
    let out = dbaudit(
        &[
            "evaluate",
            "day2.json",
            "--as-of",
            "2026-11-30",
            "--baseline",
            "last",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["baseline"]["fixed"], 1, "{}", report["baseline"]);
    assert_eq!(report["baseline"]["new"], 0);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let json_of = |args: &[&str]| -> Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let out = dbaudit(&a, dir.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let runs = json_of(&["history", "runs"]);
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);
    assert_eq!(runs["runs"][0]["closed"], 1);
    let open = json_of(&[
        "history",
        "open",
        "--environment",
        "prod",
        "--severity",
        "critical",
    ]);
    let open = open["open"].as_array().unwrap();
    assert!(!open.is_empty());
    assert!(
        open.iter()
            .all(|p| p["environment"] == "prod" && p["severity"] == "critical")
    );
    assert!(
        open.iter()
            .all(|p| p["opened_at"] == "2026-11-27T02:00:00Z" && p["days"] == 2.0)
    );
    let finding = json_of(&[
        "history",
        "finding",
        "db.deletion-protection",
        "--resource",
        "prod-catalog",
    ]);
    let fp = finding["periods"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(finding["periods"][0]["closed_by"], "passed");
    let by_fp = json_of(&["history", "finding", &fp]);
    assert_eq!(by_fp["periods"], finding["periods"]);
    let stats = json_of(&["history", "stats", "--environment", "prod"]);
    let dp = stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "db.deletion-protection")
        .unwrap();
    assert_eq!(dp["fixed"], 1);
    assert_eq!(dp["mean_days_to_fix"], 2.0);

    // Pruning keeps the runs; the next --baseline last still compares.
    let pruned = json_of(&["history", "prune", "--keep-runs", "1"]);
    assert_eq!(pruned["runs_pruned"], 1);
    assert_eq!(
        json_of(&["history", "runs"])["runs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Text output for people.
    let out = dbaudit(&["history", "open", "--environment", "prod"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("RULE") && text.contains("OPEN SINCE"),
        "{text}"
    );
    // An unknown finding, a missing store: exit 2 with what to do.
    let out = dbaudit(&["history", "finding", "0123"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RULE --resource"));
    let out = dbaudit(&["history", "runs", "--history", "missing.db"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("missing.db").exists(),
        "a query never creates a store"
    );
    // --baseline last needs a history.
    let other = tempfile::tempdir().unwrap();
    let out = dbaudit(
        &[
            "evaluate",
            dir.path().join("day1.json").to_str().unwrap(),
            "--baseline",
            "last",
        ],
        other.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--history"));
}

/// The password of a PostgreSQL store comes from PGPASSWORD (not the
/// command line), and none ever reaches a message: a wrong one is an error
/// naming the store without it.
#[test]
fn postgres_password_comes_from_pgpassword_and_is_never_shown() {
    let Some(s) = postgres("password") else {
        return;
    };
    let mut admin = postgres::Client::connect(&s.spec, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS dbaudit_pw; CREATE ROLE dbaudit_pw LOGIN PASSWORD 'Sup3r-s3cret'",
        )
        .unwrap();
    let (no_query, query) = s.spec.split_once('?').unwrap_or((&s.spec, ""));
    let db = no_query.rsplit_once('/').unwrap().1.to_string();
    admin
        .batch_execute(&format!(
            "GRANT ALL ON SCHEMA public TO dbaudit_pw; ALTER DATABASE {db} OWNER TO dbaudit_pw"
        ))
        .unwrap();
    let host = no_query
        .trim_start_matches("postgres://postgres@")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let url = format!("postgres://dbaudit_pw@{host}/{db}{query}");
    let dir = tempfile::tempdir().unwrap();
    let snapshot = root().join("fixtures/demo/snapshot.json");
    let cfg = root().join("fixtures/demo/dbaudit.toml");
    let run = |password: &str, url: &str| {
        Command::new(env!("CARGO_BIN_EXE_dbaudit"))
            .args([
                "evaluate",
                snapshot.to_str().unwrap(),
                "-c",
                cfg.to_str().unwrap(),
                "--history",
                url,
            ])
            .current_dir(dir.path())
            .env("PGPASSWORD", password)
            .env_remove("DBAUDIT_HISTORY")
            .output()
            .unwrap()
    };
    let out = run("Sup3r-s3cret", &url);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("history: recorded run"));
    // Without it the server refuses (so the run above did use it).
    let out = run("", &url);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A wrong password in the URL: refused, and not repeated.
    let out = run(
        "",
        &format!("postgres://dbaudit_pw:Wr0ng-pass@{host}/{db}{query}"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("postgres://dbaudit_pw@{host}/{db}")),
        "{stderr}"
    );
    assert!(!stderr.contains("Wr0ng-pass"), "{stderr}");
}

/// A process killed while it records (SIGKILL: no chance to clean up)
/// leaves the store as if the run had never started, or with the whole
/// run: SQLite rolls the unfinished transaction back on the next open.
#[test]
fn a_run_killed_while_recording_leaves_no_partial_run() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("estate.json");
    std::fs::write(&snap, dbaudit::synth::snapshot(3_000, 3, 0).to_json()).unwrap();
    let store = dir.path().join("history.db");
    let wal = dir.path().join("history.db-wal");
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_file(&store);
        let _ = std::fs::remove_file(&wal);
        // The schema first: then the first bytes in the write-ahead log
        // are the run's own transaction spilling pages (a run this size
        // does not fit SQLite's page cache), before it commits.
        History::open(store.to_str().unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
            .args([
                "evaluate",
                snap.to_str().unwrap(),
                "--history",
                store.to_str().unwrap(),
                "-o",
                "/dev/null",
            ])
            .current_dir(dir.path())
            .env_remove("DBAUDIT_CONFIG")
            .env_remove("DBAUDIT_HISTORY")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let written = || std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
        while !written() && start.elapsed() < std::time::Duration::from_secs(120) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let c = rusqlite::Connection::open(&store).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        let runs = count("SELECT COUNT(*) FROM dbaudit_runs");
        let findings = count("SELECT COUNT(*) FROM dbaudit_findings");
        let keys = count("SELECT COUNT(*) FROM dbaudit_keys");
        match runs {
            0 => assert_eq!((findings, keys), (0, 0), "a partial run was left"),
            1 => assert_eq!(findings, keys, "the run's findings are whole"),
            n => panic!("{n} runs"),
        }
        outcomes.push((finished, runs));
    }
    eprintln!("(killed before it finished, runs left) per attempt: {outcomes:?}");
    // The kill landed mid-write at least once (else this test proves
    // nothing); on a fast machine the run may have finished before.
    assert!(
        outcomes
            .iter()
            .any(|(finished, runs)| !finished && *runs == 0),
        "{outcomes:?}"
    );
}

/// Pruning drops old runs' findings, never what the queries answer from:
/// runs, counts and periods stay; `--baseline last` skips pruned runs.
fn prune_keeps_runs_and_periods(spec: &str, findings_rows: &dyn Fn() -> i64) {
    let mut h = History::open(spec).unwrap();
    let mut v = demo();
    let all = || options(Selection::default(), vec![]);
    let r1 = report(&v, "2026-11-27T02:00:00Z", &all());
    h.record(&r1, "2026-11-27T03:00:00Z").unwrap();
    cluster(&mut v, "prod-catalog")["deletion_protection"] = json!(true);
    let r2 = report(&v, "2026-11-28T02:00:00Z", &all());
    h.record(&r2, "2026-11-28T03:00:00Z").unwrap();
    let r3 = report(&v, "2026-11-29T02:00:00Z", &all());
    h.record(&r3, "2026-11-29T03:00:00Z").unwrap();
    let before_rows = findings_rows();
    let stats_before = h.stats(10, &[]).unwrap();
    let open_before = h.open_periods(&OpenFilter::default()).unwrap();

    assert_eq!(h.prune(1).unwrap(), 2);
    assert_eq!(
        findings_rows() * 3,
        before_rows,
        "one run of three keeps its rows"
    );
    assert_eq!(h.runs(10).unwrap().len(), 3);
    assert_eq!(h.stats(10, &[]).unwrap(), stats_before);
    assert_eq!(h.open_periods(&OpenFilter::default()).unwrap(), open_before);
    let catalog = periods(&mut h, "db.deletion-protection", "prod-catalog");
    assert_eq!(catalog[0].closed_by.as_deref(), Some("passed"));
    h.accept("3", "alice", "reviewed", "2026-11-29T04:00:00Z")
        .unwrap();
    assert_eq!(h.baseline_for(&r3).unwrap().run.unwrap().seq, 3);
    // A pruned run cannot be accepted: it could not serve as a baseline.
    assert!(
        h.accept("1", "alice", "late", "2026-11-29T04:00:00Z")
            .is_err()
    );
    // Pruning again changes nothing; keeping none leaves no baseline.
    assert_eq!(h.prune(1).unwrap(), 0);
    assert_eq!(h.prune(0).unwrap(), 1);
    assert_eq!(findings_rows(), 0);
    assert!(h.baseline_for(&r3).unwrap().run.is_none());
    // And the next run records as usual.
    let run4 = h.record(&r3, "2026-11-30T03:00:00Z").unwrap();
    assert_eq!((run4.opened, run4.closed), (0, 0));
}

#[test]
fn sqlite_prune_keeps_runs_and_periods() {
    let s = sqlite();
    let path = s.spec.clone();
    prune_keeps_runs_and_periods(&s.spec, &|| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM dbaudit_findings", [], |r| r.get(0))
            .unwrap()
    });
}

#[test]
fn postgres_prune_keeps_runs_and_periods() {
    if let Some(s) = postgres("prune") {
        let url = s.spec.clone();
        prune_keeps_runs_and_periods(&s.spec, &|| {
            postgres::Client::connect(&url, postgres::NoTls)
                .unwrap()
                .query_one("SELECT COUNT(*) FROM dbaudit_findings", &[])
                .unwrap()
                .get(0)
        });
    }
}

/// `[history] keep_runs`: every recorded run prunes the older runs'
/// findings, so a nightly store stops growing with the estate's findings.
#[test]
fn keep_runs_in_the_config_prunes_after_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = std::fs::read_to_string(root().join("fixtures/demo/dbaudit.toml")).unwrap();
    std::fs::write(
        dir.path().join("dbaudit.toml"),
        format!("{cfg_text}\n[history]\nstore = \"h.db\"\nkeep_runs = 1\n"),
    )
    .unwrap();
    // Three nights (the same snapshot twice would be recorded once).
    for night in 0..3 {
        let mut v = demo();
        v["collected_at"] = json!(format!("2026-11-2{}T02:00:00Z", 7 + night));
        let snap = dir.path().join(format!("night-{night}.json"));
        std::fs::write(&snap, v.to_string()).unwrap();
        let out = dbaudit(&["evaluate", snap.to_str().unwrap()], dir.path());
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let c = rusqlite::Connection::open(dir.path().join("h.db")).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM dbaudit_runs"), 3);
    assert_eq!(count("SELECT COUNT(DISTINCT seq) FROM dbaudit_findings"), 1);
    assert_eq!(count("SELECT MIN(seq) FROM dbaudit_findings"), 3);
    // A keep_runs of 0 would drop the run just recorded: refused.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[history]\nstore = \"h.db\"\nkeep_runs = 0\n",
    )
    .unwrap();
    let out = dbaudit(
        &[
            "evaluate",
            dir.path().join("night-0.json").to_str().unwrap(),
            "-c",
            "bad.toml",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:3:") && stderr.contains("keep_runs"),
        "{stderr}"
    );
}

/// TLS to a PostgreSQL history: the test server offers TLS with a
/// certificate from a throwaway CA (scripts/setup-postgres) and admits the
/// role `dbaudit_tls` only over TLS. dbaudit connects when it trusts that
/// CA (`sslrootcert`, or PGSSLROOTCERT), verifies the certificate (another
/// CA is refused, with the reason), and cannot get in without TLS.
#[test]
fn postgres_over_tls_verifies_the_server() {
    let Some(s) = postgres("tls") else {
        return;
    };
    let Ok(ca) = std::env::var("DBAUDIT_POSTGRES_CA") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and the test server has no TLS certificate (scripts/setup-postgres makes one with openssl)"
            );
        }
        eprintln!(
            "\n*** SKIPPED postgres_over_tls_verifies_the_server: DBAUDIT_POSTGRES_CA is not set ***\n"
        );
        return;
    };
    let other = std::path::Path::new(&ca).with_file_name("other-ca.pem");
    let (no_query, _) = s.spec.split_once('?').unwrap_or((&s.spec, ""));
    let db = no_query.rsplit_once('/').unwrap().1.to_string();
    let host = no_query
        .trim_start_matches("postgres://postgres@")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut admin = postgres::Client::connect(&s.spec, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS dbaudit_tls; CREATE ROLE dbaudit_tls LOGIN PASSWORD 'tls-pw'",
        )
        .unwrap();
    admin
        .batch_execute(&format!("ALTER DATABASE {db} OWNER TO dbaudit_tls"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = root().join("fixtures/demo/snapshot.json");
    let cfg = root().join("fixtures/demo/dbaudit.toml");
    let run = |url: &str, root_env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
        cmd.args([
            "evaluate",
            snapshot.to_str().unwrap(),
            "-c",
            cfg.to_str().unwrap(),
            "--history",
            url,
        ])
        .current_dir(dir.path())
        .env("PGPASSWORD", "tls-pw")
        .env_remove("DBAUDIT_HISTORY")
        .env_remove("PGSSLROOTCERT");
        if let Some(r) = root_env {
            cmd.env("PGSSLROOTCERT", r);
        }
        cmd.output().unwrap()
    };
    let base = format!("postgres://dbaudit_tls@{host}/{db}");
    // Trusting the server's CA: recorded, over TLS (the role has no other way in).
    let out = run(
        &format!("{base}?sslmode=verify-full&sslrootcert={ca}"),
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("history: recorded run"));
    // The CA from PGSSLROOTCERT, TLS by default (the server offers it).
    let out = run(&base, Some(&ca));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another CA: the handshake is refused, and the message says why.
    let out = run(
        &format!("{base}?sslmode=require&sslrootcert={}", other.display()),
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("TLS") && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
    // Without TLS the server turns the role away.
    let out = run(&format!("{base}?sslmode=disable"), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no encryption") || stderr.contains("pg_hba"),
        "{stderr}"
    );
}

/// Replaying the runs in time order (`--backfill`) on both stores: an
/// older run recorded last gives the periods that recording the runs in
/// order gives, and a run's findings pruned refuses the replay.
fn backfill_replays_in_time_order(spec: &str, in_order_spec: &str) {
    let all = || options(Selection::default(), vec![]);
    let d1 = demo();
    let mut d2 = demo();
    cluster(&mut d2, "prod-orders")["deletion_protection"] = json!(false);
    let mut d3 = demo();
    cluster(&mut d3, "prod-catalog")["deletion_protection"] = json!(true);
    // prod's security groups could not be read: the rules that read them
    // are errors there (their open periods stay open, unjudged).
    let sg_gap = json!({
        "service": "ec2", "region": "eu-west-1", "operation": "DescribeSecurityGroups",
        "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation."
    });
    let mut d3_denied = d3.clone();
    account(&mut d3_denied, "prod")["gaps"] = json!([sg_gap]);
    // A fifth night: a waiver appears and prod-orders and prod-billing are
    // gone: their periods close as `gone`, except those of the rules that
    // were errors in their region (the run could not have seen them).
    let mut d5 = d3_denied.clone();
    for region in account(&mut d5, "prod")["regions"].as_array_mut().unwrap() {
        region["db_clusters"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["id"] != "prod-orders" && c["id"] != "prod-billing");
    }
    let r1 = report(&d1, "2026-11-27T02:00:00Z", &all());
    let r2 = report(&d2, "2026-11-28T02:00:00Z", &all());
    let r3 = report(&d3, "2026-11-29T02:00:00Z", &all());
    let r4 = report(&d3_denied, "2026-11-30T02:00:00Z", &all());
    let r5 = report(
        &d5,
        "2026-12-01T02:00:00Z",
        &options(
            Selection::default(),
            waivers_of(
                "[[waiver]]\nrule = \"db.encryption.at-rest\"\nresource = \"*:cluster:test-shared\"\nreason = \"re-created encrypted in January\"\nexpires = \"2027-01-31\"\n",
            ),
        ),
    );

    let mut in_order = History::open(in_order_spec).unwrap();
    for r in [&r1, &r2, &r3, &r4, &r5] {
        in_order.record(r, "2026-12-01T00:00:00Z").unwrap();
    }
    let mut h = History::open(spec).unwrap();
    for r in [&r1, &r3, &r4, &r5] {
        h.record(r, "2026-12-01T00:00:00Z").unwrap();
    }
    h.begin_record(&r2, "2026-12-01T00:00:00Z", "d2").unwrap();
    h.rebuild_periods().unwrap();
    h.commit().unwrap();

    // Every period and every run's counts, as recording in order gives
    // them (sequence numbers differ between the stores: compared by time).
    type Whole = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let whole = |h: &mut History| {
        let mut all: Vec<Whole> = h
            .all_periods()
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.fingerprint,
                    p.opened_at,
                    p.closed_at,
                    p.closed_by,
                    p.waiver,
                )
            })
            .collect();
        all.sort();
        all
    };
    let replayed_whole = whole(&mut h);
    assert_eq!(replayed_whole, whole(&mut in_order));
    for by in ["passed", "gone"] {
        assert!(
            replayed_whole.iter().any(|p| p.3.as_deref() == Some(by)),
            "no period closed as {by}: {replayed_whole:?}"
        );
    }
    assert!(
        replayed_whole
            .iter()
            .any(|p| p.2.is_none() && p.4.is_some())
    );
    // prod-billing's security-group finding outlives its cluster: the
    // last run had an error for that rule in its region.
    let billing_sg = periods(&mut h, "db.network.sg-eks-only", "prod-billing");
    assert!(
        billing_sg.iter().any(|p| p.closed_at.is_none()),
        "{billing_sg:?}"
    );
    let counts = |h: &mut History| {
        let mut runs: Vec<(String, usize, usize)> = h
            .runs(10)
            .unwrap()
            .into_iter()
            .map(|r| (r.at, r.opened, r.closed))
            .collect();
        runs.sort();
        runs
    };
    assert_eq!(counts(&mut h), counts(&mut in_order));

    let shape = |h: &mut History| {
        let mut all: Vec<(String, String, Option<String>, Option<String>)> =
            ["prod-catalog", "prod-orders"]
                .iter()
                .flat_map(|r| periods(h, "db.deletion-protection", r))
                .map(|p| (p.resource_id, p.opened_at, p.closed_at, p.closed_by))
                .collect();
        all.sort();
        all
    };
    let replayed = shape(&mut h);
    assert_eq!(replayed, shape(&mut in_order));
    assert_eq!(
        replayed,
        vec![
            (
                "prod-catalog".to_string(),
                "2026-11-27T02:00:00Z".to_string(),
                Some("2026-11-29T02:00:00Z".to_string()),
                Some("passed".to_string())
            ),
            (
                "prod-orders".to_string(),
                "2026-11-28T02:00:00Z".to_string(),
                Some("2026-11-29T02:00:00Z".to_string()),
                Some("passed".to_string())
            ),
        ]
    );
    assert_eq!(
        h.open_periods(&OpenFilter::default()).unwrap().len(),
        in_order.open_periods(&OpenFilter::default()).unwrap().len()
    );
    // With a run's findings pruned, the replay is refused.
    h.prune(1).unwrap();
    h.begin_record(&r2, "2026-12-01T00:00:00Z", "again")
        .unwrap();
    assert!(h.rebuild_periods().is_err());
    h.rollback();
}

#[test]
fn sqlite_backfill_replays_in_time_order() {
    let (a, b) = (sqlite(), sqlite());
    backfill_replays_in_time_order(&a.spec, &b.spec);
}

#[test]
fn postgres_backfill_replays_in_time_order() {
    if let (Some(a), Some(b)) = (postgres("backfill"), postgres("backfill_in_order")) {
        backfill_replays_in_time_order(&a.spec, &b.spec);
    }
}

/// Two account names for one account id: a fingerprint names the account
/// by its id, so their findings share fingerprints. Recorded from spooled
/// findings, the run is then planned whole (not an account at a time) and
/// keeps one row per fingerprint, as a held run does.
#[test]
fn accounts_sharing_an_id_are_recorded_once_per_fingerprint() {
    let mut v = demo();
    let mut again = account(&mut v, "prod").clone();
    again["name"] = json!("prod-again");
    v["accounts"].as_array_mut().unwrap().push(again);
    for spool in [true, false] {
        let opts = AuditOptions {
            spool,
            ..options(Selection::default(), vec![])
        };
        let r = report(&v, "2026-11-27T02:00:00Z", &opts);
        let s = sqlite();
        let mut h = History::open(&s.spec).unwrap();
        let run = h.record(&r, "2026-11-27T03:00:00Z").unwrap();
        let findings = r.findings.load().unwrap();
        let distinct: std::collections::BTreeSet<&str> =
            findings.iter().map(|f| f.fingerprint.as_str()).collect();
        assert!(
            distinct.len() < findings.len(),
            "the names share fingerprints"
        );
        drop(h);
        let db = rusqlite::Connection::open(&s.spec).unwrap();
        let rows: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM dbaudit_findings WHERE seq = ?",
                [run.seq],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows as usize, distinct.len(), "spool {spool}");
    }
}
