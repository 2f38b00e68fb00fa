//! Sharded collection: which accounts one shard of N collects, and the
//! merge of the parts into one snapshot.
//!
//! The assignment is a hash of the account id (the name when there is
//! none): `SHA-256(id)`'s first 8 bytes, big-endian, modulo N, plus one. It
//! depends on nothing but the account and N, so every shard computes the
//! same plan whatever the order of the accounts in dbaudit.toml or in
//! Organizations' listing, and an account keeps its shard from run to run.
//!
//! Each part carries the whole run's plan, so that the merge needs no
//! configuration and can tell a missing part or account (a recorded gap:
//! its rules report `error`) from one that had nothing to report.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::config::AccountConfig;
use crate::error::{Error, Location};
use crate::snapshot::{Account, DatabasesPart, Gap, PlannedAccount, ShardPart, Snapshot};
use crate::vocab::Service;

/// The environment variables an orchestrator sets to a 0-based index:
/// Kubernetes Indexed Jobs, then AWS Batch array jobs.
pub const INDEX_VARIABLES: [&str; 2] = ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"];

/// The run id of parts written without `--run-id` (local outputs only).
pub const DEFAULT_RUN_ID: &str = "unnamed";

/// A run id or store path with `{date}` replaced by today's UTC date
/// (`YYYY-MM-DD`): shards and the merge started on one day by a scheduler
/// (two CronJobs, a Batch job and its dependants) agree on the run without
/// a shell to compute it.
pub fn expand(s: &str) -> String {
    s.replace("{date}", &crate::waivers::Date::today().to_string())
}

/// Shard K of N (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    /// `K/N`, or `auto/N` with K from the first of [`INDEX_VARIABLES`] set
    /// (0-based there, so K is its value plus one).
    pub fn parse(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<ShardSpec, String> {
        let expected = "expected K/N (1 ≤ K ≤ N, e.g. 1/4) or auto/N";
        let (k, n) = spec
            .split_once('/')
            .ok_or_else(|| format!("--shard `{spec}`: {expected}"))?;
        let count: usize =
            n.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                format!("--shard `{spec}`: N must be a whole number ≥ 1; {expected}")
            })?;
        let index = if k.trim() == "auto" {
            let (var, value) = INDEX_VARIABLES
                .iter()
                .find_map(|v| env(v).map(|x| (*v, x)))
                .ok_or_else(|| {
                    format!(
                        "--shard auto/{count}: neither {} is set (the 0-based index a Kubernetes Indexed Job or an AWS Batch array job gives)",
                        INDEX_VARIABLES.join(" nor ")
                    )
                })?;
            let i: usize = value.trim().parse().map_err(|_| {
                format!("--shard auto/{count}: {var} = `{value}` is not a whole number")
            })?;
            i + 1
        } else {
            k.trim()
                .parse()
                .map_err(|_| format!("--shard `{spec}`: K must be a whole number; {expected}"))?
        };
        if index < 1 || index > count {
            return Err(format!(
                "--shard: shard {index} of {count} does not exist (shards are 1 to {count})"
            ));
        }
        Ok(ShardSpec { index, count })
    }

    /// `part-K-of-N.json`: the part's name in a store, under its run.
    pub fn part_name(&self) -> String {
        format!("part-{}-of-{}.json", self.index, self.count)
    }
}

/// The shard (1-based) an account belongs to among `count`.
pub fn shard_of(name: &str, account_id: &str, count: usize) -> usize {
    let key = if account_id.is_empty() {
        name
    } else {
        account_id
    };
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count.max(1) as u64) as usize + 1
}

/// Every selected account with its shard and regions (`default_regions`
/// for an account that lists none), sorted by name.
pub fn plan(
    accounts: &[AccountConfig],
    count: usize,
    default_regions: &[String],
) -> Vec<PlannedAccount> {
    let mut plan: Vec<PlannedAccount> = accounts
        .iter()
        .map(|a| {
            let mut regions = if a.regions.is_empty() {
                default_regions.to_vec()
            } else {
                a.regions.clone()
            };
            regions.sort();
            regions.dedup();
            PlannedAccount {
                name: a.name.clone(),
                environment: a.environment.clone(),
                account_id: a.account_id.clone(),
                shard: shard_of(&a.name, &a.account_id, count),
                regions,
            }
        })
        .collect();
    plan.sort();
    plan
}

/// The accounts of `accounts` that shard `spec` collects.
pub fn select(accounts: Vec<AccountConfig>, spec: ShardSpec) -> Vec<AccountConfig> {
    accounts
        .into_iter()
        .filter(|a| shard_of(&a.name, &a.account_id, spec.count) == spec.index)
        .collect()
}

/// What a merge found besides the accounts: for the summary line.
#[derive(Debug, Default)]
pub struct MergeSummary {
    pub run_id: String,
    pub parts: usize,
    pub count: usize,
    pub missing_parts: Vec<usize>,
    pub missing_accounts: Vec<String>,
    /// Parts of other runs that were left out (with `--run-id`).
    pub other_runs: usize,
    /// The base was one whole snapshot (database parts attached to it).
    pub whole: bool,
    /// Database parts read, and the clusters they were attached to.
    pub database_parts: usize,
    pub attached: usize,
    /// Clusters of database parts the snapshot does not have.
    pub unattached: Vec<String>,
}

/// Merges the parts of one sharded run (`(source, part)`: the source names
/// the file or object in errors). Every planned account appears exactly
/// once: a missing part's accounts, and an account its part does not have,
/// become accounts with a gap (`ShardMissing`, `AccountMissing`) that makes
/// every rule `error` for them. Parts that disagree (two runs without
/// `--run-id`, different plans, the same shard twice, an account twice) are
/// refused.
///
/// Database parts (`dbaudit databases`) among them are attached after:
/// each replaces what the snapshot holds for the clusters it read. With
/// database parts, one whole snapshot (not a shard part) may stand in for
/// the shard parts.
pub fn merge(
    parts: Vec<(String, Snapshot)>,
    run_id: Option<&str>,
) -> Result<(Snapshot, MergeSummary), Error> {
    merge_each(parts.into_iter().map(Ok), run_id)
}

/// [`merge`], reading the parts one at a time: each shard part is checked,
/// its accounts moved into the merged snapshot and the part dropped before
/// the next is read, so the merge holds one part besides what it merged
/// (parts of other runs are read and dropped). A part that cannot be read
/// stops the merge with its error.
pub fn merge_each<I>(parts: I, run_id: Option<&str>) -> Result<(Snapshot, MergeSummary), Error>
where
    I: IntoIterator<Item = Result<(String, Snapshot), Error>>,
{
    let mut databases = Vec::new();
    let mut whole: Option<(String, Snapshot)> = None;
    let mut run: Option<Run> = None;
    let mut other_runs: BTreeMap<String, usize> = BTreeMap::new();
    for item in parts {
        let (source, mut snap) = item?;
        if let Some(info) = snap.databases_part.take() {
            databases.push((source, info, snap));
            continue;
        }
        let Some(part) = snap.shard.take() else {
            if whole.is_some() || run.is_some() {
                return Err(refuse(&source, NOT_A_PART.into()));
            }
            whole = Some((source, snap));
            continue;
        };
        if let Some((whole_source, _)) = &whole {
            return Err(refuse(whole_source, NOT_A_PART.into()));
        }
        if run_id.is_some_and(|id| id != part.run_id) {
            *other_runs.entry(part.run_id).or_default() += 1;
            continue;
        }
        match &run {
            Some(r) if r.run_id != part.run_id => {
                return Err(Error::Usage(format!(
                    "parts of several runs ({}, {}); choose one with --run-id",
                    r.run_id, part.run_id
                )));
            }
            Some(_) => {}
            None => run = Some(Run::new(&source, &part)),
        }
        if let Some(r) = run.as_mut() {
            r.add(source, snap, part)?;
        }
    }
    let (mut merged, mut summary) = match (whole, run) {
        (Some((source, w)), None) => {
            if databases.is_empty() {
                return Err(refuse(&source, NOT_A_PART.into()));
            }
            let summary = MergeSummary {
                whole: true,
                ..MergeSummary::default()
            };
            (w, summary)
        }
        (_, Some(r)) => r.finish(),
        (None, None) => {
            return Err(Error::Usage(match run_id {
                Some(id) => format!(
                    "no part of run `{id}`; runs found: {}",
                    other_runs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                None => "no shard part found (files ending in .json)".into(),
            }));
        }
    };
    summary.other_runs = other_runs.values().sum();
    // A database part of another run is not this run's reading.
    let (databases, other): (Vec<_>, Vec<_>) = databases.into_iter().partition(|(_, info, _)| {
        summary.whole || info.run_id.as_deref().is_none_or(|r| r == summary.run_id)
    });
    summary.other_runs += other.len();
    attach_databases(&mut merged, databases, &mut summary)?;
    Ok((merged, summary))
}

/// The parts `collect --shard K/N` would write for `whole`'s accounts, K
/// from 1 to `count`, of run `run_id` (every account collected): for the
/// benchmarks and the tests of what reads parts.
pub fn parts_of(whole: &Snapshot, count: usize, run_id: &str) -> Vec<Snapshot> {
    let configs: Vec<AccountConfig> = (whole.accounts.iter())
        .map(|a| AccountConfig {
            name: a.name.clone(),
            environment: a.environment.clone(),
            account_id: a.account_id.clone(),
            ..AccountConfig::default()
        })
        .collect();
    let the_plan = plan(&configs, count, &[]);
    (1..=count)
        .map(|k| {
            let mut p = Snapshot::new(whole.collected_at.clone());
            p.accounts = (whole.accounts.iter())
                .filter(|a| shard_of(&a.name, &a.account_id, count) == k)
                .cloned()
                .collect();
            p.shard = Some(ShardPart {
                run_id: run_id.to_string(),
                index: k,
                count,
                plan: the_plan.clone(),
                completed: p.accounts.iter().map(|a| a.name.clone()).collect(),
            });
            p
        })
        .collect()
}

/// Reads a sharded run's parts (or a snapshot with database parts): called
/// once per reading, each call reading the parts again one at a time.
pub type PartReader<'a> = dyn FnMut() -> Result<Parts, Error> + 'a;

/// The parts of one reading, each `(source, snapshot)` parsed when reached.
pub type Parts = Box<dyn Iterator<Item = Result<(String, Snapshot), Error>>>;

/// The first of two readings of a run's parts: [`merge_each`] of every
/// account's parity view (`Account::take_body`), the merged snapshot
/// without the accounts' bodies. [`bodies`] is the second.
pub fn merge_views(
    parts: &mut PartReader<'_>,
    run_id: Option<&str>,
) -> Result<(Snapshot, MergeSummary), Error> {
    let views = parts()?.map(|p| {
        p.map(|(source, mut s)| {
            for a in &mut s.accounts {
                a.take_body();
            }
            (source, s)
        })
    });
    merge_each(views, run_id)
}

/// The second reading: each part's accounts of `view` (as [`merge_views`]
/// left them, possibly narrowed or given gaps since) made whole again,
/// handed to `f` a part at a time; then the accounts that have no body
/// (those merge made up for a missing part or account, and `made_up`), as
/// they are. An account of the first reading that is not found again, is
/// found twice, or has other DB clusters, is refused: the parts changed in
/// between.
///
/// A `thinned` view ([`thin`]) has no DB clusters: each account's are
/// taken from its part, checked against the digest of the first reading's.
pub fn bodies(
    parts: &mut PartReader<'_>,
    view: &Snapshot,
    summary: &MergeSummary,
    made_up: &BTreeSet<&str>,
    thinned: Option<&Thinned>,
    f: &mut dyn FnMut(Vec<Account>) -> Result<(), Error>,
) -> Result<(), Error> {
    let stubs: BTreeSet<&str> = (summary.missing_accounts.iter())
        .map(String::as_str)
        .chain(made_up.iter().copied())
        .collect();
    let index: std::collections::HashMap<&str, &Account> = (view.accounts.iter())
        .map(|a| (a.name.as_str(), a))
        .collect();
    let mut pending: BTreeSet<&str> = (index.keys().copied())
        .filter(|name| !stubs.contains(name))
        .collect();
    for item in parts()? {
        let (source, part) = item?;
        // The parts the first reading merged: of the run merged (not
        // database parts, not other runs'), or the one whole snapshot.
        let ours = match &part.shard {
            _ if part.databases_part.is_some() => false,
            Some(s) => !summary.whole && s.run_id == summary.run_id,
            None => summary.whole,
        };
        if !ours {
            continue;
        }
        let mut accounts = Vec::new();
        for mut raw in part.accounts {
            let Some(view_account) = index.get(raw.name.as_str()) else {
                // Left out since (a selection of environments).
                continue;
            };
            if !pending.remove(raw.name.as_str()) {
                return Err(changed(
                    &source,
                    &raw.name,
                    "read twice or not in the first reading",
                ));
            }
            raw.normalize();
            let mut full = (*view_account).clone();
            full.normalize();
            let same = match thinned {
                Some(t) => t.0.get(&raw.name) == Some(&clusters_digest(&raw)),
                None => clusters_of(&full) == clusters_of(&raw),
            };
            if !same {
                return Err(changed(
                    &source,
                    &raw.name,
                    "its DB clusters differ between the two readings",
                ));
            }
            full.put_body(raw.take_body());
            if thinned.is_some() {
                full.put_clusters(&mut raw);
            }
            accounts.push(full);
        }
        f(accounts)?;
    }
    if let Some(name) = pending.first() {
        return Err(Error::Usage(format!(
            "account `{name}` was in the parts when they were first read and is not any more: the parts changed while being read (read them again, or merge them first with `dbaudit merge`)"
        )));
    }
    let stubs: Vec<Account> = (view.accounts.iter())
        .filter(|a| stubs.contains(a.name.as_str()))
        .cloned()
        .collect();
    f(stubs)
}

/// The digests of a view's DB clusters, per account, once [`thin`] took
/// them out.
#[derive(Debug, Default)]
pub struct Thinned(std::collections::HashMap<String, [u8; 32]>);

/// Takes the DB clusters out of a view (normalised first, as the second
/// reading normalises each part), keeping each account's digest of them:
/// once the parity plan is made, the second reading takes every account's
/// clusters from its part again, so an organization's are not all held
/// through the evaluation (about a third of the view at 10,000 accounts).
pub fn thin(view: &mut Snapshot) -> Thinned {
    let mut digests = std::collections::HashMap::new();
    for a in &mut view.accounts {
        a.normalize();
        digests.insert(a.name.clone(), clusters_digest(a));
        for r in &mut a.regions {
            r.db_clusters = Vec::new();
        }
    }
    Thinned(digests)
}

/// An account's DB clusters by region, digested.
fn clusters_digest(a: &Account) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let _ = serde_json::to_writer(&mut h, &clusters_of(a));
    h.finalize().into()
}

/// An account's DB clusters by region (regions without any left out).
fn clusters_of(a: &Account) -> Vec<(&str, &Vec<crate::snapshot::DbCluster>)> {
    (a.regions.iter())
        .filter(|r| !r.db_clusters.is_empty())
        .map(|r| (r.name.as_str(), &r.db_clusters))
        .collect()
}

/// A part that is not what the first reading read.
fn changed(source: &str, account: &str, what: &str) -> Error {
    Error::Input {
        location: Location::new(std::path::Path::new(source), 1, 1),
        message: format!(
            "account `{account}`: {what}: the parts changed while being read (read them again, or merge them first with `dbaudit merge`)"
        ),
    }
}

/// `dbaudit merge` of a run's parts into `out` without holding the merged
/// snapshot: the parts are read twice ([`merge_views`], [`bodies`]), each
/// account's whole JSON spooled to a temporary file as its part is read,
/// and the snapshot written from the spool one account at a time, in the
/// order [`merge`] gives them: the same bytes as [`Snapshot::to_json`] of
/// [`merge_each`]'s snapshot (tested).
/// `out_path` names the output in errors. Returns the merged snapshot
/// without the accounts' bodies (what the merge's summary reads).
pub fn merge_streamed(
    parts: &mut PartReader<'_>,
    run_id: Option<&str>,
    out: &mut dyn std::io::Write,
    out_path: &std::path::Path,
) -> Result<(Snapshot, MergeSummary), Error> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let (view, summary) = merge_views(parts, run_id)?;
    let io = |error: std::io::Error| Error::Io {
        path: std::env::temp_dir(),
        error: std::io::Error::new(error.kind(), format!("the merge's spool: {error}")),
    };
    let mut spool = std::io::BufWriter::new(tempfile::tempfile().map_err(io)?);
    let mut at: std::collections::HashMap<String, (u64, usize)> = Default::default();
    let mut offset = 0u64;
    bodies(
        parts,
        &view,
        &summary,
        &BTreeSet::new(),
        None,
        &mut |accounts| {
            for a in accounts {
                let bytes = serde_json::to_vec(&a).map_err(|e| io(std::io::Error::other(e)))?;
                spool.write_all(&bytes).map_err(io)?;
                at.insert(a.name.clone(), (offset, bytes.len()));
                offset += bytes.len() as u64;
            }
            Ok(())
        },
    )?;
    let file = std::cell::RefCell::new(spool.into_inner().map_err(|e| io(e.into_error()))?);
    let read = |name: &str| -> std::io::Result<Account> {
        let (offset, len) = at[name];
        let mut buf = vec![0; len];
        let mut f = file.borrow_mut();
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut buf)?;
        serde_json::from_slice(&buf).map_err(std::io::Error::other)
    };
    let streamed = Streamed {
        head: &view,
        account: &read,
    };
    let written = |error: std::io::Error| Error::Io {
        path: out_path.to_path_buf(),
        error,
    };
    serde_json::to_writer_pretty(&mut *out, &streamed).map_err(|e| written(e.into()))?;
    out.write_all(b"\n").map_err(written)?;
    Ok((view, summary))
}

/// A snapshot serialised as [`Snapshot`] is, its accounts read one at a
/// time (`head`'s accounts give the order; their bodies are elsewhere).
struct Streamed<'a> {
    head: &'a Snapshot,
    account: &'a dyn Fn(&str) -> std::io::Result<Account>,
}

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
        struct Accounts<'b>(&'b Streamed<'b>);
        impl serde::Serialize for Accounts<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let accounts = &self.0.head.accounts;
                let mut seq = serializer.serialize_seq(Some(accounts.len()))?;
                for a in accounts {
                    let whole = (self.0.account)(&a.name).map_err(S::Error::custom)?;
                    seq.serialize_element(&whole)?;
                }
                seq.end()
            }
        }
        // Snapshot's fields, in its order, with its omissions.
        let Snapshot {
            schema,
            collected_at,
            tool_version,
            accounts: _,
            shard,
            plan,
            databases_part,
        } = self.head;
        let mut st = serializer.serialize_struct("Snapshot", 7)?;
        st.serialize_field("schema", schema)?;
        st.serialize_field("collected_at", collected_at)?;
        st.serialize_field("tool_version", tool_version)?;
        st.serialize_field("accounts", &Accounts(self))?;
        if shard.is_some() {
            st.serialize_field("shard", shard)?;
        }
        if plan.is_some() {
            st.serialize_field("plan", plan)?;
        }
        if databases_part.is_some() {
            st.serialize_field("databases_part", databases_part)?;
        }
        st.end()
    }
}

const NOT_A_PART: &str = "not a shard part (written without `collect --shard K/N`); evaluate it directly, or merge only parts";

/// One sharded run being merged: its plan (from its first part), the parts
/// and accounts seen so far, and what was merged.
struct Run {
    run_id: String,
    count: usize,
    plan: Vec<PlannedAccount>,
    first_source: String,
    /// Account name → the shard the plan assigns it.
    planned: BTreeMap<String, usize>,
    by_index: BTreeMap<usize, String>,
    seen: BTreeMap<String, String>,
    merged: Snapshot,
    collected_at: Option<String>,
}

impl Run {
    fn new(source: &str, first: &ShardPart) -> Run {
        Run {
            run_id: first.run_id.clone(),
            count: first.count,
            plan: first.plan.clone(),
            first_source: source.to_string(),
            planned: first
                .plan
                .iter()
                .map(|p| (p.name.clone(), p.shard))
                .collect(),
            by_index: BTreeMap::new(),
            seen: BTreeMap::new(),
            merged: Snapshot::new(String::new()),
            collected_at: None,
        }
    }

    /// Checks one part against the run and moves its accounts in.
    fn add(&mut self, source: String, snap: Snapshot, part: ShardPart) -> Result<(), Error> {
        let count = self.count;
        if part.count != count || part.plan != self.plan {
            return Err(refuse(
                &source,
                format!(
                    "part {} of {} of run `{}` was planned differently from {} (another account list or shard count); parts of one run share one plan",
                    part.index, part.count, part.run_id, self.first_source
                ),
            ));
        }
        if let Some(other) = self.by_index.insert(part.index, source.clone()) {
            return Err(refuse(
                &source,
                format!(
                    "part {} of {count} of run `{}` is also in {other}: keep one",
                    part.index, part.run_id
                ),
            ));
        }
        if self
            .collected_at
            .as_ref()
            .is_none_or(|c| snap.collected_at < *c)
        {
            self.collected_at = Some(snap.collected_at.clone());
        }
        for mut account in snap.accounts {
            match self.planned.get(account.name.as_str()) {
                Some(shard) if *shard == part.index => {}
                Some(shard) => {
                    return Err(refuse(
                        &source,
                        format!(
                            "account `{}` is in part {} but planned for part {shard}",
                            account.name, part.index
                        ),
                    ));
                }
                None => {
                    return Err(refuse(
                        &source,
                        format!("account `{}` is not in the run's plan", account.name),
                    ));
                }
            }
            if let Some(other) = self.seen.insert(account.name.clone(), source.clone()) {
                return Err(refuse(
                    &source,
                    format!("account `{}` is also in {other}", account.name),
                ));
            }
            if account.collected_at.is_none() {
                account.collected_at = Some(snap.collected_at.clone());
            }
            if account.tool_version.is_none() {
                account.tool_version = Some(snap.tool_version.clone());
            }
            self.merged.accounts.push(account);
        }
        Ok(())
    }

    /// Missing parts and accounts become gaps; the merged snapshot.
    fn finish(self) -> (Snapshot, MergeSummary) {
        let Run {
            run_id,
            count,
            plan,
            by_index,
            seen,
            mut merged,
            collected_at,
            ..
        } = self;
        let mut summary = MergeSummary {
            run_id,
            count,
            parts: by_index.len(),
            missing_parts: (1..=count).filter(|i| !by_index.contains_key(i)).collect(),
            ..MergeSummary::default()
        };
        let missing: BTreeSet<usize> = summary.missing_parts.iter().copied().collect();
        for p in &plan {
            if seen.contains_key(&p.name) {
                continue;
            }
            let (code, message) = if missing.contains(&p.shard) {
                (
                    "ShardMissing",
                    format!(
                        "part {} of {count} of run `{}` is missing: the account was not collected",
                        p.shard, summary.run_id
                    ),
                )
            } else {
                (
                    "AccountMissing",
                    format!(
                        "part {} of {count} of run `{}` does not have this account",
                        p.shard, summary.run_id
                    ),
                )
            };
            summary.missing_accounts.push(p.name.clone());
            merged.accounts.push(Account {
                name: p.name.clone(),
                environment: p.environment.clone(),
                account_id: p.account_id.clone(),
                gaps: vec![Gap {
                    service: Service::Sts,
                    region: None,
                    operation: "Shard".into(),
                    code: code.into(),
                    message,
                }],
                ..Account::default()
            });
        }
        merged.plan = Some(plan);
        merged.collected_at = collected_at.unwrap_or_default();
        merged.normalize();
        (merged, summary)
    }
}

fn refuse(source: &str, message: String) -> Error {
    Error::Input {
        location: Location::new(std::path::Path::new(source), 1, 1),
        message,
    }
}

/// Attaches each database part to its account and regions: the part's
/// entries replace the snapshot's for every cluster the part read (the
/// placeholder of `[databases] via = "parts"`, or an older reading). Two
/// parts reading one cluster, or a part whose account id differs from the
/// snapshot's, are refused; a cluster the snapshot does not have is left
/// out and named in the summary.
fn attach_databases(
    merged: &mut Snapshot,
    parts: Vec<(String, DatabasesPart, Snapshot)>,
    summary: &mut MergeSummary,
) -> Result<(), Error> {
    let mut read_by: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (source, info, part) in parts {
        summary.database_parts += 1;
        let [from] = &part.accounts[..] else {
            return Err(refuse(
                &source,
                format!(
                    "a database part holds one account; this one holds {}",
                    part.accounts.len()
                ),
            ));
        };
        let Some(account) = merged.accounts.iter_mut().find(|a| a.name == info.account) else {
            summary
                .unattached
                .push(format!("{} (account not in the snapshot)", info.account));
            continue;
        };
        if !from.account_id.is_empty()
            && !account.account_id.is_empty()
            && from.account_id != account.account_id
        {
            return Err(refuse(
                &source,
                format!(
                    "account `{}` is {} in this database part and {} in the snapshot",
                    info.account, from.account_id, account.account_id
                ),
            ));
        }
        for region in &from.regions {
            let entries = region.pg_databases.clone().unwrap_or_default();
            let clusters: BTreeSet<&str> = entries.iter().map(|d| d.cluster_id.as_str()).collect();
            let Some(target) = account.regions.iter_mut().find(|r| r.name == region.name) else {
                summary.unattached.extend(clusters.iter().map(|c| {
                    format!(
                        "{}/{}/{c} (region not in the snapshot)",
                        info.account, region.name
                    )
                }));
                continue;
            };
            for cluster in clusters {
                let key = (
                    info.account.clone(),
                    region.name.clone(),
                    cluster.to_string(),
                );
                if let Some(other) = read_by.insert(key, source.clone()) {
                    return Err(refuse(
                        &source,
                        format!(
                            "cluster {cluster} of account `{}` in {} is also read by {other}: keep one",
                            info.account, region.name
                        ),
                    ));
                }
                if !target.postgres_hosts().iter().any(|h| h.id == cluster) {
                    summary.unattached.push(format!(
                        "{}/{}/{cluster} (cluster not in the snapshot)",
                        info.account, region.name
                    ));
                    continue;
                }
                let dbs = target.pg_databases.get_or_insert_with(Vec::new);
                dbs.retain(|d| d.cluster_id != cluster);
                dbs.extend(entries.iter().filter(|d| d.cluster_id == cluster).cloned());
                summary.attached += 1;
            }
        }
    }
    merged.normalize();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, id: &str) -> AccountConfig {
        AccountConfig {
            name: name.into(),
            environment: "prod".into(),
            account_id: id.into(),
            ..AccountConfig::default()
        }
    }

    #[test]
    fn run_ids_take_todays_date() {
        let today = crate::waivers::Date::today().to_string();
        assert_eq!(expand("nightly-{date}"), format!("nightly-{today}"));
        assert_eq!(
            expand("s3://b/p/nightly-{date}/"),
            format!("s3://b/p/nightly-{today}/")
        );
        assert_eq!(expand("fixed"), "fixed");
    }

    #[test]
    fn specs_parse_with_their_errors() {
        let none = |_: &str| None;
        assert_eq!(
            ShardSpec::parse("2/4", none).unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        assert_eq!(ShardSpec::parse("auto/4", k8s).unwrap().index, 4);
        let batch = |v: &str| (v == "AWS_BATCH_JOB_ARRAY_INDEX").then(|| "0".to_string());
        assert_eq!(ShardSpec::parse("auto/2", batch).unwrap().index, 1);
        assert!(
            ShardSpec::parse("auto/4", none)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        assert!(
            ShardSpec::parse("5/4", none)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(ShardSpec::parse("0/4", none).is_err());
        assert!(ShardSpec::parse("1/0", none).is_err());
        assert!(ShardSpec::parse("1-4", none).unwrap_err().contains("K/N"));
        let bad = |_: &str| Some("x".to_string());
        assert!(
            ShardSpec::parse("auto/4", bad)
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn the_assignment_ignores_order_and_covers_every_account_once() {
        let accounts: Vec<AccountConfig> = (0..1000)
            .map(|i| account(&format!("a{i}"), &format!("{:012}", 100_000_000_000u64 + i)))
            .collect();
        let mut reversed = accounts.clone();
        reversed.reverse();
        assert_eq!(plan(&accounts, 4, &[]), plan(&reversed, 4, &[]));
        let mut all: Vec<String> = Vec::new();
        for k in 1..=4 {
            let part = select(accounts.clone(), ShardSpec { index: k, count: 4 });
            // Roughly even: a hash, not a round robin.
            assert!((200..300).contains(&part.len()), "{}", part.len());
            all.extend(part.into_iter().map(|a| a.name));
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
        // Pinned: an account keeps its shard across releases.
        assert_eq!(
            shard_of("x", "123456789012", 4),
            shard_of("y", "123456789012", 4)
        );
        assert_eq!(
            shard_of("only-a-name", "", 7),
            shard_of("only-a-name", "", 7)
        );
    }

    fn part(index: usize, count: usize, plan: &[PlannedAccount], run: &str) -> (String, Snapshot) {
        let mut s = Snapshot::new(format!("2026-11-30T0{index}:00:00Z"));
        for p in plan.iter().filter(|p| p.shard == index) {
            s.accounts.push(Account {
                name: p.name.clone(),
                environment: p.environment.clone(),
                account_id: p.account_id.clone(),
                ..Account::default()
            });
        }
        s.shard = Some(ShardPart {
            run_id: run.into(),
            index,
            count,
            plan: plan.to_vec(),
            completed: s.accounts.iter().map(|a| a.name.clone()).collect(),
        });
        (format!("part-{index}.json"), s)
    }

    /// The merge takes one part at a time: it stops at the first part that
    /// cannot be read without pulling the next, and with several runs
    /// (no --run-id) as soon as the second run shows.
    #[test]
    fn parts_are_taken_one_at_a_time() {
        let accounts: Vec<AccountConfig> = (0..8)
            .map(|i| account(&format!("a{i}"), &format!("{:012}", 300_000_000_000u64 + i)))
            .collect();
        let plan = plan(&accounts, 4, &[]);
        let pulled = std::cell::Cell::new(0);
        let parts = (1..=4).map(|k| {
            pulled.set(pulled.get() + 1);
            if k == 2 {
                Err(Error::Usage("part 2 is unreadable".into()))
            } else {
                Ok(part(k, 4, &plan, "r1"))
            }
        });
        let e = merge_each(parts, None).unwrap_err();
        assert!(e.to_string().contains("part 2 is unreadable"), "{e}");
        assert_eq!(
            pulled.get(),
            2,
            "the parts after the failing one were not read"
        );
        let runs = [
            part(1, 4, &plan, "r1"),
            part(2, 4, &plan, "r2"),
            part(3, 4, &plan, "r1"),
        ];
        let e = merge_each(runs.into_iter().map(Ok), None).unwrap_err();
        assert!(
            e.to_string().contains("parts of several runs (r1, r2)"),
            "{e}"
        );
        // With --run-id, the other run's parts are read and left out.
        let runs = [part(1, 4, &plan, "r1"), part(2, 4, &plan, "r2")];
        let (m, summary) = merge_each(runs.into_iter().map(Ok), Some("r2")).unwrap();
        assert_eq!(summary.other_runs, 1);
        assert_eq!(summary.missing_parts, vec![1, 3, 4]);
        assert_eq!(m.accounts.len(), 8);
    }

    #[test]
    fn a_missing_part_becomes_gaps_and_conflicts_are_refused() {
        let accounts: Vec<AccountConfig> = (0..40)
            .map(|i| {
                account(
                    &format!("a{i:02}"),
                    &format!("{:012}", 200_000_000_000u64 + i),
                )
            })
            .collect();
        let plan = plan(&accounts, 4, &[]);
        let parts: Vec<(String, Snapshot)> = (1..=4).map(|k| part(k, 4, &plan, "r1")).collect();
        let (all, summary) = merge(parts.clone(), None).unwrap();
        assert_eq!(all.accounts.len(), 40);
        assert!(summary.missing_parts.is_empty());
        assert_eq!(
            all.collected_at, "2026-11-30T01:00:00Z",
            "the earliest part"
        );
        assert!(all.accounts.iter().all(|a| a.collected_at.is_some()));

        // Part 3 killed: its accounts are gaps, nothing is silently dropped.
        let without: Vec<_> = parts
            .iter()
            .filter(|(n, _)| n != "part-3.json")
            .cloned()
            .collect();
        let (m, summary) = merge(without, None).unwrap();
        assert_eq!(m.accounts.len(), 40);
        assert_eq!(summary.missing_parts, vec![3]);
        let lost: Vec<&Account> = m.accounts.iter().filter(|a| !a.gaps.is_empty()).collect();
        assert_eq!(lost.len(), plan.iter().filter(|p| p.shard == 3).count());
        assert!(
            lost.iter()
                .all(|a| a.gaps[0].code == "ShardMissing" && a.gaps[0].service == Service::Sts)
        );

        // The same part twice, two runs, a foreign plan: refused.
        let mut twice = parts.clone();
        twice.push(("copy.json".into(), parts[0].1.clone()));
        assert!(
            merge(twice, None)
                .unwrap_err()
                .to_string()
                .contains("also in")
        );
        let mut two_runs = parts.clone();
        two_runs.push(part(1, 4, &plan, "r2"));
        assert!(
            merge(two_runs.clone(), None)
                .unwrap_err()
                .to_string()
                .contains("--run-id")
        );
        let (_, s) = merge(two_runs, Some("r1")).unwrap();
        assert_eq!(s.other_runs, 1);
        let mut other_plan = parts.clone();
        other_plan.push(part(1, 4, &plan[1..], "r1"));
        other_plan.remove(0);
        assert!(
            merge(other_plan, None)
                .unwrap_err()
                .to_string()
                .contains("planned differently")
        );
        let mut plain = parts;
        plain[0].1.shard = None;
        assert!(
            merge(plain, None)
                .unwrap_err()
                .to_string()
                .contains("not a shard part")
        );
    }
}

#[cfg(test)]
mod database_parts {
    use super::*;
    use crate::snapshot::{DatabasesPart, DbCluster, PgDatabase, Region};

    fn base() -> (String, Snapshot) {
        let mut s = Snapshot::new("2026-12-01T00:00:00Z".into());
        s.accounts = vec![Account {
            name: "prod".into(),
            environment: "prod".into(),
            account_id: "222222222222".into(),
            regions: vec![Region {
                name: "eu-west-1".into(),
                db_clusters: vec![DbCluster {
                    id: "orders".into(),
                    engine: "aurora-postgresql".into(),
                    ..Default::default()
                }],
                pg_databases: Some(vec![PgDatabase {
                    cluster_id: "orders".into(),
                    database: "*".into(),
                    unreadable: Some("awaiting".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }];
        ("snapshot.json".into(), s)
    }

    fn part(account_id: &str, clusters: &[&str]) -> (String, Snapshot) {
        let mut s = Snapshot::new("2026-12-01T01:00:00Z".into());
        s.databases_part = Some(DatabasesPart {
            account: "prod".into(),
            snapshot_collected_at: "2026-12-01T00:00:00Z".into(),
            run_id: None,
        });
        s.accounts = vec![Account {
            name: "prod".into(),
            account_id: account_id.into(),
            regions: vec![Region {
                name: "eu-west-1".into(),
                pg_databases: Some(
                    clusters
                        .iter()
                        .map(|c| PgDatabase {
                            cluster_id: (*c).into(),
                            database: "app".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }];
        (format!("{}.json", clusters.join("-")), s)
    }

    /// The part replaces the placeholder; a cluster the snapshot lacks is
    /// named, not attached; another account id, or one cluster read twice,
    /// is refused.
    #[test]
    fn parts_replace_placeholders_and_conflicts_are_refused() {
        let (m, summary) = merge(
            vec![base(), part("222222222222", &["orders", "gone"])],
            None,
        )
        .unwrap();
        let dbs = m.accounts[0].regions[0].pg_databases.as_ref().unwrap();
        assert_eq!(dbs.len(), 1);
        assert_eq!(dbs[0].database, "app");
        assert!(summary.whole);
        assert_eq!(summary.attached, 1);
        assert_eq!(
            summary.unattached,
            ["prod/eu-west-1/gone (cluster not in the snapshot)"]
        );
        let other = merge(vec![base(), part("333333333333", &["orders"])], None).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("is 333333333333 in this database part"),
            "{other}"
        );
        let mut again = part("222222222222", &["orders"]);
        again.0 = "again.json".into();
        let twice =
            merge(vec![base(), part("222222222222", &["orders"]), again], None).unwrap_err();
        assert!(twice.to_string().contains("is also read by"), "{twice}");
        // Without a database part, a whole snapshot is not a shard part.
        assert!(merge(vec![base()], None).is_err());
    }
}

#[cfg(test)]
mod streamed {
    use super::*;

    /// An estate's snapshot as shard parts of run `r`, every part but
    /// `leave_out`.
    fn parts_of(estate: &str, count: usize, leave_out: Option<usize>) -> Vec<(String, Snapshot)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let whole = Snapshot::load(&root.join(format!("fixtures/{estate}/snapshot.json"))).unwrap();
        (super::parts_of(&whole, count, "r").into_iter().enumerate())
            .filter(|(i, _)| Some(i + 1) != leave_out)
            .map(|(i, p)| (format!("part-{}.json", i + 1), p))
            .collect()
    }

    fn streamed(parts: &[(String, Snapshot)]) -> String {
        let mut reader = || -> Result<Parts, Error> {
            // Owned: a reading outlives the borrow of the test's parts.
            let owned: Vec<(String, Snapshot)> = parts.to_vec();
            Ok(Box::new(owned.into_iter().map(Ok)))
        };
        let mut out = Vec::new();
        merge_streamed(
            &mut reader,
            None,
            &mut out,
            std::path::Path::new("out.json"),
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The merge written a part at a time is the merge, byte for byte.
    #[test]
    fn a_streamed_merge_writes_what_the_merge_does() {
        for estate in ["demo", "unhappy"] {
            for leave_out in [None, Some(1)] {
                let parts = parts_of(estate, 3, leave_out);
                let (whole, _) = merge_each(parts.clone().into_iter().map(Ok), None).unwrap();
                assert_eq!(
                    streamed(&parts),
                    whole.to_json(),
                    "{estate}, part {leave_out:?} left out"
                );
            }
        }
        // A whole snapshot with a database part attached to it.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut whole = Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap();
        let prod = whole
            .accounts
            .iter_mut()
            .find(|a| a.name == "prod")
            .unwrap();
        let cluster = prod.regions[0].db_clusters[0].id.clone();
        prod.regions[0].pg_databases = Some(vec![crate::snapshot::PgDatabase {
            cluster_id: cluster.clone(),
            database: "*".into(),
            unreadable: Some("awaiting its part".into()),
            ..Default::default()
        }]);
        let mut part = Snapshot::new(whole.collected_at.clone());
        part.databases_part = Some(DatabasesPart {
            account: "prod".into(),
            snapshot_collected_at: whole.collected_at.clone(),
            run_id: None,
        });
        part.accounts = vec![Account {
            name: "prod".into(),
            account_id: prod.account_id.clone(),
            regions: vec![crate::snapshot::Region {
                name: prod.regions[0].name.clone(),
                pg_databases: Some(vec![crate::snapshot::PgDatabase {
                    cluster_id: cluster,
                    database: "app".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }];
        let parts = vec![("s.json".to_string(), whole), ("db.json".to_string(), part)];
        let (merged, summary) = merge_each(parts.clone().into_iter().map(Ok), None).unwrap();
        assert_eq!(summary.attached, 1);
        assert_eq!(streamed(&parts), merged.to_json());
    }
}
