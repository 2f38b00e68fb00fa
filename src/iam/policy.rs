//! IAM policy documents as AWS writes them: `Statement` as an object or an
//! array; `Action`/`NotAction`, `Resource`/`NotResource`, `Principal` as a
//! string or an array; `Condition` blocks with every documented operator,
//! `…IfExists` and the `ForAllValues:`/`ForAnyValue:` set prefixes.
//! Malformed documents give an error naming the policy and the statement.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `inline:<principal>/<name>`, a managed policy ARN, or `boundary:<arn>`.
    pub id: String,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` (match any) or `NotAction` (match anything but); the same for resources.
#[derive(Debug, Clone, PartialEq)]
pub enum Patterns {
    Only(Vec<String>),
    Not(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    /// Lower-cased: action names are case-insensitive.
    pub actions: Patterns,
    /// `None` in trust policies, which have no resource.
    pub resources: Option<Patterns>,
    pub principals: Vec<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Single,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        use Op::*;
        Some(match s {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators match when no policy value matches.
    pub fn negated(self) -> bool {
        use Op::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub if_exists: bool,
    pub set: SetOp,
    /// Condition keys are case-insensitive: stored lower-cased.
    pub key: String,
    pub values: Vec<String>,
}

/// A malformed policy, with the policy and statement it is in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("policy {policy}{}: {message}", statement.map(|s| format!(", statement {s}")).unwrap_or_default())]
pub struct PolicyError {
    pub policy: String,
    pub statement: Option<usize>,
    pub message: String,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("`{what}` entries must be strings, found {other}")),
            })
            .collect(),
        other => Err(format!(
            "`{what}` must be a string or an array of strings, found {other}"
        )),
    }
}

/// Condition values may be strings, numbers or booleans (or arrays of them).
fn condition_values(v: &Value) -> Result<Vec<String>, String> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "condition values must be strings, numbers or booleans, found {other}"
        )),
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}

impl Policy {
    pub fn parse(id: &str, doc: &Value) -> Result<Policy, PolicyError> {
        let err = |statement: Option<usize>, message: String| PolicyError {
            policy: id.to_string(),
            statement,
            message,
        };
        let doc = match doc {
            // A document that could not be decoded was kept as a string.
            Value::String(s) => serde_json::from_str::<Value>(s)
                .map_err(|e| err(None, format!("not a JSON policy document: {e}")))?,
            other => other.clone(),
        };
        let obj = doc
            .as_object()
            .ok_or_else(|| err(None, "a policy document must be a JSON object".into()))?;
        let stmts = match obj.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(o @ Value::Object(_)) => vec![o.clone()],
            Some(other) => {
                return Err(err(
                    None,
                    format!("`Statement` must be an object or an array, found {other}"),
                ));
            }
            None => return Err(err(None, "the document has no `Statement`".into())),
        };
        let mut statements = Vec::new();
        for (index, s) in stmts.iter().enumerate() {
            let e = |m: String| err(Some(index), m);
            let s = s
                .as_object()
                .ok_or_else(|| e("a statement must be an object".into()))?;
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                other => {
                    return Err(e(format!(
                        "`Effect` must be \"Allow\" or \"Deny\", found {other:?}"
                    )));
                }
            };
            let actions = match (s.get("Action"), s.get("NotAction")) {
                (Some(a), None) => Patterns::Only(strings(a, "Action").map_err(e)?),
                (None, Some(a)) => Patterns::Not(strings(a, "NotAction").map_err(e)?),
                (Some(_), Some(_)) => {
                    return Err(e(
                        "a statement cannot have both `Action` and `NotAction`".into()
                    ));
                }
                (None, None) => return Err(e("a statement needs `Action` or `NotAction`".into())),
            };
            let actions = match actions {
                Patterns::Only(v) => {
                    Patterns::Only(v.into_iter().map(|a| a.to_ascii_lowercase()).collect())
                }
                Patterns::Not(v) => {
                    Patterns::Not(v.into_iter().map(|a| a.to_ascii_lowercase()).collect())
                }
            };
            let resources = match (s.get("Resource"), s.get("NotResource")) {
                (Some(r), None) => Some(Patterns::Only(strings(r, "Resource").map_err(e)?)),
                (None, Some(r)) => Some(Patterns::Not(strings(r, "NotResource").map_err(e)?)),
                (Some(_), Some(_)) => {
                    return Err(e(
                        "a statement cannot have both `Resource` and `NotResource`".into(),
                    ));
                }
                (None, None) => None,
            };
            let mut principals = Vec::new();
            if let Some(p) = s.get("Principal").or_else(|| s.get("NotPrincipal")) {
                match p {
                    Value::String(x) => principals.push(x.clone()),
                    Value::Object(m) => {
                        for (_, v) in m {
                            principals.extend(strings(v, "Principal").map_err(e)?);
                        }
                    }
                    other => {
                        return Err(e(format!(
                            "`Principal` must be \"*\" or an object, found {other}"
                        )));
                    }
                }
            }
            let mut conditions = Vec::new();
            if let Some(c) = s.get("Condition") {
                let c = c
                    .as_object()
                    .ok_or_else(|| e("`Condition` must be an object".into()))?;
                for (op_name, block) in c {
                    let (set, rest) = if let Some(r) = op_name.strip_prefix("ForAllValues:") {
                        (SetOp::ForAllValues, r)
                    } else if let Some(r) = op_name.strip_prefix("ForAnyValue:") {
                        (SetOp::ForAnyValue, r)
                    } else {
                        (SetOp::Single, op_name.as_str())
                    };
                    let (base, if_exists) = match rest.strip_suffix("IfExists") {
                        Some(b) if b != "Null" => (b, true),
                        _ => (rest, false),
                    };
                    let op = Op::parse(base)
                        .ok_or_else(|| e(format!("unknown condition operator `{op_name}`")))?;
                    let block = block.as_object().ok_or_else(|| {
                        e(format!("`{op_name}` must map condition keys to values"))
                    })?;
                    for (key, values) in block {
                        conditions.push(Condition {
                            op,
                            if_exists,
                            set,
                            key: key.to_ascii_lowercase(),
                            values: condition_values(values).map_err(e)?,
                        });
                    }
                }
            }
            statements.push(Statement {
                index,
                sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
                effect,
                actions,
                resources,
                principals,
                conditions,
            });
        }
        Ok(Policy {
            id: id.to_string(),
            statements,
        })
    }
}
