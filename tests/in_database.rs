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
use dbaudit::config::{Config, DatabasesConfig, DbAuth, DbVia};
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
    server_from(test, "DBAUDIT_POSTGRES", "scripts/setup-postgres")
}

/// The PostgreSQL 17 server (scripts/setup-postgres17): per-grant INHERIT
/// and SET options exist from 16 on.
fn server_17(test: &str) -> Option<Server> {
    server_from(test, "DBAUDIT_POSTGRES17", "scripts/setup-postgres17")
}

fn server_from(test: &str, var: &str, script: &str) -> Option<Server> {
    let (Ok(url), Ok(ca)) = (
        std::env::var(format!("{var}_URL")),
        std::env::var(format!("{var}_CA")),
    ) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and no PostgreSQL with TLS in {var}_URL: scripts/test starts one ({script})"
            );
        }
        eprintln!(
            "\n*** SKIPPED {test}: {var}_URL / {var}_CA are not set (run the tests with scripts/test) ***\n"
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
        set_audit_password(s);
        estate
    })
}

fn seed_once(s: &Server) -> Estate {
    let pid = std::process::id();
    let estate = Estate {
        dirty: format!("indb_dirty_{pid}"),
        clean: format!("indb_clean_{pid}"),
    };
    seed_rds_roles(s);
    let mut a = admin(&s.url);
    let p = format!("r{pid}_");
    for stmt in [
        format!(
            "DROP ROLE IF EXISTS {p}dev_ro, {p}legacy, {p}readers, {p}orders_rw, {p}orders, {p}billing"
        ),
        format!("CREATE ROLE {p}dev_ro LOGIN IN ROLE rds_iam"),
        format!("CREATE ROLE {p}readers NOLOGIN"),
        format!("CREATE ROLE {p}orders_rw NOLOGIN"),
        format!("CREATE ROLE {p}orders LOGIN IN ROLE rds_iam"),
        format!("CREATE ROLE {p}billing LOGIN IN ROLE rds_iam"),
        // Planted: a writer that signs in with a password, not IAM.
        format!("CREATE ROLE {p}legacy LOGIN PASSWORD 'not-a-secret-1'"),
        format!("GRANT {p}orders_rw TO {p}legacy"),
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
        via: DbVia::Direct,
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

/// The audit user's password on a test server: the IAM token for
/// ENDPOINT at the server's port, signed with the frozen credentials and
/// clock ([`set_audit_password`] sets it).
fn audit_password(port: u16) -> String {
    runtime()
        .block_on(iam_token(
            &frozen_conf(),
            "eu-west-1",
            ENDPOINT,
            port,
            "dbaudit_audit",
        ))
        .unwrap()
}

/// `dbaudit databases --snapshot S --account prod --config C -o OUT`, with
/// the audit user's password in DBAUDIT_DB_PASSWORD.
fn run_databases(
    snapshot: &std::path::Path,
    config: &std::path::Path,
    out: &std::path::Path,
    password: &str,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbaudit"));
    support::aws_env(&mut cmd);
    cmd.env("DBAUDIT_DB_PASSWORD", password)
        .args(["databases", "--snapshot"])
        .arg(snapshot)
        .args(["--account", "prod", "--config"])
        .arg(config)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

fn set_audit_password(s: &Server) {
    admin(&s.url)
        .batch_execute(&format!(
            "ALTER ROLE dbaudit_audit PASSWORD '{}'",
            audit_password(s.port).replace('\'', "''")
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
    let password = on("db.access.password-logins", &estate.dirty);
    assert_eq!(password.outcome, Outcome::Fail);
    assert!(
        password.message.contains(&format!("{p}legacy")),
        "{}",
        password.message
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

/// The AWS SDK for Rust's own published vector for RDS auth tokens
/// (aws-sdk-rds `auth_token::tests::signing_works`: key `akid`/`secret`,
/// 2024-08-26T22:00:00Z, us-east-1, port 3306, user `peccy`): our
/// `iam_token` gives exactly that token.
#[test]
fn the_iam_token_matches_the_sdk_s_published_vector() {
    let conf = SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "akid", "secret", None, None, "test",
        )))
        .time_source(StaticTimeSource::new(
            UNIX_EPOCH + Duration::from_secs(1_724_709_600),
        ))
        .behavior_version(BehaviorVersion::latest())
        .build();
    let token = runtime()
        .block_on(iam_token(
            &conf,
            "us-east-1",
            "prod-instance.us-east-1.rds.amazonaws.com",
            3306,
            "peccy",
        ))
        .unwrap();
    assert_eq!(
        token,
        "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=peccy&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=akid%2F20240826%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240826T220000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=dd0cba843009474347af724090233265628ace491ea17ce3eb3da098b983ad89"
    );
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
    let logins = ["dev_ro", "orders", "billing", "legacy"].map(|l| format!("{p}{l}"));
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
    // `via = "parts"`: nothing is connected to; each cluster awaits the
    // part `dbaudit databases` reads in the cluster.
    let parts_cfg = dir.join("parts.toml");
    std::fs::write(
        &parts_cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("connect = true\n", "connect = true\nvia = \"parts\"\n"),
    )
    .unwrap();
    let parts = snap(&parts_cfg, "parts.json");
    let mut awaiting = 0;
    for a in parts["accounts"].as_array().unwrap() {
        for r in a["regions"].as_array().unwrap() {
            for d in r
                .get("pg_databases")
                .and_then(|d| d.as_array())
                .into_iter()
                .flatten()
            {
                assert_eq!(d["unreadable"], dbaudit::collect::AWAITING_PART, "{d}");
                awaiting += 1;
            }
        }
    }
    assert!(awaiting > 0);
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

/// Role grants with every combination of options, against the server's
/// own answers: a login may write a table exactly when some role it may
/// `SET ROLE` to (`pg_has_role(login, role, 'SET')` on 16+, 'MEMBER'
/// before) has the privilege (`has_table_privilege(role, …)`, which
/// follows that role's INHERIT chain). On PostgreSQL 17 the options are
/// per grant; on 15 the member's `rolinherit` decides and SET is always
/// allowed. Both directions are checked: nothing missed, nothing invented.
#[test]
fn acting_as_roles_agrees_with_the_server_on_15_and_17() {
    let servers = [
        server("acting_as_roles_agrees_with_the_server (15)"),
        server_17("acting_as_roles_agrees_with_the_server (17)"),
    ];
    for s in servers.iter().flatten() {
        if s.url == servers[0].as_ref().map_or(String::new(), |f| f.url.clone()) {
            // The shared audit user and RDS roles of the other tests.
            seed(s);
        } else {
            seed_rds_roles(s);
            set_audit_password(s);
        }
        options_agree_with_the_server(s);
    }
}

/// RDS's own roles, as an Aurora cluster has them, and the audit user.
fn seed_rds_roles(s: &Server) {
    let mut a = admin(&s.url);
    for stmt in [
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_superuser') THEN CREATE ROLE rds_superuser NOLOGIN; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbaudit_audit') THEN CREATE ROLE dbaudit_audit LOGIN; END IF; END $$",
        "GRANT rds_iam TO dbaudit_audit",
        "GRANT pg_read_all_settings TO dbaudit_audit",
    ] {
        a.batch_execute(stmt).unwrap();
    }
}

fn options_agree_with_the_server(s: &Server) {
    let mut a = admin(&s.url);
    let version: i32 = a
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .unwrap()
        .get(0);
    let p = format!("g{}_", std::process::id());
    let db = format!("indb_options_{}", std::process::id());
    let logins: Vec<String> = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .map(|l| format!("{p}{l}"))
        .collect();
    let mut stmts = vec![format!(
        "DROP ROLE IF EXISTS {}, {p}writer, {p}mid, {p}mid2, {p}deleter",
        logins.join(", ")
    )];
    for l in &logins {
        stmts.push(format!("CREATE ROLE {l} LOGIN"));
    }
    for r in ["writer", "mid", "mid2", "deleter"] {
        stmts.push(format!("CREATE ROLE {p}{r} NOLOGIN"));
    }
    if version >= 160000 {
        stmts.extend([
            // Inherits the writer, may not SET ROLE to it.
            format!("GRANT {p}writer TO {p}a WITH INHERIT TRUE, SET FALSE"),
            // May SET ROLE to the writer, does not inherit it.
            format!("GRANT {p}writer TO {p}b WITH INHERIT FALSE, SET TRUE"),
            // Neither: a member in name only.
            format!("GRANT {p}writer TO {p}c WITH INHERIT FALSE, SET FALSE"),
            format!("GRANT rds_iam TO {p}c WITH INHERIT FALSE, SET FALSE"),
            // Inherits mid, which may SET ROLE to the writer: d may not.
            format!("GRANT {p}mid TO {p}d WITH INHERIT TRUE, SET FALSE"),
            format!("GRANT {p}writer TO {p}mid WITH INHERIT FALSE, SET TRUE"),
            // May SET ROLE to mid2, which inherits the deleter: e may delete.
            format!("GRANT {p}mid2 TO {p}e WITH INHERIT FALSE, SET TRUE"),
            format!("GRANT {p}deleter TO {p}mid2 WITH INHERIT TRUE, SET FALSE"),
            // The default options: INHERIT from f's NOINHERIT attribute.
            format!("ALTER ROLE {p}f NOINHERIT"),
            format!("GRANT {p}writer TO {p}f"),
            // Two hops of SET.
            format!("GRANT {p}mid2 TO {p}g WITH INHERIT FALSE, SET TRUE"),
            format!("GRANT {p}writer TO {p}mid2 WITH INHERIT FALSE, SET TRUE"),
        ]);
    } else {
        stmts.extend([
            format!("GRANT {p}writer TO {p}a"),
            format!("ALTER ROLE {p}b NOINHERIT"),
            format!("GRANT {p}writer TO {p}b"),
            format!("ALTER ROLE {p}mid NOINHERIT"),
            format!("GRANT {p}mid TO {p}d"),
            format!("GRANT {p}writer TO {p}mid"),
            format!("GRANT {p}deleter TO {p}mid2"),
            format!("GRANT {p}mid2 TO {p}e"),
        ]);
    }
    for stmt in &stmts {
        a.batch_execute(stmt)
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    a.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    a.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let mut d = admin(&url_of(&s.url, &db));
    d.batch_execute(&format!(
        "CREATE SCHEMA orders; CREATE TABLE orders.t1 (id int); CREATE TABLE orders.t2 (id int);
         GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA orders TO {p}writer;
         GRANT DELETE ON orders.t2 TO {p}deleter;"
    ))
    .unwrap();

    let mut account = read(s, &frozen_conf(), settings(s, DbAuth::Iam), None);
    account.regions[0]
        .pg_databases
        .as_mut()
        .unwrap()
        .retain(|x| x.database == db);
    let read = database(&account, &db);
    assert_eq!(read.unreadable, None, "{read:?}");
    if version >= 160000 {
        assert!(
            read.memberships
                .iter()
                .filter(|m| m.member.starts_with(&p))
                .all(|m| m.inherit.is_some() && m.set.is_some()),
            "16+ reads each grant's options: {:?}",
            read.memberships
        );
    }
    let facts = dbaudit::model::pg_database::writes_of(&account.regions[0], &db);
    let mode = if version >= 160000 { "SET" } else { "MEMBER" };
    let mut wrote = 0;
    for user in &logins {
        for privilege in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
            let server_says: bool = d
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = 'orders' AND c.relkind = 'r'
                            AND pg_has_role($1::text, r.oid, '{mode}') AND has_table_privilege(r.oid, c.oid, $2::text))"
                    ),
                    &[user, &privilege],
                )
                .unwrap()
                .get(0);
            let ours: Vec<&String> = facts
                .iter()
                .filter(|(u, what)| {
                    u == user
                        && what.starts_with(&format!("{privilege} on "))
                        && what.ends_with(" of orders")
                })
                .map(|(_, w)| w)
                .collect();
            assert_eq!(
                server_says,
                !ours.is_empty(),
                "PostgreSQL {version}: {user} {privilege} on orders: the server says {server_says}, the facts {ours:?} ({facts:?})"
            );
            wrote += usize::from(server_says);
        }
    }
    // The seed is not vacuous: some logins write, some do not.
    assert!(wrote > 0 && wrote < logins.len() * 4, "{wrote}");
}

/// Where the databases are reachable only from inside the cluster: the
/// collected snapshot names the clusters, `dbaudit databases` (the in-cluster
/// Job) reads one account's databases into a database part, and `merge`
/// attaches it, replacing the placeholder `via = "parts"` leaves. Without
/// the part the placeholder stays, and every rule that needs it is `error`.
#[test]
fn database_parts_are_read_where_reachable_and_attached_by_merge() {
    let Some(s) = server("database_parts_are_read_where_reachable_and_attached_by_merge") else {
        return;
    };
    let estate = seed(&s);
    let dir = support::tempdir("indb-parts");
    let mut account = account(i32::from(s.port));
    account.regions[0].pg_databases = Some(vec![PgDatabase {
        cluster_id: "prod-orders".into(),
        database: "*".into(),
        unreadable: Some(dbaudit::collect::AWAITING_PART.into()),
        ..Default::default()
    }]);
    let mut snap = Snapshot::new("2026-12-01T00:00:00Z".into());
    snap.accounts = vec![account];
    let collected = dir.join("collected");
    std::fs::create_dir_all(&collected).unwrap();
    let snap_path = collected.join("snapshot.json");
    std::fs::write(&snap_path, snap.to_json()).unwrap();
    let cfg = dir.join("dbaudit.toml");
    std::fs::write(
        &cfg,
        format!(
            "regions = [\"eu-west-1\"]\n[[account]]\nname = \"prod\"\nenvironment = \"prod\"\naccount_id = \"222222222222\"\nrole_arn = \"arn:aws:iam::222222222222:role/dbaudit\"\n\n[databases]\nconnect = true\nvia = \"parts\"\nauth = \"password\"\nsslrootcert = \"{}\"\n[databases.addresses]\n\"{ENDPOINT}\" = \"127.0.0.1:{}\"\n",
            s.ca.display(),
            s.port
        ),
    )
    .unwrap();
    // The audit user's password is the frozen token (seed): the part's
    // sign-in takes it from DBAUDIT_DB_PASSWORD, as a non-IAM setup would.
    let token = audit_password(s.port);
    let part = collected.join("prod-databases.json");
    let o = run_databases(&snap_path, &cfg, &part, &token);
    let stderr = support::text(&o.stderr);
    assert!(
        o.status.code() == Some(0),
        "{stderr}\n{}",
        support::text(&o.stdout)
    );
    assert!(
        stderr.contains("of 1 cluster(s) of account `prod`"),
        "{stderr}"
    );
    assert!(!stderr.contains(&token) && !std::fs::read_to_string(&part).unwrap().contains(&token));
    let written = support::read_json(&part);
    assert_eq!(written["databases_part"]["account"], "prod");
    assert!(
        written["accounts"][0]["regions"][0]["db_clusters"]
            .as_array()
            .is_none_or(|c| c.is_empty())
    );

    // A database part is not a snapshot to evaluate.
    let o = support::dbaudit(&["evaluate", part.to_str().unwrap(), "--no-history"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        support::text(&o.stderr).contains("is a database part"),
        "{}",
        support::text(&o.stderr)
    );

    // The snapshot alone: the placeholder makes the rules errors.
    let evaluate = |path: &std::path::Path| {
        let o = support::dbaudit(&[
            "evaluate",
            path.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "json",
            "--no-history",
            "--rule",
            "db.access.public-schema-create",
        ]);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("{}", support::text(&o.stderr)));
        (o.status.code(), report)
    };
    let (code, report) = evaluate(&snap_path);
    assert_eq!(code, Some(3));
    let f = &report["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["outcome"], "error");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("awaiting its database part"),
        "{}",
        f[0]["message"]
    );

    // Merged: the part's databases replace the placeholder.
    let merged = dir.join("merged.json");
    let o = support::dbaudit(&[
        "merge",
        collected.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", support::text(&o.stderr));
    assert!(
        support::text(&o.stderr)
            .contains("attached 1 database part(s) to the snapshot: 1 cluster(s)"),
        "{}",
        support::text(&o.stderr)
    );
    let m = Snapshot::load(&merged).unwrap();
    let dbs = m.accounts[0].regions[0].pg_databases.as_ref().unwrap();
    assert!(dbs.iter().all(|d| d.database != "*"), "{dbs:?}");
    for name in [&estate.dirty, &estate.clean] {
        let d = dbs.iter().find(|d| &d.database == name).unwrap();
        assert_eq!(d.unreadable, None);
    }
    let (_, report) = evaluate(&merged);
    let on = |db: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["resource_id"] == format!("prod-orders/{db}"))
            .unwrap_or_else(|| panic!("no finding on {db}: {report}"))["outcome"]
            .clone()
    };
    assert_eq!(on(&estate.dirty), "fail");
    assert_eq!(on(&estate.clean), "pass");

    // A second part reading the same cluster is refused, not guessed.
    std::fs::copy(&part, collected.join("again.json")).unwrap();
    let o = support::dbaudit(&[
        "merge",
        collected.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        support::text(&o.stderr).contains("is also read by"),
        "{}",
        support::text(&o.stderr)
    );
}

/// Two more ways a database cannot be read, each its own recorded reason
/// while the server's other databases are read: a catalog query that runs
/// past the statement timeout (here `pg_default_acl`, locked by another
/// session), and a catalog the audit user may not read (SELECT revoked
/// from PUBLIC in that database). On the PostgreSQL 17 server, whose other
/// tests look only at their own databases.
#[test]
fn a_statement_timeout_and_a_denied_catalog_are_recorded_reasons() {
    let Some(s) = server_17("a_statement_timeout_and_a_denied_catalog_are_recorded_reasons") else {
        return;
    };
    seed_rds_roles(&s);
    set_audit_password(&s);
    let pid = std::process::id();
    let (locked, denied) = (format!("indb_locked_{pid}"), format!("indb_denied_{pid}"));
    let mut a = admin(&s.url);
    for db in [&locked, &denied] {
        a.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
            .unwrap();
        a.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    }
    admin(&url_of(&s.url, &denied))
        .batch_execute("REVOKE SELECT ON pg_catalog.pg_default_acl FROM PUBLIC")
        .unwrap();
    // Held until the end of the test: the lock lives in this transaction.
    let mut holder = admin(&url_of(&s.url, &locked));
    let mut lock = holder.transaction().unwrap();
    lock.batch_execute("LOCK TABLE pg_catalog.pg_default_acl IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    let mut db = settings(&s, DbAuth::Iam);
    db.statement_timeout_ms = 300;
    let account = read(&s, &frozen_conf(), db, None);
    let why = |name: &str| database(&account, name).unreadable.clone();
    let timeout = why(&locked).expect("the locked catalog made the read time out");
    assert!(timeout.contains("statement timeout"), "{timeout}");
    let denied_why = why(&denied).expect("the revoked catalog made the read fail");
    assert!(
        denied_why.contains("permission denied") && denied_why.contains("pg_default_acl"),
        "{denied_why}"
    );
    for reason in [&timeout, &denied_why] {
        assert!(!reason.contains('\n'), "one line: {reason}");
    }
    // The server's other databases were read.
    assert_eq!(database(&account, "postgres").unreadable, None);
    lock.rollback().unwrap();
}

/// A standalone RDS for PostgreSQL instance is read like a cluster's writer
/// (its address, TLS verified against that name) and judged with its own
/// ARN and `DbiResourceId`; a read replica (its source's roles) and an
/// Aurora member instance (read through its cluster) are not read.
#[test]
fn a_standalone_instance_is_read_and_judged_like_a_cluster() {
    const INSTANCE: &str = "prod-payments.dbaudit.eu-west-1.rds.amazonaws.com";
    let Some(s) = server("a_standalone_instance_is_read_and_judged_like_a_cluster") else {
        return;
    };
    let estate = seed(&s);
    let p = format!("r{}_", std::process::id());
    let port = i32::from(s.port);
    let instance = |id: &str| dbaudit::snapshot::DbInstance {
        id: id.into(),
        arn: format!("arn:aws:rds:eu-west-1:222222222222:db:{id}"),
        engine: "postgres".into(),
        endpoint: Some(INSTANCE.into()),
        port: Some(port),
        resource_id: Some("db-PRODPAYMENTS".into()),
        master_username: Some("postgres".into()),
        ..Default::default()
    };
    let mut replica = instance("prod-payments-replica");
    replica.read_replica_source = Some("prod-payments".into());
    let mut member = instance("prod-orders-1");
    member.engine = "aurora-postgresql".into();
    member.cluster_id = Some("prod-orders".into());
    let mut a = account(port);
    a.regions[0].db_clusters.clear();
    a.regions[0].db_instances = vec![instance("prod-payments"), replica, member];
    let mut db = settings(&s, DbAuth::Password);
    db.addresses = BTreeMap::from([(
        INSTANCE.to_string(),
        format!("127.0.0.1:{}", s.port).parse().unwrap(),
    )]);
    // The audit user's password is the cluster endpoint's token (seed).
    let password = audit_password(s.port);
    let settings = Settings {
        databases: &db,
        password: Some(password),
    };
    runtime().block_on(collect(&frozen_conf(), &mut a, &settings));
    let read = a.regions[0].pg_databases.as_mut().unwrap();
    assert!(
        read.iter().all(|d| d.cluster_id == "prod-payments"),
        "{read:?}"
    );
    read.retain(|d| d.database == estate.dirty || d.database == estate.clean);
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(read.iter().all(|d| d.unreadable.is_none()), "{read:?}");

    let mut snap = Snapshot::new("2026-12-01T00:00:00Z".into());
    a.iam = Some(serde_json::from_value(serde_json::json!({
        "users": [{"name": "alice", "arn": "arn:aws:iam::222222222222:user/alice", "groups": ["developers"]}],
        "groups": [{"name": "developers", "arn": "arn:aws:iam::222222222222:group/developers",
            "inline_policies": [{"name": "connect", "document": {"Version": "2012-10-17", "Statement": [
                {"Sid": "DevConnect", "Effect": "Allow", "Action": "rds-db:connect",
                 "Resource": format!("arn:aws:rds-db:eu-west-1:222222222222:dbuser:db-PRODPAYMENTS/{p}dev_ro")}]}}]}]
    })).unwrap());
    snap.accounts = vec![a];
    let config = Config::parse(
        "[developers]\ngroups = [\"developers\"]\n",
        std::path::Path::new("dbaudit.toml"),
    )
    .unwrap();
    let findings = dbaudit::evaluate::evaluate(&snap, &RuleSet::load(&[], &[]).unwrap(), &config);
    let dev = findings
        .iter()
        .find(|f| {
            &*f.rule_id == "db.access.developers-read-only-in-prod"
                && *f.resource_id == format!("prod-payments/{}", estate.dirty)
        })
        .expect("a finding on the instance's database");
    assert_eq!(dev.outcome, Outcome::Fail, "{}", dev.message);
    assert!(
        dev.message.contains("user/alice may connect as"),
        "{}",
        dev.message
    );
    assert_eq!(
        &*dev.resource_arn,
        format!(
            "arn:aws:rds:eu-west-1:222222222222:db:prod-payments/{}",
            estate.dirty
        )
    );
}

/// A server of this test's own (PostgreSQL 17, TLS from its own CA),
/// stopped when dropped.
struct OwnServer {
    server: Server,
    stop: PathBuf,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash").arg(&self.stop).output();
        if let Some(base) = self.stop.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// scripts/setup-postgres17 under another name, its certificate also
/// naming `extra_name`.
fn own_server(name: &str, extra_name: &str) -> OwnServer {
    let o = std::process::Command::new(support::root().join("scripts/setup-postgres17"))
        .env("DBAUDIT_PG_NAME", name)
        .env("DBAUDIT_PG_EXTRA_SAN", format!("DNS:{extra_name}"))
        .output()
        .unwrap();
    let stderr = support::text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let base = stderr
        .lines()
        .find_map(|l| l.strip_prefix("setup-postgres: server in "))
        .and_then(|l| l.split(" on ").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("where the server is: {stderr}"));
    let url = support::text(&o.stdout).trim().to_string();
    let port = url
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    OwnServer {
        server: Server {
            url,
            port,
            ca: base.join("ca.pem"),
        },
        stop: base.join("stop"),
    }
}

/// The acceptance run, end to end: the emulator holds prod's Aurora
/// PostgreSQL cluster and who may connect as which DB user; `collect` (via
/// = "parts") records the cluster as awaiting its part; a real PostgreSQL
/// with the planted violations answers on the cluster's endpoint name (its
/// certificate names it, TLS verifies it); `dbaudit databases` reads it,
/// `merge` attaches the part and `evaluate` finds every planted violation in
/// the dirty database with both hops (the IAM statement, the chain of
/// roles), and nothing in the clean ones.
#[test]
fn the_emulator_and_a_real_server_end_to_end_find_every_planted_violation() {
    if server_17("the_emulator_and_a_real_server_end_to_end").is_none() {
        return;
    }
    let pid = std::process::id();
    let p = format!("e{pid}_");
    let (dev, app) = (format!("{p}dev_ro"), format!("{p}orders"));
    let moto = support::Moto::start();
    moto.seed(&["indb", "--dev-user", &dev, "--app-user", &app]);
    let dir = support::tempdir("indb-e2e");
    let collected = dir.join("collected");
    std::fs::create_dir_all(&collected).unwrap();
    let accounts = "regions = [\"eu-west-1\"]\n[[account]]\nname = \"prod\"\nenvironment = \"prod\"\naccount_id = \"222222222222\"\nrole_arn = \"arn:aws:iam::222222222222:role/dbaudit-audit\"\n[developers]\ngroups = [\"developers\"]\n";
    let collect_cfg = dir.join("collect.toml");
    std::fs::write(
        &collect_cfg,
        format!("{accounts}[databases]\nconnect = true\nvia = \"parts\"\n"),
    )
    .unwrap();
    let snapshot = collected.join("snapshot.json");
    let o = support::dbaudit(&[
        "collect",
        "--account",
        "prod",
        "--config",
        collect_cfg.to_str().unwrap(),
        "--endpoint-url",
        &moto.endpoint(),
        "-o",
        snapshot.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{}",
        support::text(&o.stderr)
    );
    let snap = Snapshot::load(&snapshot).unwrap();
    let region = &snap.accounts[0].regions[0];
    let cluster = region
        .db_clusters
        .iter()
        .find(|c| c.id == "prod-orders")
        .unwrap();
    let endpoint = cluster
        .endpoint
        .clone()
        .expect("moto names the writer endpoint");
    assert_eq!(
        region.pg_databases.as_ref().unwrap()[0]
            .unreadable
            .as_deref(),
        Some(dbaudit::collect::AWAITING_PART)
    );

    // The database side, on a server of this test's own.
    let own = own_server(&format!("postgres-e2e-{pid}"), &endpoint);
    let s = &own.server;
    seed_rds_roles(s);
    set_audit_password(s);
    let mut a = admin(&s.url);
    a.batch_execute(&format!(
        "CREATE ROLE {dev} LOGIN IN ROLE rds_iam; CREATE ROLE {p}readers NOLOGIN;
         CREATE ROLE {p}orders_rw NOLOGIN; CREATE ROLE {app} LOGIN IN ROLE rds_iam;
         GRANT {p}readers TO {dev}; GRANT {p}orders_rw TO {p}readers;"
    ))
    .unwrap();
    for db in ["orders_dirty", "orders_clean"] {
        a.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    }
    admin(&url_of(&s.url, "orders_dirty"))
        .batch_execute(&format!(
            "CREATE SCHEMA orders AUTHORIZATION {app};
             CREATE TABLE orders.o1 (id int); CREATE TABLE orders.o2 (id int);
             ALTER TABLE orders.o1 OWNER TO {app}; ALTER TABLE orders.o2 OWNER TO {app};
             GRANT USAGE ON SCHEMA orders TO {p}readers;
             GRANT SELECT ON ALL TABLES IN SCHEMA orders TO {p}readers;
             GRANT INSERT ON ALL TABLES IN SCHEMA orders TO {p}orders_rw;
             GRANT CREATE ON SCHEMA public TO PUBLIC;
             CREATE SCHEMA billing; CREATE TABLE billing.b1 (id int);
             GRANT USAGE ON SCHEMA billing TO {app}; GRANT INSERT ON billing.b1 TO {app};"
        ))
        .unwrap();
    admin(&url_of(&s.url, "orders_clean"))
        .batch_execute(&format!(
            "CREATE SCHEMA orders AUTHORIZATION {app};
             CREATE TABLE orders.o1 (id int); ALTER TABLE orders.o1 OWNER TO {app};
             GRANT USAGE ON SCHEMA orders TO {dev}; GRANT SELECT ON orders.o1 TO {dev};"
        ))
        .unwrap();
    let db_cfg = dir.join("dbaudit.toml");
    std::fs::write(
        &db_cfg,
        format!(
            "{accounts}[databases]\nconnect = true\nvia = \"parts\"\nauth = \"password\"\nsslrootcert = \"{}\"\n[databases.addresses]\n\"*.rds.amazonaws.com\" = \"127.0.0.1:{}\"\n",
            s.ca.display(),
            s.port
        ),
    )
    .unwrap();
    let token = audit_password(s.port);
    let o = run_databases(
        &snapshot,
        &db_cfg,
        &collected.join("prod-databases.json"),
        &token,
    );
    assert_eq!(o.status.code(), Some(0), "{}", support::text(&o.stderr));
    let merged = dir.join("merged.json");
    let o = support::dbaudit(&[
        "merge",
        collected.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{}",
        support::text(&o.stderr)
    );
    let o = support::dbaudit(&[
        "evaluate",
        merged.to_str().unwrap(),
        "--config",
        db_cfg.to_str().unwrap(),
        "--format",
        "json",
        "--no-history",
        "--rule",
        "db.access.*",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", support::text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let on = |rule: &str, db: &str| {
        findings
            .iter()
            .find(|f| f["rule_id"] == rule && f["resource_id"] == format!("prod-orders/{db}"))
            .unwrap_or_else(|| panic!("no {rule} on {db}: {findings:?}"))
    };
    let developers = on("db.access.developers-read-only-in-prod", "orders_dirty");
    assert_eq!(developers["outcome"], "fail");
    let message = developers["message"].as_str().unwrap();
    for hop in [
        format!("user/alice may connect as {dev}"),
        "DevConnect".to_string(),
        format!("INSERT on 2 tables of orders via {dev} → {p}readers → {p}orders_rw"),
    ] {
        assert!(message.contains(&hop), "lacks `{hop}`: {message}");
    }
    let apps = on("db.access.app-user-owns-its-schema", "orders_dirty");
    assert_eq!(apps["outcome"], "fail", "{apps}");
    assert!(
        apps["message"].as_str().unwrap().contains(&format!(
            "may connect as {app}, which may INSERT on 1 tables of billing outside schema orders"
        )),
        "{apps}"
    );
    assert_eq!(
        on("db.access.public-schema-create", "orders_dirty")["outcome"],
        "fail"
    );
    // Nothing else fails, nothing is an error: the clean databases pass
    // every rule.
    let failing: Vec<String> = findings
        .iter()
        .filter(|f| f["outcome"] != "pass")
        .map(|f| format!("{} {} {}", f["rule_id"], f["resource_id"], f["outcome"]))
        .collect();
    assert_eq!(
        failing,
        [
            "\"db.access.app-user-owns-its-schema\" \"prod-orders/orders_dirty\" \"fail\"",
            "\"db.access.developers-read-only-in-prod\" \"prod-orders/orders_dirty\" \"fail\"",
            "\"db.access.public-schema-create\" \"prod-orders/orders_dirty\" \"fail\"",
        ],
        "{findings:?}"
    );
    for db in ["orders_clean", "postgres"] {
        assert_eq!(
            on("db.access.developers-read-only-in-prod", db)["outcome"],
            "pass"
        );
    }
}
