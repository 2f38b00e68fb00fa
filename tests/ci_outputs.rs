//! CI-grade outputs: SARIF that GitHub code scanning accepts, JUnit, Markdown,
//! several outputs from one run, waivers, baselines and diffs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;

const CONFIG: &str = DEMO_CONFIG;

fn demo_value() -> Value {
    read_json(&root().join(DEMO))
}

fn write_snapshot(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

/// Validates a SARIF file against the official SARIF 2.1.0 JSON Schema (the
/// copy shipped in the serde-sarif crate's sources, from crates.io), with the
/// `jsonschema` package of the emulator's Python environment.
fn validate_against_schema(sarif: &Path) {
    let schema = sarif_schema_path();
    let python = moto_server_path().parent().unwrap().join("python");
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import json,sys,jsonschema\n\
             schema=json.load(open(sys.argv[1])); doc=json.load(open(sys.argv[2]))\n\
             v=jsonschema.Draft7Validator(schema)\n\
             errs=sorted(v.iter_errors(doc), key=lambda e: list(e.path))\n\
             [print('/'.join(map(str,e.path)), e.message) for e in errs[:20]]\n\
             sys.exit(1 if errs else 0)",
        )
        .arg(&schema)
        .arg(sarif)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate against the SARIF 2.1.0 schema:\n{}{}",
        sarif.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn sarif_schema_path() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let src = home.join("registry/src");
    for index in std::fs::read_dir(&src).unwrap() {
        let p = index
            .unwrap()
            .path()
            .join("serde-sarif-0.8.0/src/schema.json");
        if p.exists() {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert_eq!(
                v["$id"],
                "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
            );
            return p;
        }
    }
    panic!(
        "the SARIF 2.1.0 schema from the serde-sarif crate was not found under {}",
        src.display()
    );
}

/// The ingestion rules GitHub code scanning applies beyond the schema.
fn check_github_rules(sarif: &Value) {
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif"));
    let runs = sarif["runs"].as_array().unwrap();
    assert!(!runs.is_empty() && runs.len() <= 20);
    let mut ids = std::collections::BTreeSet::new();
    for run in runs {
        let id = run["automationDetails"]["id"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "duplicate category {id}");
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "dbaudit");
        assert!(driver["version"].is_string() && driver["informationUri"].is_string());
        let rules: Vec<&str> = driver["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for r in driver["rules"].as_array().unwrap() {
            assert!(
                r["shortDescription"]["text"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            );
            assert!(
                r["fullDescription"]["text"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .count()
                    <= 1024
            );
            assert!(r["help"]["text"].is_string() && r["help"]["markdown"].is_string());
            assert!(
                r["properties"]["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == "security")
            );
            let sev: f64 = r["properties"]["security-severity"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((0.0..=10.0).contains(&sev));
        }
        let results = run["results"].as_array().unwrap();
        assert!(results.len() <= 25_000);
        for res in results {
            assert!(
                rules.contains(&res["ruleId"].as_str().unwrap()),
                "rule of a result is in the driver"
            );
            assert!(
                res["message"]["text"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            );
            let loc = &res["locations"][0]["physicalLocation"];
            let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
            assert!(
                !uri.starts_with('/') && !uri.contains("://") && !uri.is_empty(),
                "relative uri: {uri}"
            );
            assert!(loc["region"]["startLine"].as_i64().unwrap() >= 1);
            assert!(res["partialFingerprints"]["primaryLocationLineHash"].is_string());
            assert!(
                res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                    .as_str()
                    .unwrap()
                    .starts_with("arn:")
            );
        }
    }
}

fn run_sarif(snapshot: &Path, extra: &[&str]) -> Value {
    let dir = tempdir("sarif");
    let out = dir.join("out.sarif");
    let primary = dir.join("primary.json");
    let mut args = vec![
        "evaluate",
        snapshot.to_str().unwrap(),
        "--config",
        CONFIG,
        "--sarif",
        out.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        primary.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = dbaudit(&args);
    assert!(
        matches!(o.status.code(), Some(0 | 1 | 3)),
        "{}",
        text(&o.stderr)
    );
    validate_against_schema(&out);
    read_json(&out)
}

#[test]
fn demo_sarif_passes_the_schema_and_github_rules_for_one_and_two_environments() {
    let both = run_sarif(&root().join(DEMO), &[]);
    check_github_rules(&both);
    assert_eq!(both["runs"].as_array().unwrap().len(), 2);
    let dir = tempdir("one-env");
    let mut v = demo_value();
    v["accounts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] == "prod");
    // Only prod is evaluated (test, which the config declares, is left out
    // on purpose; without --environment it would be a gap).
    let one = run_sarif(
        &write_snapshot(&dir, "prod.json", &v),
        &["--environment", "prod"],
    );
    check_github_rules(&one);
    assert_eq!(one["runs"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["runs"][0]["automationDetails"]["id"],
        "dbaudit/prod/prod/"
    );
    // Failures are results; passes are not; the planted critical is an error-level result.
    let results = one["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "db.network.sg-not-open-to-world" && r["level"] == "error")
    );
    assert!(results.iter().all(|r| r["properties"]["outcome"] != "pass"));
}

#[test]
fn user_rules_in_sarif_link_to_their_own_reference_not_to_dbaudit_docs() {
    let dir = tempdir("user-rules");
    let rule = |id: &str, refs: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\ntitle = \"t\"\nseverity = \"low\"\nresource = \"db_cluster\"\n\
             condition = \"false\"\nmessage = \"m\"\nrationale = \"r\"\nremediation = \"r\"\n{refs}\n"
        )
    };
    let body = rule(
        "org.linked",
        "references = [\"https://wiki.example.com/db-owners\"]",
    ) + &rule("org.unlinked", "");
    std::fs::write(dir.join("org.toml"), body).unwrap();
    let sarif = run_sarif(&root().join(DEMO), &["--rules", dir.to_str().unwrap()]);
    check_github_rules(&sarif);
    let descriptors: Vec<&Value> = sarif["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["tool"]["driver"]["rules"].as_array().unwrap())
        .collect();
    let uri = |id: &str| {
        let d = descriptors
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no descriptor for {id}"));
        d.get("helpUri").and_then(Value::as_str).map(str::to_string)
    };
    assert_eq!(
        uri("org.linked").as_deref(),
        Some("https://wiki.example.com/db-owners")
    );
    assert_eq!(uri("org.unlinked"), None);
    assert!(
        uri("db.deletion-protection")
            .is_some_and(|u| u.ends_with("docs/rules.md#db-deletion-protection")),
        "{:?}",
        uri("db.deletion-protection")
    );
}

#[test]
fn fingerprints_are_stable_across_runs_and_distinct_per_resource() {
    let a = run_sarif(&root().join(DEMO), &[]);
    let b = run_sarif(&root().join(DEMO), &[]);
    let prints = |s: &Value| -> Vec<String> {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["results"].as_array().unwrap().iter().map(|x| {
                    x["partialFingerprints"]["dbaudit/v1"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
            })
            .collect()
    };
    assert_eq!(prints(&a), prints(&b));
    assert_eq!(a, b, "the whole SARIF is deterministic");
    let mut p = prints(&a);
    let n = p.len();
    p.sort();
    p.dedup();
    assert_eq!(p.len(), n, "different resources, different fingerprints");
}

#[test]
fn results_point_at_the_source_tag_then_mappings_then_the_account_line() {
    let dir = tempdir("locations");
    let mut v = demo_value();
    // prod-catalog carries a source tag; prod-billing is covered by a mapping.
    for c in v["accounts"][1]["regions"][0]["db_clusters"]
        .as_array_mut()
        .unwrap()
    {
        if c["id"] == "prod-catalog" {
            c["tags"]["dbaudit:source"] = "infra/prod/catalog.tf#L42".into();
        }
    }
    let snap = write_snapshot(&dir, "s.json", &v);
    let cfg = dir.join("dbaudit.toml");
    let mut text = std::fs::read_to_string(root().join(CONFIG)).unwrap();
    text.push_str("\n[[sarif.location]]\nresource = \"arn:aws:rds:*:222222222222:cluster:prod-billing\"\npath = \"infra/prod/billing.tf\"\nline = 7\n");
    std::fs::write(&cfg, &text).unwrap();
    let out = dir.join("o.sarif");
    let table = dir.join("table.txt");
    let o = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--sarif",
        out.to_str().unwrap(),
        "-o",
        table.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o.stderr));
    validate_against_schema(&out);
    let s = read_json(&out);
    let loc = |resource: &str| -> (String, i64) {
        let r = s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["results"].as_array().unwrap())
            .find(|r| r["locations"][0]["logicalLocations"][0]["name"] == resource)
            .unwrap();
        let p = &r["locations"][0]["physicalLocation"];
        (
            p["artifactLocation"]["uri"].as_str().unwrap().to_string(),
            p["region"]["startLine"].as_i64().unwrap(),
        )
    };
    assert_eq!(
        loc("prod-catalog"),
        ("infra/prod/catalog.tf".to_string(), 42)
    );
    assert_eq!(
        loc("prod-billing"),
        ("infra/prod/billing.tf".to_string(), 7)
    );
    // Fallback: the line declaring the prod account in dbaudit.toml.
    let prod_line = text
        .lines()
        .position(|l| l.contains("name = \"prod\""))
        .unwrap() as i64; // `[[account]]` is the line before
    assert_eq!(loc("prod-payments").1, prod_line);
    assert!(loc("prod-payments").0.ends_with("dbaudit.toml"));
}

fn text_of(b: &[u8]) -> String {
    text(b)
}

#[test]
fn several_outputs_from_one_run_and_junit_and_markdown() {
    let dir = tempdir("outs");
    let (j, x, m, s) = (
        dir.join("r.json"),
        dir.join("r.xml"),
        dir.join("r.md"),
        dir.join("r.sarif"),
    );
    let o = demo(&[
        "--format",
        "table",
        "--json",
        j.to_str().unwrap(),
        "--junit",
        x.to_str().unwrap(),
        "--markdown",
        m.to_str().unwrap(),
        "--sarif",
        s.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("Gate FAILED"),
        "the table still goes to stdout"
    );
    let report = read_json(&j);
    assert_eq!(report["schema"], "dbaudit.report/v1");
    let junit = quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&x).unwrap())
        .expect("JUnit XML parses");
    assert_eq!(junit.test_suites.len(), 2);
    let cases: usize = junit.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(cases, report["findings"].as_array().unwrap().len());
    let failures: usize = junit.test_suites.iter().map(|s| s.failures).sum();
    assert_eq!(
        failures as u64,
        report["summary"]["total"]["fail"].as_u64().unwrap()
    );
    let md = std::fs::read_to_string(&m).unwrap();
    assert!(
        md.contains(
            "| environment | critical | high | medium | low | info | errors | waived | passed |"
        ),
        "{md}"
    );
    // Critical: the planted network three, a public snapshot and a reader on
    // the expired rds-ca-2019. High: the planted seven, a snapshot shared
    // with test, reporting without forced TLS, a proxy without TLS. Medium:
    // prod-payments serves two services, prod-catalog is capped too low, two
    // prod services have no test database, prod-reporting's master user is
    // `postgres` with an unmanaged password, prod-billing does not export
    // failed IAM authentications, rotates its master secret every 90 days
    // and encrypts Performance Insights with another key, payments' reader is
    // on a CA under which nothing rotates, orders' role is
    // also given to a batch job (Pod Identity), and four services hash
    // passwords differently in test. Low: reporting's PostgreSQL 14 leaves
    // standard support within 180 days.
    assert!(
        md.contains("| prod | 5 | 10 | 15 | 1 | 0 | 0 | 0 |"),
        "{md}"
    );
    assert!(
        md.contains("### Failing rules") && md.contains("docs/rules.md#db-network-sg-eks-only"),
        "{md}"
    );
    // `-` sends one extra output to stdout in place of the table.
    let o = demo(&["--markdown", "-"]);
    assert!(text(&o.stdout).starts_with("## dbaudit: "));
    let o = demo(&["--markdown", "-", "--junit", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("only one output can go to stdout"));
}

/// `--report FORMAT[=PATH]` writes the same bytes as the per-format flags;
/// without a path (or with `-`) it takes stdout's place.
#[test]
fn report_flags_write_what_the_per_format_flags_write() {
    let dir = tempdir("report-flag");
    let (a, b, c) = (dir.join("a.sarif"), dir.join("b.sarif"), dir.join("c.xml"));
    let arg = |f: &str, p: &Path| format!("{f}={}", p.display());
    let o = demo(&[
        "--as-of",
        "2026-11-30",
        "--report",
        &arg("sarif", &a),
        "--report",
        &arg("junit", &c),
        "--report",
        "json",
        "--sarif",
        b.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(std::fs::read_to_string(&c).unwrap().starts_with("<?xml"));
    let stdout: Value = serde_json::from_slice(&o.stdout).expect("the JSON report took stdout");
    assert_eq!(stdout["schema"], "dbaudit.report/v1");
    for (bad, says) in [
        ("pdf=x.pdf", "unknown format `pdf`"),
        ("sarif=", "`sarif=` needs a path"),
    ] {
        let o = dbaudit(&["evaluate", DEMO, "--report", bad]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
    }
    let o = dbaudit(&[
        "evaluate",
        DEMO,
        "--report",
        "json",
        "--report",
        "markdown=-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("only one output can go to stdout"));
}

fn waivers_file(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("waivers.toml");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn waivers_hide_until_they_expire_and_unused_ones_are_reported() {
    let dir = tempdir("waivers");
    let w = waivers_file(
        &dir,
        r#"
[[waiver]]
rule = "db.network.sg-eks-only"
resource = "arn:aws:rds:eu-west-1:222222222222:cluster:prod-billing"
reason = "office VPN access until the bastion is live"
owner = "platform-team"
ticket = "OPS-123"
expires = 2026-11-26

[[waiver]]
rule = "db.deletion-protection"
resource = "arn:aws:rds:eu-west-1:222222222222:cluster:prod-catalog"
reason = "catalog is being migrated this week"
expires = "2026-12-31"

[[waiver]]
rule = "db.encryption.at-rest"
resource = "arn:aws:rds:*:*:cluster:does-not-exist"
reason = "stale"
"#,
    );
    let report = dir.join("r.json");
    let o = demo(&[
        "--waivers",
        w.to_str().unwrap(),
        "--as-of",
        "2026-11-27",
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("waivers.toml:2 (rule `db.network.sg-eks-only`) expired on 2026-11-26"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("waivers.toml:16 (rule `db.encryption.at-rest`) matched no failing finding"),
        "{stderr}"
    );
    let r = read_json(&report);
    let outcome = |rule: &str, res: &str| -> String {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == rule && f["resource_id"] == res)
            .unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Expired yesterday: the failure is back.
    assert_eq!(outcome("db.network.sg-eks-only", "prod-billing"), "fail");
    // Unexpired: waived, with its reason.
    assert_eq!(outcome("db.deletion-protection", "prod-catalog"), "waived");
    let statuses: Vec<&str> = r["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["expired", "applied", "unused"]);
    // Each status carries the waiver's own fields, flat, as waived findings do.
    for w in r["waivers"].as_array().unwrap() {
        assert!(w["reason"].as_str().is_some_and(|s| !s.is_empty()), "{w}");
        assert!(
            w["location"].as_str().is_some_and(|s| s.contains(".toml:")),
            "{w}"
        );
        assert!(w.get("waiver").is_none(), "{w}");
    }
    // The same waiver file a day earlier still hides billing's failure.
    let o = demo(&[
        "--waivers",
        w.to_str().unwrap(),
        "--as-of",
        "2026-11-26",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "db.network.sg-eks-only" && f["resource_id"] == "prod-billing")
        .unwrap()
        .clone();
    assert_eq!(f["outcome"], "waived");
    assert_eq!(
        f["waiver"]["reason"],
        "office VPN access until the bastion is live"
    );
    // SARIF carries waived findings as suppressed results.
    let s = run_sarif(
        &root().join(DEMO),
        &["--waivers", w.to_str().unwrap(), "--as-of", "2026-11-26"],
    );
    let suppressed = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["results"].as_array().unwrap())
        .filter(|r| r["suppressions"].is_array())
        .count();
    assert_eq!(suppressed, 2);
}

#[test]
fn waivers_gate_and_errors_are_never_waived() {
    // test alone: three failures (two high, one medium). Waive the highs.
    let dir = tempdir("waive-gate");
    let mut v = demo_value();
    v["accounts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] == "test");
    let snap = write_snapshot(&dir, "t.json", &v);
    let w = waivers_file(
        &dir,
        "[[waiver]]\nrule = \"db.*\"\naccount = \"test\"\nreason = \"test estate accepted as is\"\n",
    );
    let o = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--waivers",
        w.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    // A gap is not a deviation: a waiver does not turn an error into a pass.
    v["accounts"][0]["gaps"] = serde_json::json!([{"service": "ec2", "region": "eu-west-1", "operation": "DescribeSecurityGroups", "code": "AccessDenied", "message": "no"}]);
    let snap = write_snapshot(&dir, "g.json", &v);
    let o = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--waivers",
        w.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn a_baseline_gates_only_on_new_violations_and_reports_fixed_ones() {
    let dir = tempdir("baseline");
    let base = dir.join("base.json");
    let o = demo(&["--format", "json", "-o", base.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    // Same estate against its own baseline: nothing new, the gate passes.
    let o = demo(&["--baseline", base.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("baseline: 0 new failing finding(s), 0 fixed"));
    // The verdict says what is true: nothing new, and what the baseline
    // still carries; each row is marked.
    assert!(
        out.contains("no new failing findings at or above high; 18 existing failure(s) carried by the baseline"),
        "{out}"
    );
    assert!(
        out.contains("fail EXISTING") && !out.contains("fail NEW"),
        "{out}"
    );
    let md = dir.join("same.md");
    demo(&[
        "--baseline",
        base.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.contains("18 existing failure(s) carried by the baseline"),
        "{md}"
    );
    assert!(md.contains("`prod/prod-reporting` (existing)"), "{md}");
    // Plant a new violation and fix an old one.
    let mut v = demo_value();
    for c in v["accounts"][1]["regions"][0]["db_clusters"]
        .as_array_mut()
        .unwrap()
    {
        if c["id"] == "prod-orders" {
            c["storage_encrypted"] = false.into();
        }
        if c["id"] == "prod-catalog" {
            c["deletion_protection"] = true.into();
        }
    }
    let snap = write_snapshot(&dir, "new.json", &v);
    let report = dir.join("r.json");
    let o = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--config",
        CONFIG,
        "--baseline",
        base.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let r = read_json(&report);
    assert_eq!(r["gate"]["failing"], 1, "only the new failure gates");
    assert!(
        r["gate"]["reason"].as_str().unwrap().starts_with(
            "1 new failing finding(s) at or above high; 17 existing failure(s) carried"
        ),
        "{}",
        r["gate"]
    );
    let new: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["baseline"] == "new")
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["resource_id"], "prod-orders");
    let fixed = r["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 1);
    assert_eq!(fixed[0]["rule_id"], "db.deletion-protection");
    assert_eq!(
        r["baseline"],
        // Every failing finding counts, not only those at or above --fail-on.
        serde_json::json!({"new": 1, "existing": 35, "fixed": 1}),
        "the summary renderers and later history read"
    );
    // A baseline that is not a report is refused before anything runs.
    let o = dbaudit(&["evaluate", DEMO, "--baseline", DEMO]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not a dbaudit JSON report"));
}

#[test]
fn diff_of_reports_and_of_snapshots() {
    let dir = tempdir("diff");
    let mut v = demo_value();
    for c in v["accounts"][1]["regions"][0]["db_clusters"]
        .as_array_mut()
        .unwrap()
    {
        if c["id"] == "prod-orders" {
            c["storage_encrypted"] = false.into();
        }
    }
    v["accounts"][1]["regions"][0]["db_clusters"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["id"] != "prod-reporting");
    let new_snap = write_snapshot(&dir, "new.json", &v);
    let (old_r, new_r) = (dir.join("old-r.json"), dir.join("new-r.json"));
    dbaudit(&[
        "evaluate",
        DEMO,
        "--format",
        "json",
        "-o",
        old_r.to_str().unwrap(),
    ]);
    dbaudit(&[
        "evaluate",
        new_snap.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        new_r.to_str().unwrap(),
    ]);
    let o = dbaudit(&[
        "diff",
        old_r.to_str().unwrap(),
        new_r.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["kind"], "report");
    // Each list is most severe first.
    let rank = |s: &str| {
        ["info", "low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == s)
    };
    for list in ["new", "fixed", "unchanged"] {
        let sev: Vec<_> = d[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| rank(f["severity"].as_str().unwrap()))
            .collect();
        assert!(sev.windows(2).all(|w| w[0] >= w[1]), "{list}: {sev:?}");
    }
    assert!(
        d["new"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "db.encryption.at-rest")
    );
    assert!(d["fixed"].as_array().unwrap().iter().any(|f| {
        f["resource_arn"]
            .as_str()
            .unwrap()
            .ends_with("prod-reporting")
    }));
    let o = dbaudit(&["diff", DEMO, new_snap.to_str().unwrap(), "--format", "json"]);
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["kind"], "snapshot");
    assert!(
        d["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "prod/eu-west-1/db_clusters/prod-reporting")
    );
    let changed = d["changed"].as_array().unwrap();
    assert!(changed.iter().any(
        |c| c["resource"] == "prod/eu-west-1/db_clusters/prod-orders"
            && c["fields"] == serde_json::json!(["storage_encrypted"])
    ));
    let md = dbaudit(&[
        "diff",
        DEMO,
        new_snap.to_str().unwrap(),
        "--format",
        "markdown",
    ]);
    assert!(text(&md.stdout).contains("## dbaudit snapshot diff"));
    let mixed = dbaudit(&["diff", DEMO, old_r.to_str().unwrap()]);
    assert_eq!(mixed.status.code(), Some(2));
}

#[test]
fn recipes_parse_and_do_what_they_promise() {
    let dir = root().join("docs/recipes");
    let python = moto_server_path().parent().unwrap().join("python");
    let load = |name: &str| -> Value {
        let out = Command::new(&python)
            .arg("-c")
            .arg("import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))")
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} does not parse as YAML: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let nightly = &load("github-actions-nightly.yml")[0];
    // PyYAML reads the `on` key as true (YAML 1.1).
    let on = &nightly["true"];
    assert!(on["schedule"].is_array() && on.get("workflow_dispatch").is_some());
    assert_eq!(nightly["permissions"]["id-token"], "write");
    let steps = nightly["jobs"]["audit"]["steps"].to_string();
    for needle in [
        "configure-aws-credentials",
        "upload-sarif",
        "category",
        "--sarif",
        "--junit",
        "--markdown",
        "upload-artifact",
        "--save-snapshot",
    ] {
        assert!(steps.contains(needle), "nightly workflow lacks {needle}");
    }
    let gate = &load("github-actions-release-gate.yml")[0];
    assert!(
        gate["jobs"]["dbaudit-gate"]["steps"]
            .to_string()
            .contains("--fail-on high")
    );
    assert_eq!(gate["jobs"]["release"]["needs"], "dbaudit-gate");
    let k8s = load("k8s-cronjob.yaml");
    let kinds: Vec<&str> = k8s
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "PersistentVolumeClaim",
            "CronJob"
        ]
    );
    // Reports go to the claim, not to storage that dies with the pod.
    let job = &k8s[3]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(
        job["volumes"][1]["persistentVolumeClaim"]["claimName"],
        "dbaudit-reports"
    );
    // The container's arguments are a valid dbaudit command line.
    let args: Vec<String> = std::iter::once("dbaudit".to_string())
        .chain(
            job["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        )
        .collect();
    {
        use clap::Parser;
        dbaudit::cli::Cli::try_parse_from(&args).unwrap();
    }
    assert!(k8s[0]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_string());
    // The CronJob's embedded config is a valid dbaudit config.
    let cfg_dir = tempdir("recipe-cfg");
    let cfg = cfg_dir.join("dbaudit.toml");
    std::fs::write(&cfg, k8s[1]["data"]["dbaudit.toml"].as_str().unwrap()).unwrap();
    let config = dbaudit::config::Config::load(&cfg).unwrap();
    assert!(
        !config.developers.groups.is_empty(),
        "without [developers] the job always exits 3"
    );
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("k8s-scanner-role-policy.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(policy["Statement"][0]["Action"], "sts:AssumeRole");
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        docker.contains("cargo build --release --locked") && docker.contains("USER 65532:65532")
    );
    // The build context leaves the build output out (it was 2.3 GB).
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// `diff --environment test --environment prod`: drift per service between
/// the two environments of one estate (or of two snapshots merged).
#[test]
fn diff_of_environments_shows_drift_per_service() {
    // `diff --environment test --environment prod SNAPSHOT... --format json`.
    let json = |snapshots: &[&str]| -> Value {
        let mut args = vec!["diff", "--environment", "test", "--environment", "prod"];
        args.extend_from_slice(snapshots);
        args.extend(["--config", CONFIG]);
        args.extend(["--format", "json"]);
        let o = dbaudit(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // One service's entry of an environment diff.
    fn service<'d>(d: &'d Value, name: &str) -> &'d Value {
        d["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == name)
            .unwrap()
    }
    let d = json(&[DEMO]);
    assert_eq!(d["kind"], "environments");
    assert_eq!(d["only_right"], serde_json::json!(["ledger", "reporting"]));
    let orders = service(&d, "orders");
    assert_eq!(
        orders["left"],
        serde_json::json!(["test/eu-west-1/test-shared"])
    );
    assert_eq!(
        orders["right"],
        serde_json::json!(["prod/eu-west-1/prod-orders"])
    );
    // What parity.parameters gates on (md5 in test, scram-sha-256 in prod),
    // and only that by default: encryption is no parity rule's business.
    assert_eq!(
        orders["differences"],
        serde_json::json!([{"setting": "parameter password_encryption", "left": ["md5"], "right": ["scram-sha-256"]}])
    );
    let all = dbaudit(&[
        "diff",
        "--environment",
        "test",
        "--environment",
        "prod",
        DEMO,
        "--config",
        CONFIG,
        "--all",
        "--format",
        "json",
    ]);
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    let settings: Vec<&str> = service(&all, "orders")["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["setting"].as_str().unwrap())
        .collect();
    assert!(settings.contains(&"storage_encrypted"), "{settings:?}");
    // And the parity rule fails on the same difference.
    let report = dbaudit(&["evaluate", DEMO, "--config", CONFIG, "--format", "json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(report["findings"].as_array().unwrap().iter().any(|f| {
        f["rule_id"] == "parity.parameters"
            && f["outcome"] == "fail"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("password_encryption")
            && f["message"].as_str().unwrap().contains("orders")
    }));
    // Each environment in its own snapshot, merged; an engine upgrade in
    // prod shows as drift.
    let dir = tempdir("env-diff");
    let v = demo_value();
    let (mut test, mut prod) = (v.clone(), v.clone());
    test["accounts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["environment"] == "test");
    prod["accounts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["environment"] == "prod");
    for c in prod["accounts"][0]["regions"][0]["db_clusters"]
        .as_array_mut()
        .unwrap()
    {
        if c["id"] == "prod-orders" {
            c["engine_version"] = "17.1".into();
        }
    }
    let (t, p) = (
        write_snapshot(&dir, "test.json", &test),
        write_snapshot(&dir, "prod.json", &prod),
    );
    let d = json(&[t.to_str().unwrap(), p.to_str().unwrap()]);
    let orders = service(&d, "orders");
    let settings: Vec<&str> = orders["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["setting"].as_str().unwrap())
        .collect();
    assert_eq!(settings, ["engine_major", "parameter password_encryption"]);
    let table = dbaudit(&[
        "diff",
        "--environment",
        "test",
        "--environment",
        "prod",
        DEMO,
    ]);
    let out = text(&table.stdout);
    assert!(out.contains("Only in prod (2):"), "{out}");
    assert!(
        out.contains("parameter password_encryption: test md5 vs prod scram-sha-256"),
        "{out}"
    );
    assert!(!out.contains("storage_encrypted"), "{out}");
    for (args, says) in [
        (vec!["diff", "--environment", "test", DEMO], "give it twice"),
        (vec!["diff", DEMO], "diff needs OLD and NEW"),
        (
            vec![
                "diff",
                "--environment",
                "test",
                "--environment",
                "staging",
                DEMO,
            ],
            "no account of environment `staging`",
        ),
    ] {
        let o = dbaudit(&args);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
    }
}

/// `--sarif-dir`: every account in a file of at most 20 runs (GitHub's
/// limit per file), one file per environment or more; each valid SARIF.
/// The single `--sarif` file keeps the 20 worst and says how to get all.
#[test]
fn sarif_dir_splits_by_environment_within_githubs_limits() {
    let dir = tempdir("sarif-split");
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DEMO)).unwrap()).unwrap();
    let prod = v["accounts"][1].clone();
    assert_eq!(prod["environment"], "prod");
    // The configured prod account and 44 more of its environment (the
    // config's accounts must all be in the snapshot, or they are gaps).
    let mut accounts = vec![v["accounts"][0].clone(), prod.clone()];
    for i in 1..45 {
        let mut a = prod.clone();
        a["name"] = format!("prod-{i:02}").into();
        a["account_id"] = format!("{:012}", 300_000_000_000u64 + i).into();
        accounts.push(a);
    }
    v["accounts"] = Value::Array(accounts);
    let snap = write_snapshot(&dir, "many.json", &v);
    let out = dir.join("sarif");
    let single = dir.join("one.sarif");
    let o = dbaudit(&[
        "evaluate",
        snap.to_str().unwrap(),
        "--config",
        CONFIG,
        "--sarif-dir",
        out.to_str().unwrap(),
        "--sarif",
        single.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--sarif-dir"),
        "{}",
        text(&o.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dbaudit-prod-1.sarif",
            "dbaudit-prod-2.sarif",
            "dbaudit-prod-3.sarif",
            "dbaudit-test.sarif"
        ]
    );
    let mut seen = Vec::new();
    for n in &names {
        let p = out.join(n);
        validate_against_schema(&p);
        let s = read_json(&p);
        let runs = s["runs"].as_array().unwrap();
        assert!(runs.len() <= 20, "{n}: {} runs", runs.len());
        for r in runs {
            seen.push(r["automationDetails"]["id"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    let n = seen.len();
    seen.dedup();
    assert_eq!((n, seen.len()), (46, 46), "every account once");
    assert_eq!(read_json(&single)["runs"].as_array().unwrap().len(), 20);
}

/// The sharded recipes: the Kubernetes manifests parse into k8s-openapi's
/// types; the Batch calls validate against botocore's model of the Batch
/// API; and every container command line in them runs against the emulator,
/// with the index variable each orchestrator sets.
#[test]
fn sharded_recipes_are_valid_and_their_commands_run() {
    use k8s_openapi::api::batch::v1::CronJob;
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, ServiceAccount};
    let dir = root().join("docs/recipes");
    let python = moto_server_path().parent().unwrap().join("python");
    let yaml_documents = |name: &str| -> Vec<Value> {
        let yaml = Command::new(&python)
            .arg("-c")
            .arg("import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))")
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(yaml.status.success(), "{name}: {}", text(&yaml.stderr));
        serde_json::from_slice(&yaml.stdout).unwrap()
    };
    let docs = yaml_documents("k8s-sharded.yaml");
    let _: ServiceAccount = serde_json::from_value(docs[0].clone()).unwrap();
    let config_map: ConfigMap = serde_json::from_value(docs[1].clone()).unwrap();
    let _: PersistentVolumeClaim = serde_json::from_value(docs[2].clone()).unwrap();
    let shards: CronJob = serde_json::from_value(docs[3].clone()).unwrap();
    let evaluate: CronJob = serde_json::from_value(docs[4].clone()).unwrap();
    let job = shards.spec.unwrap().job_template.spec.unwrap();
    assert_eq!(job.completion_mode.as_deref(), Some("Indexed"));
    assert!(job.backoff_limit_per_index.is_some());
    let n = job.completions.unwrap();
    assert_eq!(job.parallelism, Some(n));
    let args_of =
        |spec: k8s_openapi::api::core::v1::PodSpec| spec.containers[0].args.clone().unwrap();
    let shard_args = args_of(job.template.spec.unwrap());
    assert!(
        shard_args.join(" ").contains(&format!("--shard auto/{n}")),
        "{shard_args:?}"
    );
    // A CronJob's container arguments.
    let cron_args = |c: CronJob| {
        args_of(
            c.spec
                .unwrap()
                .job_template
                .spec
                .unwrap()
                .template
                .spec
                .unwrap(),
        )
    };
    let eval_args = cron_args(evaluate);

    // The Batch calls, checked by botocore against the API model.
    let batch: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("aws-batch.json")).unwrap())
            .unwrap();
    let valid_batch_call = |what: &str, operation: &str, input: &Value| {
        let check = Command::new(&python)
            .arg("-c")
            .arg(
                "import json,sys,botocore.session\n\
                 from botocore.validate import ParamValidator\n\
                 m=botocore.session.get_session().get_service_model('batch')\n\
                 r=ParamValidator().validate(json.loads(sys.argv[2]), m.operation_model(sys.argv[1]).input_shape)\n\
                 print(r.generate_report()); sys.exit(1 if r.has_errors() else 0)",
            )
            .arg(operation)
            .arg(input.to_string())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{what} is not a valid {operation}: {}",
            text(&check.stdout)
        );
    };
    for (key, operation) in [
        ("RegisterJobDefinition", "RegisterJobDefinition"),
        ("SubmitShards", "SubmitJob"),
        ("SubmitEvaluate", "SubmitJob"),
    ] {
        valid_batch_call(key, operation, &batch[key]);
    }
    assert_eq!(batch["SubmitShards"]["arrayProperties"]["size"], 4);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let batch_shard = strings(&batch["RegisterJobDefinition"]["containerProperties"]["command"]);
    let batch_eval = strings(&batch["SubmitEvaluate"]["containerOverrides"]["command"]);

    // Every command line, against the emulator: the config is the
    // ConfigMap's, the paths are moved into a temporary directory, and the
    // endpoint comes from AWS_ENDPOINT_URL (the command lines stay as they
    // are in the recipes).
    // `shards`: each shard's command line, run with its 0-based index in
    // `index_var` when the orchestrator sets one.
    // The in-cluster databases Job (k8s-databases.yaml), run between the
    // Kubernetes shards and the evaluation, with its own ConfigMap.
    let db_docs = yaml_documents("k8s-databases.yaml");
    let _: ServiceAccount = serde_json::from_value(db_docs[0].clone()).unwrap();
    let db_config: ConfigMap = serde_json::from_value(db_docs[1].clone()).unwrap();
    let db_cron: CronJob = serde_json::from_value(db_docs[2].clone()).unwrap();
    let db_args = cron_args(db_cron);
    let db_toml = db_config.data.as_ref().unwrap()["dbaudit.toml"].clone();
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("k8s-databases-role-policy.json")).unwrap(),
    )
    .unwrap();
    let connect: Vec<&Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"] == "rds-db:connect")
        .collect();
    assert_eq!(connect.len(), 1);
    assert!(
        connect[0]["Resource"]
            .as_str()
            .unwrap()
            .ends_with(":dbuser:*/dbaudit_audit"),
        "the databases Job may connect as the audit user only"
    );
    let run_recipe = |tag: &str,
                      index_var: Option<&str>,
                      shards: &[Vec<String>],
                      between: &[Vec<String>],
                      eval: &[String]| {
        let moto = Moto::start();
        moto.seed(&["bucket", "--name", "dbaudit-shards"]);
        let tmp = tempdir(tag);
        let cfg = tmp.join("dbaudit.toml");
        std::fs::write(
            &cfg,
            config_map.data.as_ref().unwrap()["dbaudit.toml"].as_str(),
        )
        .unwrap();
        let local = |args: &[String]| -> Vec<String> {
            args.iter()
                .map(|a| {
                    if a == "/etc/dbaudit/dbaudit.toml" {
                        cfg.display().to_string()
                    } else if let Some(rest) =
                        a.strip_prefix("/reports/").or(a.strip_prefix("/tmp/"))
                    {
                        tmp.join(rest).display().to_string()
                    } else {
                        a.clone()
                    }
                })
                .collect()
        };
        let run = |args: &[String], index: Option<usize>| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbaudit"));
            aws_env(&mut cmd);
            cmd.current_dir(root())
                .env("AWS_ENDPOINT_URL", moto.endpoint())
                .args(local(args));
            if let (Some(var), Some(i)) = (index_var, index) {
                cmd.env(var, i.to_string());
            }
            cmd.output().unwrap()
        };
        for (i, shard) in shards.iter().enumerate() {
            let o = run(shard, Some(i));
            assert_eq!(
                o.status.code(),
                Some(0),
                "{tag} shard {i}: {}",
                text(&o.stderr)
            );
        }
        for args in between {
            // Its own ConfigMap in place of the shards' while it runs.
            let shards_toml = std::fs::read_to_string(&cfg).unwrap();
            std::fs::write(&cfg, &db_toml).unwrap();
            let o = run(args, None);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{tag} databases: {}",
                text(&o.stderr)
            );
            // Written where the evaluation reads: a retry finds it there.
            let again = run(args, None);
            assert!(
                text(&again.stderr)
                    .contains("databases-payments-prod.json was written by an earlier attempt"),
                "{tag}: {}",
                text(&again.stderr)
            );
            std::fs::write(&cfg, shards_toml).unwrap();
        }
        let o = run(eval, None);
        // Evaluated (the recipe's accounts are empty in the emulator, so
        // the gate may fail or be incomplete), never a usage error.
        assert!(
            matches!(o.status.code(), Some(0 | 1 | 3)),
            "{tag}: {}",
            text(&o.stderr)
        );
        (o, tmp)
    };
    let (_, reports) = run_recipe(
        "k8s-recipe",
        Some("JOB_COMPLETION_INDEX"),
        &vec![shard_args; 4],
        &[db_args],
        &eval_args,
    );
    let report = read_json(&reports.join("report.json"));
    assert_eq!(
        accounts_in(&report).len(),
        2,
        "both accounts, from the merged parts"
    );
    assert!(reports.join("sarif/dbaudit-prod.sarif").exists());
    assert!(reports.join("summary.md").exists());
    let (o, _) = run_recipe(
        "batch-recipe",
        Some("AWS_BATCH_JOB_ARRAY_INDEX"),
        &vec![batch_shard; 4],
        &[],
        &batch_eval,
    );
    assert!(
        text(&o.stdout).contains("## dbaudit"),
        "{}",
        text(&o.stdout)
    );

    // Step Functions: a Distributed Map of Batch jobs. Each Batch call is
    // resolved as Step Functions would (the ItemSelector, then the
    // intrinsic functions, for each shard), validated by botocore (the
    // integration takes SubmitJob's members capitalised), and run.
    let machine: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("step-functions.json")).unwrap())
            .unwrap();
    let states = &machine["States"];
    assert!(states[machine["StartAt"].as_str().unwrap()].is_object());
    let map = &states["Shards"];
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["Mode"],
        "DISTRIBUTED"
    );
    let items = states["Plan"]["Result"]["shards"].as_array().unwrap();
    assert_eq!(map["MaxConcurrency"], items.len());
    let run_name = "nightly-sfn-1";
    let submit = |task: &Value, input: &Value, context: &Value| -> Vec<String> {
        assert_eq!(task["Resource"], "arn:aws:states:::batch:submitJob.sync");
        let call = step_functions::resolve(&task["Parameters"], input, context);
        valid_batch_call(
            "a Step Functions task",
            "SubmitJob",
            &step_functions::camel(&call),
        );
        strings(&call["ContainerOverrides"]["Command"])
    };
    let collect = &map["ItemProcessor"]["States"]["Collect"];
    let sfn_shards: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let context = serde_json::json!({"Execution": {"Name": run_name}, "Map": {"Item": {"Value": item}}});
            let input = step_functions::resolve(&map["ItemSelector"], &Value::Null, &context);
            let args = submit(collect, &input, &context);
            assert!(
                args.join(" ").contains(&format!("--shard {item}/{}", items.len())),
                "{args:?}"
            );
            args
        })
        .collect();
    let context = serde_json::json!({"Execution": {"Name": run_name}});
    let sfn_eval = submit(&states["Evaluate"], &Value::Null, &context);
    let (o, _) = run_recipe("sfn-recipe", None, &sfn_shards, &[], &sfn_eval);
    assert!(
        text(&o.stdout).contains("## dbaudit"),
        "{}",
        text(&o.stdout)
    );
}

/// The part of Step Functions' JSONPath language the recipe uses.
mod step_functions {
    use serde_json::Value;

    /// A task's `Parameters` as Step Functions passes them: a `"key.$"`
    /// takes the value of its path or intrinsic function.
    pub fn resolve(params: &Value, input: &Value, context: &Value) -> Value {
        match params {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| match (k.strip_suffix(".$"), v.as_str()) {
                        (Some(k), Some(expr)) => (k.to_string(), eval(expr, input, context)),
                        _ => (k.clone(), resolve(v, input, context)),
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|v| resolve(v, input, context)).collect()),
            other => other.clone(),
        }
    }

    /// `States.Array`, `States.Format`, 'strings', `$.path` (the input) and
    /// `$$.path` (the context object).
    fn eval(expr: &str, input: &Value, context: &Value) -> Value {
        let mut rest = expr.trim();
        let v = value(&mut rest, input, context);
        assert!(rest.trim().is_empty(), "left over in {expr}: {rest}");
        v
    }

    fn value(s: &mut &str, input: &Value, context: &Value) -> Value {
        *s = s.trim_start();
        if let Some(quoted) = s.strip_prefix('\'') {
            let end = quoted.find('\'').expect("a closing quote");
            *s = &quoted[end + 1..];
            return Value::String(quoted[..end].to_string());
        }
        if s.starts_with('$') {
            let end = s.find([',', ')']).unwrap_or(s.len());
            let path = s[..end].trim();
            *s = &s[end..];
            let (root, keys) = match path.strip_prefix("$$.") {
                Some(keys) => (context, keys),
                None => (input, path.strip_prefix("$.").expect("a path")),
            };
            return keys.split('.').fold(root, |v, k| &v[k]).clone();
        }
        let open = s.find('(').expect("a function call");
        let name = s[..open].trim().to_string();
        *s = &s[open + 1..];
        let mut args = Vec::new();
        loop {
            *s = s.trim_start();
            if let Some(after) = s.strip_prefix(')') {
                *s = after;
                break;
            }
            args.push(value(s, input, context));
            *s = s.trim_start();
            *s = s.strip_prefix(',').unwrap_or(s);
        }
        match name.as_str() {
            "States.Array" => Value::Array(args),
            "States.Format" => {
                let mut fill = args[1..].iter().map(|a| match a {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                });
                let template = args[0].as_str().expect("a template");
                let pieces: Vec<&str> = template.split("{}").collect();
                let mut out = pieces[0].to_string();
                for piece in &pieces[1..] {
                    out.push_str(&fill.next().expect("an argument per {}"));
                    out.push_str(piece);
                }
                Value::String(out)
            }
            other => panic!("intrinsic function {other} is not modelled here"),
        }
    }

    /// An integration's capitalised member names as the API model's.
    pub fn camel(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let mut c = k.chars();
                        let first = c.next().map(|f| f.to_ascii_lowercase());
                        (first.into_iter().chain(c).collect(), camel(v))
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
            other => other.clone(),
        }
    }
}

/// `dbaudit plan --sarif`: valid SARIF that GitHub accepts, each finding the
/// plan introduces on its .tf line (relative to the repository root), the
/// module's own file for a module called with for_each.
#[test]
fn plan_sarif_passes_the_schema_and_github_rules_with_tf_lines() {
    for (case, rule, resource, uri, line) in [
        (
            "module-for-each",
            "db.network.sg-eks-only",
            "prod-catalog",
            "fixtures/plan/cases/module-for-each/modules/db-ingress/main.tf",
            6,
        ),
        (
            "iam-auth-off",
            "db.auth.iam-cluster",
            "prod-orders",
            "fixtures/plan/cases/iam-auth-off/main.tf",
            11,
        ),
    ] {
        let dir = tempdir("plan-sarif");
        let out = dir.join("plan.sarif");
        let case_dir = format!("fixtures/plan/cases/{case}");
        let o = dbaudit(&[
            "plan",
            &format!("{case_dir}/plan.json"),
            "--snapshot",
            DEMO,
            "--config",
            DEMO_CONFIG,
            "--tf-dir",
            &case_dir,
            "--sarif",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        validate_against_schema(&out);
        let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        check_github_rules(&sarif);
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        let hit = results
            .iter()
            .find(|r| {
                r["ruleId"] == rule && r["locations"][0]["logicalLocations"][0]["name"] == resource
            })
            .unwrap_or_else(|| panic!("{case}: no {rule}"));
        let loc = &hit["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], uri, "{case}");
        assert_eq!(loc["region"]["startLine"], line, "{case}");
    }
}
