//! Facts of an RDS Proxy (`resource` in `db_proxy` rules): how clients
//! authenticate, whether TLS is required, and where it sits in the network
//! (its own subnets and security groups, checked like a database's).

use schemars::JsonSchema;
use serde::Serialize;

use super::network::{NetworkFacts, RegionIndex};
use crate::snapshot::DbProxy;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProxyFacts {
    pub name: String,
    pub arn: String,
    pub region: String,
    /// `POSTGRESQL`, `MYSQL` or `SQLSERVER`.
    pub engine_family: String,
    /// Clients must connect with TLS (absent when the answer lacked
    /// `RequireTLS`: unknown, never "off").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    /// Every client authentication requires an IAM token: the default
    /// scheme is `IAM_AUTH`, or every `Auth` entry has `IAMAuth = REQUIRED`.
    pub iam_auth_required: bool,
    /// Each `Auth` entry as `IAMAuth/ClientPasswordAuthType`, and the
    /// default scheme, for messages.
    pub auth_summary: String,
    /// Ids of the DB clusters and instances it fronts; absent when its
    /// targets could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// The port clients reach it on (the engine family's).
    pub port: i64,
    #[serde(flatten)]
    pub network: NetworkFacts,
    pub unknown: Vec<String>,
}

pub fn proxy_facts(idx: &RegionIndex<'_>, p: &DbProxy) -> ProxyFacts {
    let mut unknown = Vec::new();
    let port = match p.engine_family.as_str() {
        "MYSQL" => 3306,
        "SQLSERVER" => 1433,
        _ => 5432,
    };
    let placement = if p.vpc_id.is_empty() {
        unknown.push("the proxy's VPC is not in the snapshot".into());
        None
    } else {
        Some((p.vpc_id.as_str(), &p.subnet_ids[..]))
    };
    let network = idx.network_in(placement, &p.security_group_ids, port, &mut unknown);
    let required = |a: &crate::snapshot::ProxyAuth| a.iam_auth.as_deref() == Some("REQUIRED");
    let iam_auth_required = p.default_auth_scheme.as_deref() == Some("IAM_AUTH")
        || (!p.auth.is_empty() && p.auth.iter().all(required));
    let mut parts: Vec<String> = p
        .auth
        .iter()
        .map(|a| {
            format!(
                "IAMAuth {}{}",
                a.iam_auth.as_deref().unwrap_or("(not set)"),
                a.client_password_auth_type
                    .as_deref()
                    .map(|t| format!(" / {t}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    if let Some(d) = &p.default_auth_scheme {
        parts.push(format!("DefaultAuthScheme {d}"));
    }
    if p.targets.is_none() {
        unknown.push("targets: DescribeDBProxyTargets failed".into());
    }
    ProxyFacts {
        name: p.name.clone(),
        arn: p.arn.clone(),
        region: idx.region.name.clone(),
        engine_family: p.engine_family.clone(),
        require_tls: super::known(p.require_tls, "RequireTLS", &mut unknown),
        iam_auth_required,
        auth_summary: if parts.is_empty() {
            "no authentication configured".into()
        } else {
            parts.join("; ")
        },
        targets: p.targets.clone(),
        port,
        network,
        unknown,
    }
}
