//! Policy evaluation following AWS's documented logic for identity-based
//! policies: an explicit Deny wins; otherwise an Allow is needed from the
//! principal's identity policies, and also from its permissions boundary when
//! it has one. Conditions are three-valued: a condition key the audit cannot
//! know makes the answer `conditional`, with the keys listed — never a silent
//! allow or deny.
//!
//! Not modelled (noted in docs/iam.md): service control policies unless the
//! snapshot carries them (it does not yet: organizations collection is a
//! follow-up), resource-based policies, session policies.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::policy::{Condition, Effect, Op, Patterns, Policy, SetOp, Statement};

/// Known request context: condition key (lower-cased) → values. A key that
/// is absent here is *unknown*, not *missing*, unless it is listed in
/// `missing` or starts with one of `complete_prefixes` (e.g.
/// `aws:resourcetag/` when the resource's full tag set is known): those are
/// *absent* from the request, which AWS's operators treat differently.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub values: BTreeMap<String, Vec<String>>,
    pub missing: BTreeSet<String>,
    /// Lower-cased key prefixes whose every key is known.
    pub complete_prefixes: Vec<std::borrow::Cow<'static, str>>,
}

/// What a context says about one key.
pub enum Lookup<'c> {
    Present(&'c [String]),
    Absent,
    Unknown,
}

impl Context {
    pub fn set(&mut self, key: &str, value: &str) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
    }

    /// Declares a key absent from the request.
    pub fn absent(&mut self, key: &str) {
        self.missing.insert(key.to_ascii_lowercase());
    }

    /// Declares every key starting with `prefix` known: the ones not set
    /// are absent.
    pub fn complete(&mut self, prefix: &str) {
        self.complete_prefixes
            .push(prefix.to_ascii_lowercase().into());
    }

    /// As [`Context::complete`], for a prefix already in lower case.
    pub fn complete_static(&mut self, prefix: &'static str) {
        debug_assert_eq!(prefix, prefix.to_ascii_lowercase());
        self.complete_prefixes.push(prefix.into());
    }

    /// Adds another context's keys (theirs win for keys both set).
    pub fn extend(&mut self, other: &Context) {
        for (k, v) in &other.values {
            self.values.insert(k.clone(), v.clone());
        }
        self.missing.extend(other.missing.iter().cloned());
        self.complete_prefixes
            .extend(other.complete_prefixes.iter().cloned());
    }

    /// `key` is lower-case.
    pub fn lookup(&self, key: &str) -> Lookup<'_> {
        if let Some(v) = self.values.get(key) {
            return Lookup::Present(v);
        }
        if self.missing.contains(key)
            || self
                .complete_prefixes
                .iter()
                .any(|p| key.starts_with(p.as_ref()))
        {
            Lookup::Absent
        } else {
            Lookup::Unknown
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown(BTreeSet<String>),
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, t) | (t, Tri::True) => t,
            (Tri::Unknown(mut a), Tri::Unknown(b)) => {
                a.extend(b);
                Tri::Unknown(a)
            }
        }
    }
    fn unknown(key: &str) -> Tri {
        Tri::Unknown(std::iter::once(key.to_string()).collect())
    }
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct StatementRef {
    pub policy: String,
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl std::fmt::Display for StatementRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} statement {}", self.policy, self.index)?;
        if let Some(s) = &self.sid {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    /// An explicit Deny applies.
    Deny,
    /// Nothing allows it (or the boundary does not).
    ImplicitDeny,
    /// Allowed or denied depending on condition keys not known at audit time.
    Conditional,
}

/// The layer of AWS's evaluation that decided an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "layer", content = "level")]
pub enum Layer {
    /// The principal's identity-based policies (user, groups, role).
    Identity,
    /// The principal's permissions boundary.
    Boundary,
    /// A service control policy at this level of the organization (0 is
    /// the root, the last the account).
    Scp(usize),
    /// The resource is in another account: access needs a resource-based
    /// policy, which RDS resources and security groups do not have.
    ResourceAccount,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layer::Identity => f.write_str("identity policies"),
            Layer::Boundary => f.write_str("permissions boundary"),
            Layer::Scp(i) => write!(f, "service control policies at organization level {i}"),
            Layer::ResourceAccount => f.write_str("resource account"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    pub decision: Decision,
    /// The layer that decided: the one with the explicit Deny, the first
    /// that does not allow, or (allowed) the identity policies.
    pub decided_by: Layer,
    pub allowed_by: Vec<StatementRef>,
    pub denied_by: Vec<StatementRef>,
    /// Condition keys the answer depends on, when conditional.
    pub unknown_keys: Vec<String>,
}

/// One request: `action` like `rds:ModifyDBCluster`, `resource` an ARN.
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

/// What the statements of a set of policies say about a request.
#[derive(Default)]
struct Verdict {
    allow: Vec<StatementRef>,
    allow_maybe: Vec<(StatementRef, BTreeSet<String>)>,
    deny: Vec<StatementRef>,
    deny_maybe: Vec<(StatementRef, BTreeSet<String>)>,
}

fn judge<'p>(policies: impl Iterator<Item = &'p Policy>, req: &Request, action: &str) -> Verdict {
    let mut v = Verdict::default();
    for p in policies {
        for s in &p.statements {
            if !action_matches(s, action) {
                continue;
            }
            let r = resource_matches(s, req.resource, req.context).and(conditions(s, req.context));
            let at = || StatementRef {
                policy: p.id.clone(),
                index: s.index,
                sid: s.sid.clone(),
            };
            match (s.effect, r) {
                (_, Tri::False) => {}
                (Effect::Allow, Tri::True) => v.allow.push(at()),
                (Effect::Deny, Tri::True) => v.deny.push(at()),
                (Effect::Allow, Tri::Unknown(k)) => v.allow_maybe.push((at(), k)),
                (Effect::Deny, Tri::Unknown(k)) => v.deny_maybe.push((at(), k)),
            }
        }
    }
    v
}

/// Evaluates a request for a principal with identity policies and an
/// optional permissions boundary.
pub fn evaluate(identity: &[&Policy], boundary: Option<&Policy>, req: &Request) -> Answer {
    evaluate_with_scps(identity, boundary, &[], req)
}

/// As [`evaluate`], also under service control policies: `scps` holds one
/// list per level of the organization (root, OUs, account). At every level
/// some SCP must allow the request, and a Deny in any SCP wins — like the
/// permissions boundary, SCPs only limit, they never grant.
pub fn evaluate_with_scps(
    identity: &[&Policy],
    boundary: Option<&Policy>,
    scps: &[Vec<&Policy>],
    req: &Request,
) -> Answer {
    let action = req.action.to_ascii_lowercase();
    let id = judge(identity.iter().copied(), req, &action);
    // Every gate must allow: the boundary, then each SCP level.
    let gates: Vec<(Layer, Verdict)> = boundary
        .map(|b| (Layer::Boundary, judge(std::iter::once(b), req, &action)))
        .into_iter()
        .chain(
            scps.iter()
                .enumerate()
                .map(|(i, level)| (Layer::Scp(i), judge(level.iter().copied(), req, &action))),
        )
        .collect();
    let answer = |decision, decided_by, allowed_by, denied_by, unknown_keys| Answer {
        decision,
        decided_by,
        allowed_by,
        denied_by,
        unknown_keys,
    };
    // An explicit Deny anywhere wins; the first layer with one decides.
    let deny_layer = (!id.deny.is_empty())
        .then_some(Layer::Identity)
        .or_else(|| {
            gates
                .iter()
                .find(|(_, g)| !g.deny.is_empty())
                .map(|(l, _)| *l)
        });
    if let Some(layer) = deny_layer {
        let mut denied_by = id.deny.clone();
        for (_, g) in &gates {
            denied_by.extend(g.deny.iter().cloned());
        }
        return answer(Decision::Deny, layer, id.allow.clone(), denied_by, vec![]);
    }
    let mut allowed_by = id.allow.clone();
    let mut denied_by = Vec::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut maybe_denied = false;
    for (s, k) in id
        .deny_maybe
        .iter()
        .chain(gates.iter().flat_map(|(_, g)| g.deny_maybe.iter()))
    {
        maybe_denied = true;
        denied_by.push(s.clone());
        unknown.extend(k.iter().cloned());
    }
    let identity_definite = if !id.allow.is_empty() {
        true
    } else if !id.allow_maybe.is_empty() {
        for (s, k) in &id.allow_maybe {
            allowed_by.push(s.clone());
            unknown.extend(k.iter().cloned());
        }
        false
    } else {
        return answer(
            Decision::ImplicitDeny,
            Layer::Identity,
            allowed_by,
            vec![],
            vec![],
        );
    };
    let mut gates_definite = true;
    for (layer, g) in &gates {
        if !g.allow.is_empty() {
            continue;
        }
        if g.allow_maybe.is_empty() {
            return answer(Decision::ImplicitDeny, *layer, allowed_by, vec![], vec![]);
        }
        gates_definite = false;
        for (_, k) in &g.allow_maybe {
            unknown.extend(k.iter().cloned());
        }
    }
    let decision = if identity_definite && gates_definite && !maybe_denied {
        Decision::Allow
    } else {
        Decision::Conditional
    };
    let unknown_keys = if decision == Decision::Conditional {
        unknown.into_iter().collect()
    } else {
        vec![]
    };
    answer(
        decision,
        Layer::Identity,
        allowed_by,
        denied_by,
        unknown_keys,
    )
}

/// How each statement's `Resource`/`NotResource` treats a resource, in order
/// (0 no, 1 yes, 2 unknown). Two resources with the same signature get the
/// same answer to every request whose context does not depend on the
/// resource, which lets an analysis evaluate once per signature instead of
/// once per resource.
pub fn resource_signature(
    policies: &[&Policy],
    boundary: Option<&Policy>,
    scps: &[Vec<&Policy>],
    resource: &str,
    ctx: &Context,
) -> Vec<u8> {
    policies
        .iter()
        .copied()
        .chain(boundary)
        .chain(scps.iter().flatten().copied())
        .flat_map(|p| &p.statements)
        .map(|s| match resource_matches(s, resource, ctx) {
            Tri::False => 0,
            Tri::True => 1,
            Tri::Unknown(_) => 2,
        })
        .collect()
}

/// How one statement's `Resource`/`NotResource` treats a resource: 0 no,
/// 1 yes, 2 unknown (a variable not known).
pub fn statement_resource_match(s: &Statement, resource: &str, ctx: &Context) -> u8 {
    match resource_matches(s, resource, ctx) {
        Tri::False => 0,
        Tri::True => 1,
        Tri::Unknown(_) => 2,
    }
}

fn action_matches(s: &Statement, action: &str) -> bool {
    match &s.actions {
        Patterns::Only(p) => p.iter().any(|a| crate::glob::matches(a, action)),
        Patterns::Not(p) => !p.iter().any(|a| crate::glob::matches(a, action)),
    }
}

/// A pattern or value after policy variables were replaced.
enum Substituted<'a> {
    Text(std::borrow::Cow<'a, str>),
    /// A variable names a key the request does not have: AWS treats the
    /// element as not matching.
    Absent,
    /// A variable names a key not known at audit time.
    Unknown(String),
}

/// `pattern` with its policy variables replaced from `ctx` (as a request
/// would see them): `None` when one names a key the context lacks or does
/// not know, or stands for a literal `*`/`?`.
pub fn resolve_variables(pattern: &str, ctx: &Context) -> Option<String> {
    match substitute(pattern, ctx) {
        Substituted::Text(t) if !t.contains("[*]") && !t.contains("[?]") => Some(t.into_owned()),
        _ => None,
    }
}

/// Replaces `${...}` policy variables.
fn substitute<'a>(pattern: &'a str, ctx: &Context) -> Substituted<'a> {
    if !pattern.contains("${") {
        return Substituted::Text(std::borrow::Cow::Borrowed(pattern));
    }
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Substituted::Text(out.into());
        };
        let var = &after[..j];
        match var {
            "*" => out.push_str("[*]"),
            "?" => out.push_str("[?]"),
            "$" => out.push('$'),
            _ => {
                let key = var.to_ascii_lowercase();
                match ctx.lookup(&key) {
                    Lookup::Present(v) if !v.is_empty() => out.push_str(&v[0]),
                    Lookup::Present(_) | Lookup::Absent => return Substituted::Absent,
                    Lookup::Unknown => return Substituted::Unknown(key),
                }
            }
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    // `${*}` and `${?}` stand for literal characters, not wildcards.
    Substituted::Text(out.into())
}

fn literal_aware_match(pattern: &str, text: &str) -> bool {
    if pattern.contains("[*]") || pattern.contains("[?]") {
        // Rare: compare with the literal characters restored, no wildcards.
        pattern.replace("[*]", "*").replace("[?]", "?") == text
    } else {
        crate::glob::matches(pattern, text)
    }
}

fn resource_matches(s: &Statement, resource: &str, ctx: &Context) -> Tri {
    let Some(patterns) = &s.resources else {
        return Tri::False;
    };
    let (list, negate) = match patterns {
        Patterns::Only(p) => (p, false),
        Patterns::Not(p) => (p, true),
    };
    let mut unknown = BTreeSet::new();
    let mut hit = false;
    for p in list {
        match substitute(p, ctx) {
            Substituted::Text(p) if literal_aware_match(&p, resource) => {
                hit = true;
                break;
            }
            Substituted::Text(_) | Substituted::Absent => {}
            Substituted::Unknown(var) => {
                unknown.insert(var);
            }
        }
    }
    match (hit, unknown.is_empty(), negate) {
        (true, _, false) => Tri::True,
        (true, _, true) => Tri::False,
        (false, true, false) => Tri::False,
        (false, true, true) => Tri::True,
        (false, false, _) => Tri::Unknown(unknown),
    }
}

/// How one condition holds for a request whose keys come from `first`,
/// then (for keys `first` does not know) from `then`: 0 false, 1 true,
/// 2 unknown. Cheaper than merging the two contexts when only a few
/// conditions are asked about many resources.
pub fn condition_outcome(c: &Condition, first: &Context, then: &Context) -> u8 {
    let layered = |k: &str| match first.lookup(k) {
        Lookup::Unknown => then.lookup(k),
        l => l,
    };
    let tri = if c.values.iter().any(|v| v.contains("${")) {
        // Variables in the values: resolve them in the merged context.
        let mut keys = vec![c.key.clone()];
        for v in &c.values {
            keys.extend(variables(v));
        }
        let mut ctx = Context::default();
        for k in keys {
            match layered(&k) {
                Lookup::Present(v) => {
                    ctx.values.insert(k, v.to_vec());
                }
                Lookup::Absent => {
                    ctx.missing.insert(k);
                }
                Lookup::Unknown => {}
            }
        }
        condition(c, &ctx)
    } else {
        condition_on(c, layered(&c.key), then)
    };
    match tri {
        Tri::False => 0,
        Tri::True => 1,
        Tri::Unknown(_) => 2,
    }
}

/// The keys `${key}` policy variables name in a text, lower-cased (the
/// literal-character variables `${*}`, `${?}`, `${$}` name none).
pub(crate) fn variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else { break };
        let v = &after[..j];
        if !matches!(v, "*" | "?" | "$") {
            out.push(v.to_ascii_lowercase());
        }
        rest = &after[j + 1..];
    }
    out
}

fn conditions(s: &Statement, ctx: &Context) -> Tri {
    s.conditions
        .iter()
        .fold(Tri::True, |acc, c| acc.and(condition(c, ctx)))
}

fn condition(c: &Condition, ctx: &Context) -> Tri {
    condition_on(c, ctx.lookup(&c.key), ctx)
}

/// A condition given what the request says about its key; `ctx` resolves
/// variables in the policy values.
fn condition_on(c: &Condition, lookup: Lookup, ctx: &Context) -> Tri {
    let request_values = match lookup {
        Lookup::Unknown => return Tri::unknown(&c.key),
        Lookup::Absent => return Tri::from(absent_key(c)),
        Lookup::Present(v) => v,
    };
    if c.op == Op::Null {
        // Null "true": the key must be absent; it is present.
        let want_absent = c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        return Tri::from(!want_absent);
    }
    if request_values.is_empty() {
        // A present key with an empty set of values: ForAllValues holds
        // vacuously, ForAnyValue has nothing to match; a single-valued
        // operator sees no value, as if the key were absent.
        return Tri::from(match c.set {
            SetOp::ForAllValues => true,
            SetOp::ForAnyValue => false,
            SetOp::Single => absent_key(c),
        });
    }
    // Policy values may use variables too.
    let mut policy_values = Vec::new();
    for v in &c.values {
        match substitute(v, ctx) {
            Substituted::Text(v) => policy_values.push(v.into_owned()),
            Substituted::Absent => {}
            Substituted::Unknown(var) => return Tri::unknown(&var),
        }
    }
    let one = |rv: &str| -> bool {
        let any = policy_values.iter().any(|pv| value_matches(c.op, rv, pv));
        if c.op.negated() { !any } else { any }
    };
    Tri::from(match c.set {
        SetOp::Single => request_values.iter().any(|rv| one(rv)),
        SetOp::ForAnyValue => request_values.iter().any(|rv| one(rv)),
        SetOp::ForAllValues => request_values.iter().all(|rv| one(rv)),
    })
}

/// A condition on a key the request does not have, as AWS documents it:
/// `Null: true` holds; `…IfExists` holds; `ForAllValues` holds and
/// `ForAnyValue` does not; otherwise the values "do not match", so a plain
/// operator is false and a negated one (`StringNotEquals`, `ArnNotLike`,
/// `NotIpAddress`, …) is true.
fn absent_key(c: &Condition) -> bool {
    if c.op == Op::Null {
        return c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
    }
    if c.if_exists {
        return true;
    }
    match c.set {
        SetOp::ForAllValues => true,
        SetOp::ForAnyValue => false,
        SetOp::Single => c.op.negated(),
    }
}

impl From<bool> for Tri {
    fn from(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }
}

/// Whether a request value matches one policy value (before negation).
fn value_matches(op: Op, rv: &str, pv: &str) -> bool {
    use Op::*;
    match op {
        StringEquals | StringNotEquals | BinaryEquals => rv == pv,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => rv.eq_ignore_ascii_case(pv),
        StringLike | StringNotLike => crate::glob::matches(pv, rv),
        ArnEquals | ArnNotEquals | ArnLike | ArnNotLike => arn_like(pv, rv),
        Bool => rv.eq_ignore_ascii_case(pv),
        NumericEquals | NumericNotEquals => num(rv, pv, |a, b| a == b),
        NumericLessThan => num(rv, pv, |a, b| a < b),
        NumericLessThanEquals => num(rv, pv, |a, b| a <= b),
        NumericGreaterThan => num(rv, pv, |a, b| a > b),
        NumericGreaterThanEquals => num(rv, pv, |a, b| a >= b),
        DateEquals | DateNotEquals => date(rv, pv, |a, b| a == b),
        DateLessThan => date(rv, pv, |a, b| a < b),
        DateLessThanEquals => date(rv, pv, |a, b| a <= b),
        DateGreaterThan => date(rv, pv, |a, b| a > b),
        DateGreaterThanEquals => date(rv, pv, |a, b| a >= b),
        IpAddress | NotIpAddress => {
            let net: Option<IpNet> = pv
                .parse()
                .ok()
                .or_else(|| pv.parse::<std::net::IpAddr>().ok().map(IpNet::from));
            let ip: Option<std::net::IpAddr> = rv.parse().ok();
            matches!((net, ip), (Some(n), Some(i)) if n.contains(&i))
        }
        Null => false,
    }
}

fn num(a: &str, b: &str, f: impl Fn(f64, f64) -> bool) -> bool {
    matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if f(x, y))
}

/// Dates as epoch seconds or ISO 8601 (compared as UTC instants).
fn date(a: &str, b: &str, f: impl Fn(i64, i64) -> bool) -> bool {
    let parse = |s: &str| -> Option<i64> {
        if let Ok(n) = s.parse::<i64>() {
            return Some(n);
        }
        aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
            .ok()
            .map(|d| d.secs())
            .or_else(|| {
                aws_smithy_types::DateTime::from_str(
                    &format!("{s}T00:00:00Z"),
                    aws_smithy_types::date_time::Format::DateTime,
                )
                .ok()
                .map(|d| d.secs())
            })
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if f(x, y))
}

/// ARN comparison: the six colon-separated parts compared one by one, each
/// with wildcards (ArnEquals behaves as ArnLike, as AWS documents).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| crate::glob::matches(p, a))
}
