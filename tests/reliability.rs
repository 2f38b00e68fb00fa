//! Failing closed and losing nothing: interruption, secret hygiene, and the
//! faults of tests/support/faults.rs not covered in live_scan.rs (latency
//! beyond the timeouts, truncated answers). Each test asserts on the gap,
//! the outcome and the exit code, so none passes if the fault is ignored.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::faults::{Fault, Rule};
use support::*;

fn interrupted_scan_leaves_nothing(signal: &str, expected_code: i32) {
    // DescribeSecurityGroups hangs long enough to interrupt the scan in it.
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![Rule {
            service: Some("ec2"),
            operation: Some("DescribeSecurityGroups"),
            fault: Some(Fault::Delay(Duration::from_secs(20))),
            ..Rule::default()
        }],
    );
    let dir = tempdir("interrupt");
    let cfg = write_config(&dir, &[("prod", "prod", "333333333333")]);
    let report = dir.join("report.json");
    std::fs::write(&report, "previous good report\n").unwrap();
    let snap = dir.join("snapshot.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
    aws_env(&mut cmd);
    let child = cmd
        .args([
            "scan",
            "--account",
            "prod",
            "--config",
            cfg.to_str().unwrap(),
            "--endpoint-url",
            &proxy.endpoint(),
        ])
        .args([
            "--timeout",
            "60",
            "--format",
            "json",
            "-o",
            report.to_str().unwrap(),
        ])
        .args(["--save-snapshot", snap.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.hits(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the scan never reached DescribeSecurityGroups"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(expected_code), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by SIG{signal}")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "previous good report\n",
        "the previous report was overwritten"
    );
    assert!(!snap.exists(), "a snapshot was written");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigint_during_collection_exits_130_and_writes_nothing() {
    interrupted_scan_leaves_nothing("INT", 130);
}

#[test]
fn sigterm_during_collection_exits_143_and_writes_nothing() {
    interrupted_scan_leaves_nothing("TERM", 143);
}

#[test]
fn canary_credentials_appear_in_no_output_even_at_trace_level() {
    const KEY: &str = "AKIACANARY7777KEY77";
    const SECRET: &str = "canary/Secret+Value/0123456789abcdefXYZ";
    const TOKEN: &str = "CanarySessionTokenQWERTY0123456789";
    let moto = Moto::start();
    moto.seed(&["demo"]);
    let dir = tempdir("secrets");
    let files: Vec<std::path::PathBuf> = ["r.json", "r.sarif", "r.xml", "r.md", "snap.json"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
    aws_env(&mut cmd);
    let out = cmd
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .args([
            "-vvv",
            "scan",
            "--all-accounts",
            "--config",
            "fixtures/demo/dbaudit.toml",
            "--endpoint-url",
            &moto.endpoint(),
        ])
        .args([
            "--format",
            "table",
            "--json",
            files[0].to_str().unwrap(),
            "--sarif",
            files[1].to_str().unwrap(),
        ])
        .args([
            "--junit",
            files[2].to_str().unwrap(),
            "--markdown",
            files[3].to_str().unwrap(),
        ])
        .args(["--save-snapshot", files[4].to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.len() > 1_000,
        "trace logging was on: {} bytes of stderr",
        stderr.len()
    );
    let mut everything = vec![
        ("stdout".to_string(), text(&out.stdout)),
        ("stderr".to_string(), stderr),
    ];
    for f in &files {
        everything.push((f.display().to_string(), std::fs::read_to_string(f).unwrap()));
    }
    for (name, content) in &everything {
        for canary in [KEY, SECRET, TOKEN, "canary/Secret", "CanarySessionToken"] {
            assert!(!content.contains(canary), "{canary} leaked into {name}");
        }
    }
}

#[test]
fn latency_beyond_the_timeout_becomes_a_timeout_gap() {
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![Rule {
            service: Some("eks"),
            operation: Some("ListClusters"),
            fault: Some(Fault::Delay(Duration::from_secs(5))),
            ..Rule::default()
        }],
    );
    let started = Instant::now();
    let (out, report) = scan_prod(
        "latency",
        &proxy.endpoint(),
        &["--timeout", "1", "--max-attempts", "2"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout bounded the wait"
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(proxy.hits(0), 2, "retried up to --max-attempts");
    let r = read_json(&report);
    let gaps = gaps_beyond_moto(&r["accounts"][0]);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["operation"], "ListClusters");
    assert_eq!(gaps[0]["code"], "Timeout");
    let f = r["findings"].as_array().unwrap();
    let outcome = |rule: &str| {
        f.iter().find(|x| x["rule_id"] == rule).unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome("db.network.eks-vpc"), "error");
    assert_eq!(outcome("db.encryption.at-rest"), "pass");
}

#[test]
fn a_truncated_answer_becomes_a_gap_not_a_pass() {
    let (_moto, proxy) = clusters_behind_proxy(
        1,
        vec![Rule {
            service: Some("rds"),
            operation: Some("DescribeDBSubnetGroups"),
            fault: Some(Fault::Truncated),
            ..Rule::default()
        }],
    );
    let (out, report) = scan_prod("truncated", &proxy.endpoint(), &["--max-attempts", "2"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let r = read_json(&report);
    let gaps = gaps_beyond_moto(&r["accounts"][0]);
    assert!(
        gaps.iter()
            .any(|g| g["operation"] == "DescribeDBSubnetGroups"),
        "{gaps:?}"
    );
    let f = r["findings"].as_array().unwrap();
    // Without subnet groups the network placement is unknown: error, not pass.
    let private = f
        .iter()
        .find(|x| x["rule_id"] == "db.network.private-subnets" && x["resource_id"] == "bench-0000")
        .unwrap();
    assert_eq!(private["outcome"], "error");
    assert!(
        private["message"]
            .as_str()
            .unwrap()
            .contains("DescribeDBSubnetGroups failed with MalformedResponse"),
        "{private} {gaps:?}"
    );
    // Only the facts that come from subnet groups are unknown: encryption,
    // read from DescribeDBClusters, is still decided.
    let encrypted = f
        .iter()
        .find(|x| x["rule_id"] == "db.encryption.at-rest" && x["resource_id"] == "bench-0000")
        .unwrap();
    assert_eq!(encrypted["outcome"], "pass", "{encrypted}");
}

/// One account with many regions runs at most PER_ACCOUNT_TASKS (8) of its
/// collection tasks at once, whatever `--concurrency` allows: its API rate
/// limits are its own. Measured on the wire with every request slowed down.
#[test]
fn one_account_runs_at_most_eight_tasks_at_once() {
    let moto = Moto::start();
    let proxy = support::faults::Proxy::start(
        moto.port,
        vec![Rule {
            fault: Some(Fault::Delay(Duration::from_millis(300))),
            ..Rule::default()
        }],
    );
    let dir = tempdir("per-account");
    let cfg = write_config(&dir, &[("wide", "prod", "888888888888")]);
    let regions = "regions = [\"eu-west-1\", \"eu-west-2\", \"eu-central-1\", \"us-east-1\", \"us-west-2\"]\n";
    let text_cfg = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text_cfg.replacen("regions = [\"eu-west-1\"]\n", regions, 1),
    )
    .unwrap();
    let out = dir.join("s.json");
    let o = dbaudit(&[
        "collect",
        "--account",
        "wide",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        &proxy.endpoint(),
        "--concurrency",
        "64",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{}",
        text(&o.stderr)
    );
    // 5 regions × 3 regional collectors + IAM = 16 tasks; 8 at a time.
    let most = proxy.max_in_flight(0);
    assert!(
        (2..=8).contains(&most),
        "{most} requests of one account at once"
    );
}
