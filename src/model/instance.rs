//! Facts of a DB instance (`resource` in `db_instance` rules): public
//! access, the cluster's settings for members, TLS certificates.

use super::*;

/// Facts of a DB instance (`resource` in `db_instance` rules).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstanceFacts {
    pub id: String,
    pub arn: String,
    pub region: String,
    /// Not a member of a DB cluster.
    pub standalone: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub engine: String,
    pub instance_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    // Absent (unknown, the rule `error`) when the API's answer lacked them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,
    /// For Aurora members, the cluster's setting (AWS reports it there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    pub port: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_replica_source: Option<String>,
    pub read_replicas: Vec<String>,
    pub tags: Tags,
    pub services: Vec<String>,
    /// The CA that signed the server certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// When the server certificate (or, without its details, the CA)
    /// expires; absent when neither is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_valid_till: Option<String>,
    /// Days from the snapshot's `collected_at` to that expiry (negative
    /// once expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_days_left: Option<i64>,
    /// RDS rotates the server certificate itself under this CA (the G1
    /// CAs); absent when the CA is not one dbaudit knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_rotates_automatically: Option<bool>,
    #[serde(flatten)]
    pub network: NetworkFacts,
    pub unknown: Vec<String>,
}

pub fn instance_facts(idx: &RegionIndex<'_>, i: &DbInstance, service_tag: &str) -> InstanceFacts {
    let mut unknown = Vec::new();
    let cluster = i
        .cluster_id
        .as_deref()
        .and_then(|c| idx.clusters.get(c).copied());
    if let (Some(id), None) = (&i.cluster_id, cluster) {
        unknown.push(format!("cluster `{id}` is not in the snapshot"));
    }
    // Aurora members carry the cluster's network settings; take them from the
    // cluster when the instance lacks them.
    let subnet_group = i
        .db_subnet_group
        .clone()
        .or_else(|| cluster.and_then(|c| c.db_subnet_group.clone()));
    let sgs = if i.vpc_security_group_ids.is_empty() {
        cluster
            .map(|c| c.vpc_security_group_ids.clone())
            .unwrap_or_default()
    } else {
        i.vpc_security_group_ids.clone()
    };
    let port = i
        .port
        .or(cluster.and_then(|c| c.port))
        .map(i64::from)
        .unwrap_or_else(|| network::default_port(&i.engine));
    let network = idx.network(subnet_group.as_deref(), &sgs, port, &mut unknown);
    let certificate_valid_till = match lifecycle::certificate_expiry(idx.region, i) {
        Ok(t) => Some(t),
        Err(why) => {
            match idx.fact_gap(crate::vocab::op::DESCRIBE_CERTIFICATES) {
                Some(gap) => unknown.push(format!("certificate expiry: {why} ({gap})")),
                None => unknown.push(format!("certificate expiry: {why}")),
            }
            None
        }
    };
    let certificate_days_left = certificate_valid_till.as_deref().and_then(|t| {
        let days = idx
            .now
            .zip(lifecycle::epoch(t))
            .map(|(now, end)| lifecycle::days_until(now, end));
        if days.is_none() {
            unknown.push(format!(
                "certificate expiry: `{t}` or collected_at is not a date"
            ));
        }
        days
    });
    let ca_rotates_automatically = match i.ca_certificate_identifier.as_deref() {
        Some(ca) => {
            let r = lifecycle::ca_rotates(idx.region, ca);
            if r.is_none() {
                unknown.push(format!(
                    "CA `{ca}`: neither a CA AWS publishes nor in the region's CA list, so whether RDS rotates its certificates is unknown"
                ));
            }
            r
        }
        None => None,
    };
    InstanceFacts {
        id: i.id.clone(),
        arn: i.arn.clone(),
        region: idx.region.name.clone(),
        standalone: i.cluster_id.is_none(),
        cluster_id: i.cluster_id.clone(),
        engine: i.engine.clone(),
        instance_class: i.instance_class.clone(),
        availability_zone: i.availability_zone.clone(),
        publicly_accessible: known(i.publicly_accessible, "PubliclyAccessible", &mut unknown),
        iam_auth: known(
            cluster.map_or(i.iam_database_authentication_enabled, |c| {
                c.iam_database_authentication_enabled
            }),
            "IAMDatabaseAuthenticationEnabled",
            &mut unknown,
        ),
        storage_encrypted: known(
            cluster.map_or(i.storage_encrypted, |c| c.storage_encrypted),
            "StorageEncrypted",
            &mut unknown,
        ),
        backup_retention_days: known(
            cluster.map_or(i.backup_retention_period, |c| c.backup_retention_period),
            "BackupRetentionPeriod",
            &mut unknown,
        )
        .map(i64::from),
        deletion_protection: known(
            cluster.map_or(i.deletion_protection, |c| c.deletion_protection),
            "DeletionProtection",
            &mut unknown,
        ),
        multi_az: known(i.multi_az, "MultiAZ", &mut unknown),
        port,
        read_replica_source: i.read_replica_source.clone(),
        read_replicas: i.read_replicas.clone(),
        tags: i.tags.clone(),
        services: services(&i.tags, service_tag),
        ca_certificate: i.ca_certificate_identifier.clone(),
        certificate_valid_till,
        certificate_days_left,
        ca_rotates_automatically,
        network,
        unknown,
    }
}

super::cel_facts!(InstanceFacts {
    id, arn, region, standalone, cluster_id, engine, instance_class, availability_zone,
    publicly_accessible, iam_auth, storage_encrypted, backup_retention_days, deletion_protection,
    multi_az, port, read_replica_source, read_replicas, tags, services, ca_certificate,
    certificate_valid_till, certificate_days_left, ca_rotates_automatically, unknown,
} flatten network: NetworkFacts);

/// DB instances: the region's `db_instances`.
pub struct InstanceKind;

impl super::Kind for InstanceKind {
    fn scope(&self) -> super::Scope {
        super::Scope::Region
    }

    fn service(&self) -> Option<crate::vocab::Service> {
        Some(crate::vocab::Service::Rds)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<InstanceFacts>()
    }

    fn arn_of_every(&self, account: &crate::snapshot::Account, region: &str) -> String {
        super::kind::rds_arn(account, region, "db")
    }

    fn visit(
        &self,
        at: &super::Place<'_>,
        each: &mut dyn FnMut(super::Resource<'_>),
    ) -> Result<(), String> {
        let idx = at.region();
        for i in &idx.region.db_instances {
            let f = instance_facts(idx, i, &at.config.service_tag);
            each(super::Resource {
                id: &i.id,
                arn: &i.arn,
                facts: &f,
            });
        }
        Ok(())
    }
}
