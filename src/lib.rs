//! dbaudit: audit AWS database infrastructure against a multi-environment
//! design, as policy-as-code.
//!
//! The pipeline runs one way: `collect` (AWS) → [`snapshot`] → [`model`]
//! (derived facts) → [`evaluate`] (rules) → [`report`] (findings, gate,
//! renderers). Everything after the snapshot is offline and deterministic.

pub mod celval;
pub mod compliance;
pub mod config;
pub mod config_keys;
pub mod error;
pub mod evaluate;
pub mod expected;
pub mod facts;
pub mod finding;
pub mod findings;
pub mod model;
pub(crate) mod names;
pub mod org;
#[cfg(feature = "aws")]
pub mod progress;
pub mod report;
pub mod rules;
pub mod selection;
pub mod shard;
pub mod snapshot;
#[doc(hidden)]
pub mod synth;
pub mod tomlspan;
pub mod vocab;

pub use error::Error;

/// Version of this build, written into snapshots and reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit this build comes from (build.rs; "unknown" outside git).
///
/// A `static`, not a `const`: a const's text is copied into every code
/// unit that uses it, and a code unit whose content changes renames the
/// functions it shares with others (`….llvm.<hash>`), so each new commit
/// unplaced hundreds of the functions `link/scan-symbols.txt` lays out for a
/// scan (docs/build.md). A static's text is in one place.
pub static COMMIT: &str = env!("DBAUDIT_GIT_COMMIT");

/// `dbaudit --version`: version, commit and rule-pack digest.
pub fn long_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{VERSION} (commit {COMMIT}, rule pack {})",
            rules::pack_digest()
        )
    })
}
pub mod access;
pub mod app;
pub mod audit;
pub mod baseline;
pub mod cli;
#[cfg(feature = "aws")]
pub mod collect;
pub mod diff;
pub mod docs;
pub mod glob;
pub mod history;
pub mod iam;
pub mod logging;
pub mod plan;
pub mod waivers;
