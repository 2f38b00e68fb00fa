//! EKS: clusters with their VPC, cluster security group, additional security
//! groups, subnets and OIDC issuer; node group remote-access groups.
//!
//! moto note: moto returns `resourcesVpcConfig` exactly as it was sent to
//! CreateCluster and never creates a cluster security group; the test seeding
//! sends `clusterSecurityGroupId` and `vpcId` itself (tests/support/seed.py).

use aws_sdk_eks::Client;

use super::Calls;
use super::calls::items;
use crate::snapshot::{EksCluster, Region};
use crate::vocab::op;

/// The EKS section of one region: each cluster with its network.
pub async fn collect(client: &Client, calls: &mut Calls) -> Region {
    let mut r = Region::default();
    let c = client;
    let Some(names) = calls
        .call(op::LIST_CLUSTERS, items!(c.list_clusters()))
        .await
    else {
        return r;
    };
    for name in names {
        let Some(cluster) = calls
            .call(
                op::DESCRIBE_CLUSTER,
                c.describe_cluster().name(&name).send(),
            )
            .await
            .and_then(|o| o.cluster)
        else {
            continue;
        };
        let mut node_sgs = Vec::new();
        let groups = calls
            .call(
                op::LIST_NODEGROUPS,
                items!(c.list_nodegroups().cluster_name(&name)),
            )
            .await;
        for g in groups.unwrap_or_default() {
            let group = calls
                .call(
                    op::DESCRIBE_NODEGROUP,
                    c.describe_nodegroup()
                        .cluster_name(&name)
                        .nodegroup_name(&g)
                        .send(),
                )
                .await;
            if let Some(sg) = group
                .as_ref()
                .and_then(|o| o.nodegroup())
                .and_then(|n| n.resources())
                .and_then(|r| r.remote_access_security_group())
            {
                node_sgs.push(sg.to_string());
            }
        }
        r.eks_clusters.push(eks_cluster(&cluster, &name, node_sgs));
    }
    r
}

/// Moves the EKS section into the account's region.
pub fn store(from: Region, into: &mut Region) {
    into.eks_clusters = from.eks_clusters;
}

fn eks_cluster(c: &aws_sdk_eks::types::Cluster, name: &str, node_sgs: Vec<String>) -> EksCluster {
    let vpc = c.resources_vpc_config();
    EksCluster {
        name: c.name().unwrap_or(name).to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        vpc_id: vpc.and_then(|v| v.vpc_id()).map(str::to_string),
        cluster_security_group_id: vpc
            .and_then(|v| v.cluster_security_group_id())
            .map(str::to_string),
        additional_security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        node_security_group_ids: node_sgs,
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        oidc_issuer: c
            .identity()
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(str::to_string),
    }
}

super::registry::regional_collector!(Eks, crate::vocab::Service::Eks, aws_sdk_eks);
