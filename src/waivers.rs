//! Waivers: accepted deviations with a reason, an owner and an expiry.
//!
//! A matching, unexpired waiver turns a `fail` into `waived` (shown, not
//! gated). It never hides an `error`: missing data is not a known deviation.
//! An expired waiver stops applying and is reported; a waiver that matched
//! nothing is reported as unused. Waivers come from `[[waiver]]` tables in
//! dbaudit.toml and/or a `--waivers FILE` of the same tables.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location};
pub use crate::finding::WaiverRef;
use crate::finding::{Finding, Outcome};
use crate::snapshot::{Snapshot, Tags};
use crate::tomlspan::{Reader, Table};

#[derive(Debug, Clone, PartialEq)]
pub struct Waiver {
    /// Rule id, or a glob of rule ids.
    pub rule: String,
    /// Glob of resource ARNs.
    pub resource: Option<String>,
    /// Account name (as in dbaudit.toml).
    pub account: Option<String>,
    /// Tags the resource must carry (all of them).
    pub tags: BTreeMap<String, String>,
    pub reason: String,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    /// Last day the waiver applies (inclusive).
    pub expires: Option<Date>,
    pub location: Location,
}

/// What became of a waiver in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaiverState {
    /// It turned at least one failure into `waived`.
    Applied,
    /// Its expiry date has passed: it no longer applies.
    Expired,
    /// It matched no failing finding.
    Unused,
}

crate::names::names!(WaiverState {
    Applied => "applied",
    Expired => "expired",
    Unused => "unused",
});

impl WaiverStatus {
    /// Expired and unused waivers are shown to the user; applied ones are
    /// on the findings they waived.
    pub fn needs_attention(&self) -> bool {
        self.status != WaiverState::Applied
    }
}

/// A waiver and what became of it in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaiverStatus {
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Reason, owner, ticket, expiry and location, as on a waived finding.
    #[serde(flatten)]
    pub waiver: WaiverRef,
    pub status: WaiverState,
    /// Failures it turned into `waived`.
    pub waived: usize,
}

impl Waiver {
    fn as_ref(&self) -> WaiverRef {
        let w = self;
        WaiverRef {
            reason: w.reason.clone(),
            owner: w.owner.clone(),
            ticket: w.ticket.clone(),
            expires: w.expires.map(|d| d.to_string()),
            location: format!("{}:{}", w.location.path.display(), w.location.line),
        }
    }
}

/// A calendar date (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// `YYYY-MM-DD`, validated (month lengths, leap years).
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year: i32 = s[0..4].parse().ok()?;
        let month: u32 = s[5..7].parse().ok()?;
        let day: u32 = s[8..10].parse().ok()?;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days)
            .contains(&day)
            .then_some(Date { year, month, day })
    }

    /// Today in UTC, from the system clock.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Date::from_days((secs / 86_400) as i64)
    }

    /// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Reads `[[waiver]]` tables; problems go to the reader.
pub fn parse_tables<'a>(
    r: &mut Reader<'a>,
    value: Option<&crate::tomlspan::Value<'a>>,
) -> Vec<Waiver> {
    let mut out = Vec::new();
    for table in r.table_array(value, "waiver") {
        let t: &Table = table.get_ref();
        let start = table.span().start;
        r.deny_unknown(
            t,
            "[[waiver]]",
            &crate::config_keys::names(crate::config_keys::WAIVER),
        );
        let rule_v = r.required(t, start, "rule", "[[waiver]]");
        let rule = r.string(rule_v, "rule");
        let reason_v = r.required(t, start, "reason", "[[waiver]]");
        let reason = r.string(reason_v, "reason");
        if let (Some(reason), Some(v)) = (&reason, reason_v)
            && reason.trim().is_empty()
        {
            r.problem(
                v.span().start,
                "`reason` must say why the deviation is accepted; it may not be empty",
            );
        }
        let resource = r.string(t.get("resource"), "resource");
        let account = r.string(t.get("account"), "account");
        let mut tags = BTreeMap::new();
        if let Some((tt, _)) = r.table(t.get("tags"), "tags") {
            for (k, v) in tt.iter() {
                match v.get_ref().as_str() {
                    Some(s) => {
                        tags.insert(k.get_ref().to_string(), s.to_string());
                    }
                    None => r.problem(
                        v.span().start,
                        format!("tag `{}` must be a string", k.get_ref()),
                    ),
                }
            }
        }
        // A pattern of wildcards alone (`*`) matches everything: no scope.
        let narrows = |s: &Option<String>| {
            s.as_ref()
                .is_some_and(|s| s.chars().any(|c| c != '*' && c != '?'))
        };
        if !narrows(&resource)
            && !narrows(&account)
            && tags.is_empty()
            && let Some(v) = rule_v
        {
            r.problem(
                v.span().start,
                "a waiver must narrow its scope with `resource`, `account` or `tags` (a pattern of wildcards alone, like `*`, narrows nothing); a rule-wide waiver would silence it everywhere",
            );
        }
        let expires = t.get("expires").and_then(|v| {
            let text = match v.get_ref() {
                toml::de::DeValue::String(s) => s.to_string(),
                toml::de::DeValue::Datetime(d) => d.to_string(),
                other => {
                    r.problem(
                        v.span().start,
                        format!(
                            "`expires` must be a date (YYYY-MM-DD), found {}",
                            other.type_str()
                        ),
                    );
                    return None;
                }
            };
            let d = Date::parse(&text);
            if d.is_none() {
                r.problem(
                    v.span().start,
                    format!("`expires` must be a valid date as YYYY-MM-DD, found `{text}`"),
                );
            }
            d
        });
        let owner = r.string(t.get("owner"), "owner");
        let ticket = r.string(t.get("ticket"), "ticket");
        if let (Some(rule), Some(reason)) = (rule, reason) {
            out.push(Waiver {
                rule,
                resource,
                account,
                tags,
                reason,
                owner,
                ticket,
                expires,
                location: Location::from_offset(r.path, r.text, start),
            });
        }
    }
    out
}

/// A `--waivers FILE`: `[[waiver]]` tables only.
pub fn load_file(path: &Path) -> Result<Vec<Waiver>, Error> {
    let text = crate::error::read_to_string(path)?;
    let mut r = Reader::new(path, &text);
    let doc = r.parse()?;
    r.deny_unknown(doc.get_ref(), "a waivers file", &["waiver"]);
    let w = parse_tables(&mut r, doc.get_ref().get("waiver"));
    r.finish()?;
    Ok(w)
}

/// Resource ARN → tags.
pub type TagsByArn<'a> = HashMap<&'a str, &'a Tags>;

/// Resource ARN → tags, for tag selectors and SARIF source tags.
pub fn tags_by_arn(snapshot: &Snapshot) -> TagsByArn<'_> {
    tags_of(&snapshot.accounts)
}

/// [`tags_by_arn`] of some accounts.
pub fn tags_of(accounts: &[crate::snapshot::Account]) -> TagsByArn<'_> {
    let mut out = HashMap::new();
    for a in accounts {
        for r in &a.regions {
            for c in &r.db_clusters {
                out.insert(c.arn.as_str(), &c.tags);
            }
            for i in &r.db_instances {
                out.insert(i.arn.as_str(), &i.tags);
            }
        }
    }
    out
}

/// Applies waivers to failing findings and reports what became of each.
pub fn apply(
    findings: &mut [Finding],
    waivers: &[Waiver],
    as_of: Date,
    tags: &HashMap<&str, &Tags>,
) -> Vec<WaiverStatus> {
    let mut w = Waiving::new(waivers, as_of);
    w.apply(findings, tags);
    w.status()
}

/// [`apply`] a chunk of findings at a time (an account's, as they are
/// spooled); what became of each waiver once every chunk was seen.
pub struct Waiving<'a> {
    waivers: &'a [Waiver],
    as_of: Date,
    waived: Vec<usize>,
}

impl<'a> Waiving<'a> {
    pub fn new(waivers: &'a [Waiver], as_of: Date) -> Waiving<'a> {
        Waiving {
            waivers,
            as_of,
            waived: vec![0; waivers.len()],
        }
    }

    pub fn apply(&mut self, findings: &mut [Finding], tags: &HashMap<&str, &Tags>) {
        let (waivers, as_of, waived) = (self.waivers, self.as_of, &mut self.waived);
        for f in findings.iter_mut().filter(|f| f.outcome == Outcome::Fail) {
            let hit = waivers.iter().enumerate().find(|(_, w)| {
                w.expires.is_none_or(|e| as_of <= e)
                    && crate::glob::matches(&w.rule, &f.rule_id)
                    && w.account.as_ref().is_none_or(|a| **a == *f.account)
                    && w.resource
                        .as_ref()
                        .is_none_or(|g| crate::glob::matches(g, &f.resource_arn))
                    && (w.tags.is_empty()
                        || tags
                            .get(&*f.resource_arn)
                            .is_some_and(|t| w.tags.iter().all(|(k, v)| t.get(k) == Some(v))))
            });
            if let Some((i, w)) = hit {
                waived[i] += 1;
                f.outcome = Outcome::Waived;
                f.waiver = Some(Box::new(w.as_ref()));
            }
        }
    }

    pub fn status(self) -> Vec<WaiverStatus> {
        let (waivers, as_of) = (self.waivers, self.as_of);
        waivers
            .iter()
            .zip(self.waived)
            .map(|(w, n)| WaiverStatus {
                rule: w.rule.clone(),
                resource: w.resource.clone(),
                account: w.account.clone(),
                waiver: w.as_ref(),
                status: if w.expires.is_some_and(|e| as_of > e) {
                    WaiverState::Expired
                } else if n == 0 {
                    WaiverState::Unused
                } else {
                    WaiverState::Applied
                },
                waived: n,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Date;

    #[test]
    fn dates() {
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("2026-1-01").is_none());
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(20_784).to_string(), "2026-11-27");
        assert!(Date::parse("2026-11-26").unwrap() < Date::parse("2026-11-27").unwrap());
    }
}
