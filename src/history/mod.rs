//! The findings history: every run's findings, and per finding the
//! periods in which it was open — "since when", "what is new since
//! yesterday", "how long do critical findings stay open".
//!
//! One store, two databases: an embedded SQLite file (the default, one file
//! next to the reports) or a PostgreSQL database a team shares
//! (`postgres://…`), with the same schema ([`schema`]), versioned by
//! migrations embedded in the binary and applied on open. A store written
//! by a newer dbaudit is refused, and so is a file that is not a dbaudit
//! history; neither is ever modified.
//!
//! A run is recorded in one transaction: an interrupted run leaves nothing,
//! and two runs recording at once are applied one after the other.
//!
//! **Unscanned is not fixed.** A period opens when a finding fails (or is
//! waived) without an open period. It closes only when a later run
//! *evaluated* that rule on that account and region ([`Coverage`]) and the
//! finding passed there or was not produced at all (the resource is gone).
//! A run that did not cover the account — not collected, an `error`
//! outcome, a narrower `--account`/`--environment`/`--rule` selection —
//! neither closes nor reopens anything.

mod coverage;
mod query;
mod schema;
pub mod store;
#[cfg(feature = "postgres")]
pub(crate) mod tls;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use coverage::Coverage;
pub use query::{OpenFilter, Period, Stats, StatsRow};
use store::{Backend, Value};

use crate::finding::{Finding, Outcome};
use crate::report::{Counts, FindingSummary, Report};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {store}: cannot open: {message}")]
    Open { store: String, message: String },
    #[error("history {store}: {message}")]
    Database { store: String, message: String },
    #[error(
        "history {store}: not a dbaudit history (it holds other tables: {tables}); it was left as it is — give a new file"
    )]
    Foreign { store: String, tables: String },
    #[error(
        "history {store}: written by a newer dbaudit (schema version {found}; this one knows up to {supported}); upgrade dbaudit to use it — it was left as it is"
    )]
    Newer {
        store: String,
        found: i64,
        supported: i64,
    },
}

impl From<HistoryError> for crate::error::Error {
    fn from(e: HistoryError) -> Self {
        crate::error::Error::History(e.to_string())
    }
}

/// An open history store.
pub struct History {
    db: Box<dyn Backend>,
}

/// One recorded run, as `dbaudit history runs` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Order of recording (1, 2, …): periods follow it.
    pub seq: i64,
    pub run_id: String,
    /// The evaluated snapshot's `collected_at`: when the estate looked like
    /// this. Ages and times to fix are measured on it.
    pub at: String,
    /// When the run was recorded (wall clock).
    pub recorded_at: String,
    pub tool_version: String,
    /// The built-in rule pack's digest (`dbaudit --version`).
    pub rule_pack: String,
    pub accounts: Vec<RunAccount>,
    /// How many rules were evaluated.
    pub rules: usize,
    pub counts: Counts,
    /// The gate's exit code.
    pub exit_code: i32,
    /// Periods this run opened and closed.
    pub opened: usize,
    pub closed: usize,
    /// The gate's `--fail-on` and verdict (`pass`, `fail`, `incomplete`);
    /// `None` for runs recorded before dbaudit kept them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// `dbaudit history accept`: who accepted the run's state, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Acceptance>,
}

/// A run whose state was accepted as a baseline by a person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Acceptance {
    /// Wall clock of the acceptance.
    pub at: String,
    pub by: String,
    pub reason: String,
}

/// What a run covered of one account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunAccount {
    pub name: String,
    pub account_id: String,
    pub environment: String,
    /// Regions with data.
    pub regions: Vec<String>,
}

/// The accounts a report covers.
pub fn run_accounts(report: &Report) -> Vec<RunAccount> {
    let mut accounts: Vec<RunAccount> = report
        .accounts
        .iter()
        .map(|a| {
            let mut regions = a.inventory.regions.clone();
            regions.sort();
            RunAccount {
                name: a.name.clone(),
                account_id: a.account_id.clone(),
                environment: a.environment.clone(),
                regions,
            }
        })
        .collect();
    accounts.sort();
    accounts
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 parameters and
/// PostgreSQL's 65,535, and few round trips to a server.
const INSERT_BATCH: usize = 400;

impl History {
    /// Opens (creating or migrating) the store `spec`: a file path or a
    /// `postgres://` URL.
    pub fn open(spec: &str) -> Result<History, HistoryError> {
        let mut h = History {
            db: store::open(spec)?,
        };
        schema::migrate(h.db.as_mut())?;
        Ok(h)
    }

    pub fn describe(&self) -> String {
        self.db.describe()
    }

    /// The run's spooled findings could not be read back.
    fn unreadable(&self, e: std::io::Error) -> HistoryError {
        HistoryError::Database {
            store: self.describe(),
            message: format!("reading the run's findings: {e}"),
        }
    }

    /// What the HTML report shows of the history: the trend over the last
    /// `runs` runs, open ages, and when each open finding opened.
    pub fn view(
        &mut self,
        runs: usize,
    ) -> Result<crate::report::render::HistoryView, HistoryError> {
        let open = self.open_periods(&OpenFilter::default())?;
        Ok(crate::report::render::HistoryView {
            store: self.describe(),
            trend: self.trend(runs)?,
            ages: query::ages(&open),
            open_since: open
                .into_iter()
                .map(|p| (p.fingerprint, (p.opened_at, p.days)))
                .collect(),
        })
    }

    /// Records a run in one transaction and applies it to the periods;
    /// returns the run as recorded. `recorded_at` is the wall clock.
    pub fn record(
        &mut self,
        report: &Report,
        recorded_at: &str,
    ) -> Result<RunRecord, HistoryError> {
        let run = self.begin_record(report, recorded_at, "")?;
        self.commit()?;
        Ok(run)
    }

    /// Records a run in a transaction left open: what the store answers
    /// (the HTML report's trend) includes it, but nothing is kept until
    /// [`History::commit`]; [`History::rollback`] (or dropping the store)
    /// forgets it. A command commits only once every output is written, so
    /// that a failed run leaves no recorded run behind. `input_digest`
    /// identifies what was evaluated ([`History::recorded_input`]).
    pub fn begin_record(
        &mut self,
        report: &Report,
        recorded_at: &str,
        input_digest: &str,
    ) -> Result<RunRecord, HistoryError> {
        self.db.begin_write()?;
        match self.record_in_transaction(report, recorded_at, input_digest) {
            Ok(run) => Ok(run),
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Keeps the run of [`History::begin_record`].
    pub fn commit(&mut self) -> Result<(), HistoryError> {
        self.db.batch("COMMIT")
    }

    /// Forgets the run of [`History::begin_record`].
    pub fn rollback(&mut self) {
        let _ = self.db.batch("ROLLBACK");
    }

    /// The run that recorded the same input (snapshot, rules and
    /// configuration digest), if any: it is not recorded twice.
    pub fn recorded_input(
        &mut self,
        input_digest: &str,
    ) -> Result<Option<RunRecord>, HistoryError> {
        Ok(self
            .runs_where("WHERE input_digest = ?", &[input_digest.into()], 1)?
            .into_iter()
            .next())
    }

    /// The latest recorded run (any), for the time-order check.
    pub fn latest_run(&mut self) -> Result<Option<RunRecord>, HistoryError> {
        Ok(self.runs(1)?.into_iter().next())
    }

    /// `dbaudit history accept RUN`: the run's state becomes a baseline.
    /// `run` is a run id or a sequence number. Returns the run as accepted.
    pub fn accept(
        &mut self,
        run: &str,
        by: &str,
        reason: &str,
        at: &str,
    ) -> Result<RunRecord, HistoryError> {
        let found = self.find_run(run)?.ok_or_else(|| HistoryError::Database {
            store: self.describe(),
            message: format!("no run `{run}` (`dbaudit history runs` lists them)"),
        })?;
        if found.accepted.is_none() {
            // Refused for a run without per-finding rows: it could not
            // serve as a baseline anyway.
            let kept = self
                .db
                .query(
                    "SELECT findings_kept FROM dbaudit_runs WHERE seq = ?",
                    &[found.seq.into()],
                )?
                .first()
                .and_then(|r| r[0].int())
                .unwrap_or(0);
            if kept == 0 {
                return Err(HistoryError::Database {
                    store: self.describe(),
                    message: format!(
                        "run {} was pruned (its findings are no longer kept): it cannot be a baseline",
                        found.run_id
                    ),
                });
            }
        }
        self.db.begin_write()?;
        let r = self.db.execute(
            "UPDATE dbaudit_runs SET accepted_at = ?, accepted_by = ?, accepted_reason = ? WHERE seq = ?",
            &[at.into(), by.into(), reason.into(), found.seq.into()],
        );
        match r {
            Ok(_) => self.db.batch("COMMIT")?,
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                return Err(e);
            }
        }
        Ok(self.find_run(run)?.unwrap_or(found))
    }

    fn find_run(&mut self, run: &str) -> Result<Option<RunRecord>, HistoryError> {
        let by_seq = run.parse::<i64>().ok();
        Ok(self
            .runs_where(
                "WHERE run_id = ? OR seq = ?",
                &[run.into(), by_seq.unwrap_or(-1).into()],
                1,
            )?
            .into_iter()
            .next())
    }

    fn record_in_transaction(
        &mut self,
        report: &Report,
        recorded_at: &str,
        input_digest: &str,
    ) -> Result<RunRecord, HistoryError> {
        let seq = self
            .db
            .query("SELECT MAX(seq) FROM dbaudit_runs", &[])?
            .first()
            .and_then(|r| r[0].int())
            .unwrap_or(0)
            + 1;
        let at = report.collected_at.clone();
        let accounts = run_accounts(report);
        let run_id = format!(
            "{}-{seq}",
            at.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        );
        let coverage = Coverage::of(report).map_err(|e| self.unreadable(e))?;
        let open = self.open_periods_raw()?;
        let mut run = RunRecord {
            seq,
            run_id,
            at: at.clone(),
            recorded_at: recorded_at.to_string(),
            tool_version: report.tool.version.clone(),
            rule_pack: report.tool.rule_pack.clone(),
            accounts,
            rules: report.rules.len(),
            counts: report.summary.total,
            exit_code: report.gate.exit_code,
            opened: 0,
            closed: 0,
            fail_on: Some(report.gate.fail_on.as_str().to_string()),
            gate: Some(report.gate.status.as_str().to_string()),
            accepted: None,
        };
        // The periods opened and closed are counted as the findings are
        // written, and set at the end.
        self.db.execute(
            "INSERT INTO dbaudit_runs (seq, run_id, at, recorded_at, tool_version, rule_pack, scope_key, accounts, rules, exit_code, pass, fail, error, waived, opened, closed, findings_kept, fail_on, gate_status, input_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 1, ?, ?, ?)",
            &[
                seq.into(),
                run.run_id.as_str().into(),
                at.as_str().into(),
                recorded_at.into(),
                run.tool_version.as_str().into(),
                run.rule_pack.as_str().into(),
                // scope_key (schema 1) is no longer read: `--baseline last`
                // chooses by acceptance and coverage (`baseline_for`).
                "".into(),
                serde_json::to_string(&run.accounts).unwrap_or_default().into(),
                serde_json::to_string(&coverage.rules()).unwrap_or_default().into(),
                i64::from(run.exit_code).into(),
                run.counts.pass.into(),
                run.counts.fail.into(),
                run.counts.error.into(),
                run.counts.waived.into(),
                run.fail_on.clone().into(),
                run.gate.clone().into(),
                (!input_digest.is_empty()).then(|| input_digest.to_string()).into(),
            ],
        )?;
        // The findings are read and written an account at a time (a
        // spooled run's are never all in memory). A fingerprint names the
        // account by its id, so an account's findings are planned alone
        // unless two accounts of the run share an id (then all at once).
        let next_ids = (
            self.max_id("key_id", "dbaudit_keys")? + 1,
            self.max_id("message_id", "dbaudit_messages")? + 1,
        );
        let mut recording = Recording::new(seq, &at, &open, next_ids);
        let mut ids = BTreeSet::new();
        let shared_id = !report.accounts.iter().all(|a| ids.insert(&a.account_id));
        if shared_id {
            let all = report.findings.load().map_err(|e| self.unreadable(e))?;
            self.record_findings(&mut recording, &all, &coverage)?;
        } else {
            for chunk in report.findings.chunks() {
                let chunk = chunk.map_err(|e| self.unreadable(e))?;
                self.record_findings(&mut recording, &chunk, &coverage)?;
            }
        }
        // The open periods of identities this run had no finding for: gone
        // where it evaluated with data, else still open.
        let unseen: Vec<OpenPeriod> = (open.iter().zip(&recording.seen))
            .filter(|(_, seen)| !**seen)
            .map(|(p, _)| p.clone())
            .collect();
        let gone = plan(&unseen, &BTreeMap::new(), &coverage);
        self.apply_plan(&recording, &gone)?;
        run.opened = recording.opened;
        run.closed = recording.closed + gone.close.len();
        self.db.execute(
            "UPDATE dbaudit_runs SET opened = ?, closed = ? WHERE seq = ?",
            &[run.opened.into(), run.closed.into(), seq.into()],
        )?;
        Ok(run)
    }

    /// The largest id of `column` in `table` (0 when empty).
    fn max_id(&mut self, column: &str, table: &str) -> Result<i64, HistoryError> {
        Ok(self
            .db
            .query(&format!("SELECT MAX({column}) FROM {table}"), &[])?
            .first()
            .and_then(|r| r[0].int())
            .unwrap_or(0))
    }

    /// One account's findings (or all of them) recorded: one row per
    /// fingerprint, the periods their open periods and failures change.
    fn record_findings(
        &mut self,
        recording: &mut Recording<'_>,
        findings: &[Finding],
        coverage: &Coverage,
    ) -> Result<(), HistoryError> {
        let now = representatives(findings);
        let mut mine = Vec::new();
        for fp in now.keys() {
            for &i in recording.by_fingerprint.get(fp).into_iter().flatten() {
                recording.seen[i] = true;
                mine.push(recording.open[i].clone());
            }
        }
        // Every open period of these fingerprints is in `mine`: the plan
        // never finds one gone here (that is decided once, at the end).
        let plan = plan(&mine, &now, coverage);
        self.insert_findings(recording, &now)?;
        self.apply_plan(recording, &plan)?;
        recording.opened += plan.open.len();
        recording.closed += plan.close.len();
        Ok(())
    }

    /// A plan's closings, waiver changes and openings written.
    fn apply_plan(
        &mut self,
        recording: &Recording<'_>,
        plan: &Plan<'_>,
    ) -> Result<(), HistoryError> {
        let (seq, at) = (recording.seq, recording.at);
        for (key, by) in &plan.close {
            self.db.execute(
                "UPDATE dbaudit_periods SET closed_seq = ?, closed_at = ?, closed_by = ? WHERE fingerprint = ? AND opened_seq = ?",
                &[seq.into(), at.into(), (*by).into(), key.0.as_str().into(), key.1.into()],
            )?;
        }
        for (key, waiver) in &plan.waiver {
            self.db.execute(
                "UPDATE dbaudit_periods SET waiver = ? WHERE fingerprint = ? AND opened_seq = ?",
                &[waiver.clone().into(), key.0.as_str().into(), key.1.into()],
            )?;
        }
        let rows: Vec<Vec<Value>> = plan
            .open
            .iter()
            .map(|f| {
                let mut row = identity(f);
                row.extend([
                    f.severity.as_str().into(),
                    seq.into(),
                    at.into(),
                    waiver_of(f).into(),
                ]);
                row
            })
            .collect();
        self.insert_rows(
            "dbaudit_periods",
            &format!("{IDENTITY_COLUMNS}, severity, opened_seq, opened_at, waiver"),
            &rows,
        )
    }

    /// One row per fingerprint of the run; a fingerprint seen for the
    /// first time gets its key (identity) row.
    fn insert_findings(
        &mut self,
        recording: &mut Recording<'_>,
        now: &BTreeMap<&str, &Finding>,
    ) -> Result<(), HistoryError> {
        let fingerprints: Vec<&str> = now.keys().copied().collect();
        let mut keys = self.ids_of(
            "SELECT fingerprint, key_id FROM dbaudit_keys WHERE fingerprint IN",
            &fingerprints,
        )?;
        let mut new_keys: Vec<Vec<Value>> = Vec::new();
        for (fp, f) in now {
            if !keys.contains_key(*fp) {
                keys.insert(fp.to_string(), recording.next_key);
                let mut row = vec![recording.next_key.into()];
                row.extend(identity(f));
                new_keys.push(row);
                recording.next_key += 1;
            }
        }
        self.insert_rows(
            "dbaudit_keys",
            &format!("key_id, {IDENTITY_COLUMNS}"),
            &new_keys,
        )?;
        let messages = self.message_ids(
            recording,
            now.values().filter(|f| f.outcome != Outcome::Pass),
        )?;
        let rows: Vec<Vec<Value>> = now
            .iter()
            .map(|(fp, f)| {
                vec![
                    recording.seq.into(),
                    keys[*fp].into(),
                    f.outcome.as_str().into(),
                    f.severity.as_str().into(),
                    waiver_of(f).into(),
                    Value::Int(messages.get(&*f.message).copied()),
                ]
            })
            .collect();
        self.insert_rows(
            "dbaudit_findings",
            "seq, key_id, outcome, severity, waiver, message_id",
            &rows,
        )
    }

    /// `(text, id)` rows of `select … IN` for these values, asked a batch
    /// at a time (only the ids a chunk needs are read, never a whole table).
    fn ids_of(
        &mut self,
        select_in: &str,
        values: &[&str],
    ) -> Result<HashMap<String, i64>, HistoryError> {
        let mut out = HashMap::new();
        for batch in values.chunks(INSERT_BATCH) {
            let marks = vec!["?"; batch.len()].join(", ");
            let params: Vec<Value> = batch.iter().map(|v| (*v).into()).collect();
            for r in self.db.query(&format!("{select_in} ({marks})"), &params)? {
                out.insert(r[0].str(), r[1].int().unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// The id of each message, stored once: text → id.
    fn message_ids<'f>(
        &mut self,
        recording: &mut Recording<'_>,
        findings: impl Iterator<Item = &'f &'f Finding>,
    ) -> Result<HashMap<&'f str, i64>, HistoryError> {
        // Each text once, in the findings' order (new ids are given in it).
        let mut seen = HashSet::new();
        let digests: Vec<(&str, String)> = findings
            .filter(|f| seen.insert(&*f.message))
            .map(|f| (&*f.message, message_digest(&f.message)))
            .collect();
        let asked: Vec<&str> = digests.iter().map(|(_, d)| d.as_str()).collect();
        let known = self.ids_of(
            "SELECT digest, message_id FROM dbaudit_messages WHERE digest IN",
            &asked,
        )?;
        let mut ids: HashMap<&str, i64> = HashMap::new();
        let mut new_rows: Vec<Vec<Value>> = Vec::new();
        let mut new_ids: HashMap<&str, i64> = HashMap::new();
        for (text, digest) in &digests {
            let id = match known.get(digest).or_else(|| new_ids.get(digest.as_str())) {
                Some(id) => *id,
                None => {
                    let id = recording.next_message;
                    recording.next_message += 1;
                    new_rows.push(vec![id.into(), digest.as_str().into(), (*text).into()]);
                    new_ids.insert(digest, id);
                    id
                }
            };
            ids.insert(text, id);
        }
        self.insert_rows("dbaudit_messages", "message_id, digest, message", &new_rows)?;
        Ok(ids)
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &str,
        rows: &[Vec<Value>],
    ) -> Result<(), HistoryError> {
        let Some(width) = rows.first().map(Vec::len) else {
            return Ok(());
        };
        let one = format!("({})", vec!["?"; width].join(", "));
        for chunk in rows.chunks(INSERT_BATCH) {
            let sql = format!(
                "INSERT INTO {table} ({columns}) VALUES {}",
                vec![one.as_str(); chunk.len()].join(", ")
            );
            let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
            self.db.execute(&sql, &params)?;
        }
        Ok(())
    }

    /// Drops the per-run findings of all but the latest `keep` runs (and
    /// the identities and messages only they used), in one transaction.
    /// Runs, their counts and coverage, and every period stay: `history
    /// runs`, `open`, `finding` and `stats` answer as before; `--baseline
    /// last` compares only with runs whose findings are kept. An SQLite
    /// file is then compacted. Returns how many runs lost their findings.
    pub fn prune(&mut self, keep: usize) -> Result<usize, HistoryError> {
        self.db.begin_write()?;
        let result = (|| {
            // The latest runs by their snapshots' time (a backfilled run
            // takes its place in time, not at the end).
            let kept: Vec<String> = self
                .db
                .query(
                    &format!(
                        "SELECT seq FROM dbaudit_runs ORDER BY at DESC, seq DESC LIMIT {keep}"
                    ),
                    &[],
                )?
                .iter()
                .filter_map(|r| r[0].int())
                .map(|s| s.to_string())
                .collect();
            let others = if kept.is_empty() {
                String::new()
            } else {
                format!("AND seq NOT IN ({})", kept.join(", "))
            };
            let pruned = self.db.execute(
                &format!(
                    "UPDATE dbaudit_runs SET findings_kept = 0 WHERE findings_kept = 1 {others}"
                ),
                &[],
            )?;
            self.db.execute(
                &format!("DELETE FROM dbaudit_findings WHERE 1 = 1 {others}"),
                &[],
            )?;
            self.db.execute(
                "DELETE FROM dbaudit_messages WHERE message_id NOT IN (SELECT message_id FROM dbaudit_findings WHERE message_id IS NOT NULL)",
                &[],
            )?;
            self.db.execute(
                "DELETE FROM dbaudit_keys WHERE key_id NOT IN (SELECT key_id FROM dbaudit_findings)",
                &[],
            )?;
            self.db.batch("COMMIT")?;
            Ok(pruned as usize)
        })();
        match result {
            Ok(n) => {
                if n > 0 && self.db.embedded() {
                    self.db.batch("VACUUM")?;
                }
                Ok(n)
            }
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// What `--baseline last` compares `report` with: the latest run whose
    /// state was accepted, either by its gate (it passed at the same or a
    /// stricter `--fail-on` than `report`'s) or by a person (`dbaudit
    /// history accept`). A run that failed its gate is never a baseline,
    /// so a failure stays new until it is fixed, waived or accepted.
    ///
    /// Among those runs the latest that evaluated every rule × account ×
    /// region cell of `report` is chosen; when none did, the latest, with
    /// the cells it did not evaluate listed (their failures are new). The
    /// baseline's failures are those in cells `report` evaluated with data:
    /// a narrower or incomplete run never reports the rest as fixed.
    pub fn baseline_for(&mut self, report: &Report) -> Result<BaselineChoice, HistoryError> {
        let fail_on = report.gate.fail_on;
        let candidates: Vec<RunRecord> = self
            .runs_where(
                "WHERE findings_kept = 1 AND (accepted_at IS NOT NULL OR gate_status = 'pass')",
                &[],
                BASELINE_LOOKBACK,
            )?
            .into_iter()
            .filter(|r| {
                r.accepted.is_some()
                    || r.fail_on
                        .as_deref()
                        .and_then(crate::finding::Severity::parse)
                        .is_some_and(|s| s <= fail_on)
            })
            .collect();
        let Some(latest) = candidates.first() else {
            return Ok(BaselineChoice {
                run: None,
                why: format!(
                    "none: no recorded run passed its gate at --fail-on {fail_on} or stricter, or was accepted; every failure is new (after review, accept a run with `dbaudit history accept RUN --reason TEXT --by NAME`)"
                ),
                uncovered: Vec::new(),
                findings: Vec::new(),
            });
        };
        let this_accounts = run_accounts(report);
        let this_rules: Vec<&str> = report.rules.iter().map(|r| r.doc.id.as_str()).collect();
        // The cells of this run a candidate did not evaluate.
        let mut uncovered = |run: &RunRecord| -> Result<Vec<String>, HistoryError> {
            let rows = self.db.query(
                "SELECT rules FROM dbaudit_runs WHERE seq = ?",
                &[run.seq.into()],
            )?;
            let rules: BTreeSet<String> = rows
                .first()
                .and_then(|row| serde_json::from_str(&row[0].str()).ok())
                .unwrap_or_default();
            let mut out: Vec<String> = (this_rules.iter())
                .filter(|r| !rules.contains(**r))
                .map(|r| format!("rule {r}"))
                .collect();
            for a in &this_accounts {
                match run.accounts.iter().find(|b| b.name == a.name) {
                    None => out.push(format!("account {}", a.name)),
                    Some(b) => out.extend(
                        (a.regions.iter())
                            .filter(|r| !b.regions.contains(r))
                            .map(|r| format!("{}/{r}", a.name)),
                    ),
                }
            }
            Ok(out)
        };
        let mut chosen = None;
        for r in &candidates {
            if uncovered(r)?.is_empty() {
                chosen = Some((r.clone(), Vec::new()));
                break;
            }
        }
        let (run, missing) = match chosen {
            Some(c) => c,
            None => (latest.clone(), uncovered(latest)?),
        };
        let mut why = match &run.accepted {
            Some(a) => format!(
                "run {} (collected {}), accepted by {} on {}: {}",
                run.run_id, run.at, a.by, a.at, a.reason
            ),
            None => format!(
                "run {} (collected {}), the latest whose gate passed at --fail-on {}",
                run.run_id,
                run.at,
                run.fail_on.as_deref().unwrap_or("?")
            ),
        };
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(6).map(String::as_str).collect();
            let more = missing.len().saturating_sub(shown.len());
            why.push_str(&format!(
                "; it did not evaluate {}{}: failures there count as new",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        let coverage = Coverage::of(report).map_err(|e| self.unreadable(e))?;
        let rows = self.db.query(
            "SELECT k.fingerprint, k.rule_id, f.severity, f.outcome, k.account, k.resource_arn, m.message, k.region FROM dbaudit_findings f JOIN dbaudit_keys k ON k.key_id = f.key_id LEFT JOIN dbaudit_messages m ON m.message_id = f.message_id WHERE f.seq = ? AND f.outcome IN ('fail', 'waived') ORDER BY k.fingerprint",
            &[run.seq.into()],
        )?;
        let findings = rows
            .iter()
            .filter(|r| coverage.covers(&r[1].str(), &r[4].str(), &r[7].str()))
            .map(|r| FindingSummary {
                fingerprint: r[0].str(),
                rule_id: r[1].str(),
                severity: crate::finding::Severity::parse(&r[2].str())
                    .unwrap_or(crate::finding::Severity::Info),
                outcome: if r[3].str() == "waived" {
                    Outcome::Waived
                } else {
                    Outcome::Fail
                },
                account: r[4].str(),
                resource_arn: r[5].str(),
                message: r[6].str(),
            })
            .collect();
        Ok(BaselineChoice {
            run: Some(run),
            why,
            uncovered: missing,
            findings,
        })
    }
}

impl History {
    /// Rebuilds every period by replaying the recorded runs in the order of
    /// their snapshots' time (`at`, then recording order), as if each had
    /// been recorded in that order: what `--backfill` needs after recording
    /// a snapshot older than the latest run. Runs in the open transaction
    /// of [`History::begin_record`]. Refused when a run's findings were
    /// pruned (the replay needs every run's findings).
    pub fn rebuild_periods(&mut self) -> Result<(), HistoryError> {
        let pruned = self
            .db
            .query(
                "SELECT COUNT(*) FROM dbaudit_runs WHERE findings_kept = 0",
                &[],
            )?
            .first()
            .and_then(|r| r[0].int())
            .unwrap_or(0);
        if pruned > 0 {
            return Err(HistoryError::Database {
                store: self.describe(),
                message: format!(
                    "{pruned} run(s) were pruned (their findings are gone), so the periods cannot be replayed in time order: a snapshot older than the latest run cannot be inserted"
                ),
            });
        }
        let mut runs: Vec<(i64, String, Vec<RunAccount>, BTreeSet<String>)> = self
            .db
            .query("SELECT seq, at, accounts, rules FROM dbaudit_runs", &[])?
            .iter()
            .map(|r| {
                (
                    r[0].int().unwrap_or_default(),
                    r[1].str(),
                    serde_json::from_str(&r[2].str()).unwrap_or_default(),
                    serde_json::from_str(&r[3].str()).unwrap_or_default(),
                )
            })
            .collect();
        runs.sort_by(|a, b| query::run_order((&a.1, a.0), (&b.1, b.0)));
        // A run is read a part at a time, never the store at once: its
        // failures and waived findings, whole (few: a night's findings are
        // mostly passes); the cells its errors were in (rule, account,
        // region: what its coverage needs); and of its other findings only
        // those of open periods (looked up by key, a batch at a time).
        // Memory is one run's failures and the open periods, however many
        // runs and findings the store holds.
        let identity = IDENTITY_COLUMNS
            .split(", ")
            .map(|c| format!("k.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let failing = format!(
            "SELECT f.key_id, {identity}, f.outcome, f.severity, f.waiver FROM dbaudit_findings f JOIN dbaudit_keys k ON k.key_id = f.key_id WHERE f.seq = ? AND f.outcome IN ('fail', 'waived')"
        );
        let error_cells = "SELECT DISTINCT k.rule_id, k.account, k.region FROM dbaudit_findings f JOIN dbaudit_keys k ON k.key_id = f.key_id WHERE f.seq = ? AND f.outcome = 'error'";
        // Columns of a failing row after its key: the identity (0..8),
        // outcome, severity, waiver.
        const OUTCOME: usize = 8;
        // A period's row: its identity, severity, opening and waiver, then
        // how it closed (closed_seq, closed_at, closed_by; NULL while open).
        type Opened = (Vec<Value>, String, i64, String, Option<String>);
        fn period_row(
            (identity, severity, opened_seq, opened_at, waiver): Opened,
            closing: [Value; 3],
        ) -> Vec<Value> {
            let mut row = identity;
            row.extend([
                severity.into(),
                opened_seq.into(),
                opened_at.into(),
                waiver.into(),
            ]);
            row.extend(closing);
            row
        }
        // Open periods by key (a key is one fingerprint; a run has at most
        // one finding per key).
        let mut open: BTreeMap<i64, Opened> = BTreeMap::new();
        let mut closed: Vec<Vec<Value>> = Vec::new();
        for (seq, at, accounts, rules) in &runs {
            let now: HashMap<i64, Vec<Value>> = self
                .db
                .query(&failing, &[(*seq).into()])?
                .into_iter()
                .map(|mut r| {
                    let key = r[0].int().unwrap_or_default();
                    r.remove(0);
                    (key, r)
                })
                .collect();
            let others: Vec<i64> = open
                .keys()
                .filter(|k| !now.contains_key(k))
                .copied()
                .collect();
            // The outcome of each open period's finding in this run, when
            // it neither failed nor was waived (absent: not in the run).
            let mut seen: HashMap<i64, String> = HashMap::new();
            for batch in others.chunks(INSERT_BATCH) {
                let marks = vec!["?"; batch.len()].join(", ");
                let mut params: Vec<Value> = vec![(*seq).into()];
                params.extend(batch.iter().map(|k| Value::from(*k)));
                for r in self.db.query(
                    &format!(
                        "SELECT key_id, outcome FROM dbaudit_findings WHERE seq = ? AND key_id IN ({marks})"
                    ),
                    &params,
                )? {
                    seen.insert(r[0].int().unwrap_or_default(), r[1].str());
                }
            }
            let coverage = Coverage::from_parts(
                rules.clone(),
                accounts
                    .iter()
                    .map(|a| (a.name.clone(), a.regions.iter().cloned().collect()))
                    .collect(),
                self.db
                    .query(error_cells, &[(*seq).into()])?
                    .iter()
                    .map(|r| (r[0].str(), r[1].str(), r[2].str()))
                    .collect(),
            );
            let (mut opened, mut closed_now) = (0usize, 0usize);
            let keys: Vec<i64> = open.keys().copied().collect();
            for key in keys {
                let still = match (now.get(&key), seen.get(&key).map(String::as_str)) {
                    (Some(r), _) => {
                        if let Some(p) = open.get_mut(&key) {
                            p.4 = r[OUTCOME + 2].text().map(str::to_string);
                        }
                        None
                    }
                    (None, Some("pass")) => Some("passed"),
                    // An error: the period stays open, unjudged.
                    (None, Some(_)) => None,
                    (None, None) => {
                        let p = &open[&key].0;
                        coverage
                            .covers(&p[1].str(), &p[2].str(), &p[5].str())
                            .then_some("gone")
                    }
                };
                if let Some(by) = still
                    && let Some(period) = open.remove(&key)
                {
                    closed.push(period_row(
                        period,
                        [(*seq).into(), at.as_str().into(), by.into()],
                    ));
                    closed_now += 1;
                }
            }
            for (key, r) in now {
                if let std::collections::btree_map::Entry::Vacant(e) = open.entry(key) {
                    let waiver = r[OUTCOME + 2].text().map(str::to_string);
                    let severity = r[OUTCOME + 1].str();
                    let mut identity = r;
                    identity.truncate(OUTCOME);
                    e.insert((identity, severity, *seq, at.clone(), waiver));
                    opened += 1;
                }
            }
            self.db.execute(
                "UPDATE dbaudit_runs SET opened = ?, closed = ? WHERE seq = ?",
                &[opened.into(), closed_now.into(), (*seq).into()],
            )?;
        }
        let mut rows = closed;
        for (_, period) in open {
            rows.push(period_row(
                period,
                [Value::Int(None), Value::Text(None), Value::Text(None)],
            ));
        }
        self.db.execute("DELETE FROM dbaudit_periods", &[])?;
        self.insert_rows(
            "dbaudit_periods",
            &format!(
                "{IDENTITY_COLUMNS}, severity, opened_seq, opened_at, waiver, closed_seq, closed_at, closed_by"
            ),
            &rows,
        )
    }
}

/// How many of the latest accepted or passing runs `--baseline last`
/// looks through for one that covers the whole run.
const BASELINE_LOOKBACK: usize = 500;

/// What `--baseline last` compares with ([`History::baseline_for`]).
#[derive(Debug, Clone)]
pub struct BaselineChoice {
    /// The run chosen; `None` when no run qualifies (every failure is new).
    pub run: Option<RunRecord>,
    /// Which run and why it was chosen (or why none was): the gate's
    /// reason names it in every format.
    pub why: String,
    /// Cells of this run the baseline did not evaluate (`rule ID`,
    /// `account NAME`, `NAME/REGION`): their failures count as new.
    pub uncovered: Vec<String>,
    /// The baseline's failing (and waived) findings in the cells this run
    /// evaluated with data.
    pub findings: Vec<FindingSummary>,
}

/// The wall clock as RFC 3339 (UTC, seconds): when a run was recorded.
pub fn now() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// The columns of a finding's identity, in [`identity`]'s order (in
/// `dbaudit_keys` and `dbaudit_periods`).
const IDENTITY_COLUMNS: &str =
    "fingerprint, rule_id, account, account_id, environment, region, resource_arn, resource_id";

fn identity(f: &Finding) -> Vec<Value> {
    vec![
        f.fingerprint.as_str().into(),
        (&*f.rule_id).into(),
        (&*f.account).into(),
        (&*f.account_id).into(),
        (&*f.environment).into(),
        region_of(f).into(),
        (&*f.resource_arn).into(),
        (&*f.resource_id).into(),
    ]
}

/// A message's key in `dbaudit_messages`.
fn message_digest(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn region_of(f: &Finding) -> String {
    f.region.as_deref().unwrap_or_default().to_string()
}

fn waiver_of(f: &Finding) -> Option<String> {
    f.waiver.as_ref().map(|w| {
        let mut s = w.reason.clone();
        if let Some(e) = &w.expires {
            s.push_str(&format!(" (expires {e})"));
        }
        s
    })
}

/// A run being recorded an account at a time: the open periods before it
/// (by fingerprint, and which of them the run had a finding for), the next
/// free ids and the periods opened and closed so far.
struct Recording<'o> {
    seq: i64,
    at: &'o str,
    open: &'o [OpenPeriod],
    by_fingerprint: HashMap<&'o str, Vec<usize>>,
    seen: Vec<bool>,
    next_key: i64,
    next_message: i64,
    opened: usize,
    closed: usize,
}

impl<'o> Recording<'o> {
    /// `next`: the first free key id and message id.
    fn new(seq: i64, at: &'o str, open: &'o [OpenPeriod], next: (i64, i64)) -> Self {
        let mut by_fingerprint: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in open.iter().enumerate() {
            by_fingerprint.entry(&p.fingerprint).or_default().push(i);
        }
        Recording {
            seq,
            at,
            open,
            by_fingerprint,
            seen: vec![false; open.len()],
            next_key: next.0,
            next_message: next.1,
            opened: 0,
            closed: 0,
        }
    }
}

/// An open period as the planner needs it.
#[derive(Debug, Clone)]
pub(crate) struct OpenPeriod {
    pub fingerprint: String,
    pub opened_seq: i64,
    pub rule_id: String,
    pub account: String,
    pub region: String,
    pub waiver: Option<String>,
}

type PeriodKey = (String, i64);

/// What a run does to the periods.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    /// Periods to close, and why (`passed`, `gone`).
    pub close: Vec<(PeriodKey, &'static str)>,
    /// Failing findings that open a period.
    pub open: Vec<&'a Finding>,
    /// Open periods whose waiver changed.
    pub waiver: Vec<(PeriodKey, Option<String>)>,
}

/// One finding per fingerprint of a run. Evaluation gives each (rule,
/// resource identity) one finding; should a user rule or a merge of
/// overlapping snapshots repeat one, the one kept is failing if any of
/// them fails, else an error if any is, else a pass: a repeat never closes
/// a period that another copy keeps open.
pub(crate) fn representatives(findings: &[Finding]) -> BTreeMap<&str, &Finding> {
    let rank = |o: Outcome| match o {
        Outcome::Fail => 3,
        Outcome::Waived => 2,
        // A plan's outcome; plans are never recorded.
        Outcome::Error | Outcome::Unknown => 1,
        Outcome::Pass => 0,
    };
    let mut now: BTreeMap<&str, &Finding> = BTreeMap::new();
    for f in findings {
        now.entry(f.fingerprint.as_str())
            .and_modify(|seen| {
                if rank(f.outcome) > rank(seen.outcome) {
                    *seen = f;
                }
            })
            .or_insert(f);
    }
    now
}

/// The periods a run opens and closes, from its findings per fingerprint
/// ([`representatives`]).
pub(crate) fn plan<'a>(
    open: &[OpenPeriod],
    now: &BTreeMap<&str, &'a Finding>,
    coverage: &Coverage,
) -> Plan<'a> {
    let mut plan = Plan::default();
    let mut still_open: BTreeSet<&str> = BTreeSet::new();
    for p in open {
        let key = (p.fingerprint.clone(), p.opened_seq);
        match now.get(p.fingerprint.as_str()) {
            Some(f) if f.outcome.is_failing() => {
                still_open.insert(p.fingerprint.as_str());
                let w = waiver_of(f);
                if w != p.waiver {
                    plan.waiver.push((key, w));
                }
            }
            Some(f) if f.outcome == Outcome::Pass => plan.close.push((key, "passed")),
            // Not known this run: nothing changes.
            Some(_) => {
                still_open.insert(p.fingerprint.as_str());
            }
            None if coverage.covers(&p.rule_id, &p.account, &p.region) => {
                plan.close.push((key, "gone"))
            }
            None => {
                still_open.insert(p.fingerprint.as_str());
            }
        }
    }
    plan.open = now
        .iter()
        .filter(|(fp, f)| f.outcome.is_failing() && !still_open.contains(*fp))
        .map(|(_, f)| *f)
        .collect();
    plan
}

#[cfg(test)]
mod tests;
