//! Manual DB cluster snapshots as a resource kind (`resource` in
//! `db_cluster_snapshot` rules): each snapshot, who may restore it, and
//! whether the cluster it was taken from still exists. The account-level
//! snapshot rules read the same snapshots as a list (`manual_snapshots`).

use schemars::JsonSchema;
use serde::Serialize;

use super::{Kind, Place, RegionIndex, Resource, Scope};
use crate::snapshot::{Account, DbClusterSnapshot};
use crate::vocab::{Service, op};

/// Facts of a manual DB cluster snapshot.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterSnapshotFacts {
    pub id: String,
    pub arn: String,
    pub region: String,
    /// The DB cluster it was taken from; absent when the answer lacked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// That cluster is among the account's DB clusters, in any audited
    /// region (a copy to another region keeps its source cluster's id).
    /// Absent when the cluster it came from is not known, or when it was
    /// not found while some region's clusters could not be listed. A copy
    /// of another account's snapshot has no cluster here: `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_exists: Option<bool>,
    /// Absent when the answer lacked `StorageEncrypted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Anyone may restore it (`restore` attribute `all`). Absent when the
    /// attributes could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Account ids it is shared with; absent when the attributes could not
    /// be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<Vec<String>>,
    pub unknown: Vec<String>,
}

super::cel_facts!(ClusterSnapshotFacts {
    id,
    arn,
    region,
    cluster_id,
    cluster_exists,
    encrypted,
    kms_key_id,
    public,
    shared_with,
    unknown,
});

pub fn cluster_snapshot_facts(
    idx: &RegionIndex<'_>,
    account: &Account,
    s: &DbClusterSnapshot,
) -> ClusterSnapshotFacts {
    let mut unknown = Vec::new();
    let cluster_id = super::known(
        s.cluster_id.clone(),
        "DBClusterIdentifier",
        &mut unknown,
    );
    if s.restore.is_none() {
        unknown.push(format!(
            "who may restore snapshot {}: DescribeDBClusterSnapshotAttributes failed",
            s.id
        ));
    }
    ClusterSnapshotFacts {
        id: s.id.clone(),
        arn: s.arn.clone(),
        region: idx.region.name.clone(),
        cluster_exists: cluster_id
            .as_deref()
            .and_then(|c| cluster_exists(account, c, &mut unknown)),
        cluster_id,
        encrypted: super::known(s.storage_encrypted, "StorageEncrypted", &mut unknown),
        kms_key_id: s.kms_key_id.clone(),
        public: s.public(),
        shared_with: s.shared_with(),
        unknown,
    }
}

/// Whether the account has a DB cluster with this id in any audited region;
/// `None` (with why) when it was not found but not every region's clusters
/// were listed.
fn cluster_exists(account: &Account, id: &str, unknown: &mut Vec<String>) -> Option<bool> {
    let found = account
        .regions
        .iter()
        .any(|r| r.db_clusters.iter().any(|c| c.id == id));
    if found {
        return Some(true);
    }
    let unlisted = account.gaps.iter().find(|g| {
        (g.service == Service::Rds && !super::is_fact_level(g)) || g.service == Service::Sts
    });
    match unlisted {
        Some(g) => {
            unknown.push(format!(
                "whether DB cluster {id} still exists: the clusters were not all listed ({g})"
            ));
            None
        }
        None => Some(false),
    }
}

/// Manual DB cluster snapshots: the region's `db_cluster_snapshots`, when
/// they were listed.
pub struct ClusterSnapshotKind;

impl Kind for ClusterSnapshotKind {
    fn scope(&self) -> Scope {
        Scope::Region
    }

    fn service(&self) -> Option<Service> {
        Some(Service::Rds)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<ClusterSnapshotFacts>()
    }

    fn arn_of_every(&self, account: &Account, region: &str) -> String {
        super::kind::rds_arn(account, region, "cluster-snapshot")
    }

    fn visit(&self, at: &Place<'_>, each: &mut dyn FnMut(Resource<'_>)) -> Result<(), String> {
        let idx = at.region();
        // A fact-level listing: the other RDS rules do not need it.
        let Some(snapshots) = &idx.region.db_cluster_snapshots else {
            return Err(at
                .failed(op::DESCRIBE_DB_CLUSTER_SNAPSHOTS.name)
                .unwrap_or_else(|| {
                    "manual DB cluster snapshots are not in the snapshot (written before dbaudit \
                     collected them)"
                        .to_string()
                }));
        };
        for s in snapshots {
            let f = cluster_snapshot_facts(idx, at.account, s);
            each(Resource {
                id: &s.id,
                arn: &s.arn,
                facts: &f,
            });
        }
        Ok(())
    }
}
