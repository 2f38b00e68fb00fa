//! What evaluation produces: one [`Finding`] per (rule, resource), its
//! [`Outcome`] and [`Severity`], and what the post-processing steps
//! (waivers, baseline) attach to it. A leaf: evaluation, the waiver and
//! baseline steps, the report and its renderers all build on it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::facts::ResourceKind;

/// Severity of a rule; ordered from `info` (lowest) to `critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

crate::names::names!(Severity {
    Critical => "critical",
    High => "high",
    Medium => "medium",
    Low => "low",
    Info => "info",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
    /// A failure covered by an unexpired waiver: shown, not gated.
    Waived,
    /// `dbaudit plan` only: the rule reads a fact the plan leaves unknown
    /// until apply (or does not predict). Gated like `error` unless
    /// `--on-unknown warn`.
    Unknown,
}

impl Outcome {
    /// A failure, waived or not: what baselines and diffs compare.
    pub fn is_failing(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Waived)
    }
}

crate::names::names!(Outcome {
    Pass => "pass",
    Fail => "fail",
    Error => "error",
    Waived => "waived",
    Unknown => "unknown",
});

/// The result of one rule on one resource.
///
/// The strings every finding of a rule, account or region has in common are
/// shared (`Arc<str>`): a run makes one finding per (rule, resource), 200,000
/// in the benchmark estate, and allocating seven strings for each was a
/// measurable part of evaluation time and memory (docs/performance.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: Arc<str>,
    pub title: Arc<str>,
    pub severity: Severity,
    pub outcome: Outcome,
    pub account: Arc<str>,
    pub account_id: Arc<str>,
    pub environment: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Arc<str>>,
    pub resource_kind: ResourceKind,
    /// Shared by every finding of the resource (one per rule).
    pub resource_id: Arc<str>,
    pub resource_arn: Arc<str>,
    pub message: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: a few failures have evidence, and a `Value` inline is 72
    /// bytes in every finding (57 MB at 800,000 findings).
    pub evidence: Option<Box<serde_json::Value>>,
    /// Stable identity: hash of rule id, account id and resource ARN.
    pub fingerprint: String,
    /// The waiver that turned this failure into `waived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: most findings have none, and findings are moved in bulk.
    pub waiver: Option<Box<WaiverRef>>,
    /// With `--baseline`: whether a failure is new since the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineState>,
    /// Where the resource is defined in the user's repository (source tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where code scanning shows a finding that is not a pass: the source
    /// tag's place, else a `[[sarif.location]]` mapping's, else the line of
    /// dbaudit.toml declaring the account (`report::locate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<RepoLocation>,
}

/// A place in the user's repository: a relative path and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoLocation {
    pub path: String,
    pub line: usize,
}

/// A stable finding identity that survives reruns and message changes.
pub fn fingerprint(rule_id: &str, account_id: &str, resource_arn: &str) -> String {
    let mut h = Sha256::new();
    for part in [rule_id, account_id, resource_arn] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    // Hex by table lookup: `format!` per byte cost ~2 µs per finding, a
    // seventh of evaluating the benchmark estate.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &h.finalize()[..16] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out
}

/// What a waived finding carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaiverRef {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `file:line` of the waiver.
    pub location: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineState {
    New,
    Existing,
}
