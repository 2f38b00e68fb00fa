//! Compliance controls as data (docs/compliance.md): the catalogues agree
//! with the rules that map to them, a wrong framework or control id is a
//! located error, and the FSBP and CIS ids agree with Prowler's own
//! mapping of its `rds_*` checks (read from its wheel, which
//! scripts/setup-prowler extracts; outside CI its absence skips that test
//! loudly, with CI=true it fails).

// A skipped test says so on stderr, loudly.
#![allow(clippy::print_stderr)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use dbaudit::compliance::{Coverage, catalogues};
use dbaudit::rules::{RuleFile, RuleSet, load_files};
use support::root;

/// Every `automated` or `partial` control has at least one rule that maps
/// to it, and no `manual` or `not_applicable` control has one: the
/// catalogue's coverage and the rules say the same.
#[test]
fn catalogue_coverage_agrees_with_the_rules() {
    let rules = RuleSet::load(&[], &[]).unwrap();
    let mut mapped: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for r in &rules.rules {
        for (framework, ids) in &r.compliance {
            for id in ids {
                mapped
                    .entry((framework.as_str(), id.as_str()))
                    .or_default()
                    .push(&r.id);
            }
        }
    }
    let mut wrong = Vec::new();
    for c in catalogues() {
        for control in &c.controls {
            let rules = mapped.get(&(c.framework.as_str(), control.id.as_str()));
            let covered = matches!(control.coverage, Coverage::Automated | Coverage::Partial);
            if covered != rules.is_some() {
                wrong.push(format!(
                    "{} {} is {} but rules map to it: {:?}",
                    c.framework, control.id, control.coverage, rules
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A framework that has no catalogue, and an id its catalogue lacks, are
/// errors naming the file, line and column (and the id it resembles).
#[test]
fn wrong_framework_or_control_is_a_located_error() {
    let text = "[[rule]]\nid = \"org.x\"\ntitle = \"x\"\nseverity = \"low\"\nresource = \"db_cluster\"\ncompliance = { fsbp = [\"rds.27\", \"RDS.1\"], hipaa = [\"164.312\"] }\ncondition = \"true\"\nmessage = \"m\"\nrationale = \"r\"\nremediation = \"r\"\n";
    let err = load_files(
        &[RuleFile {
            path: "org.toml".into(),
            text: text.into(),
            builtin: false,
        }],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "org.toml:6:23: `rds.27` is not a control of fsbp (data/compliance/fsbp.json); did you mean `RDS.27`?"
        ),
        "{err}"
    );
    assert!(
        err.contains("org.toml:6:44: unknown framework `hipaa` in `compliance`; expected one of: fsbp, cis_aws_v5"),
        "{err}"
    );
}

/// docs/compliance.md's tables: `(check, rule, fsbp ids, cis ids)` paired,
/// and `(check, why)` not covered.
type Paired = Vec<(String, String, BTreeSet<String>, BTreeSet<String>)>;

fn tables() -> (Paired, Vec<(String, String)>) {
    let text = std::fs::read_to_string(root().join("docs/compliance.md")).unwrap();
    let cell = |s: &str| s.trim().trim_matches('`').to_string();
    let ids = |s: &str| -> BTreeSet<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (mut paired, mut not) = (Vec::new(), Vec::new());
    let mut section = "";
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            section = if h == "Paired" {
                "paired"
            } else if h == "Not covered" {
                "not"
            } else {
                ""
            };
            continue;
        }
        if !line.starts_with("| `rds_") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        match section {
            "paired" => paired.push((cell(cells[0]), cell(cells[1]), ids(cells[2]), ids(cells[3]))),
            "not" => not.push((cell(cells[0]), cells[1].trim().to_string())),
            _ => {}
        }
    }
    (paired, not)
}

/// A Prowler check's FSBP ids and CIS ids.
type ProwlerIds = (BTreeSet<String>, BTreeSet<String>);

/// Prowler's `rds_*` checks in its FSBP and CIS v5.0 files, each with the
/// FSBP and CIS ids that name it.
fn prowler() -> Option<BTreeMap<String, ProwlerIds>> {
    let Ok(dir) = std::env::var("DBAUDIT_PROWLER_COMPLIANCE") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and no Prowler compliance files: scripts/test extracts them (scripts/setup-prowler)"
            );
        }
        eprintln!(
            "\n*** SKIPPED the Prowler cross-check: DBAUDIT_PROWLER_COMPLIANCE is not set (run the tests with scripts/test) ***\n"
        );
        return None;
    };
    let mut out: BTreeMap<String, ProwlerIds> = BTreeMap::new();
    for (file, fsbp) in [
        ("aws_foundational_security_best_practices_aws.json", true),
        ("cis_5.0_aws.json", false),
    ] {
        let path = std::path::Path::new(&dir).join("aws").join(file);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for req in v["Requirements"].as_array().unwrap() {
            let id = req["Id"].as_str().unwrap().to_string();
            for check in req["Checks"].as_array().unwrap() {
                let check = check.as_str().unwrap();
                if !check.starts_with("rds_") {
                    continue;
                }
                let e = out.entry(check.to_string()).or_default();
                if fsbp {
                    e.0.insert(id.clone());
                } else {
                    e.1.insert(id.clone());
                }
            }
        }
    }
    Some(out)
}

/// Every Prowler `rds_*` check is in exactly one table of
/// docs/compliance.md; a paired one's columns are Prowler's ids and its
/// rule maps to all of them; a check that is not covered says why.
#[test]
fn fsbp_and_cis_ids_agree_with_prowler() {
    let Some(prowler) = prowler() else {
        return;
    };
    assert!(prowler.len() >= 25, "{prowler:?}");
    let rules = RuleSet::load(&[], &[]).unwrap();
    let (paired, not) = tables();
    let mut problems = Vec::new();
    let listed: Vec<&String> = paired
        .iter()
        .map(|p| &p.0)
        .chain(not.iter().map(|n| &n.0))
        .collect();
    for check in prowler.keys() {
        let n = listed.iter().filter(|l| **l == check).count();
        if n != 1 {
            problems.push(format!(
                "{check}: listed {n} times in docs/compliance.md (once expected)"
            ));
        }
    }
    for l in &listed {
        if !prowler.contains_key(*l) {
            problems.push(format!(
                "{l}: in docs/compliance.md but not a Prowler rds_* check of FSBP or CIS v5.0"
            ));
        }
    }
    for (check, rule, fsbp, cis) in &paired {
        let Some((p_fsbp, p_cis)) = prowler.get(check) else {
            continue;
        };
        if (fsbp, cis) != (p_fsbp, p_cis) {
            problems.push(format!(
                "{check}: docs/compliance.md says FSBP {fsbp:?} CIS {cis:?}; Prowler says FSBP {p_fsbp:?} CIS {p_cis:?}"
            ));
        }
        let Some(r) = rules.rules.iter().find(|r| &r.id == rule) else {
            problems.push(format!("{check}: no rule `{rule}`"));
            continue;
        };
        for (framework, want) in [("fsbp", p_fsbp), ("cis_aws_v5", p_cis)] {
            let have: BTreeSet<String> = r
                .compliance
                .get(framework)
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default();
            if !want.is_subset(&have) {
                problems.push(format!(
                    "{check}: rule {rule} maps {framework} {have:?}; Prowler's ids {want:?} are not all among them"
                ));
            }
        }
    }
    for (check, why) in &not {
        if why.len() < 10 {
            problems.push(format!("{check}: not covered without a reason"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// SARIF carries every rule's FSBP and CIS ids as tags (never more than
/// GitHub's 20) and all its controls in `dbaudit/compliance`; JUnit gives a
/// failing test case its controls as properties.
#[test]
fn sarif_tags_and_junit_properties_carry_the_controls() {
    let o = support::demo(&["--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules = RuleSet::load(&[], &[]).unwrap();
    let mut with_controls = 0;
    for run in sarif["runs"].as_array().unwrap() {
        for d in run["tool"]["driver"]["rules"].as_array().unwrap() {
            let tags: Vec<&str> = d["properties"]["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert!(tags.len() <= 20, "{}: {} tags", d["id"], tags.len());
            let rule = rules.rules.iter().find(|r| r.id == d["id"]).unwrap();
            if rule.compliance.is_empty() {
                continue;
            }
            with_controls += 1;
            assert_eq!(
                d["properties"]["dbaudit/compliance"],
                serde_json::json!(rule.compliance),
                "{}",
                d["id"]
            );
            for framework in ["fsbp", "cis_aws_v5"] {
                for id in rule.compliance.get(framework).into_iter().flatten() {
                    let tag = format!("{framework}/{id}");
                    assert!(tags.contains(&tag.as_str()), "{}: no tag {tag}", d["id"]);
                }
            }
        }
    }
    assert!(with_controls > 5, "{with_controls}");

    let o = support::demo(&["--format", "junit"]);
    let junit =
        quick_junit::Report::deserialize_from_str(&String::from_utf8(o.stdout).unwrap()).unwrap();
    let case = junit
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .find(|c| {
            c.name.as_str().starts_with("db.deletion-protection ")
                && !matches!(c.status, quick_junit::TestCaseStatus::Success { .. })
        })
        .expect("the demo fails db.deletion-protection");
    let props: Vec<(String, String)> = case
        .properties
        .iter()
        .map(|p| (p.name.to_string(), p.value.to_string()))
        .collect();
    assert!(
        props.contains(&("compliance.fsbp".to_string(), "RDS.7".to_string())),
        "{props:?}"
    );
}

/// `--framework` adds a scorecard per framework: each control with its
/// rules, outcome counts, failing accounts and a status (fail, error,
/// pass, not_evaluated when its rules were not run, manual or
/// not_applicable without a rule), in JSON, the table, Markdown and HTML;
/// an unknown framework is a usage error (exit 2) naming the known ones.
#[test]
fn framework_scorecards_in_every_format() {
    let o = support::demo(&[
        "--format",
        "json",
        "--no-history",
        "--framework",
        "fsbp",
        "--framework",
        "cis_aws_v5",
        "--skip-rule",
        "db.encryption.*",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cards = report["frameworks"].as_array().unwrap();
    assert_eq!(cards.len(), 2);
    let control = |framework: &str, id: &str| -> serde_json::Value {
        cards
            .iter()
            .find(|c| c["framework"] == framework)
            .and_then(|c| {
                c["controls"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["id"] == id)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {framework} {id}"))
    };
    let c = control("fsbp", "RDS.7");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["rules"], serde_json::json!(["db.deletion-protection"]));
    assert_eq!(c["accounts_failing"], serde_json::json!(["prod"]));
    assert!(c["counts"]["fail"].as_u64().unwrap() >= 1);
    // Its only rule was skipped: not evaluated, never a pass.
    assert_eq!(control("fsbp", "RDS.27")["status"], "not_evaluated");
    assert_eq!(control("fsbp", "RDS.14")["status"], "not_applicable");
    assert_eq!(control("fsbp", "RDS.6")["status"], "manual");
    assert_eq!(control("cis_aws_v5", "2.2.3")["status"], "fail");

    let t = support::demo(&["--no-history", "--framework", "cis_aws_v5"]);
    let text = String::from_utf8(t.stdout).unwrap();
    assert!(
        text.contains("compliance: CIS Amazon Web Services Foundations Benchmark v5.0.0 (cis_aws_v5): 4 controls"),
        "{text}"
    );
    let m = support::demo(&[
        "--no-history",
        "--framework",
        "cis_aws_v5",
        "--format",
        "markdown",
    ]);
    let md = String::from_utf8(m.stdout).unwrap();
    assert!(
        md.contains("### Compliance: CIS Amazon Web Services Foundations Benchmark v5.0.0"),
        "{md}"
    );
    assert!(md.contains("| 2.2.3 | RDS databases are not publicly accessible | fail | `db.network.not-publicly-accessible` | prod |"), "{md}");
    let h = support::demo(&["--no-history", "--framework", "soc2", "--format", "html"]);
    let html = String::from_utf8(h.stdout).unwrap();
    assert!(html.contains("<section id=\"compliance-soc2\">"));

    let bad = support::demo(&["--no-history", "--framework", "hipaa"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(err.contains("hipaa") && err.contains("fsbp"), "{err}");
}

/// `dbaudit evidence`: per control, the findings of its rules, their
/// waivers with owner, reason and expiry, the control's history over the
/// recorded runs and the digests of what was evaluated; written whole into
/// a new directory, refused into a non-empty one.
#[test]
fn evidence_pack_per_control() {
    let dir = support::tempdir("evidence");
    let history = dir.join("h.db");
    let unhappy = root().join("fixtures/unhappy");
    let snapshot = unhappy.join("snapshot.json");
    let config = unhappy.join("dbaudit.toml");
    let (snapshot, config, history_s) = (
        snapshot.to_str().unwrap(),
        config.to_str().unwrap(),
        history.to_str().unwrap(),
    );
    // One recorded run to give the controls a history.
    let e = support::dbaudit(&[
        "evaluate",
        snapshot,
        "-c",
        config,
        "--history",
        history_s,
        "--as-of",
        "2026-11-30",
    ]);
    assert!(
        matches!(e.status.code(), Some(0..=3)),
        "{}",
        support::text(&e.stderr)
    );
    let out = dir.join("pack");
    let ev = support::dbaudit(&[
        "evidence",
        snapshot,
        "-c",
        config,
        "--framework",
        "fsbp",
        "--history",
        history_s,
        "--as-of",
        "2026-11-30",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(ev.status.code(), Some(0), "{}", support::text(&ev.stderr));
    let page = std::fs::read_to_string(out.join("fsbp/RDS.7.md")).unwrap();
    for want in [
        "# fsbp RDS.7: RDS clusters have deletion protection",
        "- rules: `db.deletion-protection`",
        "snapshot SHA-256: `",
        // The waiver, with its owner, reason and expiry.
        "| db.deletion-protection | applied | 1 | catalog is rebuilt nightly from the event log | catalog-team |",
        "2027-03-31",
        // The recorded run.
        "| run | snapshot collected | gate | failing | waived | findings kept | input digest |",
    ] {
        assert!(page.contains(want), "lacks `{want}`:\n{page}");
    }
    // The passes counted and every other finding of the rule listed, as
    // the JSON report of the same run has them (the pack reads the
    // findings an account at a time and keeps only those that did not
    // pass).
    let report = support::dbaudit(&[
        "evaluate",
        snapshot,
        "-c",
        config,
        "--no-history",
        "--as-of",
        "2026-11-30",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let of_rule: Vec<&serde_json::Value> = (report["findings"].as_array().unwrap().iter())
        .filter(|f| f["rule_id"] == "db.deletion-protection")
        .collect();
    let passed = of_rule.iter().filter(|f| f["outcome"] == "pass").count();
    assert!(
        passed > 0 && passed < of_rule.len(),
        "both kinds in the estate"
    );
    assert!(
        page.contains(&format!("{passed} passed; the others:")),
        "{page}"
    );
    let rows = page
        .lines()
        .filter(|l| l.contains("| db.deletion-protection | ") && !l.contains("applied"))
        .count();
    assert_eq!(rows, of_rule.len() - passed, "{page}");
    let index = std::fs::read_to_string(out.join("fsbp/index.md")).unwrap();
    assert!(index.contains("| [RDS.7](RDS.7.md) |"), "{index}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fsbp/fsbp.json")).unwrap())
            .unwrap();
    let rds7 = json["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"]["id"] == "RDS.7")
        .unwrap();
    assert_eq!(rds7["history"].as_array().unwrap().len(), 1);
    assert_eq!(rds7["history"][0]["waived"], 1);
    // Into a directory that holds something: refused, nothing written.
    let again = support::dbaudit(&[
        "evidence",
        snapshot,
        "-c",
        config,
        "--framework",
        "fsbp",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(support::text(&again.stderr).contains("not an empty directory"));
}
