//! `dbaudit publish securityhub` against the emulator's Security Hub: each
//! account's findings imported with that account's role, `GetFindings`
//! returns them, importing again changes nothing (the same ids), and the
//! publish guard refuses anything but the import. moto 5.2.5 implements
//! BatchImportFindings and GetFindings and checks little of a finding's
//! content: the content is checked against botocore's model in
//! tests/asff.rs.

mod support;

use support::{Moto, dbaudit, root, tempdir, text};

/// Findings of `account` in the emulator's Security Hub (eu-west-1), read
/// with a role of that account.
fn findings_in(moto: &Moto, account: &str) -> Vec<serde_json::Value> {
    let python = support::moto_server_path().with_file_name("python");
    let script = format!(
        r#"
import boto3, json
kw = dict(endpoint_url="{}", region_name="eu-west-1")
sts = boto3.client("sts", **kw)
c = sts.assume_role(RoleArn="arn:aws:iam::{account}:role/reader", RoleSessionName="reader")["Credentials"]
hub = boto3.client("securityhub", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"], **kw)
out, token = [], None
while True:
    r = hub.get_findings(MaxResults=100, **({{"NextToken": token}} if token else {{}}))
    out += r["Findings"]
    token = r.get("NextToken")
    if not token:
        break
print(json.dumps([{{"Id": f["Id"], "AwsAccountId": f["AwsAccountId"], "Status": f.get("Compliance", {{}}).get("Status")}} for f in out]))
"#,
        moto.endpoint()
    );
    let mut cmd = std::process::Command::new(python);
    support::aws_env(&mut cmd);
    let out = cmd.args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn findings_are_imported_per_account_and_reimporting_is_idempotent() {
    let moto = Moto::start();
    let dir = tempdir("publish");
    let report = dir.join("report.json");
    let e = dbaudit(&[
        "evaluate",
        "fixtures/demo/snapshot.json",
        "-c",
        "fixtures/demo/dbaudit.toml",
        "--no-history",
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
    let r: serde_json::Value = support::read_json(&report);
    let per_account = |id: &str| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["account_id"] == id)
            .count()
    };
    let config = root().join("fixtures/demo/dbaudit.toml");
    let publish = || {
        dbaudit(&[
            "publish",
            "securityhub",
            report.to_str().unwrap(),
            "-c",
            config.to_str().unwrap(),
            "--endpoint-url",
            &moto.endpoint(),
        ])
    };
    for round in 0..2 {
        let p = publish();
        assert_eq!(
            p.status.code(),
            Some(0),
            "round {round}: {}",
            text(&p.stderr)
        );
        let err = text(&p.stderr);
        for (name, id) in [("test", "111111111111"), ("prod", "222222222222")] {
            assert!(
                err.contains(&format!(
                    "imported {} finding(s) into account {name} in eu-west-1",
                    per_account(id)
                )),
                "{err}"
            );
            let imported = findings_in(&moto, id);
            assert_eq!(imported.len(), per_account(id), "round {round}, {name}");
            assert!(imported.iter().all(|f| f["AwsAccountId"] == id));
        }
    }
    // A report naming an account the configuration does not have: not
    // published (no role to publish with), exit 3, the others still are.
    let mut other = r.clone();
    for f in other["findings"].as_array_mut().unwrap() {
        if f["account_id"] == "111111111111" {
            f["account_id"] = "999999999999".into();
        }
    }
    let path = dir.join("other.json");
    std::fs::write(&path, other.to_string()).unwrap();
    let p = dbaudit(&[
        "publish",
        "securityhub",
        path.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "--endpoint-url",
        &moto.endpoint(),
    ]);
    assert_eq!(p.status.code(), Some(3), "{}", text(&p.stderr));
    assert!(text(&p.stderr).contains("account 999999999999: not in the configuration"));
}
