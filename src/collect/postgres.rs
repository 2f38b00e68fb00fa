//! The in-database collection (opt-in: `[databases] connect = true`):
//! for each Aurora PostgreSQL cluster of an account (and each standalone RDS
//! for PostgreSQL instance), sign in to its writer endpoint (the
//! instance's address) as the audit DB user and read the catalogs of every database
//! into `Region::pg_databases` (docs/in-database.md).
//!
//! Read-only by construction: the session starts with
//! `default_transaction_read_only = on` and a statement timeout (startup
//! options, before any query), the first query checks that the server
//! agreed, and everything sent is one of the fixed statements of [`sql`]
//! (the SQL counterpart of the AWS read-only guard). The password is an
//! IAM auth token signed with the account's credentials (or, with `auth =
//! "password"`, the value of `DBAUDIT_DB_PASSWORD`), used once and never
//! logged or stored; TLS always verifies the endpoint's name. A database
//! that cannot be read becomes an entry with `unreadable` set (a one-line
//! reason), so every rule that needs it is an `error`.

use std::sync::Arc;

use aws_config::SdkConfig;
use tokio::sync::Semaphore;
use tokio_postgres::Row;

use crate::config::{DatabasesConfig, DbAuth};
use crate::snapshot::{
    Account, PgDatabase, PgDefaultPrivilege, PgGrant, PgHost, PgMembership, PgRole, PgSchema,
};

/// Every statement the collection may send. `Sql` cannot be built outside
/// this module: a query the list does not hold cannot be sent.
pub mod sql {
    /// One catalog query.
    pub struct Sql(&'static str);

    impl Sql {
        pub fn text(&self) -> &'static str {
            self.0
        }
    }

    /// The schemas read: every one but the catalogs, TOAST and temporary
    /// schemas.
    macro_rules! user_schemas {
        ($n:literal) => {
            concat!(
                $n,
                ".nspname NOT IN ('pg_catalog', 'information_schema') AND ",
                $n,
                ".nspname NOT LIKE 'pg\\_toast%' AND ",
                $n,
                ".nspname NOT LIKE 'pg\\_temp\\_%'"
            )
        };
    }

    pub const SESSION: Sql = Sql(
        "SELECT current_setting('transaction_read_only'), current_setting('server_version_num')::int4",
    );
    pub const DATABASES: Sql = Sql(
        "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname",
    );
    pub const ROLES: Sql = Sql(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit FROM pg_roles",
    );
    /// PostgreSQL 15 and earlier: no per-grant options.
    pub const MEMBERSHIPS_15: Sql = Sql(
        "SELECT r.rolname, m.rolname, a.admin_option, NULL::bool, NULL::bool FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member",
    );
    /// PostgreSQL 16+: each grant's INHERIT and SET options.
    pub const MEMBERSHIPS_16: Sql = Sql(
        "SELECT r.rolname, m.rolname, a.admin_option, a.inherit_option, a.set_option FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member",
    );
    pub const SCHEMA_GRANTS: Sql = Sql(concat!(
        "SELECT n.nspname, COALESCE(g.rolname, 'PUBLIC'), x.privilege_type FROM pg_namespace n ",
        "CROSS JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) x ",
        "LEFT JOIN pg_roles g ON g.oid = x.grantee WHERE ",
        user_schemas!("n")
    ));
    /// Per grantee, schema and privilege: how many tables carry it.
    pub const TABLE_GRANTS: Sql = Sql(concat!(
        "SELECT n.nspname, COALESCE(g.rolname, 'PUBLIC'), x.privilege_type, count(*) FROM pg_class c ",
        "JOIN pg_namespace n ON n.oid = c.relnamespace ",
        "CROSS JOIN LATERAL aclexplode(COALESCE(c.relacl, acldefault('r', c.relowner))) x ",
        "LEFT JOIN pg_roles g ON g.oid = x.grantee ",
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ",
        user_schemas!("n"),
        " GROUP BY 1, 2, 3"
    ));
    pub const DEFAULT_PRIVILEGES: Sql = Sql(concat!(
        "SELECT o.rolname, n.nspname, d.defaclobjtype::text, COALESCE(g.rolname, 'PUBLIC'), x.privilege_type ",
        "FROM pg_default_acl d JOIN pg_roles o ON o.oid = d.defaclrole ",
        "LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace ",
        "CROSS JOIN LATERAL aclexplode(d.defaclacl) x LEFT JOIN pg_roles g ON g.oid = x.grantee"
    ));
    pub const SCHEMAS: Sql = Sql(concat!(
        "SELECT n.nspname, pg_get_userbyid(n.nspowner), ",
        "count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p')), ",
        "array_remove(array_agg(DISTINCT pg_get_userbyid(c.relowner)), NULL) ",
        "FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f') WHERE ",
        user_schemas!("n"),
        " GROUP BY n.nspname, n.nspowner"
    ));
    pub const SETTINGS: Sql =
        Sql("SELECT name, setting FROM pg_settings WHERE name IN ('ssl', 'rds.force_ssl')");

    /// The whole list.
    pub const ALL: [&Sql; 10] = [
        &SESSION,
        &DATABASES,
        &ROLES,
        &MEMBERSHIPS_15,
        &MEMBERSHIPS_16,
        &SCHEMA_GRANTS,
        &TABLE_GRANTS,
        &DEFAULT_PRIVILEGES,
        &SCHEMAS,
        &SETTINGS,
    ];
}

/// What the collection of one account needs.
pub struct Settings<'a> {
    pub databases: &'a DatabasesConfig,
    /// The password for `auth = "password"` (read once from the
    /// environment by the caller).
    pub password: Option<String>,
}

/// Reads the databases of every Aurora PostgreSQL cluster and standalone
/// RDS for PostgreSQL instance of `account` into its regions. `conf`
/// carries the account's credentials.
pub async fn collect(conf: &SdkConfig, account: &mut Account, settings: &Settings<'_>) {
    let limit = Arc::new(Semaphore::new(settings.databases.concurrency.max(1)));
    for region in &mut account.regions {
        let mut out = Vec::new();
        for host in region.postgres_hosts() {
            out.extend(read_host(conf, &region.name, &host, settings, &limit).await);
        }
        region.pg_databases = Some(out);
    }
}

fn unreadable(cluster: &str, database: &str, why: String) -> PgDatabase {
    PgDatabase {
        cluster_id: cluster.to_string(),
        database: database.to_string(),
        unreadable: Some(why),
        ..Default::default()
    }
}

/// Every database of one cluster or instance: listed from `postgres`, then
/// each read over its own connection (grants are per database).
async fn read_host(
    conf: &SdkConfig,
    region: &str,
    c: &PgHost,
    settings: &Settings<'_>,
    limit: &Arc<Semaphore>,
) -> Vec<PgDatabase> {
    let Some(endpoint) = c.endpoint.as_deref() else {
        return vec![unreadable(
            &c.id,
            "*",
            "the snapshot has no endpoint for it (a cluster's writer endpoint, an instance's address)"
                .into(),
        )];
    };
    let port = c.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(5432);
    let target = Target {
        conf,
        region,
        endpoint,
        port,
        settings,
    };
    let names = {
        let _permit = limit.acquire().await;
        match target.session("postgres").await {
            Ok((client, _)) => query(&client, &sql::DATABASES)
                .await
                .map(|rows| rows.iter().map(|r| text(r, 0)).collect::<Vec<_>>()),
            Err(e) => Err(e),
        }
    };
    let names = match names {
        Ok(n) => n,
        Err(e) => return vec![unreadable(&c.id, "*", e)],
    };
    let reads = names.iter().map(|name| async {
        let _permit = limit.acquire().await;
        match target.read(name).await {
            Ok(mut db) => {
                db.cluster_id = c.id.clone();
                db.database = name.clone();
                db
            }
            Err(e) => unreadable(&c.id, name, e),
        }
    });
    futures_join_all(reads).await
}

/// Runs futures concurrently (bounded by the semaphore they take), results
/// in order.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<F> = futs.collect();
    let mut out = Vec::with_capacity(futs.len());
    // Pinned on the heap and polled together by a small join loop.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

/// Where and how to sign in.
struct Target<'a> {
    conf: &'a SdkConfig,
    region: &'a str,
    endpoint: &'a str,
    port: u16,
    settings: &'a Settings<'a>,
}

impl Target<'_> {
    /// A read-only session on `database`, and the server's version.
    async fn session(&self, database: &str) -> Result<(tokio_postgres::Client, i32), String> {
        let db = self.settings.databases;
        let password = match db.auth {
            DbAuth::Iam => iam_token(self.conf, self.region, self.endpoint, self.port, &db.user)
                .await
                .map_err(|e| format!("signing the IAM auth token failed: {e}"))?,
            DbAuth::Password => self
                .settings
                .password
                .clone()
                .ok_or("auth = \"password\" and DBAUDIT_DB_PASSWORD is not set")?,
        };
        let mut pg = tokio_postgres::Config::new();
        pg.host(self.endpoint)
            .user(&db.user)
            .password(password)
            .dbname(database)
            .application_name("dbaudit")
            .ssl_mode(tokio_postgres::config::SslMode::Require)
            .connect_timeout(db.connect_timeout)
            .options(format!(
                "-c default_transaction_read_only=on -c statement_timeout={}",
                db.statement_timeout_ms
            ));
        let mut at = format!("{}:{}", self.endpoint, self.port);
        match address(&db.addresses, self.endpoint) {
            Some(addr) => {
                // TCP to the address given; TLS still verifies the
                // endpoint's name (tokio-postgres names `host` to TLS).
                pg.hostaddr(addr.ip()).port(addr.port());
                at = format!("{at} (at {addr})");
            }
            None => {
                pg.port(self.port);
            }
        }
        let tls = crate::history::tls::MakeRustls::new(db.sslrootcert.as_deref())
            .map_err(|e| format!("TLS: {e}"))?;
        let connecting = pg.connect(tls);
        let (client, connection) = tokio::time::timeout(db.connect_timeout, connecting)
            .await
            .map_err(|_| {
                format!(
                    "connect to {at} as {} timed out after {} s",
                    db.user,
                    db.connect_timeout.as_secs()
                )
            })?
            .map_err(|e| format!("connect to {at} as {}: {}", db.user, one_line(&e)))?;
        tokio::spawn(async move {
            // Ends when the client is dropped; its error, if any, is the
            // query's.
            let _ = connection.await;
        });
        let rows = query(&client, &sql::SESSION).await?;
        let row = rows
            .first()
            .ok_or("the server returned no session settings")?;
        if text(row, 0) != "on" {
            return Err(format!(
                "the server at {at} did not make the session read-only (transaction_read_only = {}): nothing was read",
                text(row, 0)
            ));
        }
        let version: i32 = row.try_get(1).map_err(|e| one_line(&e))?;
        Ok((client, version))
    }

    /// One database's catalogs.
    async fn read(&self, database: &str) -> Result<PgDatabase, String> {
        let (client, version) = self.session(database).await?;
        let c = &client;
        let memberships = if version >= 160000 {
            &sql::MEMBERSHIPS_16
        } else {
            &sql::MEMBERSHIPS_15
        };
        let mut db = PgDatabase {
            server_version_num: i64::from(version),
            ..Default::default()
        };
        for r in query(c, &sql::ROLES).await? {
            db.roles.push(PgRole {
                name: text(&r, 0),
                login: flag(&r, 1),
                superuser: flag(&r, 2),
                createrole: flag(&r, 3),
                createdb: flag(&r, 4),
                bypassrls: flag(&r, 5),
                inherit: flag(&r, 6),
            });
        }
        for r in query(c, memberships).await? {
            db.memberships.push(PgMembership {
                role: text(&r, 0),
                member: text(&r, 1),
                admin: flag(&r, 2),
                inherit: r.try_get(3).ok().flatten(),
                set: r.try_get(4).ok().flatten(),
            });
        }
        for r in query(c, &sql::SCHEMA_GRANTS).await? {
            db.grants.push(PgGrant {
                schema: text(&r, 0),
                grantee: text(&r, 1),
                on: "schema".into(),
                privilege: text(&r, 2),
                tables: 0,
            });
        }
        for r in query(c, &sql::TABLE_GRANTS).await? {
            db.grants.push(PgGrant {
                schema: text(&r, 0),
                grantee: text(&r, 1),
                on: "tables".into(),
                privilege: text(&r, 2),
                tables: r.try_get(3).unwrap_or_default(),
            });
        }
        for r in query(c, &sql::DEFAULT_PRIVILEGES).await? {
            db.default_privileges.push(PgDefaultPrivilege {
                owner: text(&r, 0),
                schema: r.try_get(1).ok().flatten(),
                object_type: object_type(&text(&r, 2)),
                grantee: text(&r, 3),
                privilege: text(&r, 4),
            });
        }
        for r in query(c, &sql::SCHEMAS).await? {
            db.schemas.push(PgSchema {
                name: text(&r, 0),
                owner: text(&r, 1),
                tables: r.try_get(2).unwrap_or_default(),
                table_owners: r.try_get(3).unwrap_or_default(),
            });
        }
        for r in query(c, &sql::SETTINGS).await? {
            db.settings.insert(text(&r, 0), text(&r, 1));
        }
        Ok(db)
    }
}

/// Where to connect for `endpoint`: its own entry, else the first pattern
/// (`*.cluster-abc.eu-west-1.rds.amazonaws.com`) that matches it.
fn address<'a>(
    addresses: &'a std::collections::BTreeMap<String, std::net::SocketAddr>,
    endpoint: &str,
) -> Option<&'a std::net::SocketAddr> {
    addresses.get(endpoint).or_else(|| {
        addresses
            .iter()
            .find(|(k, _)| k.contains('*') && crate::glob::matches(k, endpoint))
            .map(|(_, a)| a)
    })
}

/// `pg_default_acl.defaclobjtype` in words.
fn object_type(code: &str) -> String {
    match code {
        "r" => "tables",
        "S" => "sequences",
        "f" => "functions",
        "T" => "types",
        "n" => "schemas",
        other => other,
    }
    .to_string()
}

async fn query(client: &tokio_postgres::Client, q: &sql::Sql) -> Result<Vec<Row>, String> {
    client.query(q.text(), &[]).await.map_err(|e| one_line(&e))
}

fn text(r: &Row, i: usize) -> String {
    r.try_get::<_, Option<String>>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn flag(r: &Row, i: usize) -> bool {
    r.try_get::<_, Option<bool>>(i)
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A database error in one line (the server's message, with its detail).
fn one_line(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s.replace('\n', " ")
        }
    }
}

/// An IAM auth token for `user` at `endpoint:port`, signed with the
/// configuration's credentials for `region` (valid 15 minutes).
pub async fn iam_token(
    conf: &SdkConfig,
    region: &str,
    endpoint: &str,
    port: u16,
    user: &str,
) -> Result<String, String> {
    use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
    let config = Config::builder()
        .hostname(endpoint)
        .port(u64::from(port))
        .username(user)
        .region(aws_config::Region::new(region.to_string()))
        .build()
        .map_err(|e| e.to_string())?;
    let token = AuthTokenGenerator::new(config)
        .auth_token(conf)
        .await
        .map_err(|e| e.to_string())?;
    Ok(token.as_str().to_string())
}

#[cfg(test)]
mod tests {
    /// Every statement is one read: a SELECT, one statement, no
    /// semicolon; nothing that writes or changes the session.
    #[test]
    fn the_sql_it_may_send_is_a_fixed_list_of_reads() {
        for q in super::sql::ALL {
            let t = q.text();
            assert!(t.starts_with("SELECT "), "{t}");
            assert!(!t.contains(';'), "{t}");
            let upper = t.to_ascii_uppercase();
            for word in [
                "INSERT ",
                "UPDATE ",
                "DELETE ",
                "TRUNCATE",
                "CREATE ",
                "ALTER ",
                "DROP ",
                "GRANT ",
                "REVOKE ",
                "SET ROLE",
                "SET_CONFIG",
                "COPY ",
                "DO ",
                "CALL ",
            ] {
                assert!(!upper.contains(word), "{word} in {t}");
            }
        }
    }
}
