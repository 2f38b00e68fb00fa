//! Synthetic snapshots for benchmarks: `clusters` Aurora clusters with
//! `instances_per_cluster` members each and `extra_security_groups` unrelated
//! groups, spread over two accounts (test and prod) in one region each.
//! Every tenth cluster carries a violation, so rules both pass and fail.
//! [`with_principals`] adds IAM users and roles with the policies real
//! estates have (see there).

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

/// An organization: `accounts` accounts (even ones test, odd ones prod,
/// named `acct-NNNN`; accounts 2k and 2k+1 are product line k's test and
/// prod, serving the same services), each with `clusters` clusters of three members and
/// `principals` IAM principals; for the organization-scale benchmark.
pub fn organization(accounts: usize, clusters: usize, principals: usize) -> Snapshot {
    organization_with(accounts, clusters, principals, false)
}

/// [`organization`], or with `shared_services` every account serving the
/// same service names (`svc-0` …): each service then has hundreds of
/// databases per environment, the shape in which parity summarises.
pub fn organization_with(
    accounts: usize,
    clusters: usize,
    principals: usize,
    shared_services: bool,
) -> Snapshot {
    let mut s = Snapshot::new("2026-11-27T00:00:00Z".to_string());
    for n in 0..accounts {
        let env = if n % 2 == 1 { "prod" } else { "test" };
        let id = format!("{:012}", 400_000_000_000u64 + n as u64);
        let mut a = account(env, &id, clusters, 3, 0);
        a.name = format!("acct-{n:04}");
        // One product line per test/prod pair of accounts, with services
        // of its own (as an organization's product lines have).
        if !shared_services {
            for c in a.regions.iter_mut().flat_map(|r| r.db_clusters.iter_mut()) {
                if let Some(s) = c.tags.get_mut("service") {
                    *s = format!("line{}-{s}", n / 2);
                }
            }
        }
        let ids: Vec<(String, String)> = a
            .regions
            .iter()
            .flat_map(|r| &r.db_clusters)
            .map(|c| (c.id.clone(), c.resource_id.clone()))
            .collect();
        a.iam = Some(iam(env, &id, principals, &ids));
        s.accounts.push(a);
    }
    s.normalize();
    s
}

/// IAM principals for an account of the synthetic estate, `n` in all:
/// developers (5%, users in the `developers` group: read-only plus a deny
/// guard in prod, read/write in test, a few tagged), application roles (85%,
/// IRSA trust, each with its own inline policy: `rds-db:connect` as its own
/// DB user, `rds:DescribeDBClusters` on its own cluster), service operators
/// (5%, `rds:*` where `aws:ResourceTag/service` is their service), on-call
/// roles with writes on a name prefix (4%) and administrators with a broad
/// `rds:*` grant (1%).
pub fn with_principals(mut s: Snapshot, n: usize) -> Snapshot {
    for (k, a) in s.accounts.iter_mut().enumerate() {
        let share = n / 2 + if k == 0 { n % 2 } else { 0 };
        let clusters: Vec<(String, String)> = a
            .regions
            .iter()
            .flat_map(|r| &r.db_clusters)
            .map(|c| (c.id.clone(), c.resource_id.clone()))
            .collect();
        a.iam = Some(iam(&a.environment, &a.account_id, share, &clusters));
    }
    s.normalize();
    s
}

fn iam(env: &str, id: &str, n: usize, clusters: &[(String, String)]) -> Iam {
    use serde_json::json;
    let policy = |name: &str, doc: serde_json::Value| ManagedPolicy {
        arn: format!("arn:aws:iam::{id}:policy/{name}"),
        name: name.to_string(),
        default_version_id: "v1".into(),
        document: doc,
    };
    let read = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": ["rds:Describe*", "rds:List*", "ec2:Describe*"], "Resource": "*"}]});
    let dev = if env == "prod" {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Guard", "Effect": "Deny", "NotAction": ["rds:Describe*", "rds:List*"], "Resource": "*"}]})
    } else {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadWrite", "Effect": "Allow", "Action": ["rds:*", "rds-data:*"], "Resource": "*"}]})
    };
    let admin = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Action": ["rds:*", "ec2:*SecurityGroup*"], "Resource": "*"}]});
    let mut iam = Iam {
        policies: vec![
            policy("db-read", read),
            policy("developers", dev),
            policy("rds-admin", admin),
        ],
        groups: vec![IamGroup {
            name: "developers".into(),
            arn: format!("arn:aws:iam::{id}:group/developers"),
            inline_policies: vec![],
            attached_policies: vec![
                format!("arn:aws:iam::{id}:policy/db-read"),
                format!("arn:aws:iam::{id}:policy/developers"),
            ],
        }],
        ..Iam::default()
    };
    let trust = |ns: &str, sa: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{id}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub": format!("system:serviceaccount:{ns}:{sa}"),
                "oidc.eks.eu-west-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com"}}}]})
    };
    let cluster = |i: usize| &clusters[i % clusters.len().max(1)];
    for i in 0..n {
        let role = |name: String, inline: serde_json::Value, attached: Vec<String>| IamRole {
            arn: format!("arn:aws:iam::{id}:role/{name}"),
            path: "/".into(),
            trust_policy: trust("apps", &name),
            inline_policies: vec![InlinePolicy {
                name: "access".into(),
                document: inline,
            }],
            attached_policies: attached,
            name,
            ..IamRole::default()
        };
        match i % 100 {
            0..=4 => iam.users.push(IamUser {
                name: format!("dev-{i:05}"),
                arn: format!("arn:aws:iam::{id}:user/dev-{i:05}"),
                groups: vec!["developers".into()],
                tags: if i % 3 == 0 {
                    [("team".to_string(), format!("team-{}", i % 7))].into_iter().collect()
                } else {
                    Tags::new()
                },
                ..IamUser::default()
            }),
            5..=89 if !clusters.is_empty() => {
                let (cid, rid) = cluster(i);
                iam.roles.push(role(
                    format!("app-{i:05}"),
                    json!({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "rds-db:connect",
                         "Resource": format!("arn:aws:rds-db:eu-west-1:{id}:dbuser:{rid}/app_{i}")},
                        {"Effect": "Allow", "Action": "rds:DescribeDBClusters",
                         "Resource": format!("arn:aws:rds:eu-west-1:{id}:cluster:{cid}")},
                        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                         "Resource": format!("arn:aws:secretsmanager:eu-west-1:{id}:secret:app-{i}-*")}]}),
                    vec![],
                ));
            }
            90..=94 => iam.roles.push(role(
                format!("ops-{i:05}"),
                json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "rds:*", "Resource": "*",
                     "Condition": {"StringEquals": {"aws:ResourceTag/service": format!("svc-{}", i % 50)}}}]}),
                vec![format!("arn:aws:iam::{id}:policy/db-read")],
            )),
            95..=98 => iam.roles.push(role(
                format!("oncall-{i:05}"),
                json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["rds:Modify*", "rds:Reboot*", "rds:Failover*"],
                     "Resource": format!("arn:aws:rds:*:{id}:cluster:{env}-db-0000{}*", i % 10)}]}),
                vec![format!("arn:aws:iam::{id}:policy/db-read")],
            )),
            _ => iam.roles.push(role(
                format!("admin-{i:05}"),
                json!({"Version": "2012-10-17", "Statement": []}),
                vec![format!("arn:aws:iam::{id}:policy/rds-admin")],
            )),
        }
    }
    iam
}

fn account(env: &str, id: &str, clusters: usize, per: usize, extra_sgs: usize) -> Account {
    let region = "eu-west-1";
    let azs = ["eu-west-1a", "eu-west-1b", "eu-west-1c"];
    let mut r = Region {
        name: region.into(),
        db_cluster_snapshots: Some(Vec::new()),
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
                is_writer: Some(m == 0),
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
                publicly_accessible: Some(false),
                iam_database_authentication_enabled: Some(false),
                storage_encrypted: Some(true),
                backup_retention_period: Some(14),
                deletion_protection: Some(false),
                multi_az: Some(false),
                ..DbInstance::default()
            });
        }
        r.db_clusters.push(DbCluster {
            id: cid.clone(),
            arn: format!("arn:aws:rds:{region}:{id}:cluster:{cid}"),
            resource_id: format!("cluster-{}{c:06}", env.to_ascii_uppercase()),
            engine: "aurora-postgresql".into(),
            engine_version: "16.4".into(),
            serverless_v2: Some(ServerlessV2Scaling {
                min_capacity: 0.5,
                max_capacity: 8.0,
            }),
            port: Some(5432),
            members,
            iam_database_authentication_enabled: Some(c % 10 != 1),
            storage_encrypted: Some(true),
            backup_retention_period: Some(14),
            deletion_protection: Some(true),
            multi_az: Some(false),
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
        ..Account::default()
    }
}
