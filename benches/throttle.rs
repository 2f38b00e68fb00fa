//! Benchmark: what throttling costs a collection. One account with a small
//! estate in the AWS emulator, behind the fault-injecting proxy of the tests,
//! which answers `Throttling` to the first N DescribeDBClusters calls; the
//! default retry settings (standard mode, 1 s initial backoff with jitter,
//! at most 5 s between attempts, 5 attempts). Prints the collection's wall
//! time for N = 0, 1, 2, 6 (median of RUNS, default 3). Needs the emulator
//! like the tests (scripts/setup-moto; `DBAUDIT_MOTO_SERVER`).
//! `cargo bench --bench throttle [-- RUNS]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use support::faults::{Fault, Proxy, Rule};
use support::{Moto, aws_env, tempdir, write_config};

#[allow(clippy::print_stdout)]
fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let moto = Moto::start();
    moto.seed(&[
        "clusters",
        "--account",
        "333333333333",
        "--count",
        "3",
        "--readers",
        "1",
    ]);
    let dir = tempdir("throttle-bench");
    let cfg = write_config(&dir, &[("prod", "prod", "333333333333")]);
    println!("| throttles on DescribeDBClusters | collect wall (median of {runs}) |");
    println!("|---|---|");
    for throttles in [0usize, 1, 2, 6] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let proxy = Proxy::start(
                moto.port,
                vec![Rule {
                    service: Some("rds"),
                    operation: Some("DescribeDBClusters"),
                    times: Some(throttles),
                    fault: (throttles > 0).then_some(Fault::Throttle("Throttling")),
                    ..Rule::default()
                }],
            );
            let out = dir.join("s.json");
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbaudit"));
            aws_env(&mut cmd);
            let t = Instant::now();
            let o = cmd
                .args([
                    "collect",
                    "--account",
                    "prod",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--endpoint-url",
                    &proxy.endpoint(),
                    "--quiet",
                    "-o",
                    out.to_str().unwrap(),
                ])
                .output()
                .unwrap();
            times.push(t.elapsed().as_secs_f64());
            assert!(o.status.code().is_some_and(|c| c == 0 || c == 3));
        }
        times.sort_by(f64::total_cmp);
        println!("| {throttles} | {:.2} s |", times[times.len() / 2]);
    }
}
