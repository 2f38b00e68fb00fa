//! A gate nobody can talk into green: each path that used to turn a real
//! violation green, or hide missing data, driven through the CLI as a user
//! (or a CI retry) would.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::{dbaudit_in, root, text};

fn demo() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/demo/snapshot.json")).unwrap(),
    )
    .unwrap()
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

/// A directory with the demo config (and `extra` appended to it), the demo
/// snapshot as `day1.json`.
fn workdir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(root().join("fixtures/demo/dbaudit.toml")).unwrap();
    std::fs::write(dir.path().join("dbaudit.toml"), format!("{cfg}\n{extra}")).unwrap();
    std::fs::write(dir.path().join("day1.json"), demo().to_string()).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--as-of", "2026-11-30"]);
    dbaudit_in(dir, &all)
}

fn json_report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

fn runs(dir: &Path, store: &str) -> Vec<Value> {
    let out = dbaudit_in(
        dir,
        &["history", "runs", "--history", store, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["runs"].as_array().unwrap().clone()
}

/// The demo with one more high failure (prod-orders unencrypted), a day later.
fn one_more_failure(dir: &Path) {
    let mut v = demo();
    v["collected_at"] = json!("2026-11-28T02:00:00Z");
    cluster(&mut v, "prod-orders")["storage_encrypted"] = json!(false);
    std::fs::write(dir.join("day2.json"), v.to_string()).unwrap();
}

#[test]
fn a_retry_never_turns_a_new_failure_green() {
    let dir = workdir("");
    let d = dir.path();
    let out = run(d, &["evaluate", "day1.json", "--history", "h.db"]);
    assert_eq!(out.status.code(), Some(1));
    one_more_failure(d);
    // Without an accepted run every failure is new, and the verdict says
    // how to accept one.
    for attempt in 0..2 {
        let out = run(
            d,
            &[
                "evaluate",
                "day2.json",
                "--history",
                "h.db",
                "--baseline",
                "last",
                "--format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "attempt {attempt}");
        let report = json_report(&out);
        let reason = report["gate"]["reason"].as_str().unwrap();
        assert!(reason.contains("history accept"), "{reason}");
        assert_eq!(report["baseline"]["existing"], 0, "{reason}");
    }
    // A person accepts the first run: from then on only the new failure
    // fails the gate, on every retry, and the verdict names the run.
    let first = runs(d, "h.db").last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = dbaudit_in(
        d,
        &[
            "history",
            "accept",
            &first,
            "--history",
            "h.db",
            "--reason",
            "known debt, JIRA-1",
            "--by",
            "alice",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for attempt in 0..3 {
        let out = run(
            d,
            &[
                "evaluate",
                "day2.json",
                "--history",
                "h.db",
                "--baseline",
                "last",
                "--format",
                "json",
                "--no-history",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "attempt {attempt}");
        let report = json_report(&out);
        assert_eq!(report["gate"]["failing"], 1, "attempt {attempt}");
        let reason = report["gate"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(&first) && reason.contains("accepted by alice"),
            "{reason}"
        );
    }
    // Recorded failing runs do not become the baseline either.
    for _ in 0..2 {
        let out = run(
            d,
            &[
                "evaluate",
                "day2.json",
                "--history",
                "h.db",
                "--baseline",
                "last",
                "--format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(1));
    }
    // `history runs` shows the acceptance and each run's gate.
    let all = runs(d, "h.db");
    let accepted: Vec<&Value> = all.iter().filter(|r| r["accepted"].is_object()).collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["accepted"]["by"], "alice");
    assert_eq!(accepted[0]["accepted"]["reason"], "known debt, JIRA-1");
    assert!(all.iter().all(|r| r["gate"] == "fail"));
    let out = dbaudit_in(d, &["history", "runs", "--history", "h.db"]);
    assert!(
        text(&out.stdout).contains("by alice"),
        "{}",
        text(&out.stdout)
    );
    // Both fields are required.
    let out = dbaudit_in(
        d,
        &[
            "history",
            "accept",
            &first,
            "--history",
            "h.db",
            "--by",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = dbaudit_in(
        d,
        &[
            "history",
            "accept",
            "no-such-run",
            "--history",
            "h.db",
            "--by",
            "x",
            "--reason",
            "y",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_run_that_passed_its_gate_is_a_baseline_at_the_same_or_a_laxer_fail_on() {
    let dir = workdir("");
    let d = dir.path();
    // With every failing rule waived… simpler: a gate on `--fail-on
    // critical` with the criticals skipped passes. It is a baseline for
    // `--fail-on critical`, not for `--fail-on high` (stricter).
    let skip = [
        "--skip-rule",
        "iam.developers.prod-read-only",
        "--skip-rule",
        "db.network.*",
        "--skip-rule",
        "db.snapshots.*",
        "--skip-rule",
        "db.tls.*",
    ];
    let mut args = vec![
        "evaluate",
        "day1.json",
        "--history",
        "h.db",
        "--fail-on",
        "critical",
    ];
    args.extend(skip);
    let out = run(d, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let mut high = vec![
        "evaluate",
        "day1.json",
        "--history",
        "h.db",
        "--baseline",
        "last",
        "--no-history",
        "--format",
        "json",
    ];
    high.extend(skip);
    let report = json_report(&run(d, &high));
    let reason = report["gate"]["reason"].as_str().unwrap();
    assert!(reason.contains("history accept"), "{reason}");
    let mut critical = high.clone();
    critical.extend(["--fail-on", "critical"]);
    let report = json_report(&run(d, &critical));
    let reason = report["gate"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("gate passed at --fail-on critical"),
        "{reason}"
    );
    assert_eq!(report["baseline"]["new"], 0, "{reason}");
}

#[test]
fn a_narrowed_run_is_a_baseline_only_for_the_cells_it_covered() {
    let dir = workdir("");
    let d = dir.path();
    let accept = |run: &str| {
        let out = dbaudit_in(
            d,
            &[
                "history",
                "accept",
                run,
                "--history",
                "h.db",
                "--reason",
                "reviewed",
                "--by",
                "bob",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    };
    // Run 1 (full) and run 2 (network rules only), both accepted.
    run(d, &["evaluate", "day1.json", "--history", "h.db"]);
    let mut v = demo();
    v["collected_at"] = json!("2026-11-28T02:00:00Z");
    std::fs::write(d.join("day2.json"), v.to_string()).unwrap();
    run(
        d,
        &[
            "evaluate",
            "day2.json",
            "--history",
            "h.db",
            "--rule",
            "db.network.*",
        ],
    );
    accept("2");
    // Only the narrowed run is accepted: it is used, the rules it did not
    // evaluate are named, and their failures count as new.
    one_more_failure(d);
    let out = run(
        d,
        &[
            "evaluate",
            "day2.json",
            "--history",
            "h.db",
            "--baseline",
            "last",
            "--format",
            "json",
            "--no-history",
        ],
    );
    let report = json_report(&out);
    let reason = report["gate"]["reason"].as_str().unwrap();
    // The first few uncovered rules by id, then how many more.
    assert!(
        reason.contains("did not evaluate")
            && reason.contains("rule db.access.app-user-owns-its-schema")
            && reason.contains(" more: failures there count as new"),
        "{reason}"
    );
    let new_outside = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["baseline"] == "new")
        .filter(|f| !f["rule_id"].as_str().unwrap().starts_with("db.network."))
        .count();
    assert!(new_outside > 1, "{reason}");
    // The baseline's network failures are existing, and nothing outside
    // them is reported fixed.
    assert_eq!(report["baseline"]["fixed"], 0);
    // Once the full run is accepted too, it covers every cell: chosen
    // although it is older, and only the planted failure is new.
    accept("1");
    let report = json_report(&run(
        d,
        &[
            "evaluate",
            "day2.json",
            "--history",
            "h.db",
            "--baseline",
            "last",
            "--format",
            "json",
            "--no-history",
        ],
    ));
    let reason = report["gate"]["reason"].as_str().unwrap();
    assert!(!reason.contains("did not evaluate"), "{reason}");
    assert_eq!(report["gate"]["failing"], 1, "{reason}");
}

#[test]
fn no_history_overrides_the_configured_store() {
    let dir = workdir("[history]\nstore = \"nightly.db\"\n");
    let d = dir.path();
    let out = run(d, &["evaluate", "day1.json", "--no-history"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!d.join("nightly.db").exists(), "{}", text(&out.stderr));
    let out = run(d, &["evaluate", "day1.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(d.join("nightly.db").exists());
}

#[test]
fn a_failed_output_leaves_no_recorded_run_and_no_temporary_name() {
    let dir = workdir("");
    let d = dir.path();
    let out = run(
        d,
        &[
            "evaluate",
            "day1.json",
            "--history",
            "h.db",
            "--html",
            "/no/such/dir/r.html",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("/no/such/dir/r.html"), "{err}");
    assert!(!err.contains(".dbaudit-") && !err.contains(".tmp"), "{err}");
    assert!(!err.contains("history: recorded"), "{err}");
    assert!(runs(d, "h.db").is_empty(), "exit 2 records nothing");
    // The retry records it once.
    let out = run(
        d,
        &[
            "evaluate",
            "day1.json",
            "--history",
            "h.db",
            "--html",
            "r.html",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(runs(d, "h.db").len(), 1);
    // The HTML trend includes the run being recorded.
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.contains("2026-11-27"), "the trend plots this run");
}

#[test]
fn a_snapshot_is_recorded_once_and_never_out_of_time_order() {
    let dir = workdir("");
    let d = dir.path();
    one_more_failure(d);
    let out = run(d, &["evaluate", "day2.json", "--history", "h.db"]);
    assert_eq!(out.status.code(), Some(1));
    // The same snapshot again: evaluated and reported, not recorded twice.
    let out = run(d, &["evaluate", "day2.json", "--history", "h.db"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("already holds"), "{err}");
    assert_eq!(runs(d, "h.db").len(), 1);
    // An older snapshot: refused, both times named.
    let out = run(d, &["evaluate", "day1.json", "--history", "h.db"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("2026-11-27T02:00:00Z") && err.contains("2026-11-28T02:00:00Z"),
        "{err}"
    );
    assert_eq!(runs(d, "h.db").len(), 1);
    // Evaluated without recording, it is fine.
    let out = run(
        d,
        &["evaluate", "day1.json", "--history", "h.db", "--no-history"],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn history_queries_refuse_an_unknown_environment() {
    let dir = workdir("");
    let d = dir.path();
    run(d, &["evaluate", "day1.json", "--history", "h.db"]);
    for cmd in ["open", "stats"] {
        let out = dbaudit_in(
            d,
            &[
                "history",
                cmd,
                "--history",
                "h.db",
                "--environment",
                "staging",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = text(&out.stderr);
        assert!(err.contains("staging") && err.contains("prod"), "{err}");
    }
}

#[test]
fn two_outputs_to_one_path_are_refused() {
    let dir = workdir("");
    let d = dir.path();
    let out = run(
        d,
        &["evaluate", "day1.json", "--json", "x", "--sarif", "./x"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("json") && err.contains("sarif"), "{err}");
    assert!(!d.join("x").exists());
}

/// The demo without one account or region, evaluated with the demo config.
fn without(dir: &Path, name: &str, f: impl Fn(&mut Value)) {
    let mut v = demo();
    f(&mut v);
    std::fs::write(dir.join(name), v.to_string()).unwrap();
}

#[test]
fn a_snapshot_missing_a_configured_account_never_passes() {
    let dir = workdir("");
    let d = dir.path();
    without(d, "no-prod.json", |v| {
        v["accounts"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a["name"] != "prod")
    });
    let out = run(
        d,
        &[
            "evaluate",
            "no-prod.json",
            "--fail-on",
            "critical",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report = json_report(&out);
    assert_eq!(report["completeness"]["missing"], json!(["prod"]));
    let prod_errors = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["account"] == "prod")
        .collect::<Vec<_>>();
    assert!(!prod_errors.is_empty());
    assert!(prod_errors.iter().all(|f| f["outcome"] == "error"));
    // Left out on purpose: listed, not an error.
    let out = run(
        d,
        &[
            "evaluate",
            "no-prod.json",
            "--environment",
            "test",
            "--format",
            "json",
        ],
    );
    let report = json_report(&out);
    assert_eq!(
        report["completeness"]["not_evaluated"][0]["account"],
        "prod"
    );
    assert!(report["completeness"]["missing"].is_null());
    // The table says so too.
    let out = run(d, &["evaluate", "no-prod.json"]);
    assert!(
        text(&out.stdout).contains("coverage: 1 account or region expected"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_snapshot_missing_one_region_errors_that_regions_rules() {
    let dir = workdir("");
    let d = dir.path();
    // The config asks for a second region of prod, which the snapshot lacks.
    let cfg = std::fs::read_to_string(d.join("dbaudit.toml")).unwrap();
    let cfg = cfg.replacen(
        "account_id = \"222222222222\"",
        "account_id = \"222222222222\"\nregions = [\"eu-west-1\", \"eu-central-1\"]",
        1,
    );
    std::fs::write(d.join("dbaudit.toml"), cfg).unwrap();
    let out = run(d, &["evaluate", "day1.json", "--format", "json"]);
    let report = json_report(&out);
    assert_eq!(
        report["completeness"]["missing"],
        json!(["prod/eu-central-1"])
    );
    let in_region: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["region"] == "eu-central-1")
        .collect();
    assert!(!in_region.is_empty());
    assert!(in_region.iter().all(|f| f["outcome"] == "error"));
    assert!(
        in_region
            .iter()
            .any(|f| f["rule_id"] == "db.deletion-protection")
    );
}

#[test]
fn a_snapshot_that_contradicts_the_config_is_refused() {
    let dir = workdir("");
    let d = dir.path();
    without(d, "other-id.json", |v| {
        v["accounts"][1]["account_id"] = json!("999999999999");
    });
    let out = run(d, &["evaluate", "other-id.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("999999999999") && err.contains("222222222222"),
        "{err}"
    );
    without(d, "other-env.json", |v| {
        v["accounts"][1]["environment"] = json!("staging");
    });
    let out = run(d, &["evaluate", "other-env.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("staging"), "{err}");
}

#[test]
fn without_a_config_the_report_says_coverage_was_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.json"), demo().to_string()).unwrap();
    let out = run(dir.path(), &["evaluate", "s.json", "--format", "json"]);
    let report = json_report(&out);
    assert_eq!(report["completeness"]["against"], "none");
    let out = run(dir.path(), &["evaluate", "s.json", "--format", "markdown"]);
    assert!(text(&out.stdout).contains("### Coverage\n\nnot checked: no configuration"));
    let out = run(dir.path(), &["evaluate", "s.json"]);
    assert!(
        text(&out.stdout).contains("coverage: not checked"),
        "{}",
        text(&out.stdout)
    );
}

/// No credentials anywhere: the SDK's chain falls through to instance
/// metadata, here a closed loopback port (never the real address). Each
/// entry point says so in one line; the chain of providers is at -vv.
#[test]
fn no_credentials_is_one_line_at_every_entry_point() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("base.toml"),
        "regions = [\"eu-west-1\"]\n\n[[account]]\nname = \"prod\"\nenvironment = \"prod\"\naccount_id = \"222222222222\"\n",
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let bare = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dbaudit"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", d)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://127.0.0.1:{closed}"),
            )
            .env("NO_COLOR", "1")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let clean = |o: &Output, what: &str| {
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(all.contains("NoCredentials"), "{what}: {all}");
        assert!(!all.contains("DispatchFailure("), "{what}: {all}");
        assert!(!all.contains(" WARN "), "{what}: {all}");
        let lines = all.lines().filter(|l| l.contains("NoCredentials")).count();
        assert!(lines >= 1, "{what}: {all}");
    };
    let o = bare(&[
        "scan",
        "--account",
        "prod",
        "--config",
        "base.toml",
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(o.status.code(), Some(3));
    clean(&o, "scan");
    let o = bare(&[
        "merge",
        "s3://bucket/parts",
        "-o",
        "m.json",
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(o.status.code(), Some(2));
    clean(&o, "merge");
    let o = bare(&["evaluate", "s3://bucket/parts", "--endpoint-url", &endpoint]);
    assert_eq!(o.status.code(), Some(2));
    clean(&o, "evaluate");
    // -vv: the whole chain, provider by provider.
    let o = bare(&[
        "-vv",
        "scan",
        "--account",
        "prod",
        "--config",
        "base.toml",
        "--endpoint-url",
        &endpoint,
    ]);
    assert!(
        text(&o.stderr).contains("Ec2InstanceMetadata"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn collect_checks_its_output_before_collecting() {
    let dir = workdir("");
    let d = dir.path();
    // No emulator: were it to collect first, the run would take the
    // connect timeouts; it refuses at once.
    let o = dbaudit_in(
        d,
        &[
            "collect",
            "--all-accounts",
            "--config",
            "dbaudit.toml",
            "-o",
            "no/such/dir/x.json",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("no/such/dir") && !err.contains("collected"),
        "{err}"
    );
    let o = dbaudit_in(
        d,
        &[
            "scan",
            "--all-accounts",
            "--config",
            "dbaudit.toml",
            "--json",
            "no/such/dir/r.json",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !text(&o.stderr).contains("collected"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_part_of_another_run_is_not_taken_for_this_runs() {
    let dir = workdir("");
    let d = dir.path();
    std::fs::create_dir(d.join("parts")).unwrap();
    let mut part = demo();
    part["accounts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] == "prod");
    part["shard"] = json!({
        "run_id": "nightly-2026-11-26",
        "index": 1,
        "count": 1,
        "plan": [{"name": "prod", "environment": "prod", "account_id": "222222222222", "shard": 1}],
        "completed": ["prod"]
    });
    std::fs::write(d.join("parts/part-1.json"), part.to_string()).unwrap();
    let collect = |run: &str| {
        dbaudit_in(
            d,
            &[
                "collect",
                "--account",
                "prod",
                "--config",
                "dbaudit.toml",
                "--shard",
                "1/1",
                "--run-id",
                run,
                "-o",
                "parts/part-1.json",
                "--endpoint-url",
                "http://127.0.0.1:9",
            ],
        )
    };
    let o = collect("nightly-2026-11-27");
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("nightly-2026-11-26") && err.contains("nightly-2026-11-27"),
        "{err}"
    );
    // The same run: a retried shard, left alone.
    let o = collect("nightly-2026-11-26");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("already holds this part"));
    // The merge says which run it merged and how old its parts are.
    let o = dbaudit_in(d, &["merge", "parts", "-o", "merged.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("run `nightly-2026-11-26`") && err.contains("h ago"),
        "{err}"
    );
}

/// A field the API's answer lacked is unknown, never a default: the rule
/// that reads it is an `error` naming the field, not a pass.
#[test]
fn an_absent_field_is_unknown_never_a_default() {
    let dir = workdir("");
    let d = dir.path();
    without(d, "absent.json", |v| {
        let prod = &mut v["accounts"][1]["regions"][0];
        for i in prod["db_instances"].as_array_mut().unwrap() {
            if i["id"] == "prod-reporting-2" {
                i.as_object_mut().unwrap().remove("publicly_accessible");
            }
        }
        for c in prod["db_clusters"].as_array_mut().unwrap() {
            if c["id"] == "prod-orders" {
                c.as_object_mut().unwrap().remove("storage_encrypted");
            }
        }
    });
    let report = json_report(&run(d, &["evaluate", "absent.json", "--format", "json"]));
    let finding = |rule: &str, id: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == rule && f["resource_id"] == id)
            .unwrap_or_else(|| panic!("{rule} {id}"))
            .clone()
    };
    let public = finding("db.network.not-publicly-accessible", "prod-reporting-2");
    assert_eq!(public["outcome"], "error", "{public}");
    assert!(
        public["message"]
            .as_str()
            .unwrap()
            .contains("PubliclyAccessible"),
        "{public}"
    );
    let encrypted = finding("db.encryption.at-rest", "prod-orders");
    assert_eq!(encrypted["outcome"], "error", "{encrypted}");
    assert!(
        encrypted["message"]
            .as_str()
            .unwrap()
            .contains("StorageEncrypted"),
        "{encrypted}"
    );
}

/// One account that could not be reached does not switch parity off for
/// the organization: the services seen are still compared; a failure no
/// unseen database could undo stands, anything an unseen database could
/// overturn (a pass above all) is an error naming the account.
#[test]
fn an_unreachable_account_leaves_parity_on_for_the_rest() {
    let unreachable = |name: &str, env: &str, id: &str| {
        json!({
            "name": name, "environment": env, "account_id": id, "partition": "aws",
            "regions": [],
            "gaps": [{"service": "sts", "operation": "AssumeRole", "code": "AccessDenied",
                      "message": "not authorized to perform sts:AssumeRole"}]
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parity = |extra: Value| -> Vec<Value> {
        let mut v = demo();
        v["accounts"].as_array_mut().unwrap().push(extra);
        std::fs::write(d.join("s.json"), v.to_string()).unwrap();
        let report = json_report(&run(d, &["evaluate", "s.json", "--format", "json"]));
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"].as_str().unwrap().starts_with("parity."))
            .cloned()
            .collect()
    };
    let outcome = |fs: &[Value], rule: &str, service: &str| -> String {
        fs.iter()
            .find(|f| f["rule_id"] == rule && f["resource_id"] == service)
            .map(|f| f["outcome"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{rule} {service}: {fs:?}"))
    };
    // A prod account unseen: "ledger has no test database" stands (an
    // unseen prod database cannot give test one); the parameter difference
    // and IAM auth could change, so they are errors; one */* error per rule
    // covers services seen nowhere.
    let fs = parity(unreachable("prod-dr", "prod", "333333333333"));
    assert_eq!(
        outcome(&fs, "parity.service-has-test-database", "ledger"),
        "fail"
    );
    assert_eq!(outcome(&fs, "parity.parameters", "orders"), "error");
    assert_eq!(outcome(&fs, "parity.iam-auth", "orders"), "error");
    assert_eq!(
        outcome(&fs, "parity.engine-major-version", "orders"),
        "error"
    );
    let everything = fs.iter().filter(|f| f["resource_id"] == "*/*").count();
    let parity_rules = dbaudit::rules::RuleSet::load(&[], &[])
        .unwrap()
        .rules
        .iter()
        .filter(|r| r.id.starts_with("parity."))
        .count();
    assert_eq!(everything, parity_rules, "one per parity rule");
    assert!(fs.iter().all(|f| f["outcome"] != "pass"), "nothing passes");
    // A test account unseen: ledger's test database may be there.
    let fs = parity(unreachable("test-dr", "test", "444444444444"));
    assert_eq!(
        outcome(&fs, "parity.service-has-test-database", "ledger"),
        "error"
    );
    assert!(fs.iter().all(|f| f["outcome"] != "pass"));
}

/// `--backfill` inserts an older snapshot in its place in time: the periods
/// are replayed in the order of the snapshots, so nothing that a later run
/// closed is reopened, and what failed only then opens and closes there.
#[test]
fn backfill_inserts_an_older_snapshot_in_time_order() {
    let dir = workdir("");
    let d = dir.path();
    let day = |name: &str, at: &str, f: &dyn Fn(&mut Value)| {
        let mut v = demo();
        v["collected_at"] = json!(at);
        f(&mut v);
        std::fs::write(d.join(name), v.to_string()).unwrap();
    };
    day("d1.json", "2026-11-27T02:00:00Z", &|_| {});
    day("d3.json", "2026-11-29T02:00:00Z", &|v| {
        cluster(v, "prod-catalog")["deletion_protection"] = json!(true);
    });
    // Day 2: catalog still unprotected, and orders briefly unprotected too.
    day("d2.json", "2026-11-28T02:00:00Z", &|v| {
        cluster(v, "prod-orders")["deletion_protection"] = json!(false);
    });
    for f in ["d1.json", "d3.json"] {
        assert_eq!(
            run(d, &["evaluate", f, "--history", "h.db"]).status.code(),
            Some(1)
        );
    }
    let out = run(d, &["evaluate", "d2.json", "--history", "h.db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--backfill"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        d,
        &["evaluate", "d2.json", "--history", "h.db", "--backfill"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("in time order"),
        "{}",
        text(&out.stderr)
    );
    let periods = |resource: &str| -> Vec<Value> {
        let out = dbaudit_in(
            d,
            &[
                "history",
                "finding",
                "db.deletion-protection",
                "--resource",
                resource,
                "--history",
                "h.db",
                "--format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["periods"].as_array().unwrap().clone()
    };
    // Catalog: one period, day 1 to day 3, not reopened by day 2.
    let catalog = periods("prod-catalog");
    assert_eq!(catalog.len(), 1, "{catalog:?}");
    assert_eq!(catalog[0]["opened_at"], "2026-11-27T02:00:00Z");
    assert_eq!(catalog[0]["closed_at"], "2026-11-29T02:00:00Z");
    // Orders: failed on day 2 only.
    let orders = periods("prod-orders");
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["opened_at"], "2026-11-28T02:00:00Z");
    assert_eq!(orders[0]["closed_at"], "2026-11-29T02:00:00Z");
    // The same periods as recording the three days in order.
    for f in ["d1.json", "d2.json", "d3.json"] {
        run(d, &["evaluate", f, "--history", "in-order.db"]);
    }
    let every = periods_of(d, "h.db");
    assert!(every.len() > 10, "{every:?}");
    assert_eq!(every, periods_of(d, "in-order.db"));
    // The runs list in time order, day 3 the latest.
    let all = runs(d, "h.db");
    let ats: Vec<&str> = all.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert_eq!(
        ats,
        [
            "2026-11-29T02:00:00Z",
            "2026-11-28T02:00:00Z",
            "2026-11-27T02:00:00Z"
        ]
    );
}

/// Every period of a store as (fingerprint, opened_at, closed_at,
/// closed_by), through `history finding` of each failing fingerprint.
fn periods_of(d: &Path, store: &str) -> Vec<(String, String, String, String)> {
    let out = dbaudit_in(
        d,
        &["history", "open", "--history", store, "--format", "json"],
    );
    let open: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut fps: Vec<String> = open["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["fingerprint"].as_str().unwrap().to_string())
        .collect();
    // Closed periods are not in `open`: ask for the rules the days change.
    for resource in ["prod-catalog", "prod-orders"] {
        let out = dbaudit_in(
            d,
            &[
                "history",
                "finding",
                "db.deletion-protection",
                "--resource",
                resource,
                "--history",
                store,
                "--format",
                "json",
            ],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        fps.extend(
            v["periods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["fingerprint"].as_str().unwrap().to_string()),
        );
    }
    fps.sort();
    fps.dedup();
    let mut all = Vec::new();
    for fp in fps {
        let out = dbaudit_in(
            d,
            &[
                "history",
                "finding",
                &fp,
                "--history",
                store,
                "--format",
                "json",
            ],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        for p in v["periods"].as_array().unwrap() {
            let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
            all.push((
                s("fingerprint"),
                s("opened_at"),
                s("closed_at"),
                s("closed_by"),
            ));
        }
    }
    all
}

#[test]
fn a_malformed_endpoint_is_a_usage_error_before_any_call() {
    let dir = workdir("");
    for url in ["notaurl", "http://", "ftp://host"] {
        let o = dbaudit_in(
            dir.path(),
            &[
                "scan",
                "--all-accounts",
                "--config",
                "dbaudit.toml",
                "--endpoint-url",
                url,
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{url}");
        let err = text(&o.stderr);
        assert!(
            err.contains("--endpoint-url") && !err.contains("Request {"),
            "{err}"
        );
    }
}

/// One service across many accounts (the worst parity shape): each side is
/// summarised, so parity messages stay short (at most 300 characters).
#[test]
fn parity_messages_stay_short_when_a_service_spans_many_accounts() {
    let base = demo();
    let mut accounts = Vec::new();
    for n in 0..40 {
        for a in base["accounts"].as_array().unwrap() {
            let mut a = a.clone();
            let name = format!("{}-{n:02}", a["name"].as_str().unwrap());
            a["name"] = json!(name);
            a["account_id"] = json!(format!(
                "{}{n:02}",
                &a["account_id"].as_str().unwrap()[..10]
            ));
            for c in a["regions"][0]["db_clusters"].as_array_mut().unwrap() {
                c["id"] = json!(format!("{}-{n:02}", c["id"].as_str().unwrap()));
            }
            accounts.push(a);
        }
    }
    let mut v = base.clone();
    v["accounts"] = json!(accounts);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("many.json"), v.to_string()).unwrap();
    let report = json_report(&run(
        dir.path(),
        &[
            "evaluate",
            "many.json",
            "--rule",
            "parity.*",
            "--format",
            "json",
        ],
    ));
    let parity: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("parity."))
        .collect();
    assert!(parity.iter().any(|f| f["outcome"] == "fail"));
    for f in &parity {
        let m = f["message"].as_str().unwrap();
        assert!(m.chars().count() <= 300, "{} chars: {m}", m.chars().count());
    }
    let params = parity
        .iter()
        .find(|f| f["rule_id"] == "parity.parameters" && f["resource_id"] == "orders")
        .unwrap();
    assert!(
        params["message"]
            .as_str()
            .unwrap()
            .contains("md5 on 40 databases"),
        "{}",
        params["message"]
    );
}
