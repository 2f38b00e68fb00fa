//! The history's schema, as migrations embedded in the binary: each one
//! takes the store from version N-1 to N and runs in the write transaction
//! that records the new version, so a store is never half-migrated. The
//! SQL is the common ground of SQLite and PostgreSQL.

use super::HistoryError;
use super::store::Backend;

/// Version N is `MIGRATIONS[N - 1]`. Append only: a released migration is
/// never edited (the stores it created exist).
pub const MIGRATIONS: &[&str] = &[
    // 1: runs; each finding's identity once (`dbaudit_keys`) and its outcome
    // in every run (`dbaudit_findings`, one row per fingerprint and run: a
    // few bytes); the messages of findings that did not pass, each text
    // once (`dbaudit_messages`: they repeat night after night); the periods
    // in which a finding was open.
    "CREATE TABLE dbaudit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE dbaudit_runs (
       seq BIGINT PRIMARY KEY,
       run_id TEXT NOT NULL UNIQUE,
       at TEXT NOT NULL,
       recorded_at TEXT NOT NULL,
       tool_version TEXT NOT NULL,
       rule_pack TEXT NOT NULL,
       scope_key TEXT NOT NULL,
       accounts TEXT NOT NULL,
       rules TEXT NOT NULL,
       exit_code BIGINT NOT NULL,
       pass BIGINT NOT NULL,
       fail BIGINT NOT NULL,
       error BIGINT NOT NULL,
       waived BIGINT NOT NULL,
       opened BIGINT NOT NULL,
       closed BIGINT NOT NULL,
       findings_kept BIGINT NOT NULL
     );
     CREATE INDEX dbaudit_runs_scope ON dbaudit_runs (scope_key, seq);
     CREATE TABLE dbaudit_keys (
       key_id BIGINT PRIMARY KEY,
       fingerprint TEXT NOT NULL UNIQUE,
       rule_id TEXT NOT NULL,
       account TEXT NOT NULL,
       account_id TEXT NOT NULL,
       environment TEXT NOT NULL,
       region TEXT NOT NULL,
       resource_arn TEXT NOT NULL,
       resource_id TEXT NOT NULL
     );
     CREATE TABLE dbaudit_messages (
       message_id BIGINT PRIMARY KEY,
       digest TEXT NOT NULL UNIQUE,
       message TEXT NOT NULL
     );
     CREATE TABLE dbaudit_findings (
       seq BIGINT NOT NULL REFERENCES dbaudit_runs (seq),
       key_id BIGINT NOT NULL REFERENCES dbaudit_keys (key_id),
       outcome TEXT NOT NULL,
       severity TEXT NOT NULL,
       waiver TEXT,
       message_id BIGINT REFERENCES dbaudit_messages (message_id),
       PRIMARY KEY (seq, key_id)
     );
     CREATE TABLE dbaudit_periods (
       fingerprint TEXT NOT NULL,
       rule_id TEXT NOT NULL,
       account TEXT NOT NULL,
       account_id TEXT NOT NULL,
       environment TEXT NOT NULL,
       region TEXT NOT NULL,
       resource_arn TEXT NOT NULL,
       resource_id TEXT NOT NULL,
       severity TEXT NOT NULL,
       opened_seq BIGINT NOT NULL REFERENCES dbaudit_runs (seq),
       opened_at TEXT NOT NULL,
       closed_seq BIGINT REFERENCES dbaudit_runs (seq),
       closed_at TEXT,
       closed_by TEXT,
       waiver TEXT,
       PRIMARY KEY (fingerprint, opened_seq)
     );
     CREATE INDEX dbaudit_periods_open ON dbaudit_periods (closed_seq);
     CREATE INDEX dbaudit_periods_rule ON dbaudit_periods (rule_id, resource_arn);",
    // 2: what makes a run a baseline (`--baseline last`): the gate it
    // passed or failed at which `--fail-on`, or an acceptance with who and
    // why (`dbaudit history accept`); the digest of what was evaluated, so
    // that the same snapshot is not recorded twice. Runs recorded before
    // this version have none of them: they are never a baseline unless
    // accepted.
    "ALTER TABLE dbaudit_runs ADD COLUMN fail_on TEXT;
     ALTER TABLE dbaudit_runs ADD COLUMN gate_status TEXT;
     ALTER TABLE dbaudit_runs ADD COLUMN input_digest TEXT;
     ALTER TABLE dbaudit_runs ADD COLUMN accepted_at TEXT;
     ALTER TABLE dbaudit_runs ADD COLUMN accepted_by TEXT;
     ALTER TABLE dbaudit_runs ADD COLUMN accepted_reason TEXT;
     CREATE INDEX dbaudit_runs_digest ON dbaudit_runs (input_digest);",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The store's version (0: empty), refusing what is not a dbaudit history.
fn version(db: &mut dyn Backend) -> Result<i64, HistoryError> {
    let tables = db.tables()?;
    if !tables.iter().any(|t| t == "dbaudit_meta") {
        let theirs: Vec<&String> = tables
            .iter()
            .filter(|t| !t.starts_with("sqlite_"))
            .collect();
        // A team's PostgreSQL database may hold other applications' tables;
        // a file is dbaudit's alone.
        if db.embedded() && !theirs.is_empty() {
            return Err(HistoryError::Foreign {
                store: db.describe(),
                tables: theirs
                    .iter()
                    .take(5)
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        return Ok(0);
    }
    let rows = db.query(
        "SELECT key, value FROM dbaudit_meta WHERE key IN ('application', 'schema_version')",
        &[],
    )?;
    let get = |k: &str| rows.iter().find(|r| r[0].str() == k).map(|r| r[1].str());
    if get("application").as_deref() != Some("dbaudit") {
        return Err(HistoryError::Foreign {
            store: db.describe(),
            tables: "dbaudit_meta without application = dbaudit".to_string(),
        });
    }
    get("schema_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| HistoryError::Database {
            store: db.describe(),
            message: "dbaudit_meta has no valid schema_version".to_string(),
        })
}

/// Brings the store to [`latest`], or refuses it.
pub fn migrate(db: &mut dyn Backend) -> Result<(), HistoryError> {
    let check = |db: &mut dyn Backend, v: i64| {
        if v > latest() {
            Err(HistoryError::Newer {
                store: db.describe(),
                found: v,
                supported: latest(),
            })
        } else {
            Ok(v)
        }
    };
    let v = version(db)?;
    if check(db, v)? == latest() {
        return Ok(());
    }
    db.begin_write()?;
    let result = (|| {
        // Another process may have migrated while this one waited.
        let found = version(db)?;
        let mut v = check(db, found)?;
        while v < latest() {
            db.batch(MIGRATIONS[v as usize])?;
            v += 1;
        }
        db.execute("DELETE FROM dbaudit_meta", &[])?;
        db.execute(
            "INSERT INTO dbaudit_meta (key, value) VALUES ('application', 'dbaudit'), ('schema_version', ?)",
            &[v.to_string().into()],
        )?;
        db.batch("COMMIT")
    })();
    if result.is_err() {
        let _ = db.batch("ROLLBACK");
    }
    result
}
