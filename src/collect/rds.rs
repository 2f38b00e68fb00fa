//! RDS: DB clusters, DB instances, DB subnet groups and global clusters.
//!
//! moto notes: `describe_db_clusters` and `describe_db_subnet_groups` ignore
//! MaxRecords (everything comes in one page); `describe_db_instances`
//! paginates. Aurora members in moto do not inherit the cluster's subnet group
//! or IAM-auth flag; the model reads those from the cluster, as AWS documents.

use aws_sdk_rds::Client;
use aws_sdk_rds::types as t;

use super::calls::items;
use super::registry::{BoxFuture, Done, Task, client};
use super::{Calls, tags_of, text, texts};
use crate::snapshot::{
    CaCertificate, ClusterParameterGroup, DbCluster, DbClusterMember, DbClusterSnapshot,
    DbInstance, DbProxy, DbSubnetGroup, GlobalCluster, GlobalClusterMember, MasterUserSecret,
    ProxyAuth, Region, SecretRotation, ServerlessV2Scaling,
};
use crate::vocab::{Service, op};

/// The database section of one region: clusters, instances, subnet groups
/// and global clusters.
// One line per operation reads as the table it is.
#[rustfmt::skip]
pub async fn collect(client: &Client, calls: &mut Calls) -> Region {
    let c = client;
    let mut r = Region {
        db_clusters: calls.list(op::DESCRIBE_DB_CLUSTERS, items!(c.describe_db_clusters()), cluster).await,
        db_instances: calls.list(op::DESCRIBE_DB_INSTANCES, items!(c.describe_db_instances()), instance).await,
        db_subnet_groups: calls.list(op::DESCRIBE_DB_SUBNET_GROUPS, items!(c.describe_db_subnet_groups()), subnet_group).await,
        ..Region::default()
    };
    let globals = calls.call(op::DESCRIBE_GLOBAL_CLUSTERS, items!(c.describe_global_clusters())).await;
    if let Some(v) = globals {
        r.global_clusters = v.iter().map(global_cluster).collect();
        // Older API versions do not report the global cluster on the
        // member; derive it from the global cluster's member list.
        for c in &mut r.db_clusters {
            if c.global_cluster_id.is_none()
                && let Some(g) = r
                    .global_clusters
                    .iter()
                    .find(|g| g.members.iter().any(|m| m.cluster_arn == c.arn))
            {
                c.global_cluster_id = Some(g.id.clone());
            }
        }
    }
    r.db_cluster_snapshots = snapshots(c, calls).await;
    r.db_cluster_parameter_groups = parameter_groups(c, calls, &r.db_clusters).await;
    // The CA list is needed only for an instance whose answer lacks its
    // server certificate's expiry and whose CA AWS does not publish.
    let needed = r.db_instances.iter().any(|i| {
        i.certificate_valid_till.is_none()
            && !crate::model::lifecycle::is_published_ca(i.ca_certificate_identifier.as_deref())
    });
    if needed {
        r.certificates = calls.call(op::DESCRIBE_CERTIFICATES, items!(c.describe_certificates())).await
            .map(|v| v.iter().map(certificate).collect());
    }
    r.db_proxies = proxies(c, calls).await;
    r
}

/// Each RDS Proxy with the clusters and instances it targets; `None` when
/// the proxies cannot be listed.
async fn proxies(c: &Client, calls: &mut Calls) -> Option<Vec<DbProxy>> {
    let listed = calls
        .call(op::DESCRIBE_DB_PROXIES, items!(c.describe_db_proxies()))
        .await?;
    let mut out = Vec::with_capacity(listed.len());
    for p in &listed {
        let name = p.db_proxy_name().unwrap_or_default();
        let targets = c.describe_db_proxy_targets().db_proxy_name(name);
        let targets = calls
            .call(op::DESCRIBE_DB_PROXY_TARGETS, items!(targets))
            .await
            .map(|ts| {
                let mut ids = texts(&ts, |t| t.rds_resource_id());
                ids.sort();
                ids.dedup();
                ids
            });
        out.push(DbProxy {
            name: name.to_string(),
            arn: text(p.db_proxy_arn()),
            engine_family: text(p.engine_family()),
            require_tls: p.require_tls(),
            auth: p
                .auth()
                .iter()
                .map(|a| ProxyAuth {
                    iam_auth: a.iam_auth().map(|v| v.as_str().to_string()),
                    client_password_auth_type: a
                        .client_password_auth_type()
                        .map(|v| v.as_str().to_string()),
                })
                .collect(),
            default_auth_scheme: p.default_auth_scheme().map(str::to_string),
            vpc_id: text(p.vpc_id()),
            subnet_ids: p.vpc_subnet_ids().to_vec(),
            security_group_ids: p.vpc_security_group_ids().to_vec(),
            targets,
        });
    }
    Some(out)
}

fn certificate(c: &t::Certificate) -> CaCertificate {
    CaCertificate {
        id: text(c.certificate_identifier()),
        valid_till: c.valid_till().map(|d| d.to_string()),
        customer_override: c.customer_override().unwrap_or(false),
    }
}

/// The rotation of every master secret of `clusters`, read with Secrets
/// Manager's `DescribeSecret` (metadata only: never the secret's value).
/// A secret that cannot be described keeps `rotation: None`.
pub async fn master_secret_rotation(
    client: &aws_sdk_secretsmanager::Client,
    calls: &mut Calls,
    clusters: &mut [DbCluster],
) {
    for c in clusters {
        let Some(secret) = c.master_user_secret.as_mut() else {
            continue;
        };
        let describe = client
            .describe_secret()
            .secret_id(&secret.secret_arn)
            .send();
        secret.rotation = calls.call(op::DESCRIBE_SECRET, describe).await.map(|o| {
            let rules = o.rotation_rules();
            let schedule = rules
                .and_then(|r| r.schedule_expression())
                .map(str::to_string);
            SecretRotation {
                // DescribeSecret, RotationEnabled: "Specifies whether
                // automatic rotation is turned on for this secret. If the
                // secret has never been configured for rotation, Secrets
                // Manager returns null." An answer without it is a secret
                // that does not rotate: off, not unknown.
                enabled: Some(o.rotation_enabled().unwrap_or(false)),
                interval_days: rules
                    .and_then(|r| r.automatically_after_days())
                    .or_else(|| schedule.as_deref().and_then(rate_days)),
                schedule_expression: schedule,
                last_rotated: o.last_rotated_date().map(|d| d.to_string()),
            }
        });
    }
}

/// Days between rotations of a `rate(N days)` / `rate(N hours)` schedule
/// (hours round up to a day); `None` for `cron(...)`, whose interval is
/// not one number.
fn rate_days(expr: &str) -> Option<i64> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let mut parts = inner.split_whitespace();
    let n: i64 = parts.next()?.parse().ok()?;
    match parts.next()?.trim_end_matches('s') {
        "day" => Some(n),
        "hour" => Some((n + 23) / 24),
        _ => None,
    }
}

/// The cluster parameters dbaudit reads (TLS, password hashing, connection
/// logging, extensions). Only these are kept in the snapshot.
pub const WATCHED_PARAMETERS: &[&str] = &[
    "rds.force_ssl",
    "password_encryption",
    "log_connections",
    "shared_preload_libraries",
    "ssl_min_protocol_version",
];

/// Each parameter group the clusters use, with the watched parameters'
/// values (engine defaults included: no `Source` filter). A group that
/// cannot be read is left out, so its clusters' parameter facts are absent.
async fn parameter_groups(
    c: &Client,
    calls: &mut Calls,
    clusters: &[crate::snapshot::DbCluster],
) -> Option<Vec<ClusterParameterGroup>> {
    let names: std::collections::BTreeSet<&str> = clusters
        .iter()
        .filter_map(|c| c.parameter_group.as_deref())
        .collect();
    let mut out = Vec::new();
    for name in names {
        let listing = c
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(name);
        let Some(params) = calls
            .call(op::DESCRIBE_DB_CLUSTER_PARAMETERS, items!(listing))
            .await
        else {
            continue;
        };
        let parameters = params
            .iter()
            .filter_map(|p| Some((p.parameter_name()?, p.parameter_value()?)))
            .filter(|(n, _)| WATCHED_PARAMETERS.contains(n))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        out.push(ClusterParameterGroup {
            name: name.to_string(),
            parameters,
        });
    }
    Some(out)
}

/// Manual cluster snapshots and who may restore each; `None` when they
/// cannot be listed.
async fn snapshots(c: &Client, calls: &mut Calls) -> Option<Vec<DbClusterSnapshot>> {
    let listing = c.describe_db_cluster_snapshots().snapshot_type("manual");
    let snaps = calls
        .call(op::DESCRIBE_DB_CLUSTER_SNAPSHOTS, items!(listing))
        .await?;
    let mut out = Vec::with_capacity(snaps.len());
    for s in &snaps {
        let id = s.db_cluster_snapshot_identifier().unwrap_or_default();
        let attrs = c
            .describe_db_cluster_snapshot_attributes()
            .db_cluster_snapshot_identifier(id);
        let restore = calls
            .call(op::DESCRIBE_DB_CLUSTER_SNAPSHOT_ATTRIBUTES, attrs.send())
            .await
            .map(|o| {
                (o.db_cluster_snapshot_attributes_result().into_iter())
                    .flat_map(|r| r.db_cluster_snapshot_attributes())
                    .filter(|a| a.attribute_name() == Some("restore"))
                    .flat_map(|a| a.attribute_values().to_vec())
                    .collect()
            });
        out.push(DbClusterSnapshot {
            id: id.to_string(),
            arn: text(s.db_cluster_snapshot_arn()),
            cluster_id: s.db_cluster_identifier().map(str::to_string),
            storage_encrypted: s.storage_encrypted(),
            // moto reports `default_kms_key_id` for unencrypted snapshots;
            // AWS omits the key. Only an encrypted snapshot has one.
            kms_key_id: s
                .kms_key_id()
                .filter(|_| s.storage_encrypted() == Some(true))
                .map(str::to_string),
            restore,
        });
    }
    Some(out)
}

super::registry::region_section! {
    db_clusters, db_cluster_snapshots, db_cluster_parameter_groups, db_instances,
    db_subnet_groups, global_clusters, certificates, db_proxies
}

fn global_cluster(g: &t::GlobalCluster) -> GlobalCluster {
    GlobalCluster {
        id: g
            .global_cluster_identifier()
            .unwrap_or_default()
            .to_string(),
        arn: g.global_cluster_arn().map(str::to_string),
        members: g
            .global_cluster_members()
            .iter()
            .map(global_member)
            .collect(),
    }
}

fn global_member(m: &t::GlobalClusterMember) -> GlobalClusterMember {
    let is_writer = m.is_writer().unwrap_or(false);
    GlobalClusterMember {
        cluster_arn: text(m.db_cluster_arn()),
        is_writer,
    }
}

fn cluster_member(m: &t::DbClusterMember) -> DbClusterMember {
    DbClusterMember {
        instance_id: text(m.db_instance_identifier()),
        is_writer: m.is_cluster_writer(),
    }
}

fn cluster(c: &t::DbCluster) -> DbCluster {
    DbCluster {
        id: text(c.db_cluster_identifier()),
        arn: text(c.db_cluster_arn()),
        resource_id: text(c.db_cluster_resource_id()),
        engine: text(c.engine()),
        engine_version: text(c.engine_version()),
        engine_mode: c.engine_mode().map(str::to_string),
        serverless_v2: c.serverless_v2_scaling_configuration().and_then(|s| {
            Some(ServerlessV2Scaling {
                min_capacity: s.min_capacity()?,
                max_capacity: s.max_capacity()?,
            })
        }),
        port: c.port(),
        members: c.db_cluster_members().iter().map(cluster_member).collect(),
        // Absent fields stay absent (unknown): the API reference gives
        // none of them a meaning when missing.
        iam_database_authentication_enabled: c.iam_database_authentication_enabled(),
        storage_encrypted: c.storage_encrypted(),
        kms_key_id: c.kms_key_id().map(str::to_string),
        backup_retention_period: c.backup_retention_period(),
        deletion_protection: c.deletion_protection(),
        multi_az: c.multi_az(),
        global_cluster_id: c.global_cluster_identifier().map(str::to_string),
        vpc_security_group_ids: texts(c.vpc_security_groups(), |g| g.vpc_security_group_id()),
        db_subnet_group: c.db_subnet_group().map(str::to_string),
        publicly_accessible: c.publicly_accessible(),
        read_replica_identifiers: c.read_replica_identifiers().to_vec(),
        replication_source_identifier: c.replication_source_identifier().map(str::to_string),
        tags: tags_of(c.tag_list().iter().map(|t| (t.key(), t.value()))),
        master_username: c.master_username().map(str::to_string),
        endpoint: c.endpoint().map(str::to_string),
        master_user_secret: c.master_user_secret().map(|s| MasterUserSecret {
            secret_arn: text(s.secret_arn()),
            status: s.secret_status().map(str::to_string),
            kms_key_id: s.kms_key_id().map(str::to_string),
            rotation: None,
        }),
        enabled_cloudwatch_logs_exports: Some(c.enabled_cloudwatch_logs_exports().to_vec()),
        auto_minor_version_upgrade: c.auto_minor_version_upgrade(),
        parameter_group: c.db_cluster_parameter_group().map(str::to_string),
        engine_lifecycle_support: c.engine_lifecycle_support().map(str::to_string),
        database_insights_mode: c.database_insights_mode().map(|m| m.as_str().to_string()),
    }
}

fn instance(i: &t::DbInstance) -> DbInstance {
    DbInstance {
        id: text(i.db_instance_identifier()),
        arn: text(i.db_instance_arn()),
        cluster_id: i.db_cluster_identifier().map(str::to_string),
        instance_class: text(i.db_instance_class()),
        engine: text(i.engine()),
        availability_zone: i.availability_zone().map(str::to_string),
        publicly_accessible: i.publicly_accessible(),
        iam_database_authentication_enabled: i.iam_database_authentication_enabled(),
        storage_encrypted: i.storage_encrypted(),
        vpc_security_group_ids: texts(i.vpc_security_groups(), |g| g.vpc_security_group_id()),
        db_subnet_group: i
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name().map(str::to_string)),
        port: i.endpoint().and_then(|e| e.port()).or(i.db_instance_port()),
        backup_retention_period: i.backup_retention_period(),
        deletion_protection: i.deletion_protection(),
        multi_az: i.multi_az(),
        read_replica_source: i
            .read_replica_source_db_instance_identifier()
            .map(str::to_string),
        read_replicas: i.read_replica_db_instance_identifiers().to_vec(),
        tags: tags_of(i.tag_list().iter().map(|t| (t.key(), t.value()))),
        auto_minor_version_upgrade: i.auto_minor_version_upgrade(),
        performance_insights_enabled: i.performance_insights_enabled(),
        performance_insights_kms_key_id: i.performance_insights_kms_key_id().map(str::to_string),
        ca_certificate_identifier: i.ca_certificate_identifier().map(str::to_string),
        certificate_valid_till: i
            .certificate_details()
            .and_then(|d| d.valid_till())
            .map(|d| d.to_string()),
        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_string),
        resource_id: i.dbi_resource_id().map(str::to_string),
        master_username: i.master_username().map(str::to_string),
    }
}

fn subnet_group(g: &t::DbSubnetGroup) -> DbSubnetGroup {
    DbSubnetGroup {
        name: text(g.db_subnet_group_name()),
        arn: g.db_subnet_group_arn().map(str::to_string),
        vpc_id: text(g.vpc_id()),
        subnet_ids: texts(g.subnets(), |s| s.subnet_identifier()),
    }
}

/// The RDS collector. Besides RDS it reads, with Secrets Manager, the
/// rotation of the master secrets the clusters name: that read depends on
/// the clusters, so it runs in the same task, after them.
pub(super) struct Rds;

impl super::registry::Collector for Rds {
    fn service(&self) -> Service {
        Service::Rds
    }

    fn also_reads(&self) -> &'static [Service] {
        &[Service::SecretsManager]
    }

    fn run(&self, mut task: Task) -> BoxFuture<Done> {
        Box::pin(async move {
            let client = client!(aws_sdk_rds, task);
            let mut data = collect(&client, &mut task.calls).await;
            let secrets = client!(aws_sdk_secretsmanager, task);
            let mut calls = Calls::new(Service::SecretsManager, task.calls.region());
            master_secret_rotation(&secrets, &mut calls, &mut data.db_clusters).await;
            task.calls.gaps.append(&mut calls.gaps);
            task.into_region(move |r| store(data, r))
        })
    }
}

#[cfg(test)]
mod tests {
    //! What moto cannot serve (ADR: MOTO-NOTES): `CertificateDetails`,
    //! `DescribeCertificates`, a proxy's `DefaultAuthScheme`, and the
    //! rotation fields RDS sets on its secrets, replayed from
    //! `tests/fixtures/wire/rds/` and `…/secretsmanager/`.
    use crate::collect::Calls;
    use crate::collect::wire::{Wire, region_of, replayed};
    use crate::snapshot::{DbCluster, MasterUserSecret};
    use crate::vocab::Service;

    #[tokio::test]
    async fn certificates_proxies_and_their_targets() {
        let (r, gaps, wire) = region_of!(
            aws_sdk_rds,
            Service::Rds,
            &["rds/unpublished-ca", "rds/empty-listings"]
        );
        assert!(gaps.is_empty(), "{gaps:?}");
        let i = &r.db_instances[0];
        assert_eq!(
            i.ca_certificate_identifier.as_deref(),
            Some("rds-ca-rsa2048-g1")
        );
        let valid_till = i.certificate_valid_till.as_deref().unwrap();
        assert!(valid_till.starts_with("2027-01-15"), "{valid_till}");
        assert_eq!(i.performance_insights_enabled, Some(true));
        // A CA AWS does not publish, without details: the CA list is read.
        assert_eq!(wire.hits("certificates"), 1);
        let listed = r.certificates.as_ref().unwrap();
        assert_eq!(listed[0].id, "acme-ca-1");
        assert!(listed[0].customer_override);
        let p = &r.db_proxies.as_ref().unwrap()[0];
        assert_eq!(p.default_auth_scheme.as_deref(), Some("IAM_AUTH"));
        assert_eq!(p.targets.as_deref(), Some(&["orders-db".to_string()][..]));
        assert_eq!(wire.unanswered(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_ca_list_is_not_read_when_every_expiry_is_known() {
        let answers = ["rds/published-cas", "rds/empty-listings"];
        let (r, _, wire) = region_of!(aws_sdk_rds, Service::Rds, &answers);
        assert_eq!(wire.hits("certificates"), 0);
        assert!(r.certificates.is_none());
        assert_eq!(r.db_proxies.as_deref(), Some(&[][..]));
        assert_eq!(r.db_instances.len(), 2);
    }

    #[tokio::test]
    async fn master_secret_rotation_and_a_secret_that_cannot_be_described() {
        let wire = Wire::load(&["secretsmanager/rotation"]);
        let cluster = |arn: &str| DbCluster {
            master_user_secret: Some(MasterUserSecret {
                secret_arn: arn.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut clusters = vec![
            cluster("arn:secret:a"),
            cluster("arn:secret:b"),
            DbCluster::default(),
            cluster("arn:secret:c"),
        ];
        let client = replayed!(aws_sdk_secretsmanager, wire);
        let mut calls = Calls::new(Service::SecretsManager, Some("eu-west-1"));
        super::master_secret_rotation(&client, &mut calls, &mut clusters).await;
        let rotation = |i: usize| {
            let secret = clusters[i].master_user_secret.as_ref().unwrap();
            secret
                .rotation
                .as_ref()
                .map(|r| (r.enabled, r.interval_days))
        };
        assert_eq!(rotation(0), Some((Some(true), Some(1))));
        assert_eq!(rotation(1), None);
        // Never configured for rotation: the API omits RotationEnabled,
        // which its reference defines as off.
        assert_eq!(rotation(3), Some((Some(false), None)));
        assert_eq!(calls.gaps.len(), 1);
        assert_eq!(calls.gaps[0].operation, "DescribeSecret");
        assert_eq!(calls.gaps[0].code, "AccessDeniedException");
        assert_eq!(calls.gaps[0].service, Service::SecretsManager);
    }

    #[test]
    fn rotation_schedules_in_days() {
        assert_eq!(super::rate_days("rate(7 days)"), Some(7));
        assert_eq!(super::rate_days("rate(1 day)"), Some(1));
        assert_eq!(super::rate_days("rate(36 hours)"), Some(2));
        assert_eq!(super::rate_days("cron(0 4 ? * SUN *)"), None);
    }
}
