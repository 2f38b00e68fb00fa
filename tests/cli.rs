//! End-to-end tests of the `dbaudit` binary: exit codes, stdout and stderr.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{DEMO, DEMO_CONFIG, dbaudit, demo, root, text};

const BASE: &str = "fixtures/rules/base.json";

#[test]
fn demo_reports_the_planted_violations_and_fails_the_gate() {
    let out = demo(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for planted in [
        "db.network.not-publicly-accessible",
        "db.network.sg-not-open-to-world",
        "db.network.private-subnets",
        "db.network.sg-eks-only",
        "db.ha.readers-across-azs",
        "db.deletion-protection",
        "env.prod.cluster-per-service",
        "db.encryption.at-rest",
        "db.auth.iam-instance",
        "iam.developers.prod-read-only",
        "iam.app.rds-connect-scoped",
        "iam.irsa.trust-pinned",
    ] {
        assert!(stdout.contains(planted), "missing {planted} in:\n{stdout}");
    }
    assert!(stdout.contains("Gate FAILED (exit 1)"), "{stdout}");
    assert!(!stdout.contains("\x1b["), "no colours when NO_COLOR is set");
}

#[test]
fn json_report_is_deterministic_and_versioned() {
    let a = demo(&["--format", "json"]);
    let b = demo(&["--format", "json"]);
    assert_eq!(a.status.code(), Some(1));
    assert_eq!(a.stdout, b.stdout, "two evaluations must be byte-identical");
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["schema"], "dbaudit.report/v1");
    assert_eq!(v["gate"]["exit_code"], 1);
    assert_eq!(v["summary"]["total"]["fail"], 36);
    // Every message rendered: no placeholder failed.
    for f in v["findings"].as_array().unwrap() {
        assert!(
            !f["message"].as_str().unwrap().contains("<?>"),
            "{}",
            f["message"]
        );
    }
    let f = &v["findings"].as_array().unwrap()[0];
    assert_eq!(f["fingerprint"].as_str().unwrap().len(), 32);
    // Fingerprints are unique per (rule, account, resource).
    let mut prints: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap())
        .collect();
    let n = prints.len();
    prints.sort();
    prints.dedup();
    assert_eq!(prints.len(), n);
}

#[test]
fn an_account_without_databases_says_so() {
    // A wrong region list finds nothing and every resource rule passes
    // vacuously: the account's inventory line is where the user sees it.
    let dir = tempdir();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(BASE)).unwrap()).unwrap();
    assert_eq!(v["accounts"][0]["name"], "test");
    v["accounts"][0]["regions"][0]["db_clusters"] = serde_json::json!([]);
    v["accounts"][0]["regions"][0]["db_instances"] = serde_json::json!([]);
    let path = dir.join("empty-test.json");
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let out = dbaudit(&["evaluate", p, "--config", DEMO_CONFIG]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("audited: 0 DB clusters, 0 DB instances in eu-west-1")
            && stdout.contains("no database found"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("no database found").count(), 1, "{stdout}");
    let json = dbaudit(&["evaluate", p, "--config", DEMO_CONFIG, "--format", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let inv = &r["accounts"][1]["inventory"];
    assert_eq!(r["accounts"][1]["name"], "test");
    assert_eq!(
        (inv["db_clusters"].as_u64(), inv["db_instances"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(r["accounts"][0]["inventory"]["db_clusters"].as_u64() > Some(0));
    // And the gate does not pass on it: env.databases-present is an error
    // for the account (exit 3 when nothing fails), unless the config says
    // no database is expected there.
    let presence = |r: &serde_json::Value| -> serde_json::Value {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == "env.databases-present" && f["account"] == "test")
            .unwrap()
            .clone()
    };
    assert_eq!(presence(&r)["outcome"], "error");
    let cfg = demo_config_with(&dir, "[environments.test]\ndatabases_expected = false\n");
    let quiet = dbaudit(&[
        "evaluate",
        p,
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&quiet.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&quiet.stderr)));
    assert_eq!(presence(&r)["outcome"], "pass");
}

#[test]
fn compliant_estate_passes_the_gate() {
    let out = dbaudit(&["evaluate", BASE, "--config", DEMO_CONFIG]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("Gate PASSED (exit 0)"));
}

#[test]
fn fail_on_threshold_decides_the_gate() {
    // The demo's medium and low failures alone do not fail a critical-only gate,
    // but it has critical failures.
    let out = dbaudit(&["evaluate", DEMO, "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(1));
    // test alone has high and medium failures: a critical gate passes it.
    let dir = tempdir();
    let only_test = dir.join("test.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DEMO)).unwrap()).unwrap();
    v["accounts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] == "test");
    std::fs::write(&only_test, serde_json::to_string(&v).unwrap()).unwrap();
    let p = only_test.to_str().unwrap();
    assert_eq!(
        dbaudit(&["evaluate", p, "--fail-on", "critical"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        dbaudit(&["evaluate", p, "--fail-on", "high"]).status.code(),
        Some(1)
    );
}

#[test]
fn gaps_give_exit_3_unless_on_incomplete_warn() {
    let dir = tempdir();
    let path = dir.join("gap.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(BASE)).unwrap()).unwrap();
    v["accounts"][1]["gaps"] = serde_json::json!([{
        "service": "ec2", "region": "eu-west-1", "operation": "DescribeSecurityGroups",
        "code": "Throttling", "message": "Rate exceeded"
    }]);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let out = dbaudit(&["evaluate", p]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("gap: ec2 DescribeSecurityGroups: Throttling: Rate exceeded (eu-west-1)"),
        "{stdout}"
    );
    assert!(stdout.contains("Gate INCOMPLETE (exit 3)"), "{stdout}");
    // The gap is named once in the account header, not once per finding.
    assert_eq!(stdout.matches("gap: ").count(), 1);
    let warn = dbaudit(&["evaluate", p, "--on-incomplete", "warn"]);
    assert_eq!(warn.status.code(), Some(0));

    // Every account unreachable: nothing was evaluated, so even `warn`
    // cannot pass the gate.
    let none = dir.join("none.json");
    for a in v["accounts"].as_array_mut().unwrap() {
        a["regions"] = serde_json::json!([]);
        a["iam"] = serde_json::Value::Null;
        a["gaps"] = serde_json::json!([{"service": "sts", "operation": "AssumeRole",
            "code": "AccessDenied", "message": "not authorized"}]);
    }
    std::fs::write(&none, serde_json::to_string(&v).unwrap()).unwrap();
    let out = dbaudit(&[
        "evaluate",
        none.to_str().unwrap(),
        "--on-incomplete",
        "warn",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("nothing was evaluated"), "{stdout}");
}

#[test]
fn output_file_is_written_and_not_touched_on_error() {
    let dir = tempdir();
    let out_path = dir.join("report.json");
    let p = out_path.to_str().unwrap();
    let ok = dbaudit(&[
        "evaluate",
        BASE,
        "--config",
        DEMO_CONFIG,
        "--format",
        "json",
        "--output",
        p,
    ]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(ok.stdout.is_empty());
    let good = std::fs::read(&out_path).unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&good).is_ok());
    // A bad config: exit 2, and the previous report stays as it was.
    let bad = root().join("tests/malformed/unknown-top-key.config.toml");
    let err = dbaudit(&[
        "evaluate",
        BASE,
        "--config",
        bad.to_str().unwrap(),
        "--output",
        p,
    ]);
    assert_eq!(err.status.code(), Some(2));
    assert_eq!(std::fs::read(&out_path).unwrap(), good);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn two_snapshots_merge_and_duplicate_accounts_are_refused() {
    let dir = tempdir();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DEMO)).unwrap()).unwrap();
    for name in ["test", "prod"] {
        let mut one = v.clone();
        one["accounts"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a["name"] == name);
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string(&one).unwrap(),
        )
        .unwrap();
    }
    let t = dir.join("test.json");
    let p = dir.join("prod.json");
    let merged = dbaudit(&[
        "evaluate",
        t.to_str().unwrap(),
        p.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let whole = dbaudit(&["evaluate", DEMO, "--format", "json"]);
    assert_eq!(merged.stdout, whole.stdout);
    let dup = dbaudit(&["evaluate", t.to_str().unwrap(), t.to_str().unwrap()]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(text(&dup.stderr).contains("account `test` is also in an earlier snapshot"));
}

#[test]
fn rules_commands() {
    let list = dbaudit(&["rules", "list"]);
    assert_eq!(list.status.code(), Some(0));
    assert!(text(&list.stdout).contains("db.network.sg-eks-only"));
    let explain = dbaudit(&["rules", "explain", "db.ha.readers-across-azs"]);
    let s = text(&explain.stdout);
    assert!(
        s.contains("**Why.**") && s.contains("**Fix.**") && s.contains("Passes when:"),
        "{s}"
    );
    let unknown = dbaudit(&["rules", "explain", "db.ha.readers-across-az"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("did you mean `db.ha.readers-across-azs`?"));
    let fields = dbaudit(&["rules", "fields", "db_cluster"]);
    assert!(text(&fields.stdout).contains("readers_outside_writer_az"));
    // The kinds are clap's values, from the one enum: none is left out.
    let fields = dbaudit(&["rules", "fields", "db_proxy"]);
    assert!(
        text(&fields.stdout).contains("require_tls"),
        "{}",
        text(&fields.stderr)
    );
    let bad = dbaudit(&["rules", "fields", "db_clusterz"]);
    assert_eq!(bad.status.code(), Some(2));
    for kind in dbaudit::rules::ResourceKind::ALL {
        assert!(
            text(&bad.stderr).contains(kind.as_str()),
            "{}",
            text(&bad.stderr)
        );
    }
    // A directory with its own params.toml is a whole pack: `rules
    // validate` and `--rules` agree that it needs --no-builtin (nothing is
    // implied), and both say so.
    let valid = dbaudit(&["rules", "validate", "rules/"]);
    assert_eq!(valid.status.code(), Some(2), "{}", text(&valid.stderr));
    assert!(text(&valid.stderr).contains("--no-builtin"));
    let eval = dbaudit(&[
        "evaluate",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--rules",
        "rules/",
    ]);
    assert_eq!(eval.status.code(), Some(2), "{}", text(&eval.stderr));
    assert_eq!(text(&eval.stderr), text(&valid.stderr));
    let eval = dbaudit(&[
        "evaluate",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--rules",
        "rules/",
        "--no-builtin",
        "--format",
        "json",
    ]);
    assert_eq!(eval.status.code(), Some(1), "{}", text(&eval.stderr));
    // A single rule file that repeats a built-in id is still a duplicate.
    let dup = dbaudit(&["rules", "validate", "rules/iam.toml"]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(text(&dup.stderr).contains("duplicate"));
    // A copy of the pack is validated on its own with --no-builtin.
    let alone = dbaudit(&["rules", "validate", "--no-builtin", "rules/"]);
    assert_eq!(alone.status.code(), Some(0), "{}", text(&alone.stderr));
    let n = std::fs::read_to_string(root().join("tests/expected/rule-ids.txt"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(text(&alone.stdout).trim(), format!("ok: {n} rule(s) valid"));
    // The copy's own params.toml is what its rules are checked against.
    let copy = tempdir();
    for f in std::fs::read_dir(root().join("rules")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let params = std::fs::read_to_string(copy.join("params.toml")).unwrap();
    let without: String = params
        .lines()
        .filter(|l| !l.starts_with("min_readers"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(copy.join("params.toml"), without).unwrap();
    let broken = dbaudit(&["rules", "validate", "--no-builtin", copy.to_str().unwrap()]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        text(&broken.stderr).contains("min_readers"),
        "{}",
        text(&broken.stderr)
    );
}

#[test]
fn user_rules_extend_the_pack() {
    let dir = tempdir();
    std::fs::write(
        dir.join("mine.toml"),
        r#"[[rule]]
id = "org.cluster.owner-tag"
title = "Clusters have an owner tag"
severity = "low"
resource = "db_cluster"
condition = "'owner' in resource.tags"
message = "cluster {resource.id} has no owner tag"
rationale = "Someone must answer for each database."
remediation = "Tag it."
"#,
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    assert_eq!(dbaudit(&["rules", "validate", d]).status.code(), Some(0));
    let out = dbaudit(&["evaluate", BASE, "--rules", d, "--fail-on", "low"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("org.cluster.owner-tag"));
}

#[test]
fn a_user_rule_can_require_its_selection_to_match_something() {
    // An org rule about MySQL clusters that must exist (say, a migration
    // target): no MySQL cluster in an account is an error for it, not silence.
    let dir = tempdir();
    std::fs::write(
        dir.join("mysql.toml"),
        r#"[[rule]]
id = "org.mysql.encrypted"
title = "MySQL clusters are encrypted"
severity = "high"
resource = "db_cluster"
applies_if = "resource.engine == 'aurora-mysql'"
none_applies_error = "no Aurora MySQL cluster found; the migration plan expects one per account"
condition = "resource.storage_encrypted"
message = "cluster {resource.id} is not encrypted"
rationale = "r"
remediation = "r"
"#,
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let out = dbaudit(&[
        "evaluate",
        BASE,
        "--config",
        DEMO_CONFIG,
        "--rules",
        d,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "org.mysql.encrypted")
        .collect();
    assert_eq!(mine.len(), 2, "one per account: {mine:?}");
    for f in mine {
        assert_eq!(f["outcome"], "error");
        assert_eq!(f["resource_id"], "*/*");
        assert!(f["resource_arn"].as_str().unwrap().ends_with(":cluster:*"));
        assert!(f["message"].as_str().unwrap().contains("migration plan"));
    }
}

#[test]
fn init_writes_an_example_and_refuses_to_overwrite() {
    let dir = tempdir();
    let path = dir.join("dbaudit.toml");
    let p = path.to_str().unwrap();
    assert_eq!(dbaudit(&["init", "--output", p]).status.code(), Some(0));
    let again = dbaudit(&["init", "--output", p]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("--force"));
    // The example is a valid config. Its accounts are not in the base
    // snapshot: each is a gap (exit 3), never a silent pass.
    let out = dbaudit(&["evaluate", BASE, "--config", p, "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !report["completeness"]["missing"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_missing_file_is_named_once_with_the_reason_once() {
    let out = dbaudit(&["evaluate", "fixtures/no-such-snapshot.json"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: fixtures/no-such-snapshot.json: "),
        "{stderr}"
    );
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
    // scan without --account or --all-accounts names both ways.
    let scan = dbaudit(&["scan", "--config", DEMO_CONFIG]);
    assert_eq!(scan.status.code(), Some(2));
    assert!(
        text(&scan.stderr).contains("<--account <NAME>|--all-accounts>"),
        "{}",
        text(&scan.stderr)
    );
}

#[test]
fn usage_errors_exit_2_and_help_explains_exit_codes() {
    let out = dbaudit(&["evaluate"]);
    assert_eq!(out.status.code(), Some(2));
    let help = dbaudit(&["evaluate", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let h = text(&help.stdout);
    assert!(
        h.contains("Exit codes:") && h.contains("--on-incomplete"),
        "{h}"
    );
}

/// Every file under tests/malformed/ is a bad input; `NAME.expect` lists
/// lines that stderr must contain (file:line:col and the words of the error).
#[test]
fn malformed_inputs_exit_2_with_located_errors() {
    let dir = root().join("tests/malformed");
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".expect"))
        .collect();
    entries.sort();
    for input in entries {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name.split('.').next().unwrap();
        let expect = std::fs::read_to_string(dir.join(format!("{stem}.expect")))
            .unwrap_or_else(|_| panic!("{name} has no {stem}.expect"));
        let rel = Path::new("tests/malformed").join(&name);
        let rel = rel.to_str().unwrap();
        let out_dir = tempdir();
        let report = out_dir.join("report.json");
        let args: Vec<&str> = if name.ends_with(".config.toml") {
            vec![
                "evaluate",
                BASE,
                "--config",
                rel,
                "-o",
                report.to_str().unwrap(),
            ]
        } else if name.ends_with(".rules.toml") {
            vec!["rules", "validate", rel]
        } else if name.ends_with(".snapshot.json") {
            vec!["evaluate", rel, "-o", report.to_str().unwrap()]
        } else if name.ends_with(".waivers.toml") {
            vec![
                "evaluate",
                BASE,
                "--waivers",
                rel,
                "-o",
                report.to_str().unwrap(),
            ]
        } else if name.ends_with(".baseline.json") {
            vec![
                "evaluate",
                BASE,
                "--baseline",
                rel,
                "-o",
                report.to_str().unwrap(),
            ]
        } else {
            panic!("unknown malformed input kind: {name}")
        };
        let out = dbaudit(&args);
        let stderr = text(&out.stderr);
        cases += 1;
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{name}: exit {:?}, stderr:\n{stderr}",
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() || report.exists() {
            failures.push(format!("{name}: wrote output despite the error"));
        }
        for line in expect.lines().filter(|l| !l.trim().is_empty()) {
            if !stderr.contains(line) {
                failures.push(format!("{name}: stderr lacks `{line}`:\n{stderr}"));
            }
        }
    }
    // With the malformed IAM policies of tests/iam_malformed, the corpus of
    // bad inputs is over 60 cases.
    assert!(cases >= 50, "only {cases} malformed cases");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The demo config with `extra` TOML appended, written into `dir`.
fn demo_config_with(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("dbaudit-extra.toml");
    let base = std::fs::read_to_string(root().join(DEMO_CONFIG)).unwrap();
    std::fs::write(&cfg, format!("{base}\n{extra}")).unwrap();
    cfg
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "dbaudit-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn access_answers_with_the_deciding_statements() {
    let q = |who: &str| {
        dbaudit(&[
            "access",
            "--snapshot",
            DEMO,
            "--principal",
            &format!("arn:aws:iam::222222222222:user/{who}"),
            "--action",
            "rds:ModifyDBCluster",
            "--resource",
            "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders",
        ])
    };
    let alice = text(&q("alice").stdout);
    assert!(alice.contains(": DENY (explicit)") && alice.contains("denied by arn:aws:iam::222222222222:policy/developers-rds statement 1 (DenyRdsWrites)"), "{alice}");
    let bob = text(&q("bob").stdout);
    assert!(
        bob.contains(": ALLOW") && bob.contains("dev-hotfix statement 0 (HotfixClusters)"),
        "{bob}"
    );
    let who = dbaudit(&[
        "access",
        "--snapshot",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--who-can-write",
        "prod",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    let principals: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    assert_eq!(principals, ["arn:aws:iam::222222222222:user/bob"]);
    // Unknown context keys make answers conditional, and --context settles them.
    let mfa = dbaudit(&[
        "access",
        "--snapshot",
        DEMO,
        "--principal",
        "arn:aws:iam::222222222222:user/nobody",
        "--action",
        "rds:ModifyDBCluster",
        "--resource",
        "x",
    ]);
    assert_eq!(mfa.status.code(), Some(2));
    assert!(text(&mfa.stderr).contains("no user or role"));
}

/// `dbaudit access` as a scriptable check: patterns over the snapshot's
/// resources, absent keys, other accounts, the deciding layer, exit codes.
#[test]
fn access_answers_about_the_snapshot_with_scriptable_exit_codes() {
    let ask = |resource: &str, action: &str, extra: &[&str]| {
        let mut args = vec![
            "access",
            "--snapshot",
            DEMO,
            "--principal",
            "arn:aws:iam::222222222222:user/bob",
            "--action",
            action,
            "--resource",
            resource,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        dbaudit(&args)
    };
    let json = |o: &Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)))
    };
    // A pattern means "some resource of the snapshot matching it".
    let some = ask(
        "arn:aws:rds:*:222222222222:cluster:prod-pay*",
        "rds:ModifyDBCluster",
        &["--expect", "allow"],
    );
    assert_eq!(some.status.code(), Some(0), "{}", text(&some.stderr));
    let v = json(&some);
    assert_eq!(v["decision"], "allow");
    let matched: Vec<&str> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        matched,
        ["arn:aws:rds:eu-west-1:222222222222:cluster:prod-payments"]
    );
    // No resource matches: says so, and is not an allow.
    let none = ask(
        "arn:aws:rds:*:222222222222:cluster:nothing-*",
        "rds:ModifyDBCluster",
        &["--expect", "allow"],
    );
    assert_eq!(none.status.code(), Some(1));
    let v = json(&none);
    assert_eq!(v["matches"].as_array().unwrap().len(), 0);
    assert!(
        v["notes"][0]
            .as_str()
            .unwrap()
            .contains("no resource in the snapshot matches"),
        "{v}"
    );
    // Another account's cluster: denied by the resource account, even where
    // the identity policy's pattern covers it.
    let other = ask(
        "arn:aws:rds:eu-west-1:333333333333:cluster:prod-orders",
        "rds:ModifyDBCluster",
        &["--expect", "deny"],
    );
    assert_eq!(other.status.code(), Some(0));
    let v = json(&other);
    assert_eq!(v["decision"], "implicit_deny");
    assert!(
        v["decided_by"]
            .as_str()
            .unwrap()
            .contains("resource-based policy"),
        "{v}"
    );
    // Misspelt action and non-ARN resource: exit 2 with the nearest name.
    let typo = ask("*", "rds:ModifyDBClustr", &[]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("did you mean `rds:ModifyDBCluster`"),
        "{}",
        text(&typo.stderr)
    );
    let bad = ask("prod-orders", "rds:ModifyDBCluster", &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders"));
    // A key declared absent: StringNotEquals on it holds (AWS's rule).
    let dir = tempdir();
    let snap = dir.join("snap.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DEMO)).unwrap()).unwrap();
    let policies = s["accounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == "prod")
        .unwrap()["iam"]["policies"]
        .as_array_mut()
        .unwrap();
    let hotfix = policies
        .iter_mut()
        .find(|p| p["name"] == "dev-hotfix")
        .unwrap();
    hotfix["document"] = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:ModifyDBCluster", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}]});
    std::fs::write(&snap, serde_json::to_string(&s).unwrap()).unwrap();
    let cluster = "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders";
    let q = |extra: &[&str]| {
        let mut args = vec![
            "access",
            "--snapshot",
            snap.to_str().unwrap(),
            "--principal",
            "arn:aws:iam::222222222222:user/bob",
            "--action",
            "rds:ModifyDBCluster",
            "--resource",
            cluster,
        ];
        args.extend_from_slice(extra);
        dbaudit(&args)
    };
    let unknown = q(&["--expect", "conditional"]);
    assert_eq!(unknown.status.code(), Some(0), "{}", text(&unknown.stdout));
    assert!(text(&unknown.stdout).contains("aws:sourcevpce"));
    let absent = q(&["--context-absent", "aws:SourceVpce", "--expect", "allow"]);
    assert_eq!(absent.status.code(), Some(0), "{}", text(&absent.stdout));
    let present = q(&["--context", "aws:SourceVpce=vpce-1", "--expect", "deny"]);
    assert_eq!(present.status.code(), Some(0), "{}", text(&present.stdout));
    // The layer that blocked is named.
    let h = text(&dbaudit(&["access", "--help"]).stdout);
    assert!(
        h.contains("--expect") && h.contains("--context-absent") && h.contains("Exit codes"),
        "{h}"
    );
    // Unknown environment: exit 2 listing the known ones.
    let env = dbaudit(&[
        "access",
        "--snapshot",
        DEMO,
        "--who-can-write",
        "production",
    ]);
    assert_eq!(env.status.code(), Some(2));
    assert!(
        text(&env.stderr).contains("known: prod, test"),
        "{}",
        text(&env.stderr)
    );
}

#[test]
fn oversized_inputs_are_refused_before_they_are_read() {
    let dir = tempdir();
    let big = dir.join("big.toml");
    let line = format!("# {}\n", "x".repeat(1000));
    std::fs::write(&big, line.repeat(5 * 1024)).unwrap();
    let out = dbaudit(&["rules", "validate", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("big.toml:1:1: file is")
            && stderr.contains("the limit for this kind of input is 4194304 bytes"),
        "{stderr}"
    );
}

/// Memory stays bounded with tens of thousands of security group rules:
/// 40,000 groups (the synthetic estate's DB groups plus 30,000 others) and
/// 5,000 clusters evaluated by the binary under GNU time.
#[test]
fn memory_stays_bounded_with_tens_of_thousands_of_security_group_rules() {
    if !Path::new("/usr/bin/time").exists() {
        panic!("GNU time (/usr/bin/time) is needed to measure peak memory");
    }
    let dir = tempdir();
    let snap = dir.join("big.json");
    std::fs::write(&snap, dbaudit::synth::snapshot(5_000, 3, 35_000).to_json()).unwrap();
    let rss = dir.join("rss");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", rss.to_str().unwrap()])
        .arg(env!("CARGO_BIN_EXE_dbaudit"))
        .args([
            "evaluate",
            snap.to_str().unwrap(),
            "--format",
            "json",
            "-o",
            dir.join("r.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = std::fs::read_to_string(&rss).unwrap();
    // GNU time writes "Command exited with non-zero status 1" first.
    let kb: u64 = report.lines().last().unwrap().trim().parse().unwrap();
    // A debug build; the release figure is in docs/performance.md.
    assert!(kb < 1_500_000, "peak RSS {} MB", kb / 1024);
}

/// Small holes a new user falls into, each closed.
#[test]
fn rough_edges_of_the_cli() {
    // `init -o -` prints the example instead of writing a file named `-`.
    let dir = tempdir();
    let out = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
        .args(["init", "-o", "-"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("[[account]]"));
    assert!(!dir.join("-").exists());
    // An empty --rules directory is an error, not zero extra rules.
    let empty = dir.join("empty-rules");
    std::fs::create_dir_all(&empty).unwrap();
    let o = dbaudit(&["evaluate", DEMO, "--rules", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("holds no rule file"),
        "{}",
        text(&o.stderr)
    );
    // `rules list` has only the formats it renders.
    let o = dbaudit(&["rules", "list", "--format", "sarif"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("possible values: table, json"),
        "{}",
        text(&o.stderr)
    );
    // Validating the built-in directory itself works, as a whole pack.
    let o = dbaudit(&["rules", "validate", "--no-builtin", "rules"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("ok: "), "{}", text(&o.stdout));
    // A reader that stops early is a normal end of output.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
        .args(["evaluate", DEMO, "--config", DEMO_CONFIG, "--json", "-"])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Read;
        let mut first = [0u8; 16];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
    }
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !text(&out.stderr).contains("Broken pipe"),
        "{}",
        text(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(2));
}

/// `--version` names the commit and the rule pack; every report records both.
#[test]
fn version_names_commit_and_rule_pack_and_reports_record_them() {
    let v = text(&dbaudit(&["--version"]).stdout);
    let pack = v
        .split("rule pack ")
        .nth(1)
        .and_then(|s| s.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(pack.len(), 12, "{v}");
    assert!(
        v.starts_with(&format!("dbaudit {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let json = demo(&["--format", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(r["tool"]["rule_pack"], pack);
    assert!(r["tool"]["commit"].is_string());
}

/// Rule selection on the command line and in the config: what is left out
/// is listed as not evaluated, and a pattern that matches nothing is exit 2.
#[test]
fn rule_selection_lists_what_was_not_evaluated() {
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = vec![
            "evaluate",
            DEMO,
            "--config",
            DEMO_CONFIG,
            "--format",
            "json",
        ];
        a.extend_from_slice(args);
        let o = dbaudit(&a);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)))
    };
    let r = json(&[
        "--rule",
        "db.network.*",
        "--skip-rule",
        "db.network.eks-vpc",
    ]);
    let ids: std::collections::BTreeSet<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| i.starts_with("db.network.")), "{ids:?}");
    assert!(!ids.contains("db.network.eks-vpc"));
    let not: Vec<(&str, &str)> = r["not_evaluated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["rule"].as_str().unwrap(), n["reason"].as_str().unwrap()))
        .collect();
    assert!(
        not.contains(&("db.network.eks-vpc", "skipped with --skip-rule")),
        "{not:?}"
    );
    assert!(not.contains(&("iam.developers.prod-read-only", "not selected by --rule")));
    // Severity and environment.
    let r = json(&["--severity", "critical", "--environment", "prod"]);
    for f in r["findings"].as_array().unwrap() {
        assert_eq!(f["severity"], "critical", "{f}");
        assert_eq!(f["environment"], "prod", "{f}");
    }
    // A typo is an error with the nearest rule, not an empty selection.
    let o = dbaudit(&["evaluate", DEMO, "--rule", "db.network.sg-eks-onyl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("did you mean `db.network.sg-eks-only`"),
        "{}",
        text(&o.stderr)
    );
    let o = dbaudit(&["evaluate", DEMO, "--environment", "production"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("known: prod, test"),
        "{}",
        text(&o.stderr)
    );
    // `[rules] disable` in the config: listed in the table too.
    let cfg = demo_config_with(&tempdir(), "[rules]\ndisable = [\"db.ha.*\"]\n");
    let o = dbaudit(&["evaluate", DEMO, "--config", cfg.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "not evaluated (disabled in the configuration ([rules] disable)): 3 rule(s): db.ha."
        ),
        "{out}"
    );
    assert!(!out.contains("db.ha.readers-across-azs  "), "{out}");
}

/// Without --config, ./dbaudit.toml is used; `scan --help` says what is required.
#[test]
fn the_config_in_the_working_directory_is_the_default() {
    let dir = tempdir();
    std::fs::copy(root().join(DEMO_CONFIG), dir.join("dbaudit.toml")).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dbaudit"))
            .args(args)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env_remove("DBAUDIT_CONFIG")
            .output()
            .unwrap()
    };
    let demo = root().join(DEMO);
    let o = run(&["evaluate", demo.to_str().unwrap(), "--format", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The demo config names the developers: their rules decide (no error).
    assert_eq!(r["gate"]["exit_code"], 1, "{}", r["gate"]);
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["outcome"] != "error"),
        "./dbaudit.toml was not used"
    );
    let help = text(&run(&["scan", "--help"]).stdout);
    assert!(
        help.contains("Required: which accounts") && help.contains("./dbaudit.toml"),
        "{help}"
    );
}

/// The table fits the width it is given, summarises per rule first, and
/// stays readable on a big estate.
#[test]
fn the_table_fits_the_terminal_and_summarises_big_estates() {
    let run = |columns: &str, args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_dbaudit"))
            .args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("COLUMNS", columns)
            .env_remove("DBAUDIT_CONFIG")
            .output()
            .unwrap();
        text(&o.stdout)
    };
    let demo = ["evaluate", DEMO, "--config", DEMO_CONFIG];
    for width in [80usize, 120] {
        let out = run(&width.to_string(), &demo);
        let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= width, "{widest} > {width}:\n{out}");
        assert!(out.starts_with("Rules with failures or errors:"), "{out}");
        assert!(out.contains("prod-reporting"), "{out}");
        // No rule id is broken across lines, however narrow.
        let json = dbaudit(&[&demo[..], &["--format", "json"]].concat());
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        for f in report["findings"].as_array().unwrap() {
            if f["outcome"] == "fail" {
                let id = f["rule_id"].as_str().unwrap();
                assert!(out.contains(id), "`{id}` broken at {width} columns:\n{out}");
            }
        }
    }
    // --compact: the per-rule summary only.
    let out = run("160", &[&demo[..], &["--compact"]].concat());
    assert!(
        out.contains("(31 finding(s) not listed: --compact)"),
        "{out}"
    );
    assert!(!out.contains("is publicly accessible"), "{out}");
    // A big estate is compact by default; --compact=false lists everything.
    let dir = tempdir();
    let big = dir.join("big.json");
    std::fs::write(&big, dbaudit::synth::snapshot(3_000, 1, 0).to_json()).unwrap();
    let big = big.to_str().unwrap();
    let out = run("160", &["evaluate", big]);
    assert!(out.contains("finding(s) not listed: --compact"), "{out}");
    assert!(out.lines().count() < 100, "{} lines", out.lines().count());
    let full = run("160", &["evaluate", big, "--compact=false"]);
    assert!(
        full.lines().count() > 1_000,
        "{} lines",
        full.lines().count()
    );
}

/// Shell completions and man pages come from the same definitions as --help.
#[test]
fn completions_and_man_pages() {
    let dir = tempdir();
    for shell in ["bash", "zsh", "fish"] {
        let o = dbaudit(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = text(&o.stdout);
        for sub in ["scan", "evaluate", "access", "completions"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
        if shell == "bash" {
            // The script is valid bash.
            let path = dir.join("dbaudit.bash");
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(check.status.success(), "{}", text(&check.stderr));
        }
    }
    let o = dbaudit(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let page = text(&dbaudit(&["man"]).stdout);
    assert!(
        page.contains(".TH dbaudit 1") && page.contains("scan"),
        "{page}"
    );
    let mandir = dir.join("man");
    let o = dbaudit(&["man", "--dir", mandir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let scan = std::fs::read_to_string(mandir.join("dbaudit-scan.1")).unwrap();
    assert!(scan.contains("\\-\\-all\\-accounts"), "{scan}");
}

/// Parity rules need both environments in the run: with only prod they are
/// listed as not evaluated and the exit code is what the prod rules give;
/// with both, a prod service without a test database is a finding that names
/// the prod database.
#[test]
fn parity_rules_compare_test_and_prod_and_step_aside_when_one_is_missing() {
    let json = |o: &Output| -> serde_json::Value { serde_json::from_slice(&o.stdout).unwrap() };
    let both = demo(&["--format", "json"]);
    let only_prod = demo(&["--format", "json", "--environment", "prod"]);
    let (b, p) = (json(&both), json(&only_prod));
    let ledger: Vec<&serde_json::Value> = b["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["rule_id"] == "parity.service-has-test-database" && f["resource_id"] == "ledger"
        })
        .collect();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["outcome"], "fail");
    assert_eq!(ledger[0]["account"], "prod");
    assert!(
        ledger[0]["message"]
            .as_str()
            .unwrap()
            .contains("prod/eu-west-1/prod-payments"),
        "{}",
        ledger[0]["message"]
    );
    let skipped: Vec<&str> = p["not_evaluated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["rule"].as_str().unwrap().starts_with("parity."))
        .map(|n| n["reason"].as_str().unwrap())
        .collect();
    let pair_rules = dbaudit::rules::RuleSet::load(&[], &[])
        .unwrap()
        .rules
        .iter()
        .filter(|r| r.pair.is_some())
        .count();
    assert!(pair_rules >= 4);
    assert_eq!(skipped.len(), pair_rules, "{}", p["not_evaluated"]);
    assert!(
        skipped.iter().all(|r| r.contains("no account of test")),
        "{skipped:?}"
    );
    assert!(
        !p["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"].as_str().unwrap().starts_with("parity.")),
        "no parity finding, not even an error"
    );
    assert_eq!(only_prod.status.code(), both.status.code());
}

/// A snapshot of a newer minor (a newer dbaudit added fields) is read with
/// the unknown fields left out and a warning naming them; the same snapshot
/// tagged with this version's minor is refused (tests/malformed covers it).
#[test]
fn a_newer_minor_snapshot_is_read_without_its_new_fields() {
    let dir = tempdir();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DEMO)).unwrap()).unwrap();
    v["schema"] = "dbaudit.snapshot/v1.7".into();
    v["collector_host"] = "runner-3".into();
    v["accounts"][0]["regions"][0]["db_clusters"][0]["blue_green"] = serde_json::json!({"x": 1});
    let newer = dir.join("newer.json");
    std::fs::write(&newer, v.to_string()).unwrap();
    let o = dbaudit(&[
        "evaluate",
        newer.to_str().unwrap(),
        "--config",
        DEMO_CONFIG,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("schema minor 7 is newer"), "{err}");
    assert!(err.contains("collector_host"), "{err}");
    assert!(
        err.contains("accounts[].regions[].db_clusters[].blue_green"),
        "{err}"
    );
    let same = dbaudit(&[
        "evaluate",
        DEMO,
        "--config",
        DEMO_CONFIG,
        "--format",
        "json",
    ]);
    assert_eq!(
        o.stdout, same.stdout,
        "the same findings as without the new fields"
    );
    v["schema"] = dbaudit::snapshot::SCHEMA.into();
    let current = dir.join("current.json");
    std::fs::write(&current, v.to_string()).unwrap();
    let o = dbaudit(&[
        "evaluate",
        current.to_str().unwrap(),
        "--config",
        DEMO_CONFIG,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("unknown field `blue_green`"),
        "{}",
        text(&o.stderr)
    );
}

/// `dbaudit accounts` without `[organization]`: the declared accounts and
/// where they come from (no AWS call).
#[test]
fn accounts_lists_the_declared_accounts() {
    let o = dbaudit(&["accounts", "--config", DEMO_CONFIG]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("prod") && out.contains("dbaudit.toml"),
        "{out}"
    );
    let o = dbaudit(&["accounts", "--config", DEMO_CONFIG, "-o", "/tmp/never.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("[organization]"));
}

/// README's offline quickstart, as written there: the demo writes
/// `report.html` and records the run in `history.db`, and the history
/// commands the README names answer from it.
#[test]
fn the_readme_quickstart_writes_the_html_report_and_a_history() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- evaluate fixtures/demo/"))
        .expect("the quickstart command is in README.md");
    let dir = tempfile::tempdir().unwrap();
    // The command as a user runs it from the repository, with the outputs
    // landing in a scratch directory instead of the checkout.
    let args: Vec<String> = line
        .trim_start_matches("cargo run --release -- ")
        .split_whitespace()
        .map(|a| {
            if a.starts_with("fixtures/") {
                root().join(a).display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    assert!(args.contains(&"--html".to_string()) && args.contains(&"--history".to_string()));
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
        cmd.args(args)
            .current_dir(dir.path())
            .env_remove("DBAUDIT_CONFIG")
            .env_remove("DBAUDIT_HISTORY")
            .output()
            .unwrap()
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Gate: FAIL"));
    assert!(dir.path().join("history.db").is_file());
    for cmd in [
        "dbaudit history runs --history history.db",
        "dbaudit history open\n--history history.db --environment prod",
        "dbaudit history stats --history history.db",
    ] {
        assert!(readme.contains(cmd), "README.md no longer shows `{cmd}`");
        let words: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        let out = run(&words);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{cmd}");
    }
}

/// `scan` opens the history before it collects: a bad store fails at once
/// (exit 2), not after a night's collection. Port 9 (discard) on loopback
/// would only give gaps (exit 3) if collection had started.
#[test]
fn scan_refuses_a_bad_history_before_collecting() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.db");
    std::fs::write(&bad, "not a database\n".repeat(100)).unwrap();
    let out = dbaudit(&[
        "scan",
        "--all-accounts",
        "--config",
        DEMO_CONFIG,
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--history",
        bad.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a dbaudit history"), "{stderr}");
    assert!(!stderr.contains("gap"), "{stderr}");
}
