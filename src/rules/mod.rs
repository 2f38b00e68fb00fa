//! Rules as data: TOML files with several `[[rule]]` tables each.
//!
//! The built-in pack (`rules/*.toml` at the repository root) is embedded in the
//! binary; users add their own with `--rules DIR`. Loading validates every file
//! in one pass and reports all problems with `file:line:col`.

mod expr;
mod load;

use std::path::PathBuf;
use std::sync::Arc;

use crate::vocab::Service;
use serde::Serialize;

pub use crate::celval::cel_to_json;
pub use crate::facts::ResourceKind;
pub use crate::finding::Severity;
pub use expr::{Expr, Template};

pub use load::{
    BUILTIN_PARAMS, RuleFile, RuleSet, builtin_files, load_files, load_files_with_params,
    pack_digest, user_files,
};

/// One loaded and validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource: ResourceKind,
    /// Environments the rule applies to; empty means all.
    pub environments: Vec<String>,
    /// Services whose collection gaps make this rule's outcome `error`
    /// (the resource kind's own service is always included).
    pub requires: Vec<Service>,
    /// Resources for which this is false are out of the rule's scope.
    pub applies_if: Option<Arc<Expr>>,
    /// When `applies_if` selects no resource of an account: one `error`
    /// finding for the account with this message, instead of silence (the
    /// selection itself is what the rule depends on, e.g. the developers).
    pub none_applies_error: Option<String>,
    pub condition: Arc<Expr>,
    pub message: Arc<Template>,
    pub evidence: Option<Arc<Expr>>,
    pub rationale: String,
    pub remediation: String,
    pub references: Vec<String>,
    /// The compliance controls the rule checks, per framework key
    /// (`compliance::frameworks()`), each id in that framework's catalogue.
    pub compliance: std::collections::BTreeMap<String, Vec<String>>,
    /// Where the rule was defined: `rules/network.toml:12`, or the user's file.
    pub source: RuleSource,
    /// `scope = "environments"`: the two environments a `service_pair` rule
    /// compares (`left`, `right`, e.g. test and prod).
    pub pair: Option<EnvPair>,
}

/// The environments a parity rule compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPair {
    pub left: String,
    pub right: String,
    /// `unseen_cannot_undo_fail`: the sides (`left`, `right`) on which a
    /// database the snapshot does not have (an account not collected)
    /// cannot turn this rule's `fail` into a pass. With an account of such
    /// a side missing, a fail stands; every other outcome is an `error`.
    pub unseen_cannot_undo_fail: Vec<Side>,
}

/// A side of an environment pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSource {
    pub path: PathBuf,
    pub line: usize,
    pub builtin: bool,
}

impl Rule {
    pub fn applies_to_environment(&self, environment: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment)
    }

    /// Top-level `resource` fields the rule reads; `None` if it needs all.
    pub fn resource_fields(&self) -> Option<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        let exprs = std::iter::once(&*self.condition)
            .chain(self.applies_if.as_deref())
            .chain(self.evidence.as_deref())
            .chain(self.message.exprs());
        for e in exprs {
            out.extend(e.root_fields("resource")?);
        }
        Some(out)
    }

    /// Every service whose gaps this rule depends on.
    pub fn needs(&self) -> impl Iterator<Item = Service> + '_ {
        crate::model::kind(self.resource)
            .service()
            .into_iter()
            .chain(self.requires.iter().copied())
    }
}
