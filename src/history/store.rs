//! The two databases a history lives in, behind one small interface: SQL
//! with `?` placeholders and values that are integers or text (nullable).
//! The schema and every statement are written once, in the SQL both
//! SQLite and PostgreSQL accept (`BIGINT`, `TEXT`); only opening,
//! locking and placeholders differ.

use std::path::{Path, PathBuf};

use super::HistoryError;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Value {
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => *v,
            Value::Text(t) => t.as_deref().and_then(|t| t.parse().ok()),
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => t.as_deref(),
            Value::Int(_) => None,
        }
    }

    /// The text, or "" when null.
    pub fn str(&self) -> String {
        self.text().unwrap_or_default().to_string()
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(Some(i64::try_from(v).unwrap_or(i64::MAX)))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

pub type Row = Vec<Value>;

/// One database connection.
pub trait Backend {
    /// Statements without parameters (the schema, `COMMIT`).
    fn batch(&mut self, sql: &str) -> Result<(), HistoryError>;
    /// Starts the one write transaction of a run: writers queue behind each
    /// other (SQLite `BEGIN IMMEDIATE` with a busy timeout; PostgreSQL an
    /// exclusive lock on the runs table), readers are not blocked.
    fn begin_write(&mut self) -> Result<(), HistoryError>;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, HistoryError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, HistoryError>;
    /// The names of the tables in the database (or PostgreSQL schema).
    fn tables(&mut self) -> Result<Vec<String>, HistoryError>;
    /// The store, for messages: a path, or a URL without its password.
    fn describe(&self) -> String;
    /// Whether the database is the embedded one: there dbaudit owns the
    /// whole file and refuses one holding other tables.
    fn embedded(&self) -> bool;
}

/// Opens `spec`: a `postgres://` or `postgresql://` URL, else a file path.
pub fn open(spec: &str) -> Result<Box<dyn Backend>, HistoryError> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            return Ok(Box::new(pg::Postgres::open(spec)?));
        }
        #[cfg(not(feature = "postgres"))]
        {
            return Err(HistoryError::Open {
                store: redact(spec),
                message: "this dbaudit was built without the `postgres` feature".to_string(),
            });
        }
    }
    Ok(Box::new(Sqlite::open(Path::new(spec))?))
}

/// `postgres://user:secret@host/db` as `postgres://user@host/db`: a
/// password never reaches a message, a log or a report.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    // `password=` in the query string too.
    let tail = tail
        .split('&')
        .map(|p| {
            let (k, _) = p.split_once('=').unwrap_or((p, ""));
            if k.trim_start_matches('?').eq_ignore_ascii_case("password") {
                format!("{k}=***")
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// How long a writer waits for another one to finish before giving up.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Sqlite {
    conn: rusqlite::Connection,
    path: PathBuf,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, HistoryError> {
        let err = |e: rusqlite::Error| HistoryError::Open {
            store: path.display().to_string(),
            message: e.to_string(),
        };
        if path.is_dir() {
            return Err(HistoryError::Open {
                store: path.display().to_string(),
                message: "is a directory, not a history file".to_string(),
            });
        }
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mut s = Sqlite {
            conn,
            path: path.to_path_buf(),
        };
        // The first read tells a SQLite file from anything else ("file is
        // not a database"); nothing is written before it.
        s.tables()?;
        Ok(s)
    }

    fn err(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::Database {
            store: self.describe(),
            message: e.to_string(),
        }
    }
}

fn sqlite_params(params: &[Value]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|v| match v {
            Value::Int(Some(i)) => rusqlite::types::Value::Integer(*i),
            Value::Text(Some(t)) => rusqlite::types::Value::Text(t.clone()),
            Value::Int(None) | Value::Text(None) => rusqlite::types::Value::Null,
        })
        .collect()
}

impl Backend for Sqlite {
    fn batch(&mut self, sql: &str) -> Result<(), HistoryError> {
        self.conn.execute_batch(sql).map_err(|e| self.err(e))
    }

    fn begin_write(&mut self) -> Result<(), HistoryError> {
        // WAL: readers (`dbaudit history`, the HTML report) never wait for
        // a writer. Called only once the file is known to be ours.
        // The page cache bounded at 64 MiB (SQLite's default is 2 MiB): a
        // run is recorded an account at a time, so the fingerprint index
        // is written in no order, and a small cache spilled and re-read
        // its pages (10 s more at 800,000 findings).
        self.batch("PRAGMA journal_mode=WAL; PRAGMA cache_size=-65536; BEGIN IMMEDIATE")
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, HistoryError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(sqlite_params(params)))
            .map_err(|e| HistoryError::Database {
                store: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, HistoryError> {
        let store = self.describe();
        let err = |e: rusqlite::Error| HistoryError::Database {
            store: store.clone(),
            message: e.to_string(),
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(sqlite_params(params)), |row| {
                (0..n)
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Integer(v) => Value::Int(Some(v)),
                            rusqlite::types::ValueRef::Null => Value::Text(None),
                            rusqlite::types::ValueRef::Real(v) => Value::Int(Some(v as i64)),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Value::Text(Some(String::from_utf8_lossy(t).into_owned()))
                            }
                        })
                    })
                    .collect::<Result<Row, rusqlite::Error>>()
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    fn tables(&mut self) -> Result<Vec<String>, HistoryError> {
        let rows = self
            .query(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                &[],
            )
            .map_err(|e| match e {
                HistoryError::Database { store, message } => HistoryError::Open {
                    store,
                    message: format!(
                        "{message} (not a dbaudit history file; it was left as it is)"
                    ),
                },
                e => e,
            })?;
        Ok(rows.iter().map(|r| r[0].str()).collect())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn embedded(&self) -> bool {
        true
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use super::{Backend, HistoryError, Row, Value, redact};

    pub struct Postgres {
        client: postgres::Client,
        url: String,
    }

    impl Postgres {
        pub fn open(url: &str) -> Result<Postgres, HistoryError> {
            let shown = redact(url);
            // With its causes: "error performing TLS handshake" alone does
            // not say that the certificate's issuer is unknown.
            let err = |e: postgres::Error| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                HistoryError::Open {
                    store: shown.clone(),
                    message,
                }
            };
            let (plain, root_cert) = super::super::tls::split_url(url);
            let mut config: postgres::Config = plain.parse().map_err(err)?;
            // The password from the environment, as libpq reads it: a URL
            // on the command line is visible to every user of the machine.
            if config.get_password().is_none()
                && let Ok(p) = std::env::var("PGPASSWORD")
            {
                config.password(p);
            }
            let root_cert = root_cert.or_else(|| std::env::var("PGSSLROOTCERT").ok());
            let tls =
                super::super::tls::MakeRustls::new(root_cert.as_deref().map(std::path::Path::new))
                    .map_err(|message| HistoryError::Open {
                        store: shown.clone(),
                        message,
                    })?;
            // sslmode as tokio-postgres reads it: `prefer` (the default)
            // uses TLS when the server offers it, `require` insists,
            // `disable` never; a certificate is always verified.
            let client = config.connect(tls).map_err(err)?;
            Ok(Postgres { client, url: shown })
        }

        fn err(&self, e: postgres::Error) -> HistoryError {
            HistoryError::Database {
                store: self.url.clone(),
                message: e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.to_string()),
            }
        }
    }

    /// The advisory lock key of history writers ("dbaudit" in ASCII).
    const WRITE_LOCK: i64 = 0x0064_6261_7564_6974;

    /// `?` placeholders as PostgreSQL's `$1, $2…` (the statements are ours
    /// and have no `?` in literals).
    fn numbered(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    fn params(values: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
        values
            .iter()
            .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
                match v {
                    Value::Int(i) => Box::new(*i),
                    Value::Text(t) => Box::new(t.clone()),
                }
            })
            .collect()
    }

    impl Backend for Postgres {
        fn batch(&mut self, sql: &str) -> Result<(), HistoryError> {
            self.client.batch_execute(sql).map_err(|e| self.err(e))
        }

        fn begin_write(&mut self) -> Result<(), HistoryError> {
            // Runs are recorded one after the other: each reads the open
            // periods and writes their changes. A transaction-scoped
            // advisory lock serialises writers (and the first migration,
            // before any table exists) without blocking readers.
            self.batch(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            ))
        }

        fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, HistoryError> {
            let owned = params(values);
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                owned.iter().map(|b| b.as_ref()).collect();
            self.client
                .execute(numbered(sql).as_str(), &refs)
                .map_err(|e| self.err(e))
        }

        fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, HistoryError> {
            use postgres::types::Type;
            let owned = params(values);
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                owned.iter().map(|b| b.as_ref()).collect();
            let rows = self
                .client
                .query(numbered(sql).as_str(), &refs)
                .map_err(|e| self.err(e))?;
            Ok(rows
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| match *row.columns()[i].type_() {
                            Type::INT8 => Value::Int(row.get::<_, Option<i64>>(i)),
                            Type::INT4 => Value::Int(row.get::<_, Option<i32>>(i).map(i64::from)),
                            _ => Value::Text(row.get::<_, Option<String>>(i)),
                        })
                        .collect()
                })
                .collect())
        }

        fn tables(&mut self) -> Result<Vec<String>, HistoryError> {
            let rows = self.query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
                &[],
            )?;
            Ok(rows.iter().map(|r| r[0].str()).collect())
        }

        fn describe(&self) -> String {
            self.url.clone()
        }

        fn embedded(&self) -> bool {
            false
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn placeholders_are_numbered_in_order() {
            assert_eq!(
                super::numbered("INSERT INTO t VALUES (?, ?), (?, ?)"),
                "INSERT INTO t VALUES ($1, $2), ($3, $4)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_leave_the_url() {
        assert_eq!(
            redact("postgres://audit:s3cret@db.internal:5432/history"),
            "postgres://audit@db.internal:5432/history"
        );
        assert_eq!(
            redact("postgresql://db/history?user=a&password=s3cret"),
            "postgresql://db/history?user=a&password=***"
        );
        assert_eq!(redact("postgres://db/h"), "postgres://db/h");
    }
}
