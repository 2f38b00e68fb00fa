//! EC2: VPCs, subnets, route tables, internet/NAT/egress-only gateways,
//! security groups. Every list paginates to the end. A failed call becomes a
//! gap for that operation; the others still run.
//!
//! moto note: no EC2 describe call paginates in moto (MaxResults is ignored),
//! so the pagination here is covered by pages replayed on the wire.

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
    //! moto never paginates EC2: the pages are replayed from
    //! `tests/fixtures/wire/ec2/`.
    use crate::collect::wire::region_of;
    use crate::vocab::Service;

    #[tokio::test]
    async fn follows_next_tokens_to_the_last_page() {
        let pages = ["ec2/pages", "ec2/empty-network"];
        let (region, gaps, wire) = region_of!(aws_sdk_ec2, Service::Ec2, &pages);
        assert_eq!(gaps, Vec::new());
        let ids: Vec<&str> = region
            .security_groups
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["sg-1", "sg-2", "sg-3"]);
        assert_eq!(region.security_groups[0].ingress[0].from_port, Some(5432));
        let zones: Vec<&str> = region
            .subnets
            .iter()
            .map(|s| s.availability_zone.as_str())
            .collect();
        assert_eq!(zones, ["eu-west-1a", "eu-west-1b"]);
        assert_eq!((wire.hits("sg-page-1"), wire.hits("sg-page-2")), (1, 1));
    }

    #[tokio::test]
    async fn a_failing_call_is_a_gap_and_the_others_still_run() {
        let denied = ["ec2/security-groups-denied", "ec2/empty-network"];
        let (_, gaps, wire) = region_of!(aws_sdk_ec2, Service::Ec2, &denied);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].operation, "DescribeSecurityGroups");
        assert_eq!(gaps[0].code, "UnauthorizedOperation");
        assert_eq!(gaps[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(wire.hits("nat"), 1, "later calls still ran");
        assert_eq!(wire.unanswered(), Vec::<String>::new());
    }
}
