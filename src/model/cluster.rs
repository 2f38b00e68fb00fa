//! Facts of an Aurora/RDS DB cluster (`resource` in `db_cluster` rules):
//! members and their AZs, replicas, encryption, backups, the master
//! secret, parameters, engine support dates.

use super::*;

/// A cluster member as rules see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemberFacts {
    pub id: String,
    pub availability_zone: String,
}

/// Facts of an Aurora/RDS DB cluster (`resource` in `db_cluster` rules).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterFacts {
    pub id: String,
    pub arn: String,
    pub region: String,
    pub engine: String,
    pub engine_version: String,
    /// `provisioned` unless the snapshot says otherwise.
    pub engine_mode: String,
    /// Aurora Serverless v2 scaling is configured.
    pub serverless_v2: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless_v2_min_acu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless_v2_max_acu: Option<f64>,
    pub port: i64,
    // Absent (unknown, the rule `error`) when the API's answer lacked them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_cluster_id: Option<String>,
    /// ARNs of replicas of this cluster in other regions (global cluster
    /// members or cross-region read-replica clusters). Absent when none is
    /// known and the region's global clusters could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_region_replicas: Option<Vec<String>>,
    pub tags: Tags,
    /// Services named by the service tag (comma, space or `+` separated).
    pub services: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<MemberFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<Vec<MemberFacts>>,
    /// Absent when a member's writer flag is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_count: Option<i64>,
    /// Distinct AZs of the readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_azs: Option<Vec<String>>,
    /// Distinct AZs of all members (writer and readers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_azs: Option<Vec<String>>,
    /// Readers in an AZ other than the writer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers_outside_writer_az: Option<i64>,
    /// Member instances that are publicly accessible.
    /// Absent when a member instance is not in the snapshot: "none public"
    /// would then be a guess.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publicly_accessible_members: Option<Vec<String>>,
    /// The master user's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_username: Option<String>,
    /// RDS manages the master password in Secrets Manager (it rotates it
    /// and no human needs to know it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_password_managed: Option<bool>,
    /// Log types exported to CloudWatch Logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_exports: Option<Vec<String>>,
    /// Minor engine versions are applied automatically: the cluster's own
    /// setting where it reports one, and every member instance's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_minor_version_upgrade: Option<bool>,
    /// The watched parameters of the cluster's parameter group (`rds.force_ssl`,
    /// `password_encryption`, `log_connections`, `shared_preload_libraries`,
    /// `ssl_min_protocol_version`) that have a value; absent when the group
    /// was not collected. A rule reading a parameter without a value errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Tags>,
    /// The master secret rotates automatically (Secrets Manager); absent
    /// when the password is not managed or the secret was not described.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_secret_rotation_enabled: Option<bool>,
    /// Days between rotations of the master secret, when it rotates on a
    /// rate (absent for a `cron(...)` schedule or when not described).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_secret_rotation_days: Option<i64>,
    /// `open-source-rds-extended-support` or `…-disabled`, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_lifecycle_support: Option<String>,
    /// Last day of standard support of the engine's major version (the
    /// shipped engine lifecycle catalogue); absent when not catalogued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_support_ends: Option<String>,
    /// Days from the snapshot's `collected_at` to that day (negative once
    /// passed: the cluster is on paid Extended Support or due an upgrade).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_support_days_left: Option<i64>,
    /// Last day of RDS Extended Support for the major version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_support_ends: Option<String>,
    /// Members whose Performance Insights data is encrypted with a KMS key
    /// other than the cluster's storage key (`instance: key`); absent when
    /// a member is not in the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance_insights_foreign_keys: Option<Vec<String>>,
    #[serde(flatten)]
    pub network: NetworkFacts,
    /// Facts that could not be derived, and why.
    pub unknown: Vec<String>,
}

pub fn cluster_facts(idx: &RegionIndex<'_>, c: &DbCluster, service_tag: &str) -> ClusterFacts {
    let mut unknown = Vec::new();
    let port = c
        .port
        .map(i64::from)
        .unwrap_or_else(|| network::default_port(&c.engine));
    let network = idx.network(
        c.db_subnet_group.as_deref(),
        &c.vpc_security_group_ids,
        port,
        &mut unknown,
    );
    // Members: the AZ comes from the member instance.
    let mut writer = None;
    let mut readers = Vec::new();
    let mut azs_known = true;
    let mut public_members = Some(Vec::new());
    for m in &c.members {
        let inst = idx.instances.get(m.instance_id.as_str());
        match (inst, &mut public_members) {
            (None, _) => public_members = None,
            (Some(i), Some(public)) => match i.publicly_accessible {
                Some(true) => public.push(i.id.clone()),
                Some(false) => {}
                None => {
                    unknown.push(format!(
                        "PubliclyAccessible of member `{}`: not in the API's answer",
                        i.id
                    ));
                    public_members = None;
                }
            },
            _ => {}
        }
        let az = inst.and_then(|i| i.availability_zone.clone());
        let Some(az) = az else {
            azs_known = false;
            unknown.push(format!(
                "availability zone of member `{}` is not in the snapshot",
                m.instance_id
            ));
            continue;
        };
        let f = MemberFacts {
            id: m.instance_id.clone(),
            availability_zone: az,
        };
        match m.is_writer {
            Some(true) => writer = Some(f),
            Some(false) => readers.push(f),
            None => {
                azs_known = false;
                unknown.push(format!(
                    "IsClusterWriter of member `{}`: not in the API's answer",
                    m.instance_id
                ));
            }
        }
    }
    // Which members read is known only when every writer flag is.
    let reader_count = c
        .members
        .iter()
        .map(|m| m.is_writer.map(|w| i64::from(!w)))
        .sum::<Option<i64>>();
    let (reader_azs, member_azs, outside) = if azs_known {
        let ra: BTreeSet<String> = readers
            .iter()
            .map(|r| r.availability_zone.clone())
            .collect();
        let mut ma = ra.clone();
        if let Some(w) = &writer {
            ma.insert(w.availability_zone.clone());
        }
        let outside = readers
            .iter()
            .filter(|r| {
                writer
                    .as_ref()
                    .is_none_or(|w| w.availability_zone != r.availability_zone)
            })
            .count() as i64;
        (
            Some(ra.into_iter().collect()),
            Some(ma.into_iter().collect()),
            Some(outside),
        )
    } else {
        (None, None, None)
    };
    let region = &idx.region.name;
    let mut cross_region_replicas: Vec<String> = c
        .read_replica_identifiers
        .iter()
        .filter(|arn| arn_region(arn).is_some_and(|r| r != region))
        .cloned()
        .collect();
    if let Some(g) = &c.global_cluster_id
        && let Some(gc) = idx.region.global_clusters.iter().find(|x| &x.id == g)
    {
        cross_region_replicas.extend(
            gc.members
                .iter()
                .filter(|m| m.cluster_arn != c.arn && arn_region(&m.cluster_arn) != Some(region))
                .map(|m| m.cluster_arn.clone()),
        );
    }
    cross_region_replicas.sort();
    cross_region_replicas.dedup();
    // Without the global clusters, "no replica" is unknown; a cross-region
    // read replica seen on the cluster itself is still known.
    let cross_region_replicas = match &idx.global_clusters_unknown {
        Some(why) if cross_region_replicas.is_empty() => {
            unknown.push(format!("cross-region replicas: {why}"));
            None
        }
        _ => Some(cross_region_replicas),
    };
    let master_password_managed = match &c.master_username {
        Some(_) => Some(c.master_user_secret.is_some()),
        None => {
            unknown.push(
                "master user: not in the snapshot (written before dbaudit collected it)".into(),
            );
            None
        }
    };
    if c.enabled_cloudwatch_logs_exports.is_none() {
        unknown.push(
            "log exports: not in the snapshot (written before dbaudit collected them)".into(),
        );
    }
    let member_upgrades: Option<Vec<bool>> = c
        .members
        .iter()
        .map(|m| {
            idx.instances
                .get(m.instance_id.as_str())?
                .auto_minor_version_upgrade
        })
        .collect();
    // Aurora has the setting on the cluster (newer API versions) and on each
    // instance; a member with it off keeps its minor version, so both count.
    let auto_minor_version_upgrade = match (c.auto_minor_version_upgrade, member_upgrades) {
        (cluster, Some(members)) if !members.is_empty() => {
            Some(cluster.unwrap_or(true) && members.iter().all(|v| *v))
        }
        (Some(v), _) => Some(v),
        _ => {
            unknown.push(
                "auto minor version upgrade: not known for the cluster or every member".into(),
            );
            None
        }
    };
    let parameters = cluster_parameters(idx.region, c, &mut unknown);
    let rotation = c.master_user_secret.as_ref().and_then(|s| {
        match &s.rotation {
            None => unknown.push(format!(
                "rotation of master secret {}: {}",
                s.secret_arn,
                idx.fact_gap(crate::vocab::op::DESCRIBE_SECRET)
                    .unwrap_or("DescribeSecret failed or was not made")
            )),
            Some(r) if r.enabled.is_none() => unknown.push(format!(
                "rotation of master secret {}: DescribeSecret did not say whether it rotates",
                s.secret_arn
            )),
            _ => {}
        }
        s.rotation.as_ref()
    });
    let support = support_dates(idx, c, &mut unknown);
    let performance_insights_foreign_keys = foreign_pi_keys(idx, c, &mut unknown);
    ClusterFacts {
        id: c.id.clone(),
        arn: c.arn.clone(),
        region: region.clone(),
        engine: c.engine.clone(),
        engine_version: c.engine_version.clone(),
        engine_mode: c
            .engine_mode
            .clone()
            .unwrap_or_else(|| "provisioned".to_string()),
        serverless_v2: c.serverless_v2.is_some(),
        serverless_v2_min_acu: c.serverless_v2.as_ref().map(|s| s.min_capacity),
        serverless_v2_max_acu: c.serverless_v2.as_ref().map(|s| s.max_capacity),
        port,
        iam_auth: known(
            c.iam_database_authentication_enabled,
            "IAMDatabaseAuthenticationEnabled",
            &mut unknown,
        ),
        storage_encrypted: known(c.storage_encrypted, "StorageEncrypted", &mut unknown),
        kms_key_id: c.kms_key_id.clone(),
        backup_retention_days: known(
            c.backup_retention_period,
            "BackupRetentionPeriod",
            &mut unknown,
        )
        .map(i64::from),
        deletion_protection: known(c.deletion_protection, "DeletionProtection", &mut unknown),
        multi_az: known(c.multi_az, "MultiAZ", &mut unknown),
        global_cluster_id: c.global_cluster_id.clone(),
        cross_region_replicas,
        tags: c.tags.clone(),
        services: services(&c.tags, service_tag),
        writer,
        readers: azs_known.then_some(readers),
        reader_count,
        reader_azs,
        member_azs,
        readers_outside_writer_az: outside,
        publicly_accessible_members: public_members,
        master_username: c.master_username.clone(),
        master_password_managed,
        log_exports: c.enabled_cloudwatch_logs_exports.clone(),
        auto_minor_version_upgrade,
        parameters,
        master_secret_rotation_enabled: rotation.and_then(|r| r.enabled),
        master_secret_rotation_days: rotation.and_then(|r| r.interval_days),
        engine_lifecycle_support: c.engine_lifecycle_support.clone(),
        standard_support_ends: support.map(|(l, _)| l.standard_support_ends.clone()),
        standard_support_days_left: support.and_then(|(_, days)| days),
        extended_support_ends: support.and_then(|(l, _)| l.extended_support_ends.clone()),
        performance_insights_foreign_keys,
        network,
        unknown,
    }
}

/// The cluster's major version in the engine lifecycle catalogue, and the
/// days left of its standard support.
fn support_dates(
    idx: &RegionIndex<'_>,
    c: &DbCluster,
    unknown: &mut Vec<String>,
) -> Option<(&'static lifecycle::MajorLifecycle, Option<i64>)> {
    let Some(l) = lifecycle::major_lifecycle(&c.engine, &c.engine_version) else {
        unknown.push(format!(
            "engine lifecycle: {} major version {} is not in data/engine-lifecycle.json              (regenerate it: scripts/gen-engine-lifecycle.py)",
            c.engine,
            parity::engine_major(&c.engine_version)
        ));
        return None;
    };
    let days = match (idx.now, lifecycle::epoch(&l.standard_support_ends)) {
        // The catalogue names the last day of support: it ends at its close.
        (Some(now), Some(end)) => Some(lifecycle::days_until(now, end + 86_400)),
        _ => {
            unknown.push("engine lifecycle: the snapshot's collected_at is not a date".into());
            None
        }
    };
    Some((l, days))
}

/// Members whose Performance Insights key is not the cluster's key.
fn foreign_pi_keys(
    idx: &RegionIndex<'_>,
    c: &DbCluster,
    unknown: &mut Vec<String>,
) -> Option<Vec<String>> {
    // KMS keys may be named by ARN or key id: compare the key id.
    fn key_id(k: &str) -> &str {
        k.rsplit_once("key/").map_or(k, |(_, id)| id)
    }
    let mut out = Vec::new();
    for m in &c.members {
        let Some(i) = idx.instances.get(m.instance_id.as_str()) else {
            unknown.push(format!(
                "Performance Insights of member `{}`: the instance is not in the snapshot",
                m.instance_id
            ));
            return None;
        };
        // AWS reports PerformanceInsightsEnabled; where an answer lacks it
        // (moto never returns it; snapshots of older dbaudit versions) a PI
        // key still means PI is on (AWS reports the key only then), but
        // without either nothing is known: unknown, never "off".
        let enabled = match (
            i.performance_insights_enabled,
            &i.performance_insights_kms_key_id,
        ) {
            (Some(e), _) => e,
            (None, Some(_)) => true,
            (None, None) => {
                unknown.push(format!(
                    "Performance Insights of member `{}`: not reported",
                    m.instance_id
                ));
                return None;
            }
        };
        let Some(pi_key) = i
            .performance_insights_kms_key_id
            .as_deref()
            .filter(|_| enabled)
        else {
            continue;
        };
        let same = c
            .kms_key_id
            .as_deref()
            .is_some_and(|k| key_id(k) == key_id(pi_key));
        if !same {
            out.push(format!("{}: {pi_key}", i.id));
        }
    }
    Some(out)
}

/// The watched parameters of a cluster's parameter group, if collected.
pub fn cluster_parameters(
    region: &crate::snapshot::Region,
    c: &DbCluster,
    unknown: &mut Vec<String>,
) -> Option<Tags> {
    let Some(groups) = &region.db_cluster_parameter_groups else {
        unknown.push(
            "parameter groups: not in the snapshot (written before dbaudit collected them)".into(),
        );
        return None;
    };
    let Some(name) = &c.parameter_group else {
        unknown.push("parameter group: the cluster names none".into());
        return None;
    };
    match groups.iter().find(|g| &g.name == name) {
        Some(g) => Some(g.parameters.clone()),
        None => {
            unknown.push(format!(
                "parameters of group `{name}`: DescribeDBClusterParameters failed or was not made"
            ));
            None
        }
    }
}

super::cel_facts!(ClusterFacts {
    id, arn, region, engine, engine_version, engine_mode, serverless_v2, serverless_v2_min_acu,
    serverless_v2_max_acu, port, iam_auth, storage_encrypted, kms_key_id, backup_retention_days,
    deletion_protection, multi_az, global_cluster_id, cross_region_replicas, tags, services, writer,
    readers, reader_count, reader_azs, member_azs, readers_outside_writer_az,
    publicly_accessible_members, master_username, master_password_managed, log_exports,
    auto_minor_version_upgrade, parameters, master_secret_rotation_enabled,
    master_secret_rotation_days, engine_lifecycle_support, standard_support_ends,
    standard_support_days_left, extended_support_ends, performance_insights_foreign_keys, unknown,
} flatten network: NetworkFacts);

/// DB clusters: the region's `db_clusters`.
pub struct ClusterKind;

impl super::Kind for ClusterKind {
    fn scope(&self) -> super::Scope {
        super::Scope::Region
    }

    fn service(&self) -> Option<crate::vocab::Service> {
        Some(crate::vocab::Service::Rds)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<ClusterFacts>()
    }

    fn arn_of_every(&self, account: &crate::snapshot::Account, region: &str) -> String {
        super::kind::rds_arn(account, region, "cluster")
    }

    fn visit(
        &self,
        at: &super::Place<'_>,
        each: &mut dyn FnMut(super::Resource<'_>),
    ) -> Result<(), String> {
        let idx = at.region();
        for c in &idx.region.db_clusters {
            let f = cluster_facts(idx, c, &at.config.service_tag);
            each(super::Resource {
                id: &c.id,
                arn: &c.arn,
                facts: &f,
            });
        }
        Ok(())
    }
}
