//! The live path against a real AWS emulator: moto in server mode on
//! 127.0.0.1, reached by the real SDK clients through `--endpoint-url`,
//! estates seeded through the API (scripts/seed_moto.py). Faults moto cannot
//! produce come from the proxy in tests/support/faults.rs.

mod support;

use support::faults::{Fault, Rule};
use support::*;

fn findings(report: &serde_json::Value) -> Vec<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["account"].as_str().unwrap().to_string(),
                f["rule_id"].as_str().unwrap().to_string(),
                f["resource_id"].as_str().unwrap().to_string(),
                f["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Rules whose facts the pinned moto cannot serve (EKS Pod Identity
/// answers 404): against the emulator they are `error`, never `pass`, and
/// the offline demo's violation of them cannot be seeded.
/// Nor does it report PerformanceInsightsEnabled: an instance without a
/// Performance Insights key leaves the key rule unknown.
const MOTO_CANNOT_DECIDE: &[&str] = &[
    "iam.app.one-service-account",
    "db.encryption.performance-insights-key",
];

fn has(
    f: &[(String, String, String, String)],
    account: &str,
    rule: &str,
    resource: &str,
    outcome: &str,
) -> bool {
    f.iter()
        .any(|x| x.0 == account && x.1 == rule && x.2 == resource && x.3 == outcome)
}

#[test]
fn scan_of_two_accounts_finds_the_planted_violations_and_keeps_accounts_apart() {
    let moto = Moto::start();
    moto.seed(&["demo"]);
    let dir = tempdir("scan");
    let report = dir.join("report.json");
    let snap = dir.join("snapshot.json");
    let out = dbaudit(&[
        "scan",
        "--all-accounts",
        "--config",
        "fixtures/demo/dbaudit.toml",
        "--endpoint-url",
        &moto.endpoint(),
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--save-snapshot",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&read_json(&report));
    for (acct, rule, res) in [
        (
            "prod",
            "db.network.not-publicly-accessible",
            "prod-reporting-1",
        ),
        ("prod", "db.network.sg-not-open-to-world", "prod-reporting"),
        ("prod", "db.network.private-subnets", "prod-reporting"),
        ("prod", "db.network.sg-eks-only", "prod-billing"),
        ("prod", "db.ha.readers-across-azs", "prod-catalog"),
        ("prod", "db.deletion-protection", "prod-catalog"),
        ("prod", "env.prod.cluster-per-service", "prod-payments"),
        ("test", "db.encryption.at-rest", "test-shared"),
    ] {
        assert!(
            has(&f, acct, rule, res, "fail"),
            "expected {rule} to fail on {acct}/{res}"
        );
    }
    // IAM, from the emulator's GetAccountAuthorizationDetails: the planted
    // on-call grant is found; the read-only developers with a deny guard pass;
    // test developers can read and write; the app role is scoped and pinned.
    assert!(has(
        &f,
        "prod",
        "iam.developers.prod-read-only",
        "bob",
        "fail"
    ));
    assert!(has(
        &f,
        "prod",
        "iam.developers.prod-read-only",
        "alice",
        "pass"
    ));
    assert!(has(
        &f,
        "test",
        "iam.developers.test-read-write",
        "alice",
        "pass"
    ));
    assert!(has(
        &f,
        "prod",
        "iam.app.rds-connect-scoped",
        "orders-app",
        "pass"
    ));
    assert!(has(
        &f,
        "prod",
        "iam.irsa.trust-pinned",
        "orders-app",
        "pass"
    ));
    // The compliant prod cluster passes everything moto lets dbaudit decide.
    assert!(
        f.iter()
            .filter(|x| x.2 == "prod-orders" && !MOTO_CANNOT_DECIDE.contains(&x.1.as_str()))
            .all(|x| x.3 == "pass")
    );
    assert!(
        f.iter()
            .all(|x| x.3 != "error" || MOTO_CANNOT_DECIDE.contains(&x.1.as_str())),
        "no errors against a healthy emulator but for what moto cannot serve"
    );
    assert!(has(
        &f,
        "prod",
        "iam.app.one-service-account",
        "orders-app",
        "error"
    ));
    // The emulator holds the same demo estate as fixtures/demo: the same
    // findings fail (the README says so; this keeps it true).
    let offline = dbaudit(&[
        "evaluate",
        "fixtures/demo/snapshot.json",
        "--config",
        "fixtures/demo/dbaudit.toml",
        "--format",
        "json",
    ]);
    let offline: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    let failing = |f: &[(String, String, String, String)]| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = f
            .iter()
            .filter(|x| x.3 == "fail" && !MOTO_CANNOT_DECIDE.contains(&x.1.as_str()))
            .map(|x| (x.0.clone(), x.1.clone(), x.2.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(failing(&f), failing(&findings(&offline)));
    // Isolation: each account sees only its own resources.
    let s = read_json(&snap);
    let clusters = |name: &str| -> Vec<String> {
        let a = s["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap();
        a["regions"][0]["db_clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(clusters("test"), vec!["test-shared"]);
    assert_eq!(clusters("prod").len(), 5);
    assert!(clusters("prod").iter().all(|c| c.starts_with("prod-")));
    for a in s["accounts"].as_array().unwrap() {
        for g in a["gaps"].as_array().unwrap() {
            assert!(
                MOTO_LACKS.contains(&g["operation"].as_str().unwrap()),
                "{g}"
            );
        }
        let r = &a["regions"][0];
        assert_eq!(r["eks_clusters"].as_array().unwrap().len(), 1);
        assert!(r["eks_clusters"][0]["cluster_security_group_id"].is_string());
        assert!(
            a["iam"]["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "developers")
        );
        // The developers policy document was decoded into JSON.
        assert!(
            a["iam"]["policies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["document"]["Statement"].is_array())
        );
    }
    // No credential material in the snapshot.
    let raw = std::fs::read_to_string(&snap).unwrap();
    assert!(
        !raw.contains("testing")
            && !raw.contains("SecretAccessKey")
            && !raw.contains("SessionToken")
    );
}

#[test]
fn collect_then_evaluate_gives_what_scan_gives() {
    let moto = Moto::start();
    moto.seed(&["demo"]);
    let dir = tempdir("equal");
    let snap = dir.join("snap.json");
    let c = dbaudit(&[
        "collect",
        "--all-accounts",
        "--config",
        "fixtures/demo/dbaudit.toml",
        "--endpoint-url",
        &moto.endpoint(),
        "-o",
        snap.to_str().unwrap(),
        "--quiet",
    ]);
    // Complete but for what moto lacks: exit 3 (gaps recorded), and only
    // those gaps.
    assert_eq!(c.status.code(), Some(3), "{}", text(&c.stderr));
    for a in read_json(&snap)["accounts"].as_array().unwrap() {
        assert_eq!(gaps_beyond_moto(a), Vec::<serde_json::Value>::new());
    }
    let e = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--config",
        "fixtures/demo/dbaudit.toml",
        "--format",
        "json",
    ]);
    let endpoint = moto.endpoint();
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--all-accounts",
            "--config",
            "fixtures/demo/dbaudit.toml",
            "--endpoint-url",
            &endpoint,
            "--format",
            "json",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        dbaudit(&args)
    };
    let s = scan(&[]);
    // The calls on three worker threads instead of the calling thread
    // (the default): the same report.
    let w = scan(&["--workers", "3"]);
    assert_eq!(e.status.code(), s.status.code());
    assert_eq!(w.status.code(), s.status.code(), "{}", text(&w.stderr));
    let (e, s, w): (serde_json::Value, serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&e.stdout).unwrap(),
        serde_json::from_slice(&s.stdout).unwrap(),
        serde_json::from_slice(&w.stdout).unwrap(),
    );
    for part in ["findings", "gate", "summary"] {
        assert_eq!(e[part], s[part], "{part}");
        assert_eq!(w[part], s[part], "{part} with --workers 3");
    }
}

#[test]
fn more_than_a_hundred_instances_are_paginated_to_the_end() {
    // moto pages DescribeDBInstances at 100: 130 instances need two pages.
    let moto = Moto::start();
    moto.seed(&["instances", "--account", "444444444444", "--count", "130"]);
    let dir = tempdir("pages");
    let cfg = write_config(&dir, &[("many", "test", "444444444444")]);
    let snap = dir.join("snap.json");
    let out = dbaudit(&[
        "collect",
        "--account",
        "many",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &moto.endpoint(),
        "-o",
        snap.to_str().unwrap(),
    ]);
    // Exit 3: moto's missing EKS Pod Identity is a recorded gap.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let s = read_json(&snap);
    assert_eq!(
        gaps_beyond_moto(&s["accounts"][0]),
        Vec::<serde_json::Value>::new()
    );
    assert_eq!(
        s["accounts"][0]["regions"][0]["db_instances"]
            .as_array()
            .unwrap()
            .len(),
        130
    );
    // What the in-database collection needs of a standalone PostgreSQL
    // instance: its address, DbiResourceId and master user.
    let first = &s["accounts"][0]["regions"][0]["db_instances"][0];
    assert!(
        first["endpoint"]
            .as_str()
            .is_some_and(|e| e.contains("pg-0000")),
        "{first}"
    );
    assert!(
        first["resource_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("db-")),
        "{first}"
    );
    assert_eq!(first["master_username"], "dbadmin");
}

#[test]
fn an_account_whose_role_cannot_be_assumed_is_a_gap_and_the_other_is_complete() {
    let (_moto, proxy) = clusters_behind_proxy(
        2,
        vec![Rule {
            service: Some("sts"),
            operation: Some("AssumeRole"),
            body_contains: Some("555555555555".into()),
            fault: Some(Fault::AccessDenied),
            ..Rule::default()
        }],
    );
    let dir = tempdir("assume");
    let cfg = write_config(
        &dir,
        &[
            ("prod-a", "prod", "333333333333"),
            ("prod-b", "prod", "555555555555"),
        ],
    );
    let report = dir.join("r.json");
    let snap = dir.join("s.json");
    let out = dbaudit(&[
        "scan",
        "--all-accounts",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--retry-backoff-ms",
        "5",
        "--save-snapshot",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(proxy.hits(0) >= 1);
    // The summary does not count the unreached account as collected.
    assert!(
        text(&out.stderr).contains("collected 1 of 2 account(s) (1 not reached)"),
        "{}",
        text(&out.stderr)
    );
    let r = read_json(&report);
    let b = r["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "prod-b")
        .unwrap();
    let gaps = b["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0]["operation"], "AssumeRole");
    assert_eq!(gaps[0]["code"], "AccessDenied");
    let f = findings(&r);
    assert!(f.iter().filter(|x| x.0 == "prod-b").all(|x| x.3 == "error"));
    // prod-a is complete and clean, except that this config names no
    // developers: the developer rule says so instead of passing silently.
    let a: Vec<_> = f.iter().filter(|x| x.0 == "prod-a").collect();
    type Row<'a> = &'a &'a (String, String, String, String);
    let (dev, rest): (Vec<Row>, Vec<Row>) = a
        .iter()
        .filter(|x| !MOTO_CANNOT_DECIDE.contains(&x.1.as_str()))
        .partition(|x| x.1 == "iam.developers.prod-read-only");
    assert!(
        rest.len() > 20 && rest.iter().all(|x| x.3 == "pass"),
        "{a:?}"
    );
    assert_eq!(dev.len(), 1, "{dev:?}");
    assert_eq!((dev[0].2.as_str(), dev[0].3.as_str()), ("iam/*", "error"));
    // The table names the gap once, and not once per rule.
    let table = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(table.status.code(), Some(3));
    let t = text(&table.stdout);
    assert_eq!(
        t.matches("gap: sts AssumeRole: AccessDenied: ").count(),
        1,
        "{t}"
    );
    // One readable line: STS's own message and the role, never the SDK's
    // nested Debug form or the raw response.
    let line = t
        .lines()
        .find(|l| l.contains("gap: sts AssumeRole"))
        .unwrap();
    assert!(line.contains("role/dbaudit-audit)"), "{line}");
    for junk in ["ProviderError", "ServiceError(", "raw:", "Response {"] {
        assert!(!t.contains(junk), "`{junk}` in {t}");
    }
    assert!(t.contains("not evaluated:"), "{t}");
}

#[test]
fn throttling_is_retried_then_becomes_a_gap_and_rules_error() {
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![
            // Always throttled: retried --max-attempts times, then a gap.
            Rule {
                service: Some("ec2"),
                operation: Some("DescribeSecurityGroups"),
                fault: Some(Fault::Throttle("RequestLimitExceeded")),
                ..Rule::default()
            },
            // Throttled twice, then answered: no gap.
            Rule {
                service: Some("rds"),
                operation: Some("DescribeDBClusters"),
                times: Some(2),
                fault: Some(Fault::Throttle("Throttling")),
                ..Rule::default()
            },
        ],
    );
    let (out, report) = scan_prod("throttle", &proxy.endpoint(), &["--max-attempts", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        proxy.hits(0),
        3,
        "bounded retries: exactly --max-attempts attempts"
    );
    assert_eq!(proxy.hits(1), 3, "two throttled attempts, then success");
    let r = read_json(&report);
    let gaps = gaps_beyond_moto(&r["accounts"][0]);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["code"], "RequestLimitExceeded");
    assert_eq!(gaps[0]["operation"], "DescribeSecurityGroups");
    let f = findings(&r);
    // Rules needing EC2 error; rules on RDS data alone still pass.
    assert!(has(
        &f,
        "prod",
        "db.network.sg-eks-only",
        "bench-0000",
        "error"
    ));
    assert!(has(
        &f,
        "prod",
        "db.network.private-subnets",
        "bench-0000",
        "error"
    ));
    assert!(has(
        &f,
        "prod",
        "db.encryption.at-rest",
        "bench-0000",
        "pass"
    ));
    assert!(!f.iter().any(|x| x.1.starts_with("db.network.")
        && x.3 == "pass"
        && x.1 != "db.network.not-publicly-accessible"));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("retries"), "{stderr}");
}

#[test]
fn access_denied_and_server_errors_on_one_service_do_not_stop_the_others() {
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![
            Rule {
                service: Some("rds"),
                operation: Some("DescribeDBClusters"),
                fault: Some(Fault::AccessDenied),
                ..Rule::default()
            },
            Rule {
                service: Some("eks"),
                operation: Some("ListClusters"),
                fault: Some(Fault::Status(503)),
                ..Rule::default()
            },
        ],
    );
    let (out, report) = scan_prod("denied", &proxy.endpoint(), &["--max-attempts", "2"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let r = read_json(&report);
    let gaps: Vec<(String, String)> = gaps_beyond_moto(&r["accounts"][0])
        .iter()
        .map(|g| {
            (
                g["operation"].as_str().unwrap().to_string(),
                g["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        gaps.contains(&("DescribeDBClusters".into(), "AccessDenied".into())),
        "{gaps:?}"
    );
    assert!(gaps.iter().any(|g| g.0 == "ListClusters"), "{gaps:?}");
    let f = findings(&r);
    // Cluster listing failed: a region-wide error per cluster rule.
    assert!(has(
        &f,
        "prod",
        "db.encryption.at-rest",
        "eu-west-1/*",
        "error"
    ));
    // A gap is per service and region: instance rules (RDS data too) fail
    // closed, even though DescribeDBInstances itself answered.
    assert!(has(
        &f,
        "prod",
        "db.network.not-publicly-accessible",
        "bench-0000-1",
        "error"
    ));
    // Passes only where the data that was collected decides: the accounts
    // are separate, databases are present (DescribeDBInstances answered),
    // and the manual snapshots (DescribeDBClusterSnapshots answered; their
    // facts do not depend on the cluster listing) are private.
    assert!(
        !f.iter().any(|x| x.3 == "pass"
            && x.1 != "env.separate-accounts"
            && x.1 != "env.databases-present"
            && !x.1.starts_with("db.snapshots.")),
        "{f:?}"
    );
    assert_eq!(gaps_beyond_moto(&r["accounts"][0]).len(), 2);
    // EC2 and IAM data were collected despite the others failing.
    let dir = report.parent().unwrap();
    let cfg = dir.join("dbaudit.toml");
    let snap = dir.join("s.json");
    let c = dbaudit(&[
        "collect",
        "--account",
        "prod",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
        "--max-attempts",
        "2",
        "--retry-backoff-ms",
        "5",
        "-o",
        snap.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(c.status.code(), Some(3));
    let s = read_json(&snap);
    assert!(
        s["accounts"][0]["regions"][0]["security_groups"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert!(
        s["accounts"][0]["regions"][0]["db_instances"]
            .as_array()
            .unwrap()
            .len()
            == 3
    );
    assert!(s["accounts"][0]["iam"].is_object());
}

#[test]
fn a_wrong_account_behind_the_role_is_refused() {
    // The role ARN names 333333333333 but the config says 666666666666:
    // moto hands out credentials of 333333333333, the assumed-role ARN in
    // its answer says so, and dbaudit refuses to scan.
    let moto = Moto::start();
    let dir = tempdir("mismatch");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "regions = [\"eu-west-1\"]\n[[account]]\nname = \"prod\"\nenvironment = \"prod\"\naccount_id = \"666666666666\"\nrole_arn = \"arn:aws:iam::333333333333:role/dbaudit-audit\"\n",
    )
    .unwrap();
    let snap = dir.join("s.json");
    let out = dbaudit(&[
        "collect",
        "--account",
        "prod",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &moto.endpoint(),
        "-o",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let s = read_json(&snap);
    assert_eq!(s["accounts"][0]["gaps"][0]["code"], "AccountMismatch");
    assert_eq!(s["accounts"][0]["gaps"][0]["operation"], "AssumeRole");
    assert!(s["accounts"][0]["regions"].as_array().unwrap().is_empty());
}

#[test]
fn the_read_only_guard_refuses_a_mutating_call_before_sending_it() {
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![
            Rule {
                operation: Some("DeleteDBCluster"),
                ..Rule::default()
            },
            Rule {
                operation: Some("DescribeDBLogFiles"),
                ..Rule::default()
            },
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let stats = std::sync::Arc::new(dbaudit::collect::Stats::default());
        let guard = dbaudit::collect::ReadOnlyGuard::new(stats);
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(proxy.endpoint())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .load()
            .await;
        let rds = aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&base)
                .interceptor(guard)
                .build(),
        );
        let refused = |text: String, operation: &str| {
            assert!(
                text.contains(&format!("refused to send RDS:{operation}")),
                "{text}"
            );
        };
        let err = rds
            .delete_db_cluster()
            .db_cluster_identifier("bench-0000")
            .send()
            .await
            .unwrap_err();
        refused(
            aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
            "DeleteDBCluster",
        );
        // A read that is not one of the collectors' (database log files
        // hold data) is refused too: the guard allows a list, not a prefix.
        let err = rds
            .describe_db_log_files()
            .db_instance_identifier("bench-0000-1")
            .send()
            .await
            .unwrap_err();
        refused(
            aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
            "DescribeDBLogFiles",
        );
        // A read of the collectors' list through the same client is allowed.
        assert!(rds.describe_db_instances().send().await.is_ok());
    });
    assert_eq!(
        proxy.hits(0),
        0,
        "the DeleteDBCluster request never reached the wire"
    );
    assert_eq!(proxy.hits(1), 0, "nor did DescribeDBLogFiles");
}

#[test]
fn a_failed_global_cluster_listing_errors_only_what_needs_it() {
    // DescribeGlobalClusters is tracked by the facts themselves: with it
    // throttled past the retries, the other cluster rules still evaluate.
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![Rule {
            service: Some("rds"),
            operation: Some("DescribeGlobalClusters"),
            fault: Some(Fault::Throttle("Throttling")),
            ..Rule::default()
        }],
    );
    let (out, report) = scan_prod("global", &proxy.endpoint(), &["--max-attempts", "2"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let r = read_json(&report);
    let gaps = gaps_beyond_moto(&r["accounts"][0]);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["operation"], "DescribeGlobalClusters");
    let f = findings(&r);
    for rule in ["db.encryption.at-rest", "db.ha.readers-across-azs"] {
        assert!(has(&f, "prod", rule, "bench-0000", "pass"), "{rule}: {f:?}");
    }
    // Not required by this config: unknown replicas do not matter.
    assert!(has(
        &f,
        "prod",
        "db.ha.cross-region-replica",
        "bench-0000",
        "pass"
    ));
    assert!(!f.iter().any(|x| x.2 == "eu-west-1/*"), "{f:?}");
    // The only error is the developer rule's (this config names no
    // developers), but for what moto cannot serve.
    let errors: Vec<_> = f
        .iter()
        .filter(|x| x.3 == "error" && !MOTO_CANNOT_DECIDE.contains(&x.1.as_str()))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].1, "iam.developers.prod-read-only");
}

/// Each account is assumed once per hop for the whole run, whatever the
/// number of accounts: 120 accounts (one through a hub role) make 121
/// AssumeRole calls, counted on the wire, and no GetCallerIdentity (the
/// assumed-role ARN names the account); one more account on the base
/// credentials (no role) is checked with one GetCallerIdentity.
/// Before, all accounts shared the SDK's 64-entry credential cache, which
/// evicted at random: 593 AssumeRole calls for 100 accounts.
#[test]
fn every_account_is_assumed_once_per_hop_at_a_hundred_and_twenty_accounts() {
    let moto = Moto::start();
    let proxy = support::faults::Proxy::start(
        moto.port,
        vec![
            Rule {
                service: Some("sts"),
                operation: Some("AssumeRole"),
                ..Rule::default()
            },
            Rule {
                service: Some("sts"),
                operation: Some("GetCallerIdentity"),
                ..Rule::default()
            },
        ],
    );
    let dir = tempdir("many-accounts");
    let ids: Vec<String> = (0..120)
        .map(|i| format!("{:012}", 500_000_000_000u64 + i))
        .collect();
    let accounts: Vec<(String, &str, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("a{i:03}"), "test", id.as_str()))
        .collect();
    let refs: Vec<(&str, &str, &str)> = accounts
        .iter()
        .map(|(n, e, i)| (n.as_str(), *e, *i))
        .collect();
    let cfg = write_config(&dir, &refs);
    // The last account is reached through a hub role first.
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str("via_roles = [\"arn:aws:iam::499999999999:role/hub\"]\n");
    // moto's own account is the base credentials' identity.
    toml.push_str(
        "\n[[account]]\nname = \"base\"\nenvironment = \"test\"\naccount_id = \"123456789012\"\n",
    );
    std::fs::write(&cfg, toml).unwrap();
    let snap = dir.join("s.json");
    let out = dbaudit(&[
        "collect",
        "--all-accounts",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
        "-o",
        snap.to_str().unwrap(),
    ]);
    // Empty accounts: no EKS cluster, so not even moto's missing Pod
    // Identity leaves a gap.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = read_json(&snap);
    assert_eq!(s["accounts"].as_array().unwrap().len(), 121);
    for a in s["accounts"].as_array().unwrap() {
        assert_eq!(
            gaps_beyond_moto(a),
            Vec::<serde_json::Value>::new(),
            "{}",
            a["name"]
        );
    }
    assert_eq!(proxy.hits(0), 121, "one AssumeRole per account hop");
    assert_eq!(
        proxy.hits(1),
        1,
        "an identity check for the base credentials only"
    );
    // The run summary counts AssumeRole with the other calls.
    assert!(
        text(&out.stderr).contains("collected 121 of 121 account(s)"),
        "{}",
        text(&out.stderr)
    );
}

/// A sharded collection the way a Kubernetes Indexed Job runs it: 40
/// accounts (test and prod, one small cluster each), four `collect --shard
/// auto/4` processes told their index by JOB_COMPLETION_INDEX, one merge,
/// one evaluation. Every account is in exactly one part and in the merged
/// report once; a killed shard's accounts become gaps (exit 3); a retried
/// shard does not overwrite its part.
#[test]
fn four_shards_merge_into_every_account_exactly_once() {
    let moto = Moto::start();
    moto.seed(&["fleet", "--count", "40", "--first", "600000000000"]);
    let dir = tempdir("shards");
    let accounts: Vec<(String, &str, String)> = (0..40u64)
        .map(|n| {
            let env = if n % 2 == 1 { "prod" } else { "test" };
            (
                format!("acct-{n:02}"),
                env,
                format!("{:012}", 600_000_000_000u64 + n),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = accounts
        .iter()
        .map(|(n, e, i)| (n.as_str(), *e, i.as_str()))
        .collect();
    let cfg = write_config(&dir, &refs);
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    let shard = |index: usize| {
        let out = parts.join(format!("part-{index}.json"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbaudit"));
        aws_env(&mut cmd);
        let o = cmd
            .current_dir(root())
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .args([
                "collect",
                "--all-accounts",
                "--config",
                cfg.to_str().unwrap(),
                "--endpoint-url",
                &moto.endpoint(),
                "--shard",
                "auto/4",
                "--run-id",
                "nightly-1",
                "-o",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        (o, out)
    };
    let mut seen: Vec<String> = Vec::new();
    for i in 0..4 {
        let (o, out) = shard(i);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let p = read_json(&out);
        assert_eq!(p["shard"]["index"], i + 1);
        assert_eq!(p["shard"]["plan"].as_array().unwrap().len(), 40);
        seen.extend(
            p["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_string()),
        );
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(
        (before, seen.len()),
        (40, 40),
        "each account in exactly one part"
    );

    // A retried shard finds its part and leaves it alone.
    let first = std::fs::read(parts.join("part-2.json")).unwrap();
    let (o, _) = shard(2);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("not overwritten"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(parts.join("part-2.json")).unwrap(), first);

    let merged = dir.join("merged.json");
    let m = dbaudit(&[
        "merge",
        parts.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(m.status.code(), Some(0), "{}", text(&m.stderr));
    assert!(text(&m.stderr).contains("merged 4 of 4 part(s) of run `nightly-1`: 40 account(s)"));
    let report = dir.join("r.json");
    let e = dbaudit(&[
        "evaluate",
        merged.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
    ]);
    assert!(
        matches!(e.status.code(), Some(0..=3)),
        "{}",
        text(&e.stderr)
    );
    let r = read_json(&report);
    assert_eq!(accounts_in(&r).len(), 40, "every account is evaluated");
    // Parity ran on the merged estate (both environments), not in a shard.
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"].as_str().unwrap().starts_with("parity."))
    );

    // Shard 3 was killed: its accounts are gaps, the merge says so, exit 3.
    std::fs::remove_file(parts.join("part-2.json")).unwrap();
    let m = dbaudit(&[
        "merge",
        parts.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(m.status.code(), Some(3), "{}", text(&m.stderr));
    assert!(
        text(&m.stderr).contains("part(s) 3 missing"),
        "{}",
        text(&m.stderr)
    );
    let s = read_json(&merged);
    assert_eq!(s["accounts"].as_array().unwrap().len(), 40);
    let lost = s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["gaps"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["code"] == "ShardMissing"))
        })
        .count();
    let in_part_3 = read_json(&parts.join("part-0.json"))["shard"]["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["shard"] == 3)
        .count();
    assert_eq!(lost, in_part_3);
    let e = dbaudit(&[
        "evaluate",
        merged.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(
        matches!(e.status.code(), Some(1 | 3)),
        "{}",
        text(&e.stderr)
    );
}

/// Shards write their parts to the store (moto's S3) once, with
/// If-None-Match, and merge reads them back from there.
#[test]
fn shards_write_once_to_s3_and_merge_reads_them_from_there() {
    let moto = Moto::start();
    moto.seed(&["fleet", "--count", "6", "--first", "610000000000"]);
    moto.seed(&["bucket", "--name", "dbaudit-shards"]);
    moto.seed(&["bucket", "--name", "other-bucket"]);
    let dir = tempdir("s3-shards");
    let accounts: Vec<(String, String)> = (0..6u64)
        .map(|n| {
            (
                format!("acct-{n}"),
                format!("{:012}", 610_000_000_000u64 + n),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = accounts
        .iter()
        .enumerate()
        .map(|(n, (name, id))| {
            (
                name.as_str(),
                if n % 2 == 1 { "prod" } else { "test" },
                id.as_str(),
            )
        })
        .collect();
    let cfg = write_config(&dir, &refs);
    let endpoint = moto.endpoint();
    let shard = |spec: &str, extra: &[&str]| {
        let mut args = vec![
            "collect",
            "--all-accounts",
            "--config",
            cfg.to_str().unwrap(),
            "--endpoint-url",
            &endpoint,
            "--shard",
            spec,
            "-o",
            "s3://dbaudit-shards/nightly",
        ];
        args.extend_from_slice(extra);
        dbaudit(&args)
    };
    for k in ["1/2", "2/2"] {
        let o = shard(k, &["--run-id", "r1"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let again = shard("1/2", &["--run-id", "r1"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stderr)
            .contains("s3://dbaudit-shards/nightly/r1/part-1-of-2.json already holds this part"),
        "{}",
        text(&again.stderr)
    );
    // An object store needs the run id.
    let o = shard("1/2", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--run-id"), "{}", text(&o.stderr));

    let merged = dir.join("merged.json");
    let m = dbaudit(&[
        "merge",
        "s3://dbaudit-shards/nightly",
        "-o",
        merged.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(m.status.code(), Some(0), "{}", text(&m.stderr));
    assert_eq!(read_json(&merged)["accounts"].as_array().unwrap().len(), 6);

    // The write itself is conditional: a second put of the same key is
    // refused by S3 (412), whatever checked before it.
    let opts = dbaudit::collect::Options {
        endpoint_url: Some(endpoint.clone()),
        ..dbaudit::collect::Options::default()
    };
    let url = dbaudit::collect::store::S3Url::parse("s3://dbaudit-shards/race").unwrap();
    let put = |body: &str| {
        dbaudit::collect::store::put_new(
            &opts,
            &url,
            "race/part-1-of-1.json",
            body.as_bytes().to_vec(),
        )
        .unwrap()
    };
    assert!(put("first"));
    assert!(!put("second"), "an existing part is never replaced");
    let reader = dbaudit::collect::store::Reader::new(&opts, &url).unwrap();
    let keys = reader.list_json().unwrap();
    assert_eq!(keys, ["race/part-1-of-1.json"]);
    assert_eq!(reader.get(&keys[0]).unwrap(), "first");

    // The store's client writes nowhere else: refused before sending, so
    // the other bucket stays empty.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = runtime.block_on(async {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .interceptor(dbaudit::collect::ReadOnlyGuard::for_store(
                std::sync::Arc::new(dbaudit::collect::Stats::default()),
                "dbaudit-shards",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
            .put_object()
            .bucket("other-bucket")
            .key("x.json")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
            .send()
            .await
    });
    let err = format!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(refused.unwrap_err())
    );
    assert!(
        err.contains("refused") && err.contains("other-bucket"),
        "{err}"
    );
    let other = dbaudit::collect::store::S3Url::parse("s3://other-bucket").unwrap();
    assert!(
        dbaudit::collect::store::Reader::new(&opts, &other)
            .unwrap()
            .list_json()
            .unwrap()
            .is_empty()
    );
}

/// Accounts from AWS Organizations: mapped by OU path, then by tag (first
/// match wins); the unmapped and the closed are listed, never dropped
/// silently; the resolved list is written once and read back by the scans,
/// which then make no Organizations call.
#[test]
fn accounts_are_discovered_from_the_organization_and_cached() {
    let moto = Moto::start();
    let ids: serde_json::Value =
        serde_json::from_str(&moto.seed(&["org", "--count", "6"])).unwrap();
    let dir = tempdir("org");
    let cache = dir.join("accounts.json");
    let cfg = dir.join("dbaudit.toml");
    std::fs::write(
        &cfg,
        format!(
            "regions = [\"eu-west-1\"]\n[organization]\naudit_role = \"dbaudit-audit\"\naudit_external_id = \"ext-{{account_id}}\"\naccounts_file = \"{}\"\n\n[[organization.environment]]\nou = \"Workloads/Prod\"\nenvironment = \"prod\"\n\n[[organization.environment]]\nou = \"Workloads/Test\"\nenvironment = \"test\"\n\n[[organization.environment]]\ntag = \"env=prod\"\nenvironment = \"prod\"\n",
            cache.display()
        ),
    )
    .unwrap();
    let proxy = support::faults::Proxy::start(
        moto.port,
        vec![Rule {
            service: Some("organizations"),
            operation: Some("ListAccounts"),
            ..Rule::default()
        }],
    );
    let listed = dbaudit(&[
        "accounts",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
        "--format",
        "json",
        "-o",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert_eq!(proxy.hits(0), 1);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let accounts = v["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 7, "six in Workloads and the tagged one");
    let env_of = |id: &serde_json::Value| {
        accounts
            .iter()
            .find(|a| a["account_id"] == *id)
            .map(|a| a["environment"].as_str().unwrap().to_string())
    };
    for id in ids["prod"].as_array().unwrap() {
        assert_eq!(env_of(id).as_deref(), Some("prod"));
    }
    for id in ids["test"].as_array().unwrap() {
        assert_eq!(env_of(id).as_deref(), Some("test"));
    }
    assert_eq!(env_of(&ids["legacy"]).as_deref(), Some("prod"));
    let legacy = accounts
        .iter()
        .find(|a| a["account_id"] == ids["legacy"])
        .unwrap();
    assert_eq!(legacy["source"], "organization: tag env=prod");
    assert_eq!(
        legacy["role_arn"],
        format!(
            "arn:aws:iam::{}:role/dbaudit-audit",
            ids["legacy"].as_str().unwrap()
        )
    );
    let unmapped: Vec<&str> = v["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(unmapped.contains(&"scratch"), "{unmapped:?}");
    assert!(
        text(&listed.stderr).contains("not scanned"),
        "{}",
        text(&listed.stderr)
    );
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["id"], ids["closed"]);
    assert!(text(&listed.stderr).contains("closed"));

    // A shard reads the cached list: no Organizations call, the accounts
    // are collected with their templated roles.
    let snap = dir.join("part.json");
    let c = dbaudit(&[
        "collect",
        "--all-accounts",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
        "--shard",
        "1/1",
        "-o",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c.stderr));
    assert_eq!(proxy.hits(0), 1, "the cached list was used");
    let s = read_json(&snap);
    assert_eq!(s["accounts"].as_array().unwrap().len(), 7);
    for a in s["accounts"].as_array().unwrap() {
        assert_eq!(
            gaps_beyond_moto(a),
            Vec::<serde_json::Value>::new(),
            "{}",
            a["name"]
        );
    }
}

/// The organization-scale path end to end, as a nightly job runs it: an
/// Organization of 40 workload accounts across test and prod OUs, each with
/// a small estate; the account list resolved once; four shard processes
/// started the way an Indexed Job starts them (JOB_COMPLETION_INDEX),
/// writing to the emulator's S3; a retried shard; one evaluation of the
/// merged parts covering every account exactly once; and a run whose last
/// shard never ran: its accounts are gaps and the exit code is 3.
#[test]
fn an_organization_in_four_shards_through_s3() {
    let moto = Moto::start();
    moto.seed(&["org", "--count", "40", "--estate"]);
    moto.seed(&["bucket", "--name", "dbaudit-shards"]);
    let dir = tempdir("org-shards");
    let cache = dir.join("accounts.json");
    let cfg = dir.join("dbaudit.toml");
    write_org_config(&cfg, &cache.display().to_string());
    let endpoint = moto.endpoint();
    let listed = dbaudit(&[
        "accounts",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
        "-o",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let shard = |index: usize, run: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbaudit"));
        aws_env(&mut cmd);
        cmd.current_dir(root())
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .args([
                "collect",
                "--all-accounts",
                "--config",
                cfg.to_str().unwrap(),
                "--endpoint-url",
                &endpoint,
                "--shard",
                "auto/4",
                "--run-id",
                run,
                "-o",
                "s3://dbaudit-shards/nightly",
                "--quiet",
            ])
            .output()
            .unwrap()
    };
    for i in 0..4 {
        let o = shard(i, "complete");
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", text(&o.stderr));
    }
    let retried = shard(1, "complete");
    assert!(
        text(&retried.stderr).contains("not overwritten"),
        "{}",
        text(&retried.stderr)
    );
    let report = dir.join("r.json");
    // evaluate reads the store's endpoint from AWS_ENDPOINT_URL, as the
    // SDK does.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbaudit"));
    aws_env(&mut cmd);
    let e = cmd
        .current_dir(root())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .args([
            "evaluate",
            "s3://dbaudit-shards/nightly/complete",
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "json",
            "-o",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        matches!(e.status.code(), Some(0 | 1)),
        "{}",
        text(&e.stderr)
    );
    // The prefix's parts are fetched one at a time, twice: never all held.
    assert!(
        text(&e.stderr).contains("a part at a time"),
        "{}",
        text(&e.stderr)
    );
    let r = read_json(&report);
    assert_eq!(accounts_in(&r).len(), 40, "every workload account, once");
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "parity.service-has-test-database"),
        "parity ran on the merged estate"
    );

    // Another night: shard 4 never ran.
    for i in 0..3 {
        assert_eq!(shard(i, "partial").status.code(), Some(0));
    }
    let merged = dir.join("partial.json");
    let m = dbaudit(&[
        "merge",
        "s3://dbaudit-shards/nightly/partial",
        "-o",
        merged.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(m.status.code(), Some(3), "{}", text(&m.stderr));
    assert!(
        text(&m.stderr).contains("part(s) 4 missing"),
        "{}",
        text(&m.stderr)
    );
    let s = read_json(&merged);
    assert_eq!(s["accounts"].as_array().unwrap().len(), 40);
    assert!(
        s["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["gaps"][0]["code"] == "ShardMissing")
    );
}

/// The account list in the shard bucket: `accounts -o s3://…/{date}.json`
/// writes it once, and a shard on another machine reads it from there
/// instead of listing the organization (no Organizations request reaches
/// the wire); without the object, the shard lists the organization.
#[test]
fn an_account_list_in_s3_is_written_once_and_read_by_the_shards() {
    let moto = Moto::start();
    moto.seed(&["org", "--count", "8"]);
    moto.seed(&["bucket", "--name", "dbaudit-shards"]);
    let dir = tempdir("org-list-s3");
    let config = |file: &str| {
        let cfg = dir.join(format!(
            "{}.toml",
            file.replace(['/', '{', '}', ':', '.'], "_")
        ));
        write_org_config(&cfg, file);
        cfg
    };
    let list = "s3://dbaudit-shards/accounts/{date}.json";
    let cfg = config(list);
    let endpoint = moto.endpoint();
    let write = || {
        dbaudit(&[
            "accounts",
            "--config",
            cfg.to_str().unwrap(),
            "--endpoint-url",
            &endpoint,
            "-o",
            list,
        ])
    };
    let first = write();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let again = write();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("already holds an account list: kept"),
        "{}",
        text(&again.stderr)
    );

    // A shard behind a proxy that counts Organizations requests.
    let proxy = support::faults::Proxy::start(
        moto.port,
        vec![Rule {
            service: Some("organizations"),
            ..Rule::default()
        }],
    );
    let shard = |cfg: &std::path::Path, out: &str| {
        dbaudit(&[
            "collect",
            "--all-accounts",
            "--config",
            cfg.to_str().unwrap(),
            "--endpoint-url",
            &proxy.endpoint(),
            "--shard",
            "1/2",
            "--run-id",
            "n1",
            "-o",
            dir.join(out).to_str().unwrap(),
            "--quiet",
        ])
    };
    let o = shard(&cfg, "part.json");
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(proxy.hits(0), 0, "the shard read the list from S3");
    let part = read_json(&dir.join("part.json"));
    assert!(!part["accounts"].as_array().unwrap().is_empty());
    // No list at that key: the shard lists the organization itself.
    let missing = config("s3://dbaudit-shards/accounts/none.json");
    let o = shard(&missing, "part2.json");
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{}",
        text(&o.stderr)
    );
    assert!(proxy.hits(0) > 0);
}

/// A config of the seeded organization (`seed_moto.py org`): prod and test
/// by OU, the audit role `dbaudit-audit`, the account list at `accounts_file`.
fn write_org_config(cfg: &std::path::Path, accounts_file: &str) {
    std::fs::write(
        cfg,
        format!(
            "regions = [\"eu-west-1\"]\n[organization]\naudit_role = \"dbaudit-audit\"\naccounts_file = \"{accounts_file}\"\n\n[[organization.environment]]\nou = \"Workloads/Prod\"\nenvironment = \"prod\"\n\n[[organization.environment]]\nou = \"Workloads/Test\"\nenvironment = \"test\"\n"
        ),
    )
    .unwrap();
}

/// `scan --plan`: collect, then evaluate a Terraform plan on the fresh
/// snapshot (docs/plan.md); the plan's account is the one scanned, and a
/// plan is never recorded.
#[test]
fn scan_with_a_plan_gates_on_what_the_plan_introduces() {
    let moto = Moto::start();
    moto.seed(&["demo"]);
    let dir = tempdir("scan-plan");
    let snap = dir.join("snap.json");
    let c = dbaudit(&[
        "collect",
        "--account",
        "prod",
        "--config",
        "fixtures/demo/dbaudit.toml",
        "--endpoint-url",
        &moto.endpoint(),
        "-o",
        snap.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        matches!(c.status.code(), Some(0 | 3)),
        "{}",
        text(&c.stderr)
    );
    // moto's group ids are random: the plan opens the live group of
    // prod-orders to the world.
    let s = read_json(&snap);
    let cluster = s["accounts"][0]["regions"][0]["db_clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "prod-orders")
        .unwrap()
        .clone();
    let group = cluster["vpc_security_group_ids"][0].as_str().unwrap();
    let plan = serde_json::json!({
        "format_version": "1.2",
        "terraform_version": "1.9.5",
        "resource_changes": [{
            "address": "aws_vpc_security_group_ingress_rule.world",
            "mode": "managed",
            "type": "aws_vpc_security_group_ingress_rule",
            "name": "world",
            "change": {
                "actions": ["create"],
                "before": null,
                "after": {
                    "security_group_id": group, "ip_protocol": "tcp",
                    "from_port": 5432, "to_port": 5432, "cidr_ipv4": "0.0.0.0/0"
                },
                "after_unknown": {"id": true, "arn": true}
            }
        }]
    });
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let report = dir.join("report.json");
    let store = dir.join("history.db");
    let out = dbaudit(&[
        "scan",
        "--account",
        "prod",
        "--config",
        "fixtures/demo/dbaudit.toml",
        "--endpoint-url",
        &moto.endpoint(),
        "--plan",
        plan_path.to_str().unwrap(),
        "--json",
        report.to_str().unwrap(),
        "--history",
        store.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = read_json(&report);
    let new: Vec<(String, String)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "fail" && f["baseline"] == "new")
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["resource_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        new.contains(&(
            "db.network.sg-not-open-to-world".into(),
            "prod-orders".into()
        )),
        "{new:?}"
    );
    assert!(
        new.iter().all(|(_, res)| res == "prod-orders"),
        "only the opened cluster is new: {new:?}"
    );
    assert_eq!(r["plan"]["account"], "prod");
    assert!(!store.exists(), "a plan is never recorded");
}
