//! EKS: clusters with their VPC, cluster security group, additional security
//! groups, subnets and OIDC issuer; node group remote-access groups.
//!
//! moto note: moto returns `resourcesVpcConfig` exactly as it was sent to
//! CreateCluster and never creates a cluster security group; the test seeding
//! sends `clusterSecurityGroupId` and `vpcId` itself (tests/support/seed.py).

use aws_sdk_eks::Client;

use super::{Collected, GapSource};
use crate::snapshot::EksCluster;

pub async fn collect(client: &Client, out: &mut Collected<'_>) {
    let region = out.region.clone();
    let gap = |op: &str, e: &dyn GapSource| e.to_gap("eks", Some(&region), op);
    let names = match client
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(n) => n,
        Err(e) => {
            out.gaps.push(gap("ListClusters", &e));
            return;
        }
    };
    for name in names {
        let cluster = match client.describe_cluster().name(&name).send().await {
            Ok(o) => o.cluster,
            Err(e) => {
                out.gaps.push(gap("DescribeCluster", &e));
                continue;
            }
        };
        let Some(c) = cluster else { continue };
        let vpc = c.resources_vpc_config();
        let mut node_sgs = Vec::new();
        match client
            .list_nodegroups()
            .cluster_name(&name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
        {
            Ok(groups) => {
                for g in groups {
                    match client
                        .describe_nodegroup()
                        .cluster_name(&name)
                        .nodegroup_name(&g)
                        .send()
                        .await
                    {
                        Ok(o) => {
                            if let Some(sg) = o
                                .nodegroup()
                                .and_then(|n| n.resources())
                                .and_then(|r| r.remote_access_security_group())
                            {
                                node_sgs.push(sg.to_string());
                            }
                        }
                        Err(e) => out.gaps.push(gap("DescribeNodegroup", &e)),
                    }
                }
            }
            Err(e) => out.gaps.push(gap("ListNodegroups", &e)),
        }
        out.region_data.eks_clusters.push(EksCluster {
            name: c.name().unwrap_or(&name).to_string(),
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
        });
    }
}
