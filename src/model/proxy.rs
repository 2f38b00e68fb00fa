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

super::cel_facts!(ProxyFacts {
    name, arn, region, engine_family, require_tls, iam_auth_required, auth_summary, targets, port,
    unknown,
} flatten network: NetworkFacts);

/// RDS Proxies: the region's `db_proxies`, when they were listed.
pub struct ProxyKind;

impl super::Kind for ProxyKind {
    fn scope(&self) -> super::Scope {
        super::Scope::Region
    }

    fn service(&self) -> Option<crate::vocab::Service> {
        Some(crate::vocab::Service::Rds)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<ProxyFacts>()
    }

    fn arn_of_every(&self, account: &crate::snapshot::Account, region: &str) -> String {
        super::kind::rds_arn(account, region, "db-proxy")
    }

    fn visit(
        &self,
        at: &super::Place<'_>,
        each: &mut dyn FnMut(super::Resource<'_>),
    ) -> Result<(), String> {
        let idx = at.region();
        // A fact-level listing: the other RDS rules do not need it.
        let Some(proxies) = &idx.region.db_proxies else {
            return Err(at
                .failed(crate::vocab::op::DESCRIBE_DB_PROXIES.name)
                .unwrap_or_else(|| {
                    "RDS Proxies are not in the snapshot (written before dbaudit collected them)"
                        .to_string()
                }));
        };
        for p in proxies {
            let f = proxy_facts(idx, p);
            each(super::Resource {
                id: &p.name,
                arn: &p.arn,
                facts: &f,
            });
        }
        Ok(())
    }
}
