//! EC2: VPCs, subnets, route tables, internet/NAT/egress-only gateways,
//! security groups. Every list paginates to the end. A failed call becomes a
//! gap for that operation; the others still run.
//!
//! moto note: no EC2 describe call paginates in moto (MaxResults is ignored),
//! so the pagination here is covered by tests with the SDK's mock client.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types as t;

use super::calls::items;
use super::{Calls, tags_of, text, texts};
use crate::snapshot::{
    EgressOnlyInternetGateway, InternetGateway, NatGateway, Region, Route, RouteTable,
    RouteTableAssociation, RouteTarget, SecurityGroup, SgReference, SgRule, Subnet, Vpc,
};
use crate::vocab::op;

/// The network section of one region: VPCs, subnets, route tables,
/// gateways and security groups.
// One line per operation reads as the table it is.
#[rustfmt::skip]
pub async fn collect(client: &Client, calls: &mut Calls) -> Region {
    let c = client;
    Region {
        vpcs: calls.list(op::DESCRIBE_VPCS, items!(c.describe_vpcs()), vpc).await,
        subnets: calls.list(op::DESCRIBE_SUBNETS, items!(c.describe_subnets()), subnet).await,
        route_tables: calls.list(op::DESCRIBE_ROUTE_TABLES, items!(c.describe_route_tables()), route_table).await,
        internet_gateways: calls.list(op::DESCRIBE_INTERNET_GATEWAYS, items!(c.describe_internet_gateways()), internet_gateway).await,
        nat_gateways: calls.list(op::DESCRIBE_NAT_GATEWAYS, items!(c.describe_nat_gateways()), nat_gateway).await,
        egress_only_internet_gateways: calls.list(op::DESCRIBE_EGRESS_ONLY_INTERNET_GATEWAYS, items!(c.describe_egress_only_internet_gateways()), egress_only_gateway).await,
        security_groups: calls.list(op::DESCRIBE_SECURITY_GROUPS, items!(c.describe_security_groups()), security_group).await,
        ..Region::default()
    }
}

super::registry::region_section! {
    vpcs, subnets, route_tables, internet_gateways, nat_gateways,
    egress_only_internet_gateways, security_groups
}

/// EC2's tags as ours.
fn ec2_tags(tags: &[t::Tag]) -> crate::snapshot::Tags {
    tags_of(tags.iter().map(|t| (t.key(), t.value())))
}

fn internet_gateway(g: &t::InternetGateway) -> InternetGateway {
    InternetGateway {
        id: text(g.internet_gateway_id()),
        vpc_ids: texts(g.attachments(), |a| a.vpc_id()),
    }
}

fn nat_gateway(n: &t::NatGateway) -> NatGateway {
    NatGateway {
        id: text(n.nat_gateway_id()),
        vpc_id: text(n.vpc_id()),
        subnet_id: text(n.subnet_id()),
        state: n.state().map(|s| s.as_str().to_string()),
    }
}

fn egress_only_gateway(g: &t::EgressOnlyInternetGateway) -> EgressOnlyInternetGateway {
    EgressOnlyInternetGateway {
        id: g
            .egress_only_internet_gateway_id()
            .unwrap_or_default()
            .to_string(),
        vpc_ids: texts(g.attachments(), |a| a.vpc_id()),
    }
}

fn vpc(v: &t::Vpc) -> Vpc {
    let mut cidrs: Vec<String> = texts(v.cidr_block_association_set(), |a| a.cidr_block());
    if cidrs.is_empty()
        && let Some(c) = v.cidr_block()
    {
        cidrs.push(c.to_string());
    }
    Vpc {
        id: text(v.vpc_id()),
        is_default: v.is_default().unwrap_or(false),
        cidr_blocks: cidrs,
        tags: ec2_tags(v.tags()),
    }
}

fn subnet(s: &t::Subnet) -> Subnet {
    Subnet {
        id: text(s.subnet_id()),
        vpc_id: text(s.vpc_id()),
        availability_zone: text(s.availability_zone()),
        cidr_block: s.cidr_block().map(str::to_string),
        ipv6_cidr_blocks: texts(s.ipv6_cidr_block_association_set(), |a| a.ipv6_cidr_block()),
        map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
        tags: ec2_tags(s.tags()),
    }
}

fn route_table(rt: &t::RouteTable) -> RouteTable {
    RouteTable {
        id: text(rt.route_table_id()),
        vpc_id: text(rt.vpc_id()),
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
    let gateway_kind = |g: &str| {
        if g == "local" {
            "local"
        } else if g.starts_with("igw-") {
            "igw"
        } else if g.starts_with("vgw-") {
            "vgw"
        } else if g.starts_with("vpce-") {
            "vpce"
        } else {
            "other"
        }
    };
    let (kind, id) = if let Some(g) = r.gateway_id() {
        (gateway_kind(g), g)
    } else {
        [
            ("nat", r.nat_gateway_id()),
            ("eigw", r.egress_only_internet_gateway_id()),
            ("tgw", r.transit_gateway_id()),
            ("pcx", r.vpc_peering_connection_id()),
            ("eni", r.network_interface_id()),
            ("instance", r.instance_id()),
            ("other", r.carrier_gateway_id()),
            ("other", r.local_gateway_id()),
            ("other", r.core_network_arn()),
        ]
        .into_iter()
        .find_map(|(kind, id)| Some((kind, id?)))
        .unwrap_or(("other", ""))
    };
    let target = RouteTarget {
        kind: kind.into(),
        id: id.into(),
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
        id: text(g.group_id()),
        name: text(g.group_name()),
        ingress: g.ip_permissions().iter().map(sg_rule).collect(),
        egress: g.ip_permissions_egress().iter().map(sg_rule).collect(),
        vpc_id: text(g.vpc_id()),
        owner_id: text(g.owner_id()),
        tags: ec2_tags(g.tags()),
    }
}

fn sg_rule(p: &t::IpPermission) -> SgRule {
    SgRule {
        protocol: p.ip_protocol().unwrap_or("-1").to_string(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        ipv4_ranges: texts(p.ip_ranges(), |r| r.cidr_ip()),
        ipv6_ranges: texts(p.ipv6_ranges(), |r| r.cidr_ipv6()),
        prefix_list_ids: texts(p.prefix_list_ids(), |r| r.prefix_list_id()),
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

super::registry::regional_collector!(Ec2, crate::vocab::Service::Ec2, aws_sdk_ec2);

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

    use crate::collect::Calls;
    use crate::vocab::Service;

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
        let mut calls = Calls::new(Service::Ec2, Some("eu-west-1"));
        let region = super::collect(&client, &mut calls).await;
        assert!(calls.gaps.is_empty(), "{:?}", calls.gaps);
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
        let mut calls = Calls::new(Service::Ec2, Some("eu-west-1"));
        super::collect(&client, &mut calls).await;
        let gaps = calls.gaps;
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].operation, "DescribeSecurityGroups");
        assert_eq!(gaps[0].code, "UnauthorizedOperation");
        assert_eq!(gaps[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(nat.num_calls(), 1, "later calls still ran");
    }
}
