//! Synthetic snapshots for benchmarks: `clusters` Aurora clusters with
//! `instances_per_cluster` members each and `extra_security_groups` unrelated
//! groups, spread over two accounts (test and prod) in one region each.
//! Every tenth cluster carries a violation, so rules both pass and fail.

use crate::snapshot::*;

pub fn snapshot(
    clusters: usize,
    instances_per_cluster: usize,
    extra_security_groups: usize,
) -> Snapshot {
    let mut s = Snapshot::new("2026-11-27T00:00:00Z".to_string());
    for (n, (name, id)) in [("test", "111111111111"), ("prod", "222222222222")]
        .into_iter()
        .enumerate()
    {
        let share = clusters / 2 + if n == 0 { clusters % 2 } else { 0 };
        let extra = extra_security_groups / 2 + if n == 0 { extra_security_groups % 2 } else { 0 };
        s.accounts
            .push(account(name, id, share, instances_per_cluster, extra));
    }
    s.normalize();
    s
}

fn account(env: &str, id: &str, clusters: usize, per: usize, extra_sgs: usize) -> Account {
    let region = "eu-west-1";
    let azs = ["eu-west-1a", "eu-west-1b", "eu-west-1c"];
    let mut r = Region {
        name: region.into(),
        ..Region::default()
    };
    r.vpcs.push(Vpc {
        id: "vpc-1".into(),
        ..Vpc::default()
    });
    let mut private = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        for (kind, public) in [("private", false), ("public", true)] {
            let sid = format!("subnet-{kind}-{i}");
            r.subnets.push(Subnet {
                id: sid.clone(),
                vpc_id: "vpc-1".into(),
                availability_zone: (*az).into(),
                map_public_ip_on_launch: public,
                ..Subnet::default()
            });
            if !public {
                private.push(sid);
            }
        }
    }
    let route = |kind: &str, tid: &str| Route {
        destination_cidr: Some("0.0.0.0/0".into()),
        target: RouteTarget {
            kind: kind.into(),
            id: tid.into(),
        },
        ..Route::default()
    };
    r.route_tables.push(RouteTable {
        id: "rtb-private".into(),
        vpc_id: "vpc-1".into(),
        routes: vec![route("nat", "nat-1")],
        associations: private
            .iter()
            .map(|s| RouteTableAssociation {
                subnet_id: Some(s.clone()),
                main: false,
            })
            .collect(),
    });
    r.route_tables.push(RouteTable {
        id: "rtb-public".into(),
        vpc_id: "vpc-1".into(),
        routes: vec![route("igw", "igw-1")],
        associations: vec![RouteTableAssociation {
            subnet_id: None,
            main: true,
        }],
    });
    r.db_subnet_groups.push(DbSubnetGroup {
        name: "private".into(),
        vpc_id: "vpc-1".into(),
        subnet_ids: private.clone(),
        ..DbSubnetGroup::default()
    });
    r.eks_clusters.push(EksCluster {
        name: format!("{env}-eks"),
        arn: format!("arn:aws:eks:{region}:{id}:cluster/{env}-eks"),
        vpc_id: Some("vpc-1".into()),
        cluster_security_group_id: Some("sg-eks".into()),
        ..EksCluster::default()
    });
    for i in 0..extra_sgs {
        r.security_groups.push(SecurityGroup {
            id: format!("sg-other-{i:06}"),
            name: format!("other-{i}"),
            vpc_id: "vpc-1".into(),
            owner_id: id.into(),
            ingress: vec![SgRule {
                protocol: "tcp".into(),
                from_port: Some(443),
                to_port: Some(443),
                ipv4_ranges: vec!["10.0.0.0/8".into()],
                ..SgRule::default()
            }],
            ..SecurityGroup::default()
        });
    }
    for c in 0..clusters {
        let cid = format!("{env}-db-{c:06}");
        let sg = format!("sg-db-{c:06}");
        let mut ingress = vec![SgRule {
            protocol: "tcp".into(),
            from_port: Some(5432),
            to_port: Some(5432),
            security_groups: vec![SgReference {
                group_id: "sg-eks".into(),
                user_id: Some(id.into()),
            }],
            ..SgRule::default()
        }];
        if c % 10 == 0 {
            ingress.push(SgRule {
                protocol: "tcp".into(),
                from_port: Some(5432),
                to_port: Some(5432),
                ipv4_ranges: vec!["0.0.0.0/0".into()],
                ..SgRule::default()
            });
        }
        r.security_groups.push(SecurityGroup {
            id: sg.clone(),
            name: cid.clone(),
            vpc_id: "vpc-1".into(),
            owner_id: id.into(),
            ingress,
            ..SecurityGroup::default()
        });
        let mut members = Vec::new();
        for m in 0..per {
            let iid = format!("{cid}-{m}");
            members.push(DbClusterMember {
                instance_id: iid.clone(),
                is_writer: m == 0,
            });
            r.db_instances.push(DbInstance {
                id: iid.clone(),
                arn: format!("arn:aws:rds:{region}:{id}:db:{iid}"),
                cluster_id: Some(cid.clone()),
                instance_class: "db.serverless".into(),
                engine: "aurora-postgresql".into(),
                availability_zone: Some(azs[m % 3].into()),
                vpc_security_group_ids: vec![sg.clone()],
                db_subnet_group: Some("private".into()),
                ..DbInstance::default()
            });
        }
        r.db_clusters.push(DbCluster {
            id: cid.clone(),
            arn: format!("arn:aws:rds:{region}:{id}:cluster:{cid}"),
            engine: "aurora-postgresql".into(),
            engine_version: "16.4".into(),
            serverless_v2: Some(ServerlessV2Scaling {
                min_capacity: 0.5,
                max_capacity: 8.0,
            }),
            port: Some(5432),
            members,
            iam_database_authentication_enabled: c % 10 != 1,
            storage_encrypted: true,
            backup_retention_period: 14,
            deletion_protection: true,
            vpc_security_group_ids: vec![sg],
            db_subnet_group: Some("private".into()),
            tags: [("service".to_string(), format!("svc-{c}"))]
                .into_iter()
                .collect(),
            ..DbCluster::default()
        });
    }
    Account {
        name: env.into(),
        environment: env.into(),
        account_id: id.into(),
        partition: "aws".into(),
        regions: vec![r],
        iam: Some(Iam::default()),
        gaps: Vec::new(),
        scps: None,
    }
}
