//! Benchmark: live collection over many accounts, each request delayed as
//! by a distant API. N empty accounts (in the emulator any account id is a
//! world of its own, reached by AssumeRole) behind the tests' fault proxy,
//! which delays every request by DBAUDIT_BENCH_LATENCY_MS (default 100).
//! Prints, per N, the requests per account counted on the wire and the wall
//! time, at the default concurrency and at the CONCURRENCY values given.
//! `cargo bench --bench accounts [-- N... [cN...]]`, e.g. `-- 10 100 400 c16 c64`
//! (default: 10 100 400, default concurrency). Each size is collected once
//! untimed, then timed (`cold` times the first collection instead), then
//! collected straight to the emulator for its floor. Needs the emulator like the
//! tests (`DBAUDIT_MOTO_SERVER`).
//!
//! `-- shards` instead measures one shard's peak RSS (GNU time's maximum
//! resident set) in organizations of 40 and 400 accounts cut into shards of
//! about ten accounts: a shard's memory must not grow with the accounts of
//! the other shards.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::faults::{Fault, Proxy, Rule};
use support::{Moto, aws_env, tempdir, write_config};

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "shards") {
        return shard_rss();
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10, 100, 400];
    }
    let mut concurrencies: Vec<Option<u16>> = args
        .iter()
        .filter_map(|a| a.strip_prefix('c')?.parse().ok().map(Some))
        .collect();
    if concurrencies.is_empty() {
        concurrencies.push(None);
    }
    // Warm (the default): collect once untimed first, then time a second
    // collection, and a third straight to the emulator (no delay): the
    // emulator's own floor for the same requests, measured in the same run.
    // The emulator builds an account's default network (a VPC, subnets,
    // security groups, per region) on the first request that names the
    // account (≈ 1.4 s each here); real AWS accounts exist already, so the
    // warm figure is the one that measures dbaudit rather than the
    // emulator's set-up.
    let warm = !args.iter().any(|a| a == "cold");
    let latency = std::env::var("DBAUDIT_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100u64);
    println!(
        "| accounts | concurrency | emulator | requests | per account | wall | dbaudit CPU | emulator floor | wall / floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        for &c in &concurrencies {
            let (moto, proxy, dir, cfg) = estate(n, 700_000_000_000, latency);
            let label = c.map_or("default".to_string(), |c| c.to_string());
            let run = |through: &Proxy| timed_collect(&dir, &cfg, through, c);
            if warm {
                run(&proxy);
            }
            let (requests, wall, cpu) = run(&proxy);
            let (floor, ratio) = if warm {
                let direct = Proxy::start(moto.port, vec![Rule::default()]);
                let (_, floor, _) = run(&direct);
                (format!("{floor:.1} s"), format!("{:.2}", wall / floor))
            } else {
                (String::new(), String::new())
            };
            println!(
                "| {n} | {label} | {} | {requests} | {:.1} | {wall:.1} s | {cpu:.1} s | {floor} | {ratio} |",
                if warm { "warm" } else { "cold" },
                requests as f64 / n as f64
            );
        }
    }
}

/// One `collect` of the config's accounts through `proxy`: the requests
/// it counted, the wall time, and dbaudit's own CPU (user + system; on two
/// cores it competes with the emulator and the proxy).
fn timed_collect(
    dir: &std::path::Path,
    cfg: &std::path::Path,
    proxy: &Proxy,
    concurrency: Option<u16>,
) -> (usize, f64, f64) {
    let before = proxy.hits(0);
    let mut args = collect_args(cfg, &proxy.endpoint(), &dir.join("s.json"));
    if let Some(c) = concurrency {
        args.extend(["--concurrency".to_string(), c.to_string()]);
    }
    // dbaudit's own CPU, user + system.
    let (wall, usage) = under_time(dir, "%U %S", &args);
    let cpu = usage.iter().sum();
    (proxy.hits(0) - before, wall, cpu)
}

/// `dbaudit ARGS` under GNU time, which writes `format` (its figures) to
/// a file in `dir`: the wall time and those figures. The collection must
/// end in 0 or 3 (gaps: moto has no Pod Identity).
fn under_time(dir: &std::path::Path, format: &str, args: &[String]) -> (f64, Vec<f64>) {
    let figures = dir.join("time");
    let mut cmd = std::process::Command::new("/usr/bin/time");
    aws_env(&mut cmd);
    cmd.args(["-f", format, "-o", figures.to_str().unwrap()])
        .arg(env!("CARGO_BIN_EXE_dbaudit"))
        .args(args);
    let t = Instant::now();
    let o = cmd.output().unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&figures).unwrap();
    let last = text.lines().last().unwrap_or_default();
    (
        wall,
        last.split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect(),
    )
}

/// One shard's peak RSS in a small and a large organization, the shard
/// holding about the same number of accounts in both.
#[allow(clippy::print_stdout)]
fn shard_rss() {
    println!(
        "| accounts in the organization | shards | accounts in shard 1 | shard 1 peak RSS | wall |"
    );
    println!("|---|---|---|---|---|");
    for (total, shards) in [(40usize, 4usize), (400, 40)] {
        let (_moto, proxy, dir, cfg) = estate(total, 710_000_000_000, 100);
        let part = dir.join("part.json");
        let mut args = collect_args(&cfg, &proxy.endpoint(), &part);
        args.extend(["--shard", &format!("1/{shards}"), "--run-id", "bench"].map(String::from));
        let (wall, rss) = under_time(&dir, "%M", &args);
        let kb = rss.first().copied().unwrap_or(f64::NAN);
        let snapshot: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&part).unwrap()).unwrap();
        let in_shard = snapshot["accounts"].as_array().map_or(0, Vec::len);
        println!(
            "| {total} | {shards} | {in_shard} | {:.1} MB | {wall:.1} s |",
            kb / 1024.0
        );
    }
}

/// `n` empty prod accounts (ids from `first_id`) in a fresh emulator behind
/// a proxy delaying every request by `latency_ms`, and their config.
fn estate(
    n: usize,
    first_id: u64,
    latency_ms: u64,
) -> (Moto, Proxy, std::path::PathBuf, std::path::PathBuf) {
    let moto = Moto::start();
    let proxy = Proxy::start(
        moto.port,
        vec![Rule {
            fault: Some(Fault::Delay(Duration::from_millis(latency_ms))),
            ..Rule::default()
        }],
    );
    let dir = tempdir("accounts-bench");
    let ids: Vec<String> = (0..n)
        .map(|i| format!("{:012}", first_id + i as u64))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("a{i:04}")).collect();
    let accounts: Vec<(&str, &str, &str)> = names
        .iter()
        .zip(&ids)
        .map(|(n, i)| (n.as_str(), "prod", i.as_str()))
        .collect();
    let cfg = write_config(&dir, &accounts);
    (moto, proxy, dir, cfg)
}

/// `collect --all-accounts` of the config's accounts through the proxy,
/// quietly, into `out`.
fn collect_args(cfg: &std::path::Path, endpoint: &str, out: &std::path::Path) -> Vec<String> {
    [
        "collect",
        "--all-accounts",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        endpoint,
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}
