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
/// is absent here is *unknown*, not *missing*; list keys known to be missing
/// in `missing`.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub values: BTreeMap<String, Vec<String>>,
    pub missing: BTreeSet<String>,
}

impl Context {
    pub fn set(&mut self, key: &str, value: &str) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
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

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    pub decision: Decision,
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
    let gates: Vec<Verdict> = boundary
        .map(|b| judge(std::iter::once(b), req, &action))
        .into_iter()
        .chain(
            scps.iter()
                .map(|level| judge(level.iter().copied(), req, &action)),
        )
        .collect();
    let mut denied_by = id.deny.clone();
    let mut allowed_by = id.allow.clone();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    for g in &gates {
        denied_by.extend(g.deny.iter().cloned());
    }
    if !denied_by.is_empty() {
        return Answer {
            decision: Decision::Deny,
            allowed_by,
            denied_by,
            unknown_keys: vec![],
        };
    }
    let mut maybe_denied = false;
    for (s, k) in id
        .deny_maybe
        .iter()
        .chain(gates.iter().flat_map(|g| g.deny_maybe.iter()))
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
        return Answer {
            decision: Decision::ImplicitDeny,
            allowed_by,
            denied_by: vec![],
            unknown_keys: vec![],
        };
    };
    let mut gates_definite = true;
    for g in &gates {
        if !g.allow.is_empty() {
            continue;
        }
        if g.allow_maybe.is_empty() {
            return Answer {
                decision: Decision::ImplicitDeny,
                allowed_by,
                denied_by: vec![],
                unknown_keys: vec![],
            };
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
    Answer {
        decision,
        allowed_by,
        denied_by,
        unknown_keys: if decision == Decision::Conditional {
            unknown.into_iter().collect()
        } else {
            vec![]
        },
    }
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

fn action_matches(s: &Statement, action: &str) -> bool {
    match &s.actions {
        Patterns::Only(p) => p.iter().any(|a| crate::glob::matches(a, action)),
        Patterns::Not(p) => !p.iter().any(|a| crate::glob::matches(a, action)),
    }
}

/// Replaces `${...}` policy variables; `None` when one is unknown.
fn substitute(pattern: &str, ctx: &Context) -> Result<String, String> {
    if !pattern.contains("${") {
        return Ok(pattern.to_string());
    }
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let var = &after[..j];
        match var {
            "*" => out.push_str("[*]"),
            "?" => out.push_str("[?]"),
            "$" => out.push('$'),
            _ => match ctx
                .values
                .get(&var.to_ascii_lowercase())
                .and_then(|v| v.first())
            {
                Some(v) => out.push_str(v),
                None => return Err(var.to_ascii_lowercase()),
            },
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    // `${*}` and `${?}` stand for literal characters, not wildcards.
    Ok(out)
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
            Ok(p) if literal_aware_match(&p, resource) => {
                hit = true;
                break;
            }
            Ok(_) => {}
            Err(var) => {
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

fn conditions(s: &Statement, ctx: &Context) -> Tri {
    s.conditions
        .iter()
        .fold(Tri::True, |acc, c| acc.and(condition(c, ctx)))
}

fn condition(c: &Condition, ctx: &Context) -> Tri {
    if c.op == Op::Null {
        // Null: true when the key is absent ("true") / present ("false").
        let want_absent = c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        return if ctx.missing.contains(&c.key) {
            if want_absent { Tri::True } else { Tri::False }
        } else if ctx.values.contains_key(&c.key) {
            if want_absent { Tri::False } else { Tri::True }
        } else {
            Tri::unknown(&c.key)
        };
    }
    let Some(request_values) = ctx.values.get(&c.key) else {
        if ctx.missing.contains(&c.key) {
            // Key absent from the request: IfExists and ForAllValues are
            // true, everything else false.
            return if c.if_exists || c.set == SetOp::ForAllValues {
                Tri::True
            } else {
                Tri::False
            };
        }
        return Tri::unknown(&c.key);
    };
    // Policy values may use variables too.
    let mut policy_values = Vec::new();
    for v in &c.values {
        match substitute(v, ctx) {
            Ok(v) => policy_values.push(v),
            Err(var) => return Tri::unknown(&var),
        }
    }
    let one = |rv: &str| -> bool {
        let any = policy_values.iter().any(|pv| value_matches(c.op, rv, pv));
        if c.op.negated() { !any } else { any }
    };
    let result = match c.set {
        SetOp::Single => request_values.iter().any(|rv| one(rv)),
        SetOp::ForAnyValue => request_values.iter().any(|rv| one(rv)),
        SetOp::ForAllValues => request_values.iter().all(|rv| one(rv)),
    };
    if result { Tri::True } else { Tri::False }
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
