//! The in-database collection against a real PostgreSQL server (the one
//! scripts/test starts: Debian's PostgreSQL, TLS with a throwaway CA whose
//! server certificate also names `*.cluster-dbaudit.eu-west-1.rds.amazonaws.com`).
//!
//! The audit user's password is set to an IAM auth token signed with frozen
//! credentials and a frozen clock, so the token the collector signs travels
//! the real path: TLS verified against the endpoint's name (connected at
//! 127.0.0.1 through `addresses`), SCRAM with the token as the password.
//! The token itself is checked against botocore's `generate_db_auth_token`
//! with the same inputs (the emulator's Python environment has it).
//!
//! Outside CI a missing server skips these tests loudly; with CI=true they
//! fail.

// A skipped test says so on stderr, loudly.
#![allow(clippy::print_stderr)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_async::time::StaticTimeSource;

use dbaudit::collect::postgres::{Settings, collect, iam_token};
use dbaudit::config::{Config, DatabasesConfig, DbAuth};
use dbaudit::finding::Outcome;
use dbaudit::rules::RuleSet;
use dbaudit::snapshot::{Account, DbCluster, PgDatabase, Region as RegionData, Snapshot};

const ENDPOINT: &str = "prod-orders.cluster-dbaudit.eu-west-1.rds.amazonaws.com";
/// 2026-12-01T00:00:00Z.
const FROZEN: u64 = 1_796_083_200;

struct Server {
    url: String,
    port: u16,
    ca: PathBuf,
}

fn server(test: &str) -> Option<Server> {
    let (Ok(url), Ok(ca)) = (
        std::env::var("DBAUDIT_POSTGRES_URL"),
        std::env::var("DBAUDIT_POSTGRES_CA"),
    ) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and no PostgreSQL with TLS: scripts/test starts one (scripts/setup-postgres)"
            );
        }
        eprintln!(
            "\n*** SKIPPED {test}: DBAUDIT_POSTGRES_URL / DBAUDIT_POSTGRES_CA are not set (run the tests with scripts/test) ***\n"
        );
        return None;
    };
    let port = url
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the test server's URL names its loopback port");
    Some(Server {
        url,
        port,
        ca: PathBuf::from(ca),
    })
}

/// The account's credentials and a frozen clock: the same token every time.
fn frozen_conf() -> SdkConfig {
    SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )))
        .time_source(StaticTimeSource::new(
            UNIX_EPOCH + Duration::from_secs(FROZEN),
        ))
        .region(Region::new("eu-west-1"))
        .behavior_version(BehaviorVersion::latest())
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn url_of(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    format!("{}/{db}?{query}", base.rsplit_once('/').unwrap().0)
}

/// The databases of this test: one with every planted violation, one clean.
struct Estate {
    dirty: String,
    clean: String,
}

/// Roles are global to the server: created once per test process (the
/// tests of this file share them), named for it.
fn seed(s: &Server) -> &'static Estate {
    static ESTATE: std::sync::OnceLock<Estate> = std::sync::OnceLock::new();
    ESTATE.get_or_init(|| {
        let estate = seed_once(s);
        set_audit_password(s, &frozen_conf());
        estate
    })
}

fn seed_once(s: &Server) -> Estate {
    let pid = std::process::id();
    let estate = Estate {
        dirty: format!("indb_dirty_{pid}"),
        clean: format!("indb_clean_{pid}"),
    };
    let mut a = admin(&s.url);
    for stmt in [
        // RDS's own roles, as an Aurora cluster has them.
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_superuser') THEN CREATE ROLE rds_superuser NOLOGIN; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbaudit_audit') THEN CREATE ROLE dbaudit_audit LOGIN; END IF; END $$",
        "GRANT rds_iam TO dbaudit_audit",
        "GRANT pg_read_all_settings TO dbaudit_audit",
    ] {
        a.batch_execute(stmt).unwrap();
    }
    let p = format!("r{pid}_");
    for stmt in [
        format!("DROP ROLE IF EXISTS {p}dev_ro, {p}readers, {p}orders_rw, {p}orders, {p}billing"),
        format!("CREATE ROLE {p}dev_ro LOGIN IN ROLE rds_iam"),
        format!("CREATE ROLE {p}readers NOLOGIN"),
        format!("CREATE ROLE {p}orders_rw NOLOGIN"),
        format!("CREATE ROLE {p}orders LOGIN IN ROLE rds_iam"),
        format!("CREATE ROLE {p}billing LOGIN IN ROLE rds_iam"),
        format!("GRANT {p}readers TO {p}dev_ro"),
        // Planted: readers is a member of a writer (INSERT two hops away).
        format!("GRANT {p}orders_rw TO {p}readers"),
        // Planted: the billing app is a member of rds_superuser.
        format!("GRANT rds_superuser TO {p}billing"),
    ] {
        a.batch_execute(&stmt).unwrap();
    }
    for db in [&estate.dirty, &estate.clean] {
        a.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
            .unwrap();
        a.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    }
    let mut d = admin(&url_of(&s.url, &estate.dirty));
    d.batch_execute(&format!(
        "CREATE SCHEMA orders AUTHORIZATION {p}orders;
         CREATE TABLE orders.o1 (id int); CREATE TABLE orders.o2 (id int);
         ALTER TABLE orders.o1 OWNER TO {p}orders; ALTER TABLE orders.o2 OWNER TO {p}orders;
         GRANT USAGE ON SCHEMA orders TO {p}readers;
         GRANT SELECT ON ALL TABLES IN SCHEMA orders TO {p}readers;
         GRANT INSERT ON ALL TABLES IN SCHEMA orders TO {p}orders_rw;
         ALTER DEFAULT PRIVILEGES FOR ROLE {p}orders IN SCHEMA orders GRANT UPDATE ON TABLES TO {p}readers;
         GRANT CREATE ON SCHEMA public TO PUBLIC;
         CREATE SCHEMA billing; CREATE TABLE billing.b1 (id int);
         GRANT USAGE ON SCHEMA billing TO {p}orders;
         GRANT INSERT ON billing.b1 TO {p}orders;"
    ))
    .unwrap();
    let mut c = admin(&url_of(&s.url, &estate.clean));
    c.batch_execute(&format!(
        "CREATE SCHEMA orders AUTHORIZATION {p}orders;
         CREATE TABLE orders.o1 (id int); ALTER TABLE orders.o1 OWNER TO {p}orders;
         GRANT USAGE ON SCHEMA orders TO {p}dev_ro;
         GRANT SELECT ON orders.o1 TO {p}dev_ro;"
    ))
    .unwrap();
    estate
}

fn settings(s: &Server, auth: DbAuth) -> DatabasesConfig {
    DatabasesConfig {
        environments: vec![],
        user: "dbaudit_audit".into(),
        auth,
        sslrootcert: Some(s.ca.clone()),
        concurrency: 4,
        connect_timeout: Duration::from_secs(5),
        statement_timeout_ms: 5000,
        addresses: BTreeMap::from([(
            ENDPOINT.to_string(),
            format!("127.0.0.1:{}", s.port).parse().unwrap(),
        )]),
    }
}

fn account(port: i32) -> Account {
    Account {
        name: "prod".into(),
        environment: "prod".into(),
        account_id: "222222222222".into(),
        partition: "aws".into(),
        regions: vec![RegionData {
            name: "eu-west-1".into(),
            db_clusters: vec![DbCluster {
                id: "prod-orders".into(),
                arn: "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders".into(),
                resource_id: "cluster-PRODORDERS".into(),
                engine: "aurora-postgresql".into(),
                endpoint: Some(ENDPOINT.into()),
                port: Some(port),
                master_username: Some("postgres".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn set_audit_password(s: &Server, conf: &SdkConfig) {
    let token = runtime()
        .block_on(iam_token(
            conf,
            "eu-west-1",
            ENDPOINT,
            s.port,
            "dbaudit_audit",
        ))
        .unwrap();
    admin(&s.url)
        .batch_execute(&format!(
            "ALTER ROLE dbaudit_audit PASSWORD '{}'",
            token.replace('\'', "''")
        ))
        .unwrap();
}

fn read(s: &Server, conf: &SdkConfig, db: DatabasesConfig, password: Option<String>) -> Account {
    let mut a = account(5432);
    a.regions[0].db_clusters[0].port = Some(i32::from(s.port));
    let settings = Settings {
        databases: &db,
        password,
    };
    runtime().block_on(collect(conf, &mut a, &settings));
    a
}

fn database<'a>(a: &'a Account, name: &str) -> &'a PgDatabase {
    a.regions[0]
        .pg_databases
        .as_ref()
        .expect("the in-database collection ran")
        .iter()
        .find(|d| d.database == name)
        .unwrap_or_else(|| panic!("no database {name} in {:?}", a.regions[0].pg_databases))
}

/// Signed in with the token, over TLS verified against the endpoint's
/// name, the collection reads every planted violation; evaluated with an
/// IAM policy that lets developers connect as dev_ro, the rules fail the
/// dirty database naming both hops and pass the clean one.
#[test]
fn reads_roles_and_grants_over_iam_auth_and_the_rules_see_both_hops() {
    let Some(s) = server("reads_roles_and_grants_over_iam_auth") else {
        return;
    };
    let estate = seed(&s);
    let conf = frozen_conf();
    let mut a = read(&s, &conf, settings(&s, DbAuth::Iam), None);
    let p = format!("r{}_", std::process::id());
    let dirty = database(&a, &estate.dirty);
    assert_eq!(dirty.unreadable, None, "{dirty:?}");
    assert!(dirty.server_version_num >= 150000);
    assert!(
        dirty
            .memberships
            .iter()
            .any(|m| m.member == format!("{p}readers") && m.role == format!("{p}orders_rw"))
    );
    assert!(
        dirty
            .grants
            .iter()
            .any(|g| g.grantee == format!("{p}orders_rw")
                && g.schema == "orders"
                && g.privilege == "INSERT"
                && g.tables == 2)
    );
    assert!(
        dirty
            .grants
            .iter()
            .any(|g| g.grantee == "PUBLIC" && g.schema == "public" && g.privilege == "CREATE")
    );
    assert!(
        dirty
            .default_privileges
            .iter()
            .any(|d| d.grantee == format!("{p}readers")
                && d.privilege == "UPDATE"
                && d.object_type == "tables")
    );
    assert_eq!(
        dirty.settings.get("ssl").map(String::as_str),
        Some("on"),
        "{:?}",
        dirty.settings
    );
    // Only this test's databases are judged below.
    a.regions[0]
        .pg_databases
        .as_mut()
        .unwrap()
        .retain(|d| d.database == estate.dirty || d.database == estate.clean);

    // The IAM half: developers may connect as this test's dev_ro only.
    let mut snap = Snapshot::new("2026-12-01T00:00:00Z".into());
    a.iam = Some(serde_json::from_value(serde_json::json!({
        "users": [{"name": "alice", "arn": "arn:aws:iam::222222222222:user/alice", "groups": ["developers"]}],
        "roles": [{"name": "orders-app", "arn": "arn:aws:iam::222222222222:role/orders-app",
            "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::222222222222:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/T"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    "oidc.eks.eu-west-1.amazonaws.com/id/T:sub": "system:serviceaccount:orders:orders",
                    "oidc.eks.eu-west-1.amazonaws.com/id/T:aud": "sts.amazonaws.com"}}}]},
            "inline_policies": [{"name": "connect", "document": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "rds-db:connect",
                 "Resource": format!("arn:aws:rds-db:eu-west-1:222222222222:dbuser:cluster-PRODORDERS/{p}orders")}]}}]}],
        "groups": [{"name": "developers", "arn": "arn:aws:iam::222222222222:group/developers",
            "inline_policies": [{"name": "connect", "document": {"Version": "2012-10-17", "Statement": [
                {"Sid": "DevConnect", "Effect": "Allow", "Action": "rds-db:connect",
                 "Resource": format!("arn:aws:rds-db:eu-west-1:222222222222:dbuser:cluster-PRODORDERS/{p}dev_ro")}]}}]}]
    })).unwrap());
    snap.accounts = vec![a];
    let config = Config::parse(
        "[developers]\ngroups = [\"developers\"]\n",
        std::path::Path::new("dbaudit.toml"),
    )
    .unwrap();
    let rules = RuleSet::load(&[], &[]).unwrap();
    let findings = dbaudit::evaluate::evaluate(&snap, &rules, &config);
    let on = |rule: &str, db: &str| {
        findings
            .iter()
            .find(|f| &*f.rule_id == rule && *f.resource_id == format!("prod-orders/{db}"))
            .unwrap_or_else(|| panic!("no {rule} finding on {db}"))
    };
    let dev = on("db.access.developers-read-only-in-prod", &estate.dirty);
    assert_eq!(dev.outcome, Outcome::Fail, "{}", dev.message);
    for hop in [
        "user/alice may connect as",
        "DevConnect",
        &format!("INSERT on 2 tables of orders via {p}dev_ro → {p}readers → {p}orders_rw"),
        &format!("default UPDATE on future tables of {p}orders in orders"),
        "CREATE on schema public via PUBLIC",
    ] {
        assert!(dev.message.contains(hop), "lacks `{hop}`: {}", dev.message);
    }
    assert_eq!(
        on("db.access.public-schema-create", &estate.dirty).outcome,
        Outcome::Fail
    );
    let app = on("db.access.app-user-owns-its-schema", &estate.dirty);
    assert_eq!(app.outcome, Outcome::Fail, "{}", app.message);
    assert!(
        app.message.contains(&format!(
            "role/orders-app (service orders) may connect as {p}orders, which may INSERT on 1 tables of billing outside schema orders"
        )),
        "{}",
        app.message
    );
    let su = on("db.access.rds-superuser-only-master", &estate.dirty);
    assert_eq!(su.outcome, Outcome::Fail);
    assert!(
        su.message.contains(&format!("{p}billing")),
        "{}",
        su.message
    );
    for rule in [
        "db.access.developers-read-only-in-prod",
        "db.access.public-schema-create",
        "db.access.app-user-owns-its-schema",
        "db.access.iam-user-exists",
    ] {
        let f = on(rule, &estate.clean);
        assert_eq!(f.outcome, Outcome::Pass, "{rule}: {}", f.message);
    }
}

/// What cannot be read is recorded with a one-line reason, never left out:
/// a wrong token (another clock), a CA that did not sign the server's
/// certificate, a closed port, a password that is not set.
#[test]
fn every_failure_to_read_is_a_recorded_reason() {
    let Some(s) = server("every_failure_to_read_is_a_recorded_reason") else {
        return;
    };
    seed(&s);
    let conf = frozen_conf();
    let only = |a: &Account| -> String {
        let dbs = a.regions[0].pg_databases.as_ref().unwrap();
        assert_eq!(dbs.len(), 1, "{dbs:?}");
        assert_eq!(dbs[0].database, "*");
        assert!(dbs[0].roles.is_empty());
        dbs[0].unreadable.clone().expect("a reason")
    };
    // A token signed an hour later is another password.
    let later = SdkConfig::builder()
        .credentials_provider(conf.credentials_provider().unwrap())
        .time_source(StaticTimeSource::new(
            UNIX_EPOCH + Duration::from_secs(FROZEN + 3600),
        ))
        .region(Region::new("eu-west-1"))
        .behavior_version(BehaviorVersion::latest())
        .build();
    let why = only(&read(&s, &later, settings(&s, DbAuth::Iam), None));
    assert!(why.contains("password authentication failed"), "{why}");
    assert!(!why.contains("X-Amz-Signature"), "the token leaked: {why}");

    let mut wrong_ca = settings(&s, DbAuth::Iam);
    wrong_ca.sslrootcert = Some(s.ca.with_file_name("other-ca.pem"));
    let why = only(&read(&s, &conf, wrong_ca, None));
    assert!(why.to_lowercase().contains("certificate"), "{why}");

    let mut closed = settings(&s, DbAuth::Iam);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    closed.addresses.insert(
        ENDPOINT.into(),
        format!("127.0.0.1:{port}").parse().unwrap(),
    );
    let why = only(&read(&s, &conf, closed, None));
    assert!(why.starts_with(&format!("connect to {ENDPOINT}")), "{why}");

    let why = only(&read(&s, &conf, settings(&s, DbAuth::Password), None));
    assert!(why.contains("DBAUDIT_DB_PASSWORD"), "{why}");
}

/// The token is what botocore's `generate_db_auth_token` makes from the
/// same credentials, clock, endpoint, port and user.
#[test]
fn the_iam_token_agrees_with_botocore() {
    let Ok(moto) = std::env::var("DBAUDIT_MOTO_SERVER") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and no emulator environment (scripts/setup-moto)");
        }
        eprintln!(
            "\n*** SKIPPED the_iam_token_agrees_with_botocore: DBAUDIT_MOTO_SERVER is not set ***\n"
        );
        return;
    };
    let python = PathBuf::from(moto).with_file_name("python");
    let ours = runtime()
        .block_on(iam_token(
            &frozen_conf(),
            "eu-west-1",
            ENDPOINT,
            5432,
            "dbaudit_audit",
        ))
        .unwrap();
    let script = format!(
        r#"
import datetime, botocore.auth, botocore.session
botocore.auth.get_current_datetime = lambda *a, **k: datetime.datetime.fromtimestamp({FROZEN}, datetime.timezone.utc).replace(tzinfo=None)
s = botocore.session.get_session()
s.set_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
c = s.create_client("rds", region_name="eu-west-1")
print(c.generate_db_auth_token("{ENDPOINT}", 5432, "dbaudit_audit"))
"#
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The same host and query parameters (their order may differ).
    let parts = |t: &str| -> (String, Vec<String>) {
        let (host, query) = t.split_once('?').unwrap();
        let mut q: Vec<String> = query.split('&').map(str::to_string).collect();
        q.sort();
        (host.to_string(), q)
    };
    assert_eq!(parts(&ours), parts(&theirs), "ours {ours}\ntheirs {theirs}");
    assert!(ours.contains("X-Amz-Signature="));
}

/// The server's own answers are the ground truth: for every login of this
/// test × table × write privilege, `has_table_privilege` (inheritance)
/// true means the facts show that write for that user (nothing missed);
/// and a write the facts derive from grants or ownership is one the server
/// confirms (with every role inheriting, as here, SET ROLE reaches no
/// more). Writes the server cannot show are left out of the second
/// direction: future objects (default privileges) and `rds_superuser`,
/// which is an ordinary role outside RDS.
#[test]
fn effective_writes_agree_with_has_table_privilege() {
    let Some(s) = server("effective_writes_agree_with_has_table_privilege") else {
        return;
    };
    let estate = seed(&s);
    let a = read(&s, &frozen_conf(), settings(&s, DbAuth::Iam), None);
    let mut snap = Snapshot::new("2026-12-01T00:00:00Z".into());
    let mut a = a;
    a.regions[0]
        .pg_databases
        .as_mut()
        .unwrap()
        .retain(|d| d.database == estate.dirty || d.database == estate.clean);
    snap.accounts = vec![a];
    let p = format!("r{}_", std::process::id());
    let logins = ["dev_ro", "orders", "billing"].map(|l| format!("{p}{l}"));
    for db in [&estate.dirty, &estate.clean] {
        let facts = dbaudit::model::pg_database::writes_of(&snap.accounts[0].regions[0], db);
        let mut server = admin(&url_of(&s.url, db));
        let tables: Vec<String> = server
            .query(
                "SELECT 'orders.' || relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'orders' AND relkind = 'r'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!tables.is_empty());
        for user in &logins {
            let ours: Vec<&(String, String)> = facts.iter().filter(|(u, _)| u == user).collect();
            for privilege in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
                let granted = tables.iter().any(|t| {
                    server
                        .query_one(
                            "SELECT has_table_privilege($1, $2, $3)",
                            &[user, t, &privilege],
                        )
                        .unwrap()
                        .get::<_, bool>(0)
                });
                let derived = ours.iter().any(|(_, what)| {
                    (what.starts_with(&format!("{privilege} on ")) && what.ends_with(" of orders"))
                        || what == "owns tables of orders"
                });
                let any = derived || ours.iter().any(|(_, w)| w == "superuser");
                assert!(
                    !granted || any,
                    "{db}: the server lets {user} {privilege} in orders; the facts miss it: {ours:?}"
                );
                assert!(
                    !derived || granted,
                    "{db}: the facts say {user} may {privilege} in orders; the server says no: {ours:?}"
                );
            }
        }
    }
}

/// `scan` with `[databases] connect = true` against the emulator: the
/// Aurora PostgreSQL clusters of the environments asked are read (here
/// sent to a closed port), each becomes an unreadable entry with why, its
/// rules are `error` and the gate says INCOMPLETE (exit 3); test's
/// clusters are not touched. Without the option nothing is attempted.
#[test]
fn scan_reads_only_when_asked_and_an_unreachable_database_is_incomplete() {
    let moto = support::Moto::start();
    moto.seed(&["demo"]);
    let dir = support::tempdir("indb-scan");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let demo = std::fs::read_to_string(support::root().join("fixtures/demo/dbaudit.toml")).unwrap();
    let cfg = dir.join("dbaudit.toml");
    std::fs::write(
        &cfg,
        format!(
            "{demo}\n[databases]\nconnect = true\nenvironments = [\"prod\"]\nconnect_timeout_seconds = 2\n[databases.addresses]\n\"*.rds.amazonaws.com\" = \"127.0.0.1:{closed}\"\n"
        ),
    )
    .unwrap();
    let snap = |config: &std::path::Path, name: &str| {
        let out = dir.join(name);
        let o = support::dbaudit(&[
            "collect",
            "--all-accounts",
            "--config",
            config.to_str().unwrap(),
            "--endpoint-url",
            &moto.endpoint(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(o.status.code(), Some(3), "{}", support::text(&o.stderr));
        support::read_json(&out)
    };
    let off = snap(
        &support::root().join("fixtures/demo/dbaudit.toml"),
        "off.json",
    );
    for a in off["accounts"].as_array().unwrap() {
        for r in a["regions"].as_array().unwrap() {
            assert!(r.get("pg_databases").is_none(), "read without being asked");
        }
    }
    let on = snap(&cfg, "on.json");
    for a in on["accounts"].as_array().unwrap() {
        for r in a["regions"].as_array().unwrap() {
            let dbs = r.get("pg_databases");
            if a["environment"] == "test" {
                assert!(dbs.is_none(), "test was not asked for");
                continue;
            }
            let dbs = dbs.expect("prod's clusters were read").as_array().unwrap();
            let pg_clusters = r["db_clusters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["engine"] == "aurora-postgresql")
                .count();
            assert!(pg_clusters > 0);
            assert_eq!(dbs.len(), pg_clusters, "{dbs:?}");
            for d in dbs {
                let why = d["unreadable"].as_str().unwrap();
                assert!(why.starts_with("connect to "), "{why}");
                assert!(why.contains(&format!("(at 127.0.0.1:{closed})")), "{why}");
            }
        }
    }
    let e = support::dbaudit(&[
        "evaluate",
        dir.join("on.json").to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        "--no-history",
        // The demo's own failures would decide the gate (exit 1) first.
        "--rule",
        "db.access.*",
    ]);
    assert_eq!(e.status.code(), Some(3), "{}", support::text(&e.stderr));
    let report: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    let db_findings: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["resource_kind"] == "pg_database")
        .collect();
    assert!(!db_findings.is_empty());
    assert!(
        db_findings.iter().all(|f| f["outcome"] == "error"),
        "{db_findings:?}"
    );
    assert_eq!(report["gate"]["status"], "incomplete", "{}", report["gate"]);
}
