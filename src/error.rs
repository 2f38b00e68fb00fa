//! Library error type and the `file:line:col` locations every input error carries.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A position in an input file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn new(path: &Path, line: usize, column: usize) -> Self {
        Location {
            path: path.to_path_buf(),
            line: line.max(1),
            column: column.max(1),
        }
    }

    /// Location of a byte offset in `text`.
    pub fn from_offset(path: &Path, text: &str, offset: usize) -> Self {
        // Offsets can come from counts of characters added to byte positions
        // (CEL columns): step back to a character boundary rather than slice
        // inside one (found by fuzzing, with a byte-order mark in a rule).
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Location::new(path, line, column)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// One problem found in an input file, with the source line and a caret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub location: Location,
    pub message: String,
    /// The offending source line, for the caret display.
    pub source_line: Option<String>,
}

impl Problem {
    pub fn at(path: &Path, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let location = Location::from_offset(path, text, offset);
        let source_line = text.lines().nth(location.line - 1).map(str::to_string);
        Problem {
            location,
            message: message.into(),
            source_line,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some(line) = &self.source_line {
            // A window of a long line around the column, not all of it.
            const WINDOW: usize = 60;
            let chars: Vec<char> = line.chars().collect();
            let col = (self.location.column - 1).min(chars.len());
            let start = col.saturating_sub(WINDOW);
            let end = (col + WINDOW).min(chars.len());
            let mut shown: String = chars[start..end].iter().collect();
            let mut caret_at = col - start;
            if start > 0 {
                shown.insert(0, '…');
                caret_at += 1;
            }
            if end < chars.len() {
                shown.push('…');
            }
            let pad: String = shown
                .chars()
                .take(caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n    | {shown}\n    | {pad}^")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed input with its position (snapshot, report…).
    #[error("{location}: {message}")]
    Input { location: Location, message: String },
    /// Validation of a config, rule or waiver file found one or more problems.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
    // The OS error is part of the message, not a `source`: `{:#}` in main
    // prints the source chain, which printed it twice.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    /// The findings history could not be opened, read or written (the
    /// message names the store).
    #[error("{0}")]
    History(String),
    /// SIGINT or SIGTERM arrived during collection; nothing was written.
    #[error("interrupted by {name} during collection; no output was written")]
    Interrupted { signal: i32, name: &'static str },
}

impl Error {
    /// The process exit code for this error: 128 + signal for an
    /// interruption (130 SIGINT, 143 SIGTERM), else 2.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Interrupted { signal, .. } => 128 + signal,
            _ => 2,
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    if problems.len() > 1 {
        out.push_str(&format!("\n{} problems found", problems.len()));
    }
    out
}

/// Largest config, rule or waiver file read (hand-written files).
pub const MAX_SMALL_INPUT: u64 = 4 << 20;
/// Largest snapshot or report read (machine-written; ~50 MB holds 10,000
/// clusters, 30,000 instances and 20,000 security groups).
pub const MAX_LARGE_INPUT: u64 = 1 << 30;

/// Reads a UTF-8 text file of at most `MAX_SMALL_INPUT` bytes.
pub fn read_to_string(path: &Path) -> Result<String, Error> {
    read_to_string_limited(path, MAX_SMALL_INPUT)
}

/// Reads a UTF-8 text file of at most `limit` bytes; invalid UTF-8 is
/// reported with its position, an oversized file before it is read.
pub fn read_to_string_limited(path: &Path, limit: u64) -> Result<String, Error> {
    let io = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > limit {
        return Err(Error::Input {
            location: Location::new(path, 1, 1),
            message: format!(
                "file is {size} bytes; the limit for this kind of input is {limit} bytes"
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        Error::Input {
            location: Location::from_offset(path, &text, valid),
            message: "file is not valid UTF-8".to_string(),
        }
    })
}

/// Writes `contents` to `path` atomically: a temporary file in the same
/// directory, flushed and renamed over the target. A crash or a signal leaves
/// either the old file or the new one, never half of one.
///
/// Only regular files are replaced. A symlink is followed (the file it points
/// to is replaced, the link stays), and a target that is not a regular file —
/// `/dev/null`, `/dev/stdout`, a FIFO — is written to directly: renaming over
/// it would replace a device node (as root, even `/dev/null`).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        error,
    })?;
    file.commit()
}

/// Writes `contents` to `path` only if nothing is there: atomically (a
/// temporary file, then a link that fails if the target exists), so two
/// writers racing for one name leave exactly one complete file. `Ok(false)`
/// when the file already existed: nothing was written. Shard parts are
/// written this way, so a retried shard never overwrites a completed one.
pub fn write_new(path: &Path, contents: &[u8]) -> Result<bool, Error> {
    let io = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    if path.exists() {
        return Ok(false);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(contents).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(e.error)),
    }
}

/// A file being written atomically, streamed: write to it as to any
/// `Write`, then [`commit`](AtomicFile::commit). Until then the target is
/// untouched, and dropping it uncommitted leaves nothing behind. Large
/// outputs need not be held in memory first (see [`write_atomic`] for the
/// rules on symlinks and device targets; a device target is buffered and
/// written at commit, so nothing reaches it before then either).
pub struct AtomicFile {
    path: PathBuf,
    target: Target,
}

enum Target {
    Temp(std::io::BufWriter<tempfile::NamedTempFile>),
    /// Written, flushed and on disk ([`AtomicFile::seal`]): only the
    /// rename is left.
    Sealed(tempfile::NamedTempFile),
    Device(Spill),
    /// Sealing failed: nothing is left to write or put in place.
    Failed,
}

/// Bytes held until they may be written out (to a device or stdout, which
/// cannot be renamed into place): in memory while they are few, then in an
/// anonymous temporary file in `TMPDIR`, so that a report of a thousand
/// accounts (hundreds of MB of JSON) is never held whole in memory on its
/// way to `/dev/stdout` or a pipe.
pub struct Spill {
    memory: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    limit: usize,
}

/// What a [`Spill`] holds in memory before it moves to a file.
const SPILL_AT: usize = 8 << 20;

impl Default for Spill {
    fn default() -> Self {
        Spill::with_limit(SPILL_AT)
    }
}

impl Spill {
    fn with_limit(limit: usize) -> Spill {
        Spill {
            memory: Vec::new(),
            file: None,
            limit,
        }
    }

    /// Writes everything held to `out`.
    pub fn copy_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        match self.file {
            None => out.write_all(&self.memory),
            Some(w) => {
                let mut file = w.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                std::io::copy(&mut file, out).map(|_| ())
            }
        }
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > self.limit {
            let mut file = std::io::BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
            file.write_all(&std::mem::take(&mut self.memory))?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(f) => f.write(buf),
            None => self.memory.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// tempfile's errors carry the temporary file's name; the user named the
/// target, and only it is shown (with the underlying cause).
fn without_path(e: std::io::Error) -> std::io::Error {
    let cause = e
        .get_ref()
        .and_then(|inner| inner.source())
        .map(|s| s.to_string());
    match cause {
        Some(cause) => std::io::Error::new(e.kind(), cause),
        None => e,
    }
}

/// Whether `path` can be written: its directory exists and it is not a
/// directory itself. Checked before a file is created (an error names the
/// target, never a temporary file beside it), and by commands before long
/// work whose result goes there.
pub fn writable(path: &Path) -> Result<(), Error> {
    let io = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("directory {} does not exist", dir.display()),
        )));
    }
    if path.is_dir() {
        return Err(io(std::io::Error::other("is a directory")));
    }
    Ok(())
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile, Error> {
        let io = |error| Error::Io {
            path: path.to_path_buf(),
            error,
        };
        let resolved = std::fs::canonicalize(path).ok();
        if let Some(target) = &resolved
            && let Ok(meta) = std::fs::metadata(target)
            && !meta.is_file()
        {
            if meta.is_dir() {
                return Err(io(std::io::Error::other("is a directory")));
            }
            return Ok(AtomicFile {
                path: target.clone(),
                target: Target::Device(Spill::default()),
            });
        }
        let path = resolved.unwrap_or_else(|| path.to_path_buf());
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        writable(&path)?;
        let tmp = tempfile::Builder::new()
            .prefix(".dbaudit-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| io(without_path(e)))?;
        Ok(AtomicFile {
            path,
            target: Target::Temp(std::io::BufWriter::with_capacity(1 << 16, tmp)),
        })
    }

    /// Finishes writing the temporary file (flushed, given its mode, on
    /// disk) without putting it in place: the slow half of
    /// [`commit`](AtomicFile::commit), which the thread that rendered an
    /// output does while others still render. Writing after it is an
    /// error.
    pub fn seal(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let io = |error| Error::Io {
            path: path.clone(),
            error,
        };
        // Taken out while it is finished; on an error the temporary file
        // is dropped (deleted) with it.
        self.target = match std::mem::replace(&mut self.target, Target::Failed) {
            Target::Temp(w) => {
                let tmp = w.into_inner().map_err(|e| io(e.into_error()))?;
                // The temporary file is created 0600; a report is not a
                // secret. Keep the mode of the file being replaced, else use
                // the usual 0644.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(&path)
                        .map(|m| m.permissions().mode() & 0o777)
                        .unwrap_or(0o644);
                    tmp.as_file()
                        .set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(io)?;
                }
                tmp.as_file().sync_all().map_err(io)?;
                Target::Sealed(tmp)
            }
            other => other,
        };
        Ok(())
    }

    /// Puts the file in place (renames it over the target).
    pub fn commit(mut self) -> Result<(), Error> {
        self.seal()?;
        let path = self.path;
        let io = |error| Error::Io {
            path: path.clone(),
            error,
        };
        match self.target {
            Target::Device(held) => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io)?;
                held.copy_to(&mut f).map_err(io)
            }
            Target::Sealed(tmp) => {
                tmp.persist(&path).map_err(|e| io(without_path(e.error)))?;
                Ok(())
            }
            Target::Temp(_) | Target::Failed => Err(io(std::io::Error::other(
                "not written: an earlier error stopped it",
            ))),
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.target {
            Target::Temp(w) => w.write(buf),
            Target::Sealed(_) | Target::Failed => {
                Err(std::io::Error::other("written after it was sealed"))
            }
            Target::Device(v) => v.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.target {
            Target::Temp(w) => w.flush(),
            Target::Sealed(_) | Target::Failed => Ok(()),
            Target::Device(v) => v.flush(),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::write_atomic;

    #[test]
    fn a_spill_gives_back_what_was_written_in_memory_or_from_its_file() {
        use std::io::Write;
        let text: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for limit in [usize::MAX, 0, 1, 4096] {
            let mut spill = super::Spill::with_limit(limit);
            for piece in text.chunks(333) {
                spill.write_all(piece).unwrap();
            }
            assert_eq!(spill.file.is_some(), limit < text.len(), "limit {limit}");
            let mut out = Vec::new();
            spill.copy_to(&mut out).unwrap();
            assert!(out == text, "limit {limit}: the bytes differ");
        }
    }

    #[test]
    fn a_sealed_file_is_on_disk_but_in_place_only_when_committed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.json");
        std::fs::write(&target, "old").unwrap();
        let mut f = super::AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        f.seal().unwrap();
        f.seal().unwrap();
        assert!(f.write_all(b"more").is_err(), "written after sealing");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_streamed_file_appears_only_when_committed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.json");
        std::fs::write(&target, "old").unwrap();
        let mut f = super::AtomicFile::create(&target).unwrap();
        f.write_all(b"half of a new rep").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        drop(f);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary file is gone");
        let mut f = super::AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }

    #[test]
    fn replaces_regular_files_and_keeps_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn writes_through_to_a_fifo_instead_of_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_atomic(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
            "still a FIFO"
        );
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(dir.path(), b"x").is_err());
    }
}
