//! Reading the history: runs, periods, what is open and for how long,
//! and times to fix. Ages count from the latest run's `at` (when the
//! newest snapshot was collected), not from the clock: the same store
//! answers the same way tomorrow.

use std::collections::BTreeMap;

use serde::Serialize;

use super::store::{Row, Value};
use super::{History, HistoryError, OpenPeriod, RunAccount, RunRecord};
use crate::model::lifecycle::epoch;
use crate::report::Counts;
use crate::report::render::{AgeBucket, TrendPoint};

/// One period in which a finding was failing (or waived).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Period {
    pub fingerprint: String,
    pub rule_id: String,
    pub severity: String,
    pub account: String,
    pub account_id: String,
    pub environment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub resource_arn: String,
    pub resource_id: String,
    pub opened_seq: i64,
    pub opened_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// `passed` (the finding passed) or `gone` (the resource is no longer
    /// there, in a run that covered its account and region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// The waiver covering it at the latest run that saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<String>,
    /// Days open: until closed, or until the latest run.
    pub days: f64,
}

/// Which open periods to list.
#[derive(Debug, Clone, Default)]
pub struct OpenFilter {
    pub environments: Vec<String>,
    pub min_severity: Option<crate::finding::Severity>,
    pub rules: Vec<String>,
}

/// Per environment and rule: open now, over the last runs, and times to fix.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsRow {
    pub environment: String,
    pub rule_id: String,
    pub severity: String,
    /// Open at the latest run.
    pub open: usize,
    /// Open at each of `Stats::runs`, oldest first.
    pub open_over_time: Vec<usize>,
    /// Closed periods (fixed or gone).
    pub fixed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_days_to_fix: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_days_to_fix: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    /// The latest run's time: ages count up to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// The runs of `open_over_time`: (seq, at), oldest first.
    pub runs: Vec<(i64, String)>,
    pub rows: Vec<StatsRow>,
}

/// The age buckets of the open-age distribution: (label, up to days).
pub const AGE_BUCKETS: [(&str, f64); 5] = [
    ("< 1 day", 1.0),
    ("1–7 days", 7.0),
    ("7–30 days", 30.0),
    ("30–90 days", 90.0),
    ("≥ 90 days", f64::INFINITY),
];

const PERIOD_COLUMNS: &str = "fingerprint, rule_id, severity, account, account_id, environment, region, resource_arn, resource_id, opened_seq, opened_at, closed_seq, closed_at, closed_by, waiver";

fn days_between(from: &str, to: &str) -> f64 {
    match (epoch(from), epoch(to)) {
        (Some(a), Some(b)) => ((b - a) as f64 / 86_400.0).max(0.0),
        _ => 0.0,
    }
}

fn period(r: &Row, as_of: &str) -> Period {
    let closed_at = r[12].text().map(str::to_string);
    let until = closed_at.clone().unwrap_or_else(|| as_of.to_string());
    let region = r[6].str();
    Period {
        fingerprint: r[0].str(),
        rule_id: r[1].str(),
        severity: r[2].str(),
        account: r[3].str(),
        account_id: r[4].str(),
        environment: r[5].str(),
        region: (!region.is_empty()).then_some(region),
        resource_arn: r[7].str(),
        resource_id: r[8].str(),
        opened_seq: r[9].int().unwrap_or_default(),
        days: days_between(&r[10].str(), &until),
        opened_at: r[10].str(),
        closed_seq: r[11].int(),
        closed_at,
        closed_by: r[13].text().map(str::to_string),
        waiver: r[14].text().map(str::to_string),
    }
}

/// Whether a period was open at a run: opened at or before it and not
/// closed by then. Runs are ordered by their snapshot's time (`at`), then by
/// recording order, so that a snapshot recorded late (`--backfill`) takes
/// its place in time.
fn open_at_run(p: &Period, r: &RunRecord) -> bool {
    let at = (p.opened_at.as_str(), p.opened_seq);
    let run = (r.at.as_str(), r.seq);
    run_order(at, run).is_le()
        && match (&p.closed_at, p.closed_seq) {
            (Some(c), Some(seq)) => run_order((c.as_str(), seq), run).is_gt(),
            _ => true,
        }
}

/// The order of two runs given as (`at`, seq): by time, then recording.
pub(super) fn run_order(a: (&str, i64), b: (&str, i64)) -> std::cmp::Ordering {
    let time = |t: &str| epoch(t).map_or_else(|| (i64::MIN, t.to_string()), |e| (e, String::new()));
    time(a.0).cmp(&time(b.0)).then(a.1.cmp(&b.1))
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl History {
    pub(super) fn runs_where(
        &mut self,
        condition: &str,
        params: &[Value],
        limit: usize,
    ) -> Result<Vec<RunRecord>, HistoryError> {
        let rows = self.db.query(
            &format!(
                "SELECT seq, run_id, at, recorded_at, tool_version, rule_pack, accounts, rules, exit_code, pass, fail, error, waived, opened, closed, fail_on, gate_status, accepted_at, accepted_by, accepted_reason FROM dbaudit_runs {condition} ORDER BY at DESC, seq DESC LIMIT {limit}"
            ),
            params,
        )?;
        Ok(rows
            .iter()
            .map(|r| RunRecord {
                seq: r[0].int().unwrap_or_default(),
                run_id: r[1].str(),
                at: r[2].str(),
                recorded_at: r[3].str(),
                tool_version: r[4].str(),
                rule_pack: r[5].str(),
                accounts: serde_json::from_str::<Vec<RunAccount>>(&r[6].str()).unwrap_or_default(),
                rules: serde_json::from_str::<Vec<String>>(&r[7].str())
                    .map(|v| v.len())
                    .unwrap_or_default(),
                exit_code: r[8].int().unwrap_or_default() as i32,
                counts: Counts {
                    pass: r[9].int().unwrap_or_default() as usize,
                    fail: r[10].int().unwrap_or_default() as usize,
                    error: r[11].int().unwrap_or_default() as usize,
                    waived: r[12].int().unwrap_or_default() as usize,
                    unknown: 0,
                },
                opened: r[13].int().unwrap_or_default() as usize,
                closed: r[14].int().unwrap_or_default() as usize,
                fail_on: r[15].text().map(str::to_string),
                gate: r[16].text().map(str::to_string),
                accepted: r[17].text().map(|at| super::Acceptance {
                    at: at.to_string(),
                    by: r[18].str(),
                    reason: r[19].str(),
                }),
            })
            .collect())
    }

    /// For each recorded run, oldest first, how many failing and waived
    /// findings the given rules had (what the history keeps per run), and
    /// the digest of what it evaluated: a control's history for an
    /// evidence pack. A pruned run's findings are gone (`kept` false).
    pub fn rule_history(
        &mut self,
        rules: &[&str],
    ) -> Result<Vec<crate::report::evidence::RuleRun>, HistoryError> {
        let runs = self.db.query(
            "SELECT seq, run_id, at, findings_kept, input_digest, gate_status FROM dbaudit_runs ORDER BY at, seq",
            &[],
        )?;
        let mut out: Vec<crate::report::evidence::RuleRun> = runs
            .iter()
            .map(|r| crate::report::evidence::RuleRun {
                seq: r[0].int().unwrap_or_default(),
                run_id: r[1].str(),
                at: r[2].str(),
                kept: r[3].int().unwrap_or_default() == 1,
                input_digest: r[4].str(),
                gate_status: r[5].str(),
                fail: 0,
                waived: 0,
            })
            .collect();
        if rules.is_empty() {
            return Ok(out);
        }
        let marks = vec!["?"; rules.len()].join(", ");
        let params: Vec<Value> = rules.iter().map(|r| (*r).into()).collect();
        let counts = self.db.query(
            &format!(
                "SELECT f.seq, f.outcome, COUNT(*) FROM dbaudit_findings f JOIN dbaudit_keys k ON k.key_id = f.key_id WHERE k.rule_id IN ({marks}) GROUP BY f.seq, f.outcome"
            ),
            &params,
        )?;
        for c in counts {
            let (seq, outcome, n) = (
                c[0].int().unwrap_or_default(),
                c[1].str(),
                c[2].int().unwrap_or_default(),
            );
            if let Some(run) = out.iter_mut().find(|r| r.seq == seq) {
                match outcome.as_str() {
                    "fail" => run.fail += n as usize,
                    "waived" => run.waived += n as usize,
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// Every environment of a recorded run.
    pub fn environments(&mut self) -> Result<std::collections::BTreeSet<String>, HistoryError> {
        let rows = self.db.query("SELECT accounts FROM dbaudit_runs", &[])?;
        Ok(rows
            .iter()
            .flat_map(|r| serde_json::from_str::<Vec<RunAccount>>(&r[0].str()).unwrap_or_default())
            .map(|a| a.environment)
            .collect())
    }

    /// The latest runs, newest first.
    pub fn runs(&mut self, limit: usize) -> Result<Vec<RunRecord>, HistoryError> {
        self.runs_where("", &[], limit)
    }

    /// The latest run's time, if any run was recorded.
    pub fn as_of(&mut self) -> Result<Option<String>, HistoryError> {
        Ok(self
            .db
            .query(
                "SELECT at FROM dbaudit_runs ORDER BY at DESC, seq DESC LIMIT 1",
                &[],
            )?
            .first()
            .map(|r| r[0].str()))
    }

    pub(super) fn open_periods_raw(&mut self) -> Result<Vec<OpenPeriod>, HistoryError> {
        let rows = self.db.query(
            "SELECT fingerprint, opened_seq, rule_id, account, region, waiver FROM dbaudit_periods WHERE closed_seq IS NULL",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| OpenPeriod {
                fingerprint: r[0].str(),
                opened_seq: r[1].int().unwrap_or_default(),
                rule_id: r[2].str(),
                account: r[3].str(),
                region: r[4].str(),
                waiver: r[5].text().map(str::to_string),
            })
            .collect())
    }

    fn periods_where(
        &mut self,
        condition: &str,
        params: &[Value],
    ) -> Result<Vec<Period>, HistoryError> {
        let as_of = self.as_of()?.unwrap_or_default();
        let rows = self.db.query(
            &format!("SELECT {PERIOD_COLUMNS} FROM dbaudit_periods {condition} ORDER BY opened_seq, fingerprint"),
            params,
        )?;
        Ok(rows.iter().map(|r| period(r, &as_of)).collect())
    }

    /// The periods of one finding: by fingerprint, or by rule and resource
    /// (its ARN or id).
    pub fn finding(
        &mut self,
        fingerprint_or_rule: &str,
        resource: Option<&str>,
    ) -> Result<Vec<Period>, HistoryError> {
        match resource {
            None => self.periods_where("WHERE fingerprint = ?", &[fingerprint_or_rule.into()]),
            Some(r) => self.periods_where(
                "WHERE rule_id = ? AND (resource_arn = ? OR resource_id = ?)",
                &[fingerprint_or_rule.into(), r.into(), r.into()],
            ),
        }
    }

    /// The open periods, oldest first.
    pub fn open_periods(&mut self, filter: &OpenFilter) -> Result<Vec<Period>, HistoryError> {
        let all = self.periods_where("WHERE closed_seq IS NULL", &[])?;
        Ok(all
            .into_iter()
            .filter(|p| {
                filter.environments.is_empty() || filter.environments.contains(&p.environment)
            })
            .filter(|p| {
                filter.min_severity.is_none_or(|min| {
                    crate::finding::Severity::parse(&p.severity).is_some_and(|s| s >= min)
                })
            })
            .filter(|p| {
                filter.rules.is_empty()
                    || filter
                        .rules
                        .iter()
                        .any(|g| crate::glob::matches(g, &p.rule_id))
            })
            .collect())
    }

    /// Every period, oldest first (for stats and plots).
    pub fn all_periods(&mut self) -> Result<Vec<Period>, HistoryError> {
        self.periods_where("", &[])
    }

    /// Per environment and rule over the last `runs` runs.
    pub fn stats(&mut self, runs: usize, environments: &[String]) -> Result<Stats, HistoryError> {
        let mut recent = self.runs(runs)?;
        recent.reverse();
        let periods = self.all_periods()?;
        let mut rows: BTreeMap<(String, String), (String, Vec<&Period>)> = BTreeMap::new();
        for p in periods
            .iter()
            .filter(|p| environments.is_empty() || environments.contains(&p.environment))
        {
            rows.entry((p.environment.clone(), p.rule_id.clone()))
                .or_insert_with(|| (p.severity.clone(), Vec::new()))
                .1
                .push(p);
        }
        let open_at = |p: &Period, r: &RunRecord| open_at_run(p, r);
        let rows = rows
            .into_iter()
            .map(|((environment, rule_id), (severity, ps))| {
                let mut fix: Vec<f64> = ps
                    .iter()
                    .filter(|p| p.closed_seq.is_some())
                    .map(|p| p.days)
                    .collect();
                let mean =
                    (!fix.is_empty()).then(|| round2(fix.iter().sum::<f64>() / fix.len() as f64));
                StatsRow {
                    open: ps.iter().filter(|p| p.closed_seq.is_none()).count(),
                    open_over_time: recent
                        .iter()
                        .map(|r| ps.iter().filter(|p| open_at(p, r)).count())
                        .collect(),
                    fixed: fix.len(),
                    mean_days_to_fix: mean,
                    median_days_to_fix: median(&mut fix).map(round2),
                    environment,
                    rule_id,
                    severity,
                }
            })
            .collect();
        Ok(Stats {
            as_of: recent.last().map(|r| r.at.clone()),
            runs: recent.iter().map(|r| (r.seq, r.at.clone())).collect(),
            rows,
        })
    }

    /// Open failing findings per environment and severity at each of the
    /// last `runs` runs, oldest first (the HTML report's trend plot).
    pub fn trend(&mut self, runs: usize) -> Result<Vec<TrendPoint>, HistoryError> {
        let mut recent = self.runs(runs)?;
        recent.reverse();
        let periods = self.all_periods()?;
        let mut out = Vec::new();
        for r in &recent {
            let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
            for p in &periods {
                if open_at_run(p, r) {
                    *counts.entry((&p.environment, &p.severity)).or_default() += 1;
                }
            }
            for ((environment, severity), open) in counts {
                out.push(TrendPoint {
                    seq: r.seq,
                    at: r.at.clone(),
                    environment: environment.to_string(),
                    severity: severity.to_string(),
                    open,
                });
            }
        }
        Ok(out)
    }

    /// Open periods by age at the latest run.
    pub fn open_ages(&mut self) -> Result<Vec<AgeBucket>, HistoryError> {
        Ok(ages(&self.open_periods(&OpenFilter::default())?))
    }
}

/// Open periods counted by age.
pub fn ages(open: &[Period]) -> Vec<AgeBucket> {
    AGE_BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (label, upto))| {
            let from = if i == 0 { 0.0 } else { AGE_BUCKETS[i - 1].1 };
            AgeBucket {
                label,
                open: open
                    .iter()
                    .filter(|p| p.days >= from && p.days < *upto)
                    .count(),
            }
        })
        .collect()
}
