//! EKS: clusters with their VPC, cluster security group, additional security
//! groups, subnets and OIDC issuer; node group remote-access groups.
//!
//! moto note: moto returns `resourcesVpcConfig` exactly as it was sent to
//! CreateCluster and never creates a cluster security group; the test seeding
//! sends `clusterSecurityGroupId` and `vpcId` itself (tests/support/seed.py).

use aws_sdk_eks::Client;
use aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput;

use super::calls::items;
use super::{Calls, text};
use crate::snapshot::{EksCluster, PodIdentityAssociation, Region};
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
            node_sgs.extend(group.as_ref().and_then(remote_access_sg));
        }
        let mut e = eks_cluster(&cluster, &name, node_sgs);
        e.pod_identity_associations = pod_identities(c, calls, &name).await;
        r.eks_clusters.push(e);
    }
    r
}

/// A node group's remote-access security group, when it has one.
fn remote_access_sg(o: &DescribeNodegroupOutput) -> Option<String> {
    let sg = o.nodegroup()?.resources()?.remote_access_security_group();
    sg.map(str::to_string)
}

/// Which role each service account of the cluster gets through EKS Pod
/// Identity; `None` when the associations cannot be listed (moto: 404 for
/// every Pod Identity operation, so against the emulator this is a gap; the
/// unit test below replays the answers on the wire).
async fn pod_identities(
    c: &Client,
    calls: &mut Calls,
    cluster: &str,
) -> Option<Vec<PodIdentityAssociation>> {
    let listing = c.list_pod_identity_associations().cluster_name(cluster);
    let summaries = calls
        .call(op::LIST_POD_IDENTITY_ASSOCIATIONS, items!(listing))
        .await?;
    let mut out = Vec::with_capacity(summaries.len());
    for s in summaries {
        let describe = c
            .describe_pod_identity_association()
            .cluster_name(cluster)
            .association_id(s.association_id().unwrap_or_default())
            .send();
        let role_arn = calls
            .call(op::DESCRIBE_POD_IDENTITY_ASSOCIATION, describe)
            .await
            .and_then(|o| o.association)
            .and_then(|a| a.role_arn);
        out.push(PodIdentityAssociation {
            namespace: text(s.namespace()),
            service_account: text(s.service_account()),
            role_arn,
        });
    }
    Some(out)
}

super::registry::region_section! { eks_clusters }

fn eks_cluster(c: &aws_sdk_eks::types::Cluster, name: &str, node_sgs: Vec<String>) -> EksCluster {
    let vpc = c.resources_vpc_config();
    EksCluster {
        name: c.name().unwrap_or(name).to_string(),
        arn: text(c.arn()),
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
        pod_identity_associations: None,
    }
}

super::registry::regional_collector!(Eks, crate::vocab::Service::Eks, aws_sdk_eks);

#[cfg(test)]
mod tests {
    //! moto has no EKS Pod Identity (404 for every operation): the
    //! associations are replayed from `tests/fixtures/wire/eks/`.
    use crate::collect::Calls;
    use crate::collect::wire::{Wire, replayed};
    use crate::vocab::Service;

    #[tokio::test]
    async fn pod_identity_associations_with_their_roles() {
        let wire = Wire::load(&["eks/pod-identity"]);
        let mut calls = Calls::new(Service::Eks, Some("eu-west-1"));
        let got = super::pod_identities(&replayed!(aws_sdk_eks, wire), &mut calls, "prod-eks")
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].namespace.as_str(), got[0].role_arn.as_deref()),
            ("orders", Some("arn:aws:iam::1:role/orders-app"))
        );
        // Not described: the role stays unknown, and the gap says why.
        assert_eq!(got[1].role_arn, None);
        assert_eq!(calls.gaps.len(), 1);
        assert_eq!(calls.gaps[0].operation, "DescribePodIdentityAssociation");
        assert_eq!(calls.gaps[0].code, "AccessDeniedException");
        assert_eq!(wire.unanswered(), Vec::<String>::new());
    }
}
