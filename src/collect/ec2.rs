//! EC2: VPCs, subnets, route tables, internet/NAT/egress-only gateways,
//! security groups. Every list paginates to the end. A failed call becomes a
//! gap for that operation; the others still run.
//!
//! moto note: no EC2 describe call paginates in moto (MaxResults is ignored),
//! so the pagination here is covered by tests with the SDK's mock client.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types as t;

use super::{Collected, tags_of};
use crate::snapshot::{
    EgressOnlyInternetGateway, InternetGateway, NatGateway, Route, RouteTable,
    RouteTableAssociation, RouteTarget, SecurityGroup, SgReference, SgRule, Subnet, Vpc,
};

pub async fn collect(client: &Client, out: &mut Collected<'_>) {
    let region = out.region.clone();
    let r = &mut out.region_data;
    let gaps = &mut out.gaps;
    let gap = |op: &str, e: &dyn GapSource| e.to_gap("ec2", Some(&region), op);

    match client
        .describe_vpcs()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => r.vpcs = items.iter().map(vpc).collect(),
        Err(e) => gaps.push(gap("DescribeVpcs", &e)),
    }
    match client
        .describe_subnets()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => r.subnets = items.iter().map(subnet).collect(),
        Err(e) => gaps.push(gap("DescribeSubnets", &e)),
    }
    match client
        .describe_route_tables()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => r.route_tables = items.iter().map(route_table).collect(),
        Err(e) => gaps.push(gap("DescribeRouteTables", &e)),
    }
    match client
        .describe_internet_gateways()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => {
            r.internet_gateways = items
                .iter()
                .map(|g| InternetGateway {
                    id: g.internet_gateway_id().unwrap_or_default().to_string(),
                    vpc_ids: g
                        .attachments()
                        .iter()
                        .filter_map(|a| a.vpc_id().map(str::to_string))
                        .collect(),
                })
                .collect()
        }
        Err(e) => gaps.push(gap("DescribeInternetGateways", &e)),
    }
    match client
        .describe_nat_gateways()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => {
            r.nat_gateways = items
                .iter()
                .map(|n| NatGateway {
                    id: n.nat_gateway_id().unwrap_or_default().to_string(),
                    vpc_id: n.vpc_id().unwrap_or_default().to_string(),
                    subnet_id: n.subnet_id().unwrap_or_default().to_string(),
                    state: n.state().map(|s| s.as_str().to_string()),
                })
                .collect()
        }
        Err(e) => gaps.push(gap("DescribeNatGateways", &e)),
    }
    match client
        .describe_egress_only_internet_gateways()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => {
            r.egress_only_internet_gateways = items
                .iter()
                .map(|g| EgressOnlyInternetGateway {
                    id: g
                        .egress_only_internet_gateway_id()
                        .unwrap_or_default()
                        .to_string(),
                    vpc_ids: g
                        .attachments()
                        .iter()
                        .filter_map(|a| a.vpc_id().map(str::to_string))
                        .collect(),
                })
                .collect()
        }
        Err(e) => gaps.push(gap("DescribeEgressOnlyInternetGateways", &e)),
    }
    match client
        .describe_security_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(items) => r.security_groups = items.iter().map(security_group).collect(),
        Err(e) => gaps.push(gap("DescribeSecurityGroups", &e)),
    }
}

use super::GapSource;

fn vpc(v: &t::Vpc) -> Vpc {
    let mut cidrs: Vec<String> = v
        .cidr_block_association_set()
        .iter()
        .filter_map(|a| a.cidr_block().map(str::to_string))
        .collect();
    if cidrs.is_empty()
        && let Some(c) = v.cidr_block()
    {
        cidrs.push(c.to_string());
    }
    Vpc {
        id: v.vpc_id().unwrap_or_default().to_string(),
        cidr_blocks: cidrs,
        is_default: v.is_default().unwrap_or(false),
        tags: tags_of(v.tags().iter().map(|t| (t.key(), t.value()))),
    }
}

fn subnet(s: &t::Subnet) -> Subnet {
    Subnet {
        id: s.subnet_id().unwrap_or_default().to_string(),
        vpc_id: s.vpc_id().unwrap_or_default().to_string(),
        availability_zone: s.availability_zone().unwrap_or_default().to_string(),
        cidr_block: s.cidr_block().map(str::to_string),
        ipv6_cidr_blocks: s
            .ipv6_cidr_block_association_set()
            .iter()
            .filter_map(|a| a.ipv6_cidr_block().map(str::to_string))
            .collect(),
        map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
        tags: tags_of(s.tags().iter().map(|t| (t.key(), t.value()))),
    }
}

fn route_table(rt: &t::RouteTable) -> RouteTable {
    RouteTable {
        id: rt.route_table_id().unwrap_or_default().to_string(),
        vpc_id: rt.vpc_id().unwrap_or_default().to_string(),
        routes: rt.routes().iter().map(route).collect(),
        associations: rt
            .associations()
            .iter()
            .map(|a| RouteTableAssociation {
                subnet_id: a.subnet_id().map(str::to_string),
                main: a.main().unwrap_or(false),
            })
            .collect(),
    }
}

/// The kind of a route's target, from whichever target field is set.
fn route(r: &t::Route) -> Route {
    let target = if let Some(g) = r.gateway_id() {
        let kind = if g == "local" {
            "local"
        } else if g.starts_with("igw-") {
            "igw"
        } else if g.starts_with("vgw-") {
            "vgw"
        } else if g.starts_with("vpce-") {
            "vpce"
        } else {
            "other"
        };
        RouteTarget {
            kind: kind.into(),
            id: g.into(),
        }
    } else if let Some(id) = r.nat_gateway_id() {
        RouteTarget {
            kind: "nat".into(),
            id: id.into(),
        }
    } else if let Some(id) = r.egress_only_internet_gateway_id() {
        RouteTarget {
            kind: "eigw".into(),
            id: id.into(),
        }
    } else if let Some(id) = r.transit_gateway_id() {
        RouteTarget {
            kind: "tgw".into(),
            id: id.into(),
        }
    } else if let Some(id) = r.vpc_peering_connection_id() {
        RouteTarget {
            kind: "pcx".into(),
            id: id.into(),
        }
    } else if let Some(id) = r.network_interface_id() {
        RouteTarget {
            kind: "eni".into(),
            id: id.into(),
        }
    } else if let Some(id) = r.instance_id() {
        RouteTarget {
            kind: "instance".into(),
            id: id.into(),
        }
    } else {
        let id = r
            .carrier_gateway_id()
            .or(r.local_gateway_id())
            .or(r.core_network_arn())
            .unwrap_or_default();
        RouteTarget {
            kind: "other".into(),
            id: id.into(),
        }
    };
    Route {
        destination_cidr: r.destination_cidr_block().map(str::to_string),
        destination_ipv6_cidr: r.destination_ipv6_cidr_block().map(str::to_string),
        destination_prefix_list_id: r.destination_prefix_list_id().map(str::to_string),
        target,
        state: r.state().map(|s| s.as_str().to_string()),
    }
}

fn security_group(g: &t::SecurityGroup) -> SecurityGroup {
    SecurityGroup {
        id: g.group_id().unwrap_or_default().to_string(),
        name: g.group_name().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        owner_id: g.owner_id().unwrap_or_default().to_string(),
        ingress: g.ip_permissions().iter().map(sg_rule).collect(),
        egress: g.ip_permissions_egress().iter().map(sg_rule).collect(),
        tags: tags_of(g.tags().iter().map(|t| (t.key(), t.value()))),
    }
}

fn sg_rule(p: &t::IpPermission) -> SgRule {
    SgRule {
        protocol: p.ip_protocol().unwrap_or("-1").to_string(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        ipv4_ranges: p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip().map(str::to_string))
            .collect(),
        ipv6_ranges: p
            .ipv6_ranges()
            .iter()
            .filter_map(|r| r.cidr_ipv6().map(str::to_string))
            .collect(),
        prefix_list_ids: p
            .prefix_list_ids()
            .iter()
            .filter_map(|r| r.prefix_list_id().map(str::to_string))
            .collect(),
        security_groups: p
            .user_id_group_pairs()
            .iter()
            .filter_map(|r| {
                r.group_id().map(|g| SgReference {
                    group_id: g.to_string(),
                    user_id: r.user_id().map(str::to_string),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    //! moto never paginates EC2, so pagination is tested with the SDK's own
    //! mock client: two pages joined by a NextToken.
    use aws_sdk_ec2::operation::describe_egress_only_internet_gateways::DescribeEgressOnlyInternetGatewaysOutput;
    use aws_sdk_ec2::operation::describe_internet_gateways::DescribeInternetGatewaysOutput;
    use aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput;
    use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
    use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
    use aws_sdk_ec2::types::{IpPermission, SecurityGroup, Subnet};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use crate::collect::Collected;
    use crate::snapshot::Region;

    #[tokio::test]
    async fn follows_next_tokens_to_the_last_page() {
        let sg = |id: &str| {
            SecurityGroup::builder()
                .group_id(id)
                .group_name(id)
                .vpc_id("vpc-1")
                .owner_id("111111111111")
                .ip_permissions(
                    IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(5432)
                        .to_port(5432)
                        .build(),
                )
                .build()
        };
        let sg_page1 = mock!(aws_sdk_ec2::Client::describe_security_groups)
            .match_requests(|r| r.next_token().is_none())
            .then_output(move || {
                DescribeSecurityGroupsOutput::builder()
                    .security_groups(sg("sg-1"))
                    .security_groups(sg("sg-2"))
                    .next_token("page-2")
                    .build()
            });
        let sg_page2 = mock!(aws_sdk_ec2::Client::describe_security_groups)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(move || {
                DescribeSecurityGroupsOutput::builder()
                    .security_groups(sg("sg-3"))
                    .build()
            });
        let subnets1 = mock!(aws_sdk_ec2::Client::describe_subnets)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(
                        Subnet::builder()
                            .subnet_id("subnet-1")
                            .vpc_id("vpc-1")
                            .availability_zone("eu-west-1a")
                            .build(),
                    )
                    .next_token("t2")
                    .build()
            });
        let subnets2 = mock!(aws_sdk_ec2::Client::describe_subnets)
            .match_requests(|r| r.next_token() == Some("t2"))
            .then_output(|| {
                DescribeSubnetsOutput::builder()
                    .subnets(
                        Subnet::builder()
                            .subnet_id("subnet-2")
                            .vpc_id("vpc-1")
                            .availability_zone("eu-west-1b")
                            .build(),
                    )
                    .build()
            });
        let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
            .then_output(|| DescribeVpcsOutput::builder().build());
        let rts = mock!(aws_sdk_ec2::Client::describe_route_tables)
            .then_output(|| DescribeRouteTablesOutput::builder().build());
        let igw = mock!(aws_sdk_ec2::Client::describe_internet_gateways)
            .then_output(|| DescribeInternetGatewaysOutput::builder().build());
        let nat = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
            .then_output(|| DescribeNatGatewaysOutput::builder().build());
        let eigw = mock!(aws_sdk_ec2::Client::describe_egress_only_internet_gateways)
            .then_output(|| DescribeEgressOnlyInternetGatewaysOutput::builder().build());
        let client = mock_client!(
            aws_sdk_ec2,
            RuleMode::MatchAny,
            [
                &sg_page1, &sg_page2, &subnets1, &subnets2, &vpcs, &rts, &igw, &nat, &eigw
            ]
        );
        let mut region = Region {
            name: "eu-west-1".into(),
            ..Region::default()
        };
        let mut out = Collected {
            region: "eu-west-1".into(),
            region_data: &mut region,
            gaps: Vec::new(),
        };
        super::collect(&client, &mut out).await;
        assert!(out.gaps.is_empty(), "{:?}", out.gaps);
        let ids: Vec<&str> = region
            .security_groups
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["sg-1", "sg-2", "sg-3"]);
        assert_eq!(region.security_groups[0].ingress[0].from_port, Some(5432));
        assert_eq!(region.subnets.len(), 2);
        assert_eq!(sg_page1.num_calls(), 1);
        assert_eq!(sg_page2.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failing_call_is_a_gap_and_the_others_still_run() {
        let denied = mock!(aws_sdk_ec2::Client::describe_security_groups).then_error(|| {
            aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsError::generic(
                aws_sdk_ec2::error::ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .message("You are not authorized to perform this operation.")
                    .build(),
            )
        });
        let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
            .then_output(|| DescribeVpcsOutput::builder().build());
        let subnets = mock!(aws_sdk_ec2::Client::describe_subnets)
            .then_output(|| DescribeSubnetsOutput::builder().build());
        let rts = mock!(aws_sdk_ec2::Client::describe_route_tables)
            .then_output(|| DescribeRouteTablesOutput::builder().build());
        let igw = mock!(aws_sdk_ec2::Client::describe_internet_gateways)
            .then_output(|| DescribeInternetGatewaysOutput::builder().build());
        let nat = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
            .then_output(|| DescribeNatGatewaysOutput::builder().build());
        let eigw = mock!(aws_sdk_ec2::Client::describe_egress_only_internet_gateways)
            .then_output(|| DescribeEgressOnlyInternetGatewaysOutput::builder().build());
        let client = mock_client!(
            aws_sdk_ec2,
            RuleMode::MatchAny,
            [&denied, &vpcs, &subnets, &rts, &igw, &nat, &eigw]
        );
        let mut region = Region::default();
        let mut out = Collected {
            region: "eu-west-1".into(),
            region_data: &mut region,
            gaps: Vec::new(),
        };
        super::collect(&client, &mut out).await;
        assert_eq!(out.gaps.len(), 1);
        assert_eq!(out.gaps[0].operation, "DescribeSecurityGroups");
        assert_eq!(out.gaps[0].code, "UnauthorizedOperation");
        assert_eq!(out.gaps[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(nat.num_calls(), 1, "later calls still ran");
    }
}
