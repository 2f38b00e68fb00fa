//! Test harness: a real AWS emulator (moto in server mode) on 127.0.0.1, its
//! seeding script, and a fault-injecting proxy in front of it.
#![allow(dead_code)]

pub mod faults;
pub mod iam_cases;
pub mod rule_cases;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pinned moto server: from DBAUDIT_MOTO_SERVER (set by scripts/test),
/// else installed by scripts/setup-moto (idempotent) on first use.
pub fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DBAUDIT_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let out = Command::new(root().join("scripts/setup-moto"))
        .output()
        .expect("scripts/setup-moto runs");
    assert!(
        out.status.success(),
        "scripts/setup-moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Environment every process of a test gets: dummy keys, no metadata service,
/// no user config.
pub fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("DBAUDIT_CONFIG")
        .env("NO_COLOR", "1")
}

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        // moto binds port 0 itself and prints the port it got: choosing a
        // free port here and releasing it for moto to bind raced with other
        // tests' listeners (seen in CI: the readiness probe reached another
        // test's listener while this moto had exited with "address in use").
        let server = moto_server_path();
        let mut cmd = Command::new(&server);
        aws_env(&mut cmd);
        let mut child = cmd
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the banner for the port, then keeps draining: moto logs every
        // request to stderr and would block on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let port = rest
                        .trim()
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse::<u16>()
                        .ok();
                    if let (Some(tx), Some(port)) = (tx.take(), port) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("moto printed the port it listens on");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs scripts/seed_moto.py with moto's own Python (it ships boto3).
    pub fn seed(&self, args: &[&str]) -> String {
        let python = moto_server_path().parent().unwrap().join("python");
        let mut cmd = Command::new(python);
        aws_env(&mut cmd);
        let out = cmd
            .arg(root().join("scripts/seed_moto.py"))
            .args(["--endpoint", &self.endpoint()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seeding failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the dbaudit binary with the test AWS environment.
/// Checks a generated file against what the code generates now, or with
/// `DBAUDIT_BLESS` set rewrites it. `rerun` is the command to bless it.
pub fn check_generated(path: &str, expected: &str, rerun: &str) {
    let file = root().join(path);
    if std::env::var_os("DBAUDIT_BLESS").is_some() {
        std::fs::write(&file, expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        actual == expected,
        "{path} is stale: run `DBAUDIT_BLESS=1 {rerun}` and commit the result"
    );
}

/// The demo estate every CLI test starts from.
pub const DEMO: &str = "fixtures/demo/snapshot.json";
pub const DEMO_CONFIG: &str = "fixtures/demo/dbaudit.toml";

/// The CLI test helper: `dbaudit ARGS` as a user types it, from the
/// repository root, in the test environment ([`aws_env`]).
pub fn dbaudit(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
    aws_env(&mut cmd);
    cmd.args(args).current_dir(root()).output().unwrap()
}

/// `dbaudit ARGS` run in `dir` (relative outputs land there), in the test
/// environment, without a history or config from the environment.
pub fn dbaudit_in(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
    aws_env(&mut cmd);
    cmd.env_remove("DBAUDIT_HISTORY")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `dbaudit evaluate <demo snapshot> --config <demo config> ARGS`.
pub fn demo(args: &[&str]) -> Output {
    let mut all = vec!["evaluate", DEMO, "--config", DEMO_CONFIG];
    all.extend_from_slice(args);
    dbaudit(&all)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "dbaudit-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let mut s = String::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    serde_json::from_str(&s).unwrap()
}

/// A config for accounts (name, environment, account id) in eu-west-1.
pub fn write_config(dir: &Path, accounts: &[(&str, &str, &str)]) -> PathBuf {
    let mut s = String::from("regions = [\"eu-west-1\"]\n");
    for (name, env, id) in accounts {
        s.push_str(&format!(
            "\n[[account]]\nname = \"{name}\"\nenvironment = \"{env}\"\naccount_id = \"{id}\"\nrole_arn = \"arn:aws:iam::{id}:role/dbaudit-audit\"\nexternal_id = \"dbaudit-test\"\n"
        ));
    }
    let p = dir.join("dbaudit.toml");
    std::fs::write(&p, s).unwrap();
    p
}

/// `dbaudit scan --account prod` of a one-account config (prod, 333333333333)
/// through `endpoint`, with 5 ms retry backoff and a JSON report; `extra`
/// adds flags (`--max-attempts`, `--timeout`…). Returns the process output
/// and the report's path. The scaffolding every fault-injection test shares.
pub fn scan_prod(tag: &str, endpoint: &str, extra: &[&str]) -> (Output, PathBuf) {
    let dir = tempdir(tag);
    let cfg = write_config(&dir, &[("prod", "prod", "333333333333")]);
    let report = dir.join("r.json");
    let mut args = vec![
        "scan",
        "--account",
        "prod",
        "--config",
        cfg.to_str().unwrap(),
        "--endpoint-url",
        endpoint,
        "--retry-backoff-ms",
        "5",
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (dbaudit(&args), report)
}

/// moto seeded with `count` Aurora clusters in account 333333333333, behind
/// the fault-injecting proxy with `rules`: where every fault test starts.
/// Keep both alive for the test (`let (_moto, proxy) = …`).
pub fn clusters_behind_proxy(count: usize, rules: Vec<faults::Rule>) -> (Moto, faults::Proxy) {
    let moto = Moto::start();
    let count = count.to_string();
    moto.seed(&["clusters", "--account", "333333333333", "--count", &count]);
    let proxy = faults::Proxy::start(moto.port, rules);
    (moto, proxy)
}

/// Operations the pinned moto does not implement (RDS DescribeCertificates
/// answers 500; every EKS Pod Identity operation 404): the gaps a healthy
/// emulator leaves in every scan (../shared/design/MOTO-NOTES.md).
#[allow(dead_code)]
pub const MOTO_LACKS: &[&str] = &["DescribeCertificates", "ListPodIdentityAssociations"];

/// An account's gaps but those of [`MOTO_LACKS`].
#[allow(dead_code)]
pub fn gaps_beyond_moto(account: &serde_json::Value) -> Vec<serde_json::Value> {
    account["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| !MOTO_LACKS.contains(&g["operation"].as_str().unwrap_or_default()))
        .cloned()
        .collect()
}

/// The accounts a JSON report has findings for, each once.
pub fn accounts_in(report: &serde_json::Value) -> std::collections::BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["account"].as_str().unwrap().to_string())
        .collect()
}
