//! Benchmark: the in-database collection of one database of SCHEMAS
//! schemas × TABLES tables × ROLES roles (grants, memberships and default
//! privileges on every schema), on loopback, over TLS with SCRAM.
//! `cargo bench --bench in_database [-- SCHEMAS TABLES ROLES]` (default
//! 50 × 200 × 30), against the server scripts/setup-postgres starts:
//!
//! ```sh
//! export DBAUDIT_POSTGRES_URL=$(scripts/setup-postgres)
//! export DBAUDIT_POSTGRES_CA=${CARGO_TARGET_DIR:-target}/postgres-test/ca.pem
//! cargo bench --bench in_database
//! ```
//!
//! Prints the catalog queries per database, the time to read the database
//! (median of five), the bytes it adds to the snapshot and the peak RSS;
//! figures go in docs/performance.md.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use dbaudit::collect::postgres::{Settings, collect, sql};
use dbaudit::config::{DatabasesConfig, DbAuth, DbVia};
use dbaudit::snapshot::{Account, DbCluster, Region as RegionData};

const ENDPOINT: &str = "bench.cluster-dbaudit.eu-west-1.rds.amazonaws.com";
const DB: &str = "dbaudit_bench";

// A benchmark's output is its figures, on stdout.
#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (schemas, tables, roles) = (arg(0, 50), arg(1, 200), arg(2, 30));
    let (Ok(url), Ok(ca)) = (
        std::env::var("DBAUDIT_POSTGRES_URL"),
        std::env::var("DBAUDIT_POSTGRES_CA"),
    ) else {
        panic!(
            "set DBAUDIT_POSTGRES_URL and DBAUDIT_POSTGRES_CA (scripts/setup-postgres starts a server): see the top of benches/in_database.rs"
        );
    };
    let port: u16 = url
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a loopback URL");

    let t = Instant::now();
    seed(&url, schemas, tables, roles);
    println!(
        "seeded {DB}: {schemas} schemas × {tables} tables, {roles} roles in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let db = DatabasesConfig {
        environments: vec![],
        user: "dbaudit_audit".into(),
        auth: DbAuth::Password,
        via: DbVia::Direct,
        sslrootcert: Some(ca.into()),
        concurrency: 4,
        connect_timeout: Duration::from_secs(10),
        statement_timeout_ms: 60_000,
        addresses: BTreeMap::from([(
            ENDPOINT.to_string(),
            format!("127.0.0.1:{port}").parse().unwrap(),
        )]),
    };
    let settings = Settings {
        databases: &db,
        password: Some("bench-pw".into()),
    };
    let conf = SdkConfig::builder()
        .region(Region::new("eu-west-1"))
        .behavior_version(BehaviorVersion::latest())
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    let mut bytes = 0;
    let mut databases = 0;
    for _ in 0..5 {
        let mut account = Account {
            name: "bench".into(),
            regions: vec![RegionData {
                name: "eu-west-1".into(),
                db_clusters: vec![DbCluster {
                    id: "bench".into(),
                    engine: "aurora-postgresql".into(),
                    endpoint: Some(ENDPOINT.into()),
                    port: Some(5432),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = Instant::now();
        rt.block_on(collect(&conf, &mut account, &settings));
        times.push(t.elapsed().as_secs_f64());
        let dbs = account.regions[0].pg_databases.take().unwrap_or_default();
        databases = dbs.len();
        let ours = dbs
            .iter()
            .find(|d| d.database == DB)
            .expect("the bench database was read");
        assert_eq!(ours.unreadable, None, "{:?}", ours.unreadable);
        bytes = serde_json::to_vec(ours).unwrap().len();
    }
    times.sort_by(f64::total_cmp);
    // Per database: the session check and seven catalog reads (one of the
    // two membership queries); per cluster: one more session and the list.
    let per_database = sql::ALL.len() - 2;
    println!(
        "read the cluster ({databases} databases): median {:.3} s (min {:.3}, max {:.3})",
        times[2], times[0], times[4]
    );
    println!("catalog queries per database: {per_database} (+2 per cluster to list them)");
    println!(
        "snapshot bytes of {DB}: {bytes} ({:.1} KB)",
        bytes as f64 / 1024.0
    );
    println!("peak RSS: {:.0} MB", support::peak_rss_mb());
}

fn seed(url: &str, schemas: usize, tables: usize, roles: usize) {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    // One statement per call where a transaction block is refused.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DB}"))
        .unwrap();
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; END $$;
             DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbaudit_audit') THEN CREATE ROLE dbaudit_audit LOGIN; END IF; END $$;
             ALTER ROLE dbaudit_audit PASSWORD 'bench-pw';",
        )
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .unwrap();
    for r in 0..roles {
        let login = if r % 3 == 0 { "LOGIN" } else { "NOLOGIN" };
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS bench_r{r}; CREATE ROLE bench_r{r} {login}"
            ))
            .unwrap();
        if r > 0 {
            admin
                .batch_execute(&format!("GRANT bench_r{} TO bench_r{r}", r - 1))
                .unwrap();
        }
    }
    let base = url.split_once('?').map_or(url, |(u, _)| u);
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let db_url = format!("{}/{DB}?{query}", base.rsplit_once('/').unwrap().0);
    let mut d = postgres::Client::connect(&db_url, postgres::NoTls).unwrap();
    for s in 0..schemas {
        let owner = format!("bench_r{}", s % roles);
        let reader = format!("bench_r{}", (s + 1) % roles);
        let writer = format!("bench_r{}", (s + 2) % roles);
        d.batch_execute(&format!(
            "CREATE SCHEMA s{s} AUTHORIZATION {owner};
             DO $$ BEGIN FOR i IN 1..{tables} LOOP EXECUTE format('CREATE TABLE s{s}.t%s (id int)', i); END LOOP; END $$;
             GRANT USAGE ON SCHEMA s{s} TO {reader}, {writer};
             GRANT SELECT ON ALL TABLES IN SCHEMA s{s} TO {reader};
             GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA s{s} TO {writer};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA s{s} GRANT SELECT ON TABLES TO {reader};"
        ))
        .unwrap();
    }
}
