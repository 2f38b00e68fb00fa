//! `dbaudit history`: the findings history's queries, as text columns or
//! JSON.

use serde::Serialize;

use super::{Io, load_config, text_columns, write_err};
use crate::cli::{HistoryCommand, HistoryStoreArgs, ListFormat};
use crate::error::Error;
use crate::history::{History, OpenFilter, Period};

pub fn run(cmd: HistoryCommand, io: &mut Io) -> Result<i32, Error> {
    let (store, format) = match &cmd {
        HistoryCommand::Runs { store, .. }
        | HistoryCommand::Finding { store, .. }
        | HistoryCommand::Open { store, .. }
        | HistoryCommand::Stats { store, .. }
        | HistoryCommand::Prune { store, .. }
        | HistoryCommand::Accept { store, .. } => (open(store)?, store.format),
    };
    let mut h = store;
    let out = match cmd {
        HistoryCommand::Runs { limit, .. } => {
            let runs = h.runs(limit)?;
            emit(
                format,
                &serde_json::json!({ "store": h.describe(), "runs": runs }),
                || {
                    let mut rows = vec![cells(&[
                        "SEQ", "RUN", "AT", "ACCOUNTS", "RULES", "FAIL", "ERROR", "WAIVED", "EXIT",
                        "GATE", "OPENED", "CLOSED", "ACCEPTED",
                    ])];
                    for r in &runs {
                        rows.push(vec![
                            r.seq.to_string(),
                            r.run_id.clone(),
                            r.at.clone(),
                            accounts_cell(&r.accounts),
                            r.rules.to_string(),
                            r.counts.fail.to_string(),
                            r.counts.error.to_string(),
                            r.counts.waived.to_string(),
                            r.exit_code.to_string(),
                            gate_cell(r),
                            r.opened.to_string(),
                            r.closed.to_string(),
                            r.accepted
                                .as_ref()
                                .map(|a| format!("by {} ({}): {}", a.by, a.at, a.reason))
                                .unwrap_or_else(|| "-".to_string()),
                        ]);
                    }
                    if runs.is_empty() {
                        return "no run recorded yet\n".to_string();
                    }
                    text_columns(&rows)
                },
            )
        }
        HistoryCommand::Finding {
            finding, resource, ..
        } => {
            let periods = h.finding(&finding, resource.as_deref())?;
            if periods.is_empty() {
                return Err(Error::Usage(match resource {
                    Some(r) => format!(
                        "the history {} has no period of rule `{finding}` on `{r}` (it never failed there, or was never recorded)",
                        h.describe()
                    ),
                    None => format!(
                        "the history {} has no period of finding `{finding}`: give a fingerprint from a report, or RULE --resource ARN|ID",
                        h.describe()
                    ),
                }));
            }
            emit(format, &serde_json::json!({ "periods": periods }), || {
                period_rows(&periods, true)
            })
        }
        HistoryCommand::Open {
            environment,
            severity,
            rule,
            ..
        } => {
            known_environments(&mut h, &environment)?;
            let filter = OpenFilter {
                environments: environment,
                min_severity: severity.map(Into::into),
                rules: rule,
            };
            let as_of = h.as_of()?;
            let open = h.open_periods(&filter)?;
            emit(
                format,
                &serde_json::json!({ "as_of": as_of, "open": open }),
                || {
                    if open.is_empty() {
                        "nothing open\n".to_string()
                    } else {
                        period_rows(&open, false)
                    }
                },
            )
        }
        HistoryCommand::Accept {
            run, reason, by, ..
        } => {
            for (flag, value) in [("--reason", &reason), ("--by", &by)] {
                if value.trim().is_empty() {
                    return Err(Error::Usage(format!(
                        "history accept: {flag} must not be empty: an acceptance says who and why"
                    )));
                }
            }
            let accepted = h.accept(&run, by.trim(), reason.trim(), &crate::history::now())?;
            emit(
                format,
                &serde_json::json!({ "store": h.describe(), "run": accepted }),
                || {
                    format!(
                        "run {} (collected {}, gate {}) accepted by {}: `--baseline last` now counts its {} failure(s) as existing\n",
                        accepted.run_id,
                        accepted.at,
                        gate_cell(&accepted),
                        by.trim(),
                        accepted.counts.fail
                    )
                },
            )
        }
        HistoryCommand::Prune { keep_runs, .. } => {
            let pruned = h.prune(keep_runs)?;
            emit(
                format,
                &serde_json::json!({ "store": h.describe(), "runs_pruned": pruned, "kept": keep_runs }),
                || {
                    format!(
                        "dropped the findings of {pruned} run(s) in {} (the latest {keep_runs} keep theirs); runs and periods are kept\n",
                        h.describe()
                    )
                },
            )
        }
        HistoryCommand::Stats {
            runs, environment, ..
        } => {
            known_environments(&mut h, &environment)?;
            let stats = h.stats(runs, &environment)?;
            emit(format, &stats, || {
                let mut rows = vec![cells(&[
                    "ENVIRONMENT",
                    "RULE",
                    "SEVERITY",
                    "OPEN",
                    "OPEN OVER RUNS",
                    "FIXED",
                    "MEAN DAYS TO FIX",
                    "MEDIAN",
                ])];
                let days = |d: Option<f64>| d.map_or("-".to_string(), |d| format!("{d:.1}"));
                for r in &stats.rows {
                    rows.push(vec![
                        r.environment.clone(),
                        r.rule_id.clone(),
                        r.severity.clone(),
                        r.open.to_string(),
                        r.open_over_time
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" "),
                        r.fixed.to_string(),
                        days(r.mean_days_to_fix),
                        days(r.median_days_to_fix),
                    ]);
                }
                if stats.rows.is_empty() {
                    return "no finding has failed yet\n".to_string();
                }
                text_columns(&rows)
            })
        }
    };
    io.stdout.write_all(out.as_bytes()).map_err(write_err)?;
    Ok(0)
}

/// The store of `--history`, else `[history] store` of the configuration.
fn open(args: &HistoryStoreArgs) -> Result<History, Error> {
    let spec = match &args.history {
        Some(s) => s.clone(),
        None => load_config(args.config.as_deref())?.history.ok_or_else(|| {
            Error::Usage(
                "which history? give --history FILE|URL (or DBAUDIT_HISTORY), or set [history] store in dbaudit.toml".to_string(),
            )
        })?,
    };
    // A query never creates a store: a mistyped path is an error, not a new
    // empty history.
    let is_url = spec.starts_with("postgres://") || spec.starts_with("postgresql://");
    if !is_url && !std::path::Path::new(&spec).exists() {
        return Err(Error::Usage(format!(
            "no history at {spec}: `scan` or `evaluate` with --history {spec} records one"
        )));
    }
    Ok(History::open(&spec)?)
}

fn emit<T: Serialize>(format: ListFormat, json: &T, text: impl FnOnce() -> String) -> String {
    match format {
        ListFormat::Json => {
            let mut s = serde_json::to_string_pretty(json).unwrap_or_default();
            s.push('\n');
            s
        }
        ListFormat::Table => text(),
    }
}

fn cells(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn period_rows(periods: &[Period], with_close: bool) -> String {
    let mut head = cells(&[
        "RULE",
        "SEVERITY",
        "ENVIRONMENT",
        "ACCOUNT",
        "REGION",
        "RESOURCE",
        "OPEN SINCE",
        "DAYS",
    ]);
    if with_close {
        head.extend(cells(&["CLOSED", "BY"]));
    } else {
        head.push("WAIVER".to_string());
    }
    let mut rows = vec![head];
    for p in periods {
        let mut row = vec![
            p.rule_id.clone(),
            p.severity.clone(),
            p.environment.clone(),
            p.account.clone(),
            p.region.clone().unwrap_or_else(|| "global".into()),
            p.resource_id.clone(),
            p.opened_at.clone(),
            format!("{:.1}", p.days),
        ];
        if with_close {
            row.push(p.closed_at.clone().unwrap_or_else(|| "open".into()));
            row.push(p.closed_by.clone().unwrap_or_default());
        } else {
            row.push(p.waiver.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    text_columns(&rows)
}

/// A run's accounts in one cell: named when few, counted per environment
/// when many (a run over an organization covers hundreds).
fn accounts_cell(accounts: &[crate::history::RunAccount]) -> String {
    if accounts.len() <= 4 {
        return accounts
            .iter()
            .map(|a| format!("{} ({})", a.name, a.environment))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let mut per_env: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in accounts {
        *per_env.entry(&a.environment).or_default() += 1;
    }
    format!(
        "{} accounts ({})",
        accounts.len(),
        per_env
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A run's gate as `history runs` shows it: `pass@high`, or `-` for runs
/// recorded before dbaudit kept it.
fn gate_cell(r: &crate::history::RunRecord) -> String {
    match (&r.gate, &r.fail_on) {
        (Some(g), Some(f)) => format!("{g}@{f}"),
        _ => "-".to_string(),
    }
}

/// `--environment` must name an environment the history has seen: a typo
/// would otherwise print an empty table and exit 0, as if all were clear.
fn known_environments(h: &mut History, asked: &[String]) -> Result<(), Error> {
    if asked.is_empty() {
        return Ok(());
    }
    let known = h.environments()?;
    for e in asked {
        if !known.contains(e) {
            return Err(Error::Usage(format!(
                "the history {} has no environment `{e}`; known: {}",
                h.describe(),
                if known.is_empty() {
                    "none (no run recorded yet)".to_string()
                } else {
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::history::RunAccount;

    fn account(name: &str, environment: &str) -> RunAccount {
        RunAccount {
            name: name.into(),
            account_id: String::new(),
            environment: environment.into(),
            regions: vec![],
        }
    }

    #[test]
    fn many_accounts_are_counted_per_environment() {
        let few = [account("prod", "prod"), account("test", "test")];
        assert_eq!(super::accounts_cell(&few), "prod (prod), test (test)");
        let many: Vec<RunAccount> = (0..500)
            .map(|i| account(&format!("a{i}"), if i % 2 == 0 { "test" } else { "prod" }))
            .collect();
        assert_eq!(
            super::accounts_cell(&many),
            "500 accounts (prod 250, test 250)"
        );
    }
}
