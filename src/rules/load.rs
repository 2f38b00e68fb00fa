//! Loading and validating rule files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::expr::{Expr, Template};
use super::{EnvPair, ResourceKind, Rule, RuleSource, Severity};
use crate::config::{BuiltinParams, Config, json_type, same_type};
use crate::error::{Error, Problem};
use crate::facts::FieldSchema;
use crate::tomlspan::{Reader, Value, closest};
use crate::vocab::Service;

/// The built-in rule pack, embedded at build time. A test checks that every
/// `rules/*.toml` file is listed here.
const BUILTIN: &[(&str, &str)] = &[
    (
        "rules/network.toml",
        include_str!("../../rules/network.toml"),
    ),
    (
        "rules/database.toml",
        include_str!("../../rules/database.toml"),
    ),
    (
        "rules/resilience.toml",
        include_str!("../../rules/resilience.toml"),
    ),
    (
        "rules/environments.toml",
        include_str!("../../rules/environments.toml"),
    ),
    ("rules/iam.toml", include_str!("../../rules/iam.toml")),
    ("rules/parity.toml", include_str!("../../rules/parity.toml")),
];

/// Default rule parameters per environment (`rules/params.toml`).
pub const BUILTIN_PARAMS: (&str, &str) =
    ("rules/params.toml", include_str!("../../rules/params.toml"));

/// A rule source file: path, contents, and whether it is built in.
pub struct RuleFile {
    pub path: PathBuf,
    pub text: String,
    pub builtin: bool,
}

/// The rule pack's version: a digest (SHA-256, first 12 hex digits) of the
/// built-in rule files and parameters, in order. Shown by `--version` and
/// recorded in every report, so a report says which rules judged it.
pub fn pack_digest() -> &'static str {
    use sha2::Digest;
    static D: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let mut h = sha2::Sha256::new();
        for (path, text) in BUILTIN.iter().chain(std::iter::once(&BUILTIN_PARAMS)) {
            h.update(path.as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
            h.update([0]);
        }
        h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

pub fn builtin_files() -> Vec<RuleFile> {
    BUILTIN
        .iter()
        .map(|(p, t)| RuleFile {
            path: PathBuf::from(p),
            text: t.to_string(),
            builtin: true,
        })
        .collect()
}

/// Every `*.toml` file of a directory (sorted), or the file itself.
pub fn user_files(path: &Path) -> Result<Vec<RuleFile>, Error> {
    let io = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut paths = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            if p.extension().is_some_and(|e| e == "toml") {
                paths.push(p);
            }
        }
        paths.sort();
        // An empty directory (or a typo'd one full of other files) would
        // silently add no rule.
        if paths.is_empty() {
            return Err(Error::Usage(format!(
                "rule directory {} holds no rule file (*.toml)",
                path.display()
            )));
        }
    } else {
        paths.push(path.to_path_buf());
    }
    paths
        .into_iter()
        .map(|p| {
            Ok(RuleFile {
                text: crate::error::read_to_string(&p)?,
                path: p,
                builtin: false,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub params: BuiltinParams,
}

impl RuleSet {
    /// Checks every parameter `config` sets against these rules, which read
    /// them: the name must be a built-in parameter or one a loaded rule
    /// reads (`params.NAME`), and a built-in parameter's value must have the
    /// type of its default in `rules/params.toml`. All problems are reported
    /// together, each at its `file:line:col`.
    pub fn check_params(&self, config: &Config) -> Result<(), Error> {
        let rules = self;
        let builtin = BuiltinParams::parse(BUILTIN_PARAMS.1, Path::new(BUILTIN_PARAMS.0))?;
        let mut known: BTreeMap<String, Option<serde_json::Value>> = BTreeMap::new();
        for (k, v) in builtin
            .default
            .iter()
            .chain(builtin.environments.values().flatten())
        {
            known.entry(k.clone()).or_insert_with(|| Some(v.clone()));
        }
        let mut any_param = false;
        for r in &rules.rules {
            let exprs = std::iter::once(&*r.condition)
                .chain(r.applies_if.as_deref())
                .chain(r.evidence.as_deref())
                .chain(r.message.exprs());
            for e in exprs {
                match e.root_fields("params") {
                    Some(names) => {
                        for n in names {
                            known.entry(n).or_insert(None);
                        }
                    }
                    // A rule reads `params` as a whole: any name may be used.
                    None => any_param = true,
                }
            }
        }
        let mut problems = Vec::new();
        for site in &config.param_sites {
            let problem = |message: String| crate::error::Problem {
                message,
                ..site.at.clone()
            };
            match known.get(&site.name) {
                None if !any_param => {
                    let names: Vec<&str> = known.keys().map(String::as_str).collect();
                    let hint = crate::tomlspan::closest(&site.name, &names)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    problems.push(problem(format!(
                        "unknown rule parameter `{}`{hint}: no rule reads it (parameters: {})",
                        site.name,
                        known.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                Some(Some(default)) if !same_type(default, &site.value) => {
                    problems.push(problem(format!(
                        "`{}` must be {} (the type of its default in rules/params.toml), found {}",
                        site.name,
                        json_type(default),
                        json_type(&site.value)
                    )));
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(problems))
        }
    }

    /// The built-in pack plus the files found under each of `dirs`.
    pub fn load(dirs: &[PathBuf], extra_params: &[String]) -> Result<RuleSet, Error> {
        Self::load_pack(dirs, false, extra_params)
    }

    /// The rules of `paths` (rule files or directories) added to the
    /// built-in pack, or on their own with `no_builtin` (a whole pack: a
    /// directory's `params.toml` then supplies the parameters). `rules
    /// validate` and `--rules` load through here, so they agree. A
    /// directory holding a `params.toml` is a whole pack: without
    /// `no_builtin` it is refused, saying so (its rules would duplicate the
    /// built-in ones), never taken as `--no-builtin` silently.
    pub fn load_pack(
        paths: &[PathBuf],
        no_builtin: bool,
        extra_params: &[String],
    ) -> Result<RuleSet, Error> {
        let mut files = if no_builtin {
            Vec::new()
        } else {
            builtin_files()
        };
        let mut params = None;
        for p in paths {
            for f in user_files(p)? {
                if p.is_dir() && f.path.file_name() == Some("params.toml".as_ref()) {
                    if !no_builtin {
                        return Err(Error::Usage(format!(
                            "{} holds params.toml: it is a whole rule pack (a copy of rules/), not rules to add to the built-in ones; give --no-builtin to use it instead of the built-in pack",
                            p.display()
                        )));
                    }
                    params = Some(BuiltinParams::parse(&f.text, &f.path)?);
                } else {
                    files.push(f);
                }
            }
        }
        match params {
            Some(params) => load_files_with_params(&files, extra_params, params),
            None => load_files(&files, extra_params),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

const RULE_KEYS: &[&str] = &[
    "id",
    "compliance",
    "title",
    "severity",
    "resource",
    "environments",
    "requires",
    "applies_if",
    "none_applies_error",
    "condition",
    "message",
    "evidence",
    "rationale",
    "remediation",
    "references",
    "scope",
    "left",
    "right",
    "unseen_cannot_undo_fail",
];

/// Loads and validates rule files; every problem in every file is reported.
/// `extra_params` are parameter names defined by the user's config.
pub fn load_files(files: &[RuleFile], extra_params: &[String]) -> Result<RuleSet, Error> {
    let params = BuiltinParams::parse(BUILTIN_PARAMS.1, Path::new(BUILTIN_PARAMS.0))?;
    load_files_with_params(files, extra_params, params)
}

/// [`load_files`] against another parameter file than the built-in one
/// (`rules validate --no-builtin` on a copy of the pack with its params.toml).
pub fn load_files_with_params(
    files: &[RuleFile],
    extra_params: &[String],
    params: BuiltinParams,
) -> Result<RuleSet, Error> {
    let mut param_names = params.names();
    param_names.extend(extra_params.iter().cloned());
    let params_schema = FieldSchema::object(param_names);
    let account_schema = crate::model::facts_schema(ResourceKind::Account);
    let schemas: BTreeMap<ResourceKind, FieldSchema> = ResourceKind::ALL
        .into_iter()
        .map(|k| (k, crate::model::facts_schema(k)))
        .collect();

    let mut problems: Vec<Problem> = Vec::new();
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let mut r = Reader::new(&file.path, &file.text);
        let doc = match r.parse() {
            Ok(d) => d,
            Err(Error::Invalid(p)) => {
                problems.extend(p);
                continue;
            }
            Err(e) => return Err(e),
        };
        r.deny_unknown(doc.get_ref(), "a rule file", &["rule"]);
        let tables = r.table_array(doc.get_ref().get("rule"), "rule");
        if tables.is_empty() && doc.get_ref().get("rule").is_none() {
            r.problem(0, "no rules: expected one or more `[[rule]]` tables");
        }
        for table in tables {
            let t = *table.get_ref();
            let start = table.span().start;
            r.deny_unknown(t, "[[rule]]", RULE_KEYS);
            let what = "[[rule]]";
            let id_v = r.required(t, start, "id", what);
            let id = r.string(id_v, "id");
            if let (Some(id), Some(v)) = (&id, id_v) {
                if !valid_id(id) {
                    r.problem(
                        v.span().start,
                        format!("rule id `{id}` must be lowercase words of [a-z0-9-] joined by dots, e.g. `db.network.private-subnets`"),
                    );
                }
                let here =
                    crate::error::Location::from_offset(&file.path, &file.text, v.span().start);
                if let Some(prev) = seen.insert(id.clone(), here.to_string()) {
                    r.problem(
                        v.span().start,
                        format!("duplicate rule id `{id}` (first defined at {prev})"),
                    );
                }
            }
            let title_v = r_req(&mut r, t, start, "title");
            let title = r.string(title_v, "title");
            let sev_v = r.required(t, start, "severity", what);
            let severity = r.string(sev_v, "severity").and_then(|s| {
                let parsed = Severity::parse(&s);
                if parsed.is_none() {
                    r.problem(
                        sev_v.map(|v| v.span().start).unwrap_or(start),
                        format!("unknown severity `{s}`; expected one of: critical, high, medium, low, info"),
                    );
                }
                parsed
            });
            let kind_v = r.required(t, start, "resource", what);
            let resource = r.string(kind_v, "resource").and_then(|s| {
                let parsed = ResourceKind::parse(&s);
                if parsed.is_none() {
                    let names: Vec<&str> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
                    r.problem(
                        kind_v.map(|v| v.span().start).unwrap_or(start),
                        format!(
                            "unknown resource kind `{s}`; expected one of: {}",
                            names.join(", ")
                        ),
                    );
                }
                parsed
            });
            let environments = r
                .string_array(t.get("environments"), "environments")
                .unwrap_or_default();
            let pair = env_pair(&mut r, t, start, resource);
            let mut requires = Vec::new();
            if let Some(v) = t.get("requires") {
                for s in r.string_array(Some(v), "requires").unwrap_or_default() {
                    match Service::parse(&s).filter(|s| Service::requirable().any(|x| x == *s)) {
                        Some(service) => requires.push(service),
                        None => r.problem(
                            v.span().start,
                            format!(
                                "unknown service `{s}` in `requires`; expected one of: {}",
                                Service::requirable()
                                    .map(Service::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ),
                    }
                }
            }
            let rationale_v = r_req(&mut r, t, start, "rationale");
            let rationale = r.string(rationale_v, "rationale");
            let remediation_v = r_req(&mut r, t, start, "remediation");
            let remediation = r.string(remediation_v, "remediation");
            let references = r
                .string_array(t.get("references"), "references")
                .unwrap_or_default();
            let compliance = compliance(&mut r, t.get("compliance"));

            let schema = resource.map(|k| schemas[&k].clone());
            let env_schema = |s: &Option<FieldSchema>| {
                s.clone().map(|resource| {
                    [
                        ("resource", resource),
                        ("params", params_schema.clone()),
                        ("account", account_schema.clone()),
                    ]
                })
            };
            let roots = env_schema(&schema);
            let compile = |r: &mut Reader, key: &str, v: Option<&Value>| -> Option<Arc<Expr>> {
                let v = v?;
                let src = r.string(Some(v), key)?;
                let content = content_offset(r.text, v.span());
                match Expr::compile(&src) {
                    Ok(e) => {
                        if let Some(roots) = &roots {
                            for (root, s) in roots {
                                for f in e.unknown_fields(root, s) {
                                    r.problem(content, unknown_field_message(&f, root, s));
                                }
                            }
                        }
                        Some(Arc::new(e))
                    }
                    Err(err) => {
                        let off = offset_in(r.text, content, err.line, err.column);
                        r.problem(off, format!("`{key}` does not compile: {}", err.message));
                        None
                    }
                }
            };
            let cond_v = r.required(t, start, "condition", what);
            let condition = compile(&mut r, "condition", cond_v);
            let applies_if = compile(&mut r, "applies_if", t.get("applies_if"));
            let none_applies_v = t.get("none_applies_error");
            let none_applies_error = r
                .string(none_applies_v, "none_applies_error")
                .map(|m| m.trim().to_string());
            if let Some(v) = none_applies_v
                && t.get("applies_if").is_none()
            {
                r.problem(
                    v.span().start,
                    "`none_applies_error` needs an `applies_if`: it is the message for when that selects nothing"
                        .to_string(),
                );
            }
            let evidence = compile(&mut r, "evidence", t.get("evidence"));
            let msg_v = r.required(t, start, "message", what);
            let message = r.string(msg_v, "message").and_then(|src| {
                let v = msg_v?;
                let content = content_offset(r.text, v.span());
                match Template::parse(&src) {
                    Ok(tpl) => {
                        if let Some(roots) = &roots {
                            for e in tpl.exprs() {
                                for (root, s) in roots {
                                    for f in e.unknown_fields(root, s) {
                                        r.problem(content, unknown_field_message(&f, root, s));
                                    }
                                }
                            }
                        }
                        Some(Arc::new(tpl))
                    }
                    Err(err) => {
                        r.problem(content + err.offset, err.message);
                        None
                    }
                }
            });
            let line = crate::error::Location::from_offset(&file.path, &file.text, start).line;
            if let (
                Some(id),
                Some(title),
                Some(severity),
                Some(resource),
                Some(condition),
                Some(message),
                Some(rationale),
                Some(remediation),
            ) = (
                id,
                title,
                severity,
                resource,
                condition,
                message,
                rationale,
                remediation,
            ) {
                rules.push(Rule {
                    id,
                    title,
                    severity,
                    resource,
                    environments,
                    requires,
                    applies_if,
                    none_applies_error,
                    condition,
                    message,
                    evidence,
                    rationale: rationale.trim().to_string(),
                    remediation: remediation.trim().to_string(),
                    references,
                    compliance,
                    source: RuleSource {
                        path: file.path.clone(),
                        line,
                        builtin: file.builtin,
                    },
                    pair,
                });
            }
        }
        problems.extend(r.problems);
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(Error::Invalid(problems));
    }
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(RuleSet { rules, params })
}

/// `compliance = { FRAMEWORK = ["ID", …], … }`: every framework one of the
/// shipped catalogues, every id one of its controls.
fn compliance<'a>(
    r: &mut Reader<'a>,
    v: Option<&Value<'a>>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Some((t, _)) = r.table(v, "compliance") else {
        return out;
    };
    for (k, v) in t.iter() {
        let framework = k.get_ref().to_string();
        let at = v.span().start;
        let Some(catalogue) = crate::compliance::catalogue(&framework) else {
            r.problem(
                k.span().start,
                format!(
                    "unknown framework `{framework}` in `compliance`; expected one of: {}",
                    crate::compliance::frameworks().join(", ")
                ),
            );
            continue;
        };
        let ids = r.string_array(Some(v), &framework).unwrap_or_default();
        for id in &ids {
            if catalogue.control(id).is_none() {
                let close = catalogue
                    .controls
                    .iter()
                    .find(|c| c.id.eq_ignore_ascii_case(id))
                    .map(|c| format!("; did you mean `{}`?", c.id))
                    .unwrap_or_default();
                r.problem(
                    at,
                    format!(
                        "`{id}` is not a control of {framework} (data/compliance/{framework}.json){close}"
                    ),
                );
            }
        }
        out.insert(framework, ids);
    }
    out
}

/// `scope = "environments"` with `left` and `right`: required by, and only
/// allowed with, `resource = "service_pair"`.
fn env_pair<'a>(
    r: &mut Reader<'a>,
    t: &crate::tomlspan::Table<'a>,
    start: usize,
    resource: Option<ResourceKind>,
) -> Option<EnvPair> {
    let is_pair = resource == Some(ResourceKind::ServicePair);
    let keys = [t.get("scope"), t.get("left"), t.get("right")];
    if !is_pair {
        if let Some(v) = keys.into_iter().flatten().next() {
            r.problem(
                v.span().start,
                "`scope`, `left` and `right` are for `resource = \"service_pair\"` rules (test ↔ prod parity)"
                    .to_string(),
            );
        }
        return None;
    }
    let scope_v = r.required(t, start, "scope", "[[rule]]");
    if let Some(v) = scope_v
        && let Some(s) = r.string(Some(v), "scope")
        && s != "environments"
    {
        r.problem(
            v.span().start,
            format!("unknown scope `{s}`; expected `environments`"),
        );
    }
    if let Some(v) = t.get("environments") {
        r.problem(
            v.span().start,
            "a `service_pair` rule spans two environments: name them with `left` and `right`, not `environments`"
                .to_string(),
        );
    }
    if let Some(v) = t.get("none_applies_error") {
        r.problem(
            v.span().start,
            "`none_applies_error` is for rules evaluated per account, not `service_pair` rules"
                .to_string(),
        );
    }
    let left_v = r.required(t, start, "left", "[[rule]]");
    let right_v = r.required(t, start, "right", "[[rule]]");
    let left = r.string(left_v, "left")?;
    let right = r.string(right_v, "right")?;
    if left == right {
        r.problem(
            right_v.map(|v| v.span().start).unwrap_or(start),
            format!("`left` and `right` are both `{left}`: a pair compares two environments"),
        );
        return None;
    }
    let mut unseen_cannot_undo_fail = Vec::new();
    if let Some(v) = t.get("unseen_cannot_undo_fail") {
        for side in r
            .string_array(Some(v), "unseen_cannot_undo_fail")
            .unwrap_or_default()
        {
            match side.as_str() {
                "left" => unseen_cannot_undo_fail.push(super::Side::Left),
                "right" => unseen_cannot_undo_fail.push(super::Side::Right),
                other => r.problem(
                    v.span().start,
                    format!(
                        "`unseen_cannot_undo_fail` lists sides, `left` or `right`; found `{other}`"
                    ),
                ),
            }
        }
    }
    Some(EnvPair {
        left,
        right,
        unseen_cannot_undo_fail,
    })
}

fn r_req<'t, 'a>(
    r: &mut Reader<'a>,
    t: &'t crate::tomlspan::Table<'a>,
    start: usize,
    key: &str,
) -> Option<&'t Value<'a>> {
    r.required(t, start, key, "[[rule]]")
}

fn unknown_field_message(path: &str, root: &str, schema: &FieldSchema) -> String {
    let mut msg = format!("unknown field `{path}`");
    // Suggest a sibling for a misspelt last segment directly under the root.
    if let (FieldSchema::Object(fields), Some(last)) =
        (schema, path.strip_prefix(&format!("{root}.")))
        && !last.contains('.')
    {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        if let Some(k) = closest(last, &names) {
            msg.push_str(&format!(" (did you mean `{root}.{k}`?)"));
        }
    }
    msg.push_str("; `dbaudit rules fields` lists the facts of each resource kind");
    msg
}

/// Lowercase dotted words: `db.network.private-subnets`.
fn valid_id(id: &str) -> bool {
    id.contains('.')
        && id.split('.').all(|w| {
            !w.is_empty()
                && !w.starts_with('-')
                && !w.ends_with('-')
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Byte offset where a TOML string's content starts.
fn content_offset(text: &str, span: std::ops::Range<usize>) -> usize {
    let raw = &text[span.start..span.end.min(text.len())];
    if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        let after = span.start + 3;
        if text[after..].starts_with("\r\n") {
            after + 2
        } else if text[after..].starts_with('\n') {
            after + 1
        } else {
            after
        }
    } else {
        span.start + 1
    }
}

/// Offset of (line, column) of an expression whose content starts at `content`.
fn offset_in(text: &str, content: usize, line: usize, column: usize) -> usize {
    let mut off = content;
    for _ in 1..line {
        match text[off..].find('\n') {
            Some(i) => off += i + 1,
            None => break,
        }
    }
    (off + column.saturating_sub(1)).min(text.len())
}
