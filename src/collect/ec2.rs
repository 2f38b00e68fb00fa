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
