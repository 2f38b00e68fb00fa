//! RDS: DB clusters, DB instances, DB subnet groups and global clusters.
//!
//! moto notes: `describe_db_clusters` and `describe_db_subnet_groups` ignore
//! MaxRecords (everything comes in one page); `describe_db_instances`
//! paginates. Aurora members in moto do not inherit the cluster's subnet group
//! or IAM-auth flag; the model reads those from the cluster, as AWS documents.

use aws_sdk_rds::Client;
use aws_sdk_rds::types as t;

use super::calls::items;
use super::{Calls, tags_of};
use crate::snapshot::{
    ClusterParameterGroup, DbCluster, DbClusterMember, DbClusterSnapshot, DbInstance,
    DbSubnetGroup, GlobalCluster, GlobalClusterMember, MasterUserSecret, Region,
    ServerlessV2Scaling,
};
use crate::vocab::op;

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
    r
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
            arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_string(),
            cluster_id: s.db_cluster_identifier().map(str::to_string),
            storage_encrypted: s.storage_encrypted().unwrap_or(false),
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

/// Moves the database section into the account's region.
pub fn store(from: Region, into: &mut Region) {
    into.db_clusters = from.db_clusters;
    into.db_cluster_snapshots = from.db_cluster_snapshots;
    into.db_cluster_parameter_groups = from.db_cluster_parameter_groups;
    into.db_instances = from.db_instances;
    into.db_subnet_groups = from.db_subnet_groups;
    into.global_clusters = from.global_clusters;
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
            .map(|m| GlobalClusterMember {
                cluster_arn: m.db_cluster_arn().unwrap_or_default().to_string(),
                is_writer: m.is_writer().unwrap_or(false),
            })
            .collect(),
    }
}

fn cluster(c: &t::DbCluster) -> DbCluster {
    DbCluster {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        resource_id: c.db_cluster_resource_id().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        engine_version: c.engine_version().unwrap_or_default().to_string(),
        engine_mode: c.engine_mode().map(str::to_string),
        serverless_v2: c.serverless_v2_scaling_configuration().and_then(|s| {
            Some(ServerlessV2Scaling {
                min_capacity: s.min_capacity()?,
                max_capacity: s.max_capacity()?,
            })
        }),
        port: c.port(),
        members: c
            .db_cluster_members()
            .iter()
            .map(|m| DbClusterMember {
                instance_id: m.db_instance_identifier().unwrap_or_default().to_string(),
                is_writer: m.is_cluster_writer().unwrap_or(false),
            })
            .collect(),
        iam_database_authentication_enabled: c
            .iam_database_authentication_enabled()
            .unwrap_or(false),
        storage_encrypted: c.storage_encrypted().unwrap_or(false),
        kms_key_id: c.kms_key_id().map(str::to_string),
        backup_retention_period: c.backup_retention_period().unwrap_or(0),
        deletion_protection: c.deletion_protection().unwrap_or(false),
        multi_az: c.multi_az().unwrap_or(false),
        global_cluster_id: c.global_cluster_identifier().map(str::to_string),
        vpc_security_group_ids: c
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        db_subnet_group: c.db_subnet_group().map(str::to_string),
        publicly_accessible: c.publicly_accessible(),
        read_replica_identifiers: c.read_replica_identifiers().to_vec(),
        replication_source_identifier: c.replication_source_identifier().map(str::to_string),
        tags: tags_of(c.tag_list().iter().map(|t| (t.key(), t.value()))),
        master_username: c.master_username().map(str::to_string),
        master_user_secret: c.master_user_secret().map(|s| MasterUserSecret {
            secret_arn: s.secret_arn().unwrap_or_default().to_string(),
            status: s.secret_status().map(str::to_string),
            kms_key_id: s.kms_key_id().map(str::to_string),
        }),
        enabled_cloudwatch_logs_exports: Some(c.enabled_cloudwatch_logs_exports().to_vec()),
        auto_minor_version_upgrade: c.auto_minor_version_upgrade(),
        parameter_group: c.db_cluster_parameter_group().map(str::to_string),
    }
}

fn instance(i: &t::DbInstance) -> DbInstance {
    DbInstance {
        id: i.db_instance_identifier().unwrap_or_default().to_string(),
        arn: i.db_instance_arn().unwrap_or_default().to_string(),
        cluster_id: i.db_cluster_identifier().map(str::to_string),
        instance_class: i.db_instance_class().unwrap_or_default().to_string(),
        engine: i.engine().unwrap_or_default().to_string(),
        availability_zone: i.availability_zone().map(str::to_string),
        publicly_accessible: i.publicly_accessible().unwrap_or(false),
        iam_database_authentication_enabled: i
            .iam_database_authentication_enabled()
            .unwrap_or(false),
        storage_encrypted: i.storage_encrypted().unwrap_or(false),
        vpc_security_group_ids: i
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        db_subnet_group: i
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name().map(str::to_string)),
        port: i.endpoint().and_then(|e| e.port()).or(i.db_instance_port()),
        backup_retention_period: i.backup_retention_period().unwrap_or(0),
        deletion_protection: i.deletion_protection().unwrap_or(false),
        multi_az: i.multi_az().unwrap_or(false),
        read_replica_source: i
            .read_replica_source_db_instance_identifier()
            .map(str::to_string),
        read_replicas: i.read_replica_db_instance_identifiers().to_vec(),
        tags: tags_of(i.tag_list().iter().map(|t| (t.key(), t.value()))),
        auto_minor_version_upgrade: i.auto_minor_version_upgrade(),
    }
}

fn subnet_group(g: &t::DbSubnetGroup) -> DbSubnetGroup {
    DbSubnetGroup {
        name: g.db_subnet_group_name().unwrap_or_default().to_string(),
        arn: g.db_subnet_group_arn().map(str::to_string),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        subnet_ids: g
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_identifier().map(str::to_string))
            .collect(),
    }
}

super::registry::regional_collector!(Rds, crate::vocab::Service::Rds, aws_sdk_rds);
