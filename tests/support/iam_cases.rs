//! The IAM corpus as typed cases (tests/iam_cases/*.json): policies (with an
//! optional boundary and SCP levels), a request, and the decision AWS's
//! documented evaluation logic gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dbaudit::iam::eval::{self, Context, Decision, Layer, Request};
use dbaudit::iam::{Policy, Principal};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamCase {
    pub description: String,
    /// Identity policies.
    pub policies: Vec<Value>,
    #[serde(default)]
    pub boundary: Option<Value>,
    /// SCPs: one list of documents per organization level, root first.
    #[serde(default)]
    pub scps: Vec<Vec<Value>>,
    /// Asked as this principal of an account (other-account resources).
    #[serde(default)]
    pub principal: Option<String>,
    pub request: IamRequest,
    /// `allow`, `deny`, `implicit_deny` or `conditional`.
    pub expect: String,
    /// `identity`, `boundary`, `scp:N` or `resource_account`.
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub unknown_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRequest {
    pub action: String,
    pub resource: String,
    /// Keys and their values; `[]` is a key present with no values.
    pub context: BTreeMap<String, Vec<String>>,
    /// Keys known to be absent.
    pub missing: Vec<String>,
    /// Key prefixes whose every key is known (a resource's full tag set).
    #[serde(default)]
    pub complete: Vec<String>,
}

pub fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::ImplicitDeny => "implicit_deny",
        Decision::Conditional => "conditional",
    }
}

impl IamCase {
    pub fn load(path: &Path) -> IamCase {
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn context(&self) -> Context {
        let mut ctx = Context::default();
        for (k, vs) in &self.request.context {
            ctx.values.entry(k.to_ascii_lowercase()).or_default();
            for v in vs {
                ctx.set(k, v);
            }
        }
        for k in &self.request.missing {
            ctx.absent(k);
        }
        for p in &self.request.complete {
            ctx.complete(p);
        }
        ctx
    }

    /// What the engine gets wrong on this case, if anything.
    pub fn check(&self) -> Result<(), String> {
        let parse = |name: String, d: &Value| Policy::parse(&name, d).map_err(|e| e.to_string());
        let policies = (self.policies.iter().enumerate())
            .map(|(i, d)| parse(format!("policy{i}"), d))
            .collect::<Result<Vec<_>, _>>()?;
        let boundary = self
            .boundary
            .as_ref()
            .map(|b| parse("boundary".into(), b))
            .transpose()?;
        let scps = (self.scps.iter().enumerate())
            .map(|(i, level)| {
                (level.iter().enumerate())
                    .map(|(j, d)| parse(format!("scp{i}.{j}"), d))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = self.context();
        let (action, resource) = (self.request.action.as_str(), self.request.resource.as_str());
        let a = match &self.principal {
            Some(arn) => Principal {
                kind: "user",
                name: arn.rsplit('/').next().unwrap_or_default().to_string(),
                arn: arn.clone(),
                account_id: arn.split(':').nth(4).unwrap_or_default().to_string(),
                groups: vec![],
                tags: Default::default(),
                tags_authoritative: true,
                policies: policies.iter().cloned().map(Arc::new).collect(),
                boundary: boundary.clone().map(Arc::new),
                scps: (scps.iter())
                    .map(|l| l.iter().cloned().map(Arc::new).collect())
                    .collect(),
                trust: None,
                errors: vec![],
            }
            .evaluate(action, resource, &ctx),
            None => {
                let refs: Vec<&Policy> = policies.iter().collect();
                let scp_refs: Vec<Vec<&Policy>> = scps.iter().map(|l| l.iter().collect()).collect();
                let request = Request {
                    action,
                    resource,
                    context: &ctx,
                };
                eval::evaluate_with_scps(&refs, boundary.as_ref(), &scp_refs, &request)
            }
        };
        if decision_name(a.decision) != self.expect {
            return Err(format!("{} expected, got {a:?}", self.expect));
        }
        let mut problems = Vec::new();
        if let Some(layer) = &self.decided_by {
            let got = match a.decided_by {
                Layer::Identity => "identity".to_string(),
                Layer::Boundary => "boundary".to_string(),
                Layer::Scp(i) => format!("scp:{i}"),
                Layer::ResourceAccount => "resource_account".to_string(),
            };
            if &got != layer {
                problems.push(format!("decided by {got}, expected {layer}"));
            }
        }
        if let Some(keys) = &self.unknown_keys
            && &a.unknown_keys != keys
        {
            problems.push(format!(
                "unknown keys {:?}, expected {keys:?}",
                a.unknown_keys
            ));
        }
        // Every decision names the statements behind it.
        match a.decision {
            Decision::Allow if a.allowed_by.is_empty() => {
                problems.push("an allow names no statement".into())
            }
            Decision::Deny if a.denied_by.is_empty() => {
                problems.push("a deny names no statement".into())
            }
            _ => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.description, problems.join("; ")))
        }
    }
}

pub fn case_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/iam_cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}
