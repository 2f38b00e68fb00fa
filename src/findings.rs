//! The findings of a run, held in memory or spooled to a temporary file one
//! account at a time, so that an organization's findings need not all be
//! resident: evaluation appends each account's findings as it finishes
//! them, renderers read them back an account at a time (docs/performance.md,
//! "A stream, not a heap").
//!
//! Either way the findings are in report order and grouped by account, and
//! every reader sees the same findings: the JSON of a spooled and of an
//! in-memory report are the same bytes (tested below and by the goldens).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use serde::ser::{Error as _, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::finding::{Finding, Outcome};

/// A run's findings: in memory, or spooled (each account's findings one
/// chunk of a temporary file that disappears with the last handle).
#[derive(Debug, Clone)]
pub enum Findings {
    Memory(Vec<Finding>),
    Spooled(Spool),
}

/// Which findings a reader looks at, by outcome ([`Findings::chunks_where`]).
pub type Keep = fn(Outcome) -> bool;

/// Every finding.
pub fn every(_: Outcome) -> bool {
    true
}

/// The findings that did not pass (failed, erred, waived, unknown).
pub fn not_passed(o: Outcome) -> bool {
    o != Outcome::Pass
}

impl Default for Findings {
    fn default() -> Self {
        Findings::Memory(Vec::new())
    }
}

impl From<Vec<Finding>> for Findings {
    fn from(v: Vec<Finding>) -> Self {
        Findings::Memory(v)
    }
}

impl Findings {
    pub fn len(&self) -> usize {
        match self {
            Findings::Memory(v) => v.len(),
            Findings::Spooled(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The findings in report order, one account's run at a time (a
    /// spooled account read when reached, dropped by the caller).
    pub fn chunks(&self) -> Box<dyn Iterator<Item = io::Result<Cow<'_, [Finding]>>> + '_> {
        self.chunks_where(every)
    }

    /// [`Findings::chunks`] for a reader that looks only at the findings
    /// whose outcome `keep` accepts: a spooled store leaves the others out
    /// without decoding them (most findings pass); in memory they are all
    /// there, so the reader still filters.
    pub fn chunks_where(
        &self,
        keep: Keep,
    ) -> Box<dyn Iterator<Item = io::Result<Cow<'_, [Finding]>>> + '_> {
        match self {
            Findings::Memory(v) => Box::new(
                v.chunk_by(|a, b| a.account == b.account)
                    .map(|c| Ok(Cow::Borrowed(c))),
            ),
            Findings::Spooled(s) => {
                // An account's consecutive chunks are read as one.
                let mut i = 0;
                Box::new(std::iter::from_fn(move || {
                    let account = &s.chunks.get(i)?.account;
                    let mut out = Vec::new();
                    while s.chunks.get(i).is_some_and(|c| c.account == *account) {
                        match s.read(i, keep) {
                            Ok(f) => out.extend(f),
                            Err(e) => {
                                i = s.chunks.len();
                                return Some(Err(e));
                            }
                        }
                        i += 1;
                    }
                    Some(Ok(Cow::Owned(out)))
                }))
            }
        }
    }

    /// Every finding at once: for the readers that still need them all
    /// (`dbaudit plan`, a history recording accounts that share an id). Of
    /// a spooled store, a copy read back.
    pub fn load(&self) -> io::Result<Cow<'_, [Finding]>> {
        match self {
            Findings::Memory(v) => Ok(Cow::Borrowed(v)),
            Findings::Spooled(_) => {
                let mut all = Vec::with_capacity(self.len());
                for c in self.chunks() {
                    all.extend(c?.into_owned());
                }
                Ok(Cow::Owned(all))
            }
        }
    }

    /// Where each account's findings are, for renderers that go through the
    /// accounts in their own order (JUnit, SARIF files).
    pub fn by_account(&self) -> ByAccount<'_> {
        let mut runs: HashMap<&str, Vec<usize>> = HashMap::new();
        match self {
            Findings::Memory(v) => {
                let mut start = 0;
                for c in v.chunk_by(|a, b| a.account == b.account) {
                    runs.entry(&*c[0].account).or_default().push(start);
                    start += c.len();
                }
            }
            Findings::Spooled(s) => {
                for (i, c) in s.chunks.iter().enumerate() {
                    runs.entry(&*c.account).or_default().push(i);
                }
            }
        }
        ByAccount {
            findings: self,
            runs,
        }
    }

    /// Changes the findings chunk by chunk (waivers, baseline states): in
    /// place in memory; a spooled store is rewritten to a new spool.
    pub fn map_chunks(&mut self, mut f: impl FnMut(&mut [Finding])) -> io::Result<()> {
        match self {
            Findings::Memory(v) => {
                f(v);
                Ok(())
            }
            Findings::Spooled(s) => {
                let mut out = SpoolWriter::new()?;
                for i in 0..s.chunks.len() {
                    let mut c = s.read(i, every)?;
                    f(&mut c);
                    out.push(&c)?;
                }
                *s = out.finish()?;
                Ok(())
            }
        }
    }
}

/// An error reading or writing the spool, as the library reports I/O: the
/// spool's directory and what failed.
pub fn spool_error(error: io::Error) -> crate::error::Error {
    crate::error::Error::Io {
        path: std::env::temp_dir(),
        error: io::Error::new(error.kind(), format!("the findings spool: {error}")),
    }
}

/// [`Findings::by_account`].
pub struct ByAccount<'a> {
    findings: &'a Findings,
    /// Memory: where each of the account's runs starts; spooled: its chunks.
    runs: HashMap<&'a str, Vec<usize>>,
}

impl ByAccount<'_> {
    /// The account's findings in report order (none when it has none).
    pub fn get(&self, account: &str) -> io::Result<Cow<'_, [Finding]>> {
        self.get_where(account, every)
    }

    /// [`ByAccount::get`] for a reader that looks only at the findings
    /// whose outcome `keep` accepts (as [`Findings::chunks_where`]).
    pub fn get_where(&self, account: &str, keep: Keep) -> io::Result<Cow<'_, [Finding]>> {
        let Some(runs) = self.runs.get(account) else {
            return Ok(Cow::Borrowed(&[]));
        };
        match self.findings {
            Findings::Memory(v) => {
                let run = |start: usize| {
                    let len = v[start..]
                        .iter()
                        .take_while(|f| &*f.account == account)
                        .count();
                    &v[start..start + len]
                };
                if let [one] = runs[..] {
                    Ok(Cow::Borrowed(run(one)))
                } else {
                    Ok(Cow::Owned(
                        runs.iter().flat_map(|&s| run(s)).cloned().collect(),
                    ))
                }
            }
            Findings::Spooled(s) => {
                let mut out = Vec::new();
                for &i in runs {
                    out.extend(s.read(i, keep)?);
                }
                Ok(Cow::Owned(out))
            }
        }
    }
}

impl Serialize for Findings {
    /// A sequence, as `Vec<Finding>` is: a spooled store is read back an
    /// account at a time while it is written.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Findings::Memory(v) => v.serialize(serializer),
            Findings::Spooled(_) => {
                let mut seq = serializer.serialize_seq(Some(self.len()))?;
                for c in self.chunks() {
                    let c = c.map_err(|e| {
                        S::Error::custom(format!("reading the spooled findings: {e}"))
                    })?;
                    for f in c.iter() {
                        seq.serialize_element(f)?;
                    }
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Findings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Finding>::deserialize(deserializer).map(Findings::Memory)
    }
}

/// One account's findings in the spool file.
#[derive(Debug)]
struct Chunk {
    account: Arc<str>,
    offset: u64,
    bytes: usize,
}

/// Spooled findings: a temporary file (in `TMPDIR`, removed when the last
/// handle closes) of encoded findings ([`codec`]), one chunk per account
/// (or per call that continued an account: read together).
#[derive(Debug, Clone)]
pub struct Spool {
    file: Arc<Mutex<File>>,
    chunks: Arc<Vec<Chunk>>,
    len: usize,
}

impl Spool {
    fn read(&self, i: usize, keep: Keep) -> io::Result<Vec<Finding>> {
        let c = &self.chunks[i];
        let mut buf = vec![0; c.bytes];
        {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.seek(SeekFrom::Start(c.offset))?;
            file.read_exact(&mut buf)?;
        }
        let mut r = codec::Reader::new(&buf);
        let mut out = Vec::new();
        while !r.done() {
            out.extend(r.finding_if(&keep)?);
        }
        Ok(out)
    }
}

/// Writes a spool, one account's findings at a time.
pub struct SpoolWriter {
    file: BufWriter<File>,
    chunks: Vec<Chunk>,
    offset: u64,
    len: usize,
}

impl SpoolWriter {
    pub fn new() -> io::Result<SpoolWriter> {
        Ok(SpoolWriter {
            file: BufWriter::with_capacity(1 << 20, tempfile::tempfile()?),
            chunks: Vec::new(),
            offset: 0,
            len: 0,
        })
    }

    /// Appends findings in report order; each run of one account's
    /// findings is a chunk (an account's findings pushed in two calls in a
    /// row are read back together).
    pub fn push(&mut self, findings: &[Finding]) -> io::Result<()> {
        for run in findings.chunk_by(|a, b| a.account == b.account) {
            let start = self.offset;
            // Strings are numbered per chunk: a run continued by the next
            // call starts its own table (each chunk decodes alone).
            let mut w = codec::Writer::default();
            for f in run {
                w.finding(f);
            }
            self.file.write_all(&w.buf)?;
            self.offset += w.buf.len() as u64;
            self.len += run.len();
            let bytes = usize::try_from(self.offset - start).map_err(io::Error::other)?;
            self.chunks.push(Chunk {
                account: run[0].account.clone(),
                offset: start,
                bytes,
            });
        }
        Ok(())
    }

    /// The spool, its chunks in report order: by account (an account's in
    /// the order they were pushed), whatever order the accounts came in.
    pub fn finish(mut self) -> io::Result<Spool> {
        self.chunks.sort_by(|a, b| a.account.cmp(&b.account));
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        Ok(Spool {
            file: Arc::new(Mutex::new(file)),
            chunks: Arc::new(self.chunks),
            len: self.len,
        })
    }
}

/// The spool's encoding: per finding, its fields in declaration order;
/// strings as LEB128 lengths and bytes, those of the `Arc<str>` fields
/// numbered per chunk so that a repeated one (a rule's id and title, the
/// account, a pass message) is written once, then referred to by number,
/// and shared again when read back; the rare evidence and waiver as JSON.
/// JSON lines cost about a second per pass over 800,000 findings. The
/// format is the spool's own, read by nothing but [`Spool`].
mod codec {
    use std::collections::HashMap;
    use std::io;
    use std::sync::Arc;

    use crate::facts::ResourceKind;
    use crate::finding::{BaselineState, Finding, Outcome, RepoLocation, Severity};

    #[derive(Default)]
    pub struct Writer {
        pub buf: Vec<u8>,
        /// The strings written, by content.
        table: HashMap<Arc<str>, u64, foldhash::fast::RandomState>,
        /// The same, by the address of the `Arc` written: most repeats are
        /// the same `Arc` (a rule's id, the account, a resource's ARN for
        /// each rule), found without hashing the text.
        by_address: HashMap<usize, u64, foldhash::fast::RandomState>,
    }

    impl Writer {
        fn uint(&mut self, mut n: u64) {
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    self.buf.push(byte);
                    return;
                }
                self.buf.push(byte | 0x80);
            }
        }

        /// Odd: the number of a string already written; even: twice the
        /// length of a new one, then its bytes.
        fn shared(&mut self, s: &Arc<str>) {
            // A writer encodes findings that are borrowed while it lives
            // (one chunk): no `Arc` it saw is freed, so no address it
            // recorded can come back as another string's.
            let address = s.as_ptr().addr();
            if let Some(&i) = self.by_address.get(&address) {
                self.uint(i << 1 | 1);
                return;
            }
            if let Some(&i) = self.table.get(s) {
                self.by_address.insert(address, i);
                self.uint(i << 1 | 1);
                return;
            }
            let i = self.table.len() as u64;
            self.table.insert(s.clone(), i);
            self.by_address.insert(address, i);
            self.uint((s.len() as u64) << 1);
            self.buf.extend_from_slice(s.as_bytes());
        }

        fn text(&mut self, s: &str) {
            self.uint(s.len() as u64);
            self.buf.extend_from_slice(s.as_bytes());
        }

        fn opt_text(&mut self, s: Option<&str>) {
            match s {
                None => self.uint(0),
                Some(s) => {
                    self.uint(1);
                    self.text(s);
                }
            }
        }

        pub fn finding(&mut self, f: &Finding) {
            self.shared(&f.rule_id);
            self.shared(&f.title);
            self.text(f.severity.as_str());
            self.text(f.outcome.as_str());
            self.shared(&f.account);
            self.shared(&f.account_id);
            self.shared(&f.environment);
            match &f.region {
                None => self.uint(0),
                Some(r) => {
                    self.uint(1);
                    self.shared(r);
                }
            }
            self.text(f.resource_kind.as_str());
            self.shared(&f.resource_id);
            self.shared(&f.resource_arn);
            self.shared(&f.message);
            let evidence = f.evidence.as_ref().map(|e| e.to_string());
            self.opt_text(evidence.as_deref());
            self.text(&f.fingerprint);
            let waiver = (f.waiver.as_ref()).map(|w| serde_json::to_string(w).unwrap_or_default());
            self.opt_text(waiver.as_deref());
            self.uint(match f.baseline {
                None => 0,
                Some(BaselineState::New) => 1,
                Some(BaselineState::Existing) => 2,
            });
            self.opt_text(f.source.as_deref());
            match &f.location {
                None => self.uint(0),
                Some(l) => {
                    self.uint(1);
                    self.text(&l.path);
                    self.uint(l.line as u64);
                }
            }
        }
    }

    pub struct Reader<'a> {
        buf: &'a [u8],
        at: usize,
        /// The chunk's strings as numbered, borrowed from the buffer; each
        /// made an `Arc<str>` once, when a finding that is kept uses it.
        table: Vec<&'a str>,
        shared: Vec<Option<Arc<str>>>,
    }

    fn bad(what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the spool is corrupt: {what}"),
        )
    }

    /// A finding as encoded: strings borrowed or numbered, nothing
    /// allocated, so that one left out costs only its reading.
    struct Raw<'a> {
        rule_id: usize,
        title: usize,
        severity: Severity,
        outcome: Outcome,
        account: usize,
        account_id: usize,
        environment: usize,
        region: Option<usize>,
        resource_kind: ResourceKind,
        resource_id: usize,
        resource_arn: usize,
        message: usize,
        evidence: Option<&'a str>,
        fingerprint: &'a str,
        waiver: Option<&'a str>,
        baseline: Option<BaselineState>,
        source: Option<&'a str>,
        location: Option<(&'a str, u64)>,
    }

    impl<'a> Reader<'a> {
        pub fn new(buf: &'a [u8]) -> Reader<'a> {
            Reader {
                buf,
                at: 0,
                table: Vec::new(),
                shared: Vec::new(),
            }
        }

        pub fn done(&self) -> bool {
            self.at >= self.buf.len()
        }

        fn uint(&mut self) -> io::Result<u64> {
            let mut n = 0u64;
            for shift in (0..64).step_by(7) {
                let b = *self.buf.get(self.at).ok_or_else(|| bad("truncated"))?;
                self.at += 1;
                n |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Ok(n);
                }
            }
            Err(bad("a number too long"))
        }

        fn bytes(&mut self, len: u64) -> io::Result<&'a str> {
            let len = usize::try_from(len).map_err(|_| bad("a length"))?;
            let end = self.at.checked_add(len).ok_or_else(|| bad("a length"))?;
            let b = self.buf.get(self.at..end).ok_or_else(|| bad("truncated"))?;
            self.at = end;
            std::str::from_utf8(b).map_err(|_| bad("not UTF-8"))
        }

        /// The number of a shared string (a new one is numbered here).
        fn shared(&mut self) -> io::Result<usize> {
            let n = self.uint()?;
            if n & 1 == 1 {
                let i = usize::try_from(n >> 1).map_err(|_| bad("a string number"))?;
                return (i < self.table.len())
                    .then_some(i)
                    .ok_or_else(|| bad("a string number"));
            }
            let s = self.bytes(n >> 1)?;
            self.table.push(s);
            self.shared.push(None);
            Ok(self.table.len() - 1)
        }

        /// Shared string `i`, the same `Arc` for every finding that uses it.
        fn arc(&mut self, i: usize) -> Arc<str> {
            self.shared[i]
                .get_or_insert_with(|| Arc::from(self.table[i]))
                .clone()
        }

        fn text(&mut self) -> io::Result<&'a str> {
            let len = self.uint()?;
            self.bytes(len)
        }

        fn opt_text(&mut self) -> io::Result<Option<&'a str>> {
            match self.uint()? {
                0 => Ok(None),
                _ => self.text().map(Some),
            }
        }

        fn json<T: serde::de::DeserializeOwned>(s: Option<&str>) -> io::Result<Option<T>> {
            s.map(|s| serde_json::from_str(s).map_err(|_| bad("JSON")))
                .transpose()
        }

        fn raw(&mut self) -> io::Result<Raw<'a>> {
            Ok(Raw {
                rule_id: self.shared()?,
                title: self.shared()?,
                severity: Severity::parse(self.text()?).ok_or_else(|| bad("a severity"))?,
                outcome: Outcome::parse(self.text()?).ok_or_else(|| bad("an outcome"))?,
                account: self.shared()?,
                account_id: self.shared()?,
                environment: self.shared()?,
                region: match self.uint()? {
                    0 => None,
                    _ => Some(self.shared()?),
                },
                resource_kind: ResourceKind::parse(self.text()?)
                    .ok_or_else(|| bad("a resource kind"))?,
                resource_id: self.shared()?,
                resource_arn: self.shared()?,
                message: self.shared()?,
                evidence: self.opt_text()?,
                fingerprint: self.text()?,
                waiver: self.opt_text()?,
                baseline: match self.uint()? {
                    0 => None,
                    1 => Some(BaselineState::New),
                    2 => Some(BaselineState::Existing),
                    _ => return Err(bad("a baseline state")),
                },
                source: self.opt_text()?,
                location: match self.uint()? {
                    0 => None,
                    _ => Some((self.text()?, self.uint()?)),
                },
            })
        }

        /// The next finding, or `None` when `keep` leaves its outcome out
        /// (then only read past: nothing of it is allocated).
        pub fn finding_if(
            &mut self,
            keep: &dyn Fn(Outcome) -> bool,
        ) -> io::Result<Option<Finding>> {
            let raw = self.raw()?;
            if !keep(raw.outcome) {
                return Ok(None);
            }
            Ok(Some(Finding {
                rule_id: self.arc(raw.rule_id),
                title: self.arc(raw.title),
                severity: raw.severity,
                outcome: raw.outcome,
                account: self.arc(raw.account),
                account_id: self.arc(raw.account_id),
                environment: self.arc(raw.environment),
                region: raw.region.map(|r| self.arc(r)),
                resource_kind: raw.resource_kind,
                resource_id: self.arc(raw.resource_id),
                resource_arn: self.arc(raw.resource_arn),
                message: self.arc(raw.message),
                evidence: Self::json(raw.evidence)?.map(Box::new),
                fingerprint: raw.fingerprint.to_string(),
                waiver: Self::json(raw.waiver)?.map(Box::new),
                baseline: raw.baseline,
                source: raw.source.map(str::to_string),
                location: match raw.location {
                    None => None,
                    Some((path, line)) => Some(RepoLocation {
                        path: path.to_string(),
                        line: usize::try_from(line).map_err(|_| bad("a line"))?,
                    }),
                },
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Vec<Finding> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let snapshot =
            crate::snapshot::Snapshot::load(&root.join("fixtures/demo/snapshot.json")).unwrap();
        let config = crate::config::Config::load(&root.join("fixtures/demo/dbaudit.toml")).unwrap();
        let rules = crate::rules::RuleSet::load(&[], &[]).unwrap();
        crate::evaluate::evaluate(&snapshot, &rules, &config)
    }

    fn spooled(v: &[Finding], pieces: usize) -> Findings {
        let mut w = SpoolWriter::new().unwrap();
        for piece in v.chunks(v.len().div_ceil(pieces)) {
            w.push(piece).unwrap();
        }
        Findings::Spooled(w.finish().unwrap())
    }

    #[test]
    fn a_filtered_reading_leaves_the_passes_out_and_keeps_their_strings() {
        let v = demo();
        let want: Vec<Finding> = v
            .iter()
            .filter(|f| not_passed(f.outcome))
            .cloned()
            .collect();
        assert!(!want.is_empty() && want.len() < v.len());
        // A pass that is a chunk's first finding introduces the strings
        // (account, rule) that the kept findings after it refer to.
        let first = v.chunk_by(|a, b| a.account == b.account).map(|c| &c[0]);
        assert!(first.clone().any(|f| f.outcome == Outcome::Pass));
        let s = spooled(&v, 7);
        let kept: Vec<Finding> = (s.chunks_where(not_passed))
            .flat_map(|c| c.unwrap().into_owned())
            .collect();
        let json = |f: &[Finding]| serde_json::to_string(f).unwrap();
        assert_eq!(json(&kept), json(&want));
        let by = s.by_account();
        for f in first {
            let read = by.get_where(&f.account, not_passed).unwrap();
            let mine: Vec<Finding> = (want.iter())
                .filter(|w| w.account == f.account)
                .cloned()
                .collect();
            assert_eq!(json(&read), json(&mine));
        }
        // In memory nothing is left out: the reader filters.
        let m = Findings::Memory(v.clone());
        let all: usize = m.chunks_where(not_passed).map(|c| c.unwrap().len()).sum();
        assert_eq!(all, v.len());
    }

    #[test]
    fn a_spool_reads_back_what_was_written_an_account_at_a_time() {
        let v = demo();
        let accounts = v.chunk_by(|a, b| a.account == b.account).count();
        assert!(accounts > 1, "the demo has several accounts");
        // Pushed in pieces that split accounts: still one chunk each.
        let s = spooled(&v, 7);
        assert_eq!(s.len(), v.len());
        assert_eq!(s.chunks().count(), accounts);
        assert_eq!(&*s.load().unwrap(), &v[..]);
        let by = s.by_account();
        let m = Findings::Memory(v.clone());
        let mem = m.by_account();
        for f in &v {
            assert_eq!(by.get(&f.account).unwrap(), mem.get(&f.account).unwrap());
        }
        assert!(by.get("no-such-account").unwrap().is_empty());
    }

    #[test]
    fn every_field_survives_the_spool() {
        let mut v = demo();
        // Every optional field set on one finding, none on the next.
        let f = &mut v[0];
        f.evidence = Some(Box::new(serde_json::json!({"missing": ["a", 1, null]})));
        f.waiver = Some(Box::new(crate::finding::WaiverRef {
            reason: "accepted — until the migration".into(),
            owner: Some("team-db".into()),
            ticket: None,
            expires: Some("2027-01-31".into()),
            location: "waivers.toml:3".into(),
        }));
        f.baseline = Some(crate::finding::BaselineState::Existing);
        f.source = Some("git@example:infra.git//db".into());
        f.location = Some(crate::finding::RepoLocation {
            path: "terraform/db.tf".into(),
            line: 1234567,
        });
        f.outcome = crate::finding::Outcome::Waived;
        v[1].region = None;
        v[1].baseline = Some(crate::finding::BaselineState::New);
        let s = spooled(&v, 1);
        assert_eq!(&*s.load().unwrap(), &v[..]);
    }

    #[test]
    fn a_corrupt_spool_is_an_error_not_a_panic() {
        let v = demo();
        let mut w = codec::Writer::default();
        w.finding(&v[0]);
        for cut in 0..w.buf.len() {
            let mut r = codec::Reader::new(&w.buf[..cut]);
            assert!(r.finding_if(&|_| true).is_err(), "{cut} bytes");
        }
    }

    #[test]
    fn spooled_and_in_memory_findings_serialize_to_the_same_bytes() {
        let v = demo();
        let s = spooled(&v, 3);
        let m = Findings::Memory(v);
        assert_eq!(
            serde_json::to_string_pretty(&s).unwrap(),
            serde_json::to_string_pretty(&m).unwrap()
        );
    }

    #[test]
    fn map_chunks_rewrites_a_spool() {
        let v = demo();
        let mut s = spooled(&v, 2);
        let mut seen = 0;
        s.map_chunks(|c| {
            seen += c.len();
            for f in c {
                f.message = "changed".into();
            }
        })
        .unwrap();
        assert_eq!(seen, v.len());
        let back = s.load().unwrap();
        assert_eq!(back.len(), v.len());
        assert!(back.iter().all(|f| &*f.message == "changed"));
    }
}
