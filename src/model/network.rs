//! Network facts: whether subnets are public (from their routes) and which
//! sources can reach a database port through its security groups.

use std::collections::{BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::Serialize;

use crate::snapshot::{Region, RouteTable, SecurityGroup, SgRule, Subnet};
use crate::vocab::op;

/// A subnet as a rule sees it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SubnetFacts {
    pub id: String,
    pub availability_zone: String,
    /// A default route (`0.0.0.0/0` or `::/0`) goes to an internet gateway.
    pub public: bool,
    /// The route table deciding it (explicit association, else the VPC's main table).
    pub route_table_id: String,
    /// Why the subnet is public or private, e.g. `rtb-1: 0.0.0.0/0 -> igw-1`.
    pub evidence: String,
}

/// One source admitted to the database port by a security group rule.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
pub struct IngressSource {
    /// `eks_cluster_sg` (a security group of an EKS cluster in the region),
    /// `rds_proxy_sg` (a group of an RDS Proxy in the region, whose own
    /// rules check who reaches it), `security_group` (any other group),
    /// `self` (the DB's own group), `cidr` (an IPv4/IPv6 range) or
    /// `prefix_list`.
    pub kind: String,
    /// The group id, CIDR or prefix list id.
    pub source: String,
    /// The DB security group holding the rule.
    pub security_group_id: String,
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    /// The rule admits every port.
    pub all_ports: bool,
    /// The rule admits every protocol (`-1`).
    pub all_protocols: bool,
    /// The source is `0.0.0.0/0` or `::/0`.
    pub open_to_world: bool,
    /// The EKS cluster owning the source group, when `kind` is `eks_cluster_sg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eks_cluster: Option<String>,
    /// Human description of the admitting rule.
    pub rule: String,
}

/// Network placement and reachability of one database.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct NetworkFacts {
    /// VPC of the DB subnet group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<SubnetFacts>>,
    /// Ids of subnets with a default route to an internet gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_subnets: Option<Vec<String>>,
    /// Every subnet is known and none is public.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_subnets_private: Option<bool>,
    /// EKS clusters of the account in this region.
    pub eks_clusters: Vec<String>,
    /// VPCs of those EKS clusters.
    pub eks_vpc_ids: Vec<String>,
    /// The DB's VPC is the VPC of an EKS cluster of this region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_eks_vpc: Option<bool>,
    pub security_group_ids: Vec<String>,
    /// Every source that can reach the DB port, with the rule admitting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<IngressSource>>,
    /// Ingress rules of the DB's groups that admit all ports or all protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broad_sg_rules: Option<Vec<String>>,
}

/// Per-region indexes, built once per snapshot.
pub struct RegionIndex<'a> {
    pub region: &'a Region,
    subnets: HashMap<&'a str, &'a Subnet>,
    explicit_tables: HashMap<&'a str, &'a RouteTable>,
    main_tables: HashMap<&'a str, &'a RouteTable>,
    security_groups: HashMap<&'a str, &'a SecurityGroup>,
    subnet_groups: HashMap<&'a str, &'a crate::snapshot::DbSubnetGroup>,
    pub instances: HashMap<&'a str, &'a crate::snapshot::DbInstance>,
    pub clusters: HashMap<&'a str, &'a crate::snapshot::DbCluster>,
    /// Security group id → EKS cluster name.
    eks_groups: HashMap<&'a str, &'a str>,
    /// Security groups of the region's RDS Proxies (whose own rules check
    /// who reaches them).
    proxy_groups: std::collections::HashSet<&'a str>,
    /// The snapshot's `collected_at`, in seconds: "now" for every date
    /// the facts compare ([`RegionIndex::at`]).
    pub now: Option<i64>,
    eks_names: Vec<String>,
    eks_vpcs: Vec<String>,
    subnet_facts: HashMap<&'a str, SubnetFacts>,
    /// Why the region's global clusters are unknown (DescribeGlobalClusters
    /// failed), if they are: see [`crate::vocab::OnFailure::FactLevel`].
    pub global_clusters_unknown: Option<String>,
    /// Why the region's DB subnet groups are unknown, if they are.
    pub subnet_groups_unknown: Option<String>,
    /// Every fact-level operation that failed in the region (or account
    /// wide), by name, with why: the facts depending on it say so.
    fact_gaps: std::collections::BTreeMap<&'static str, String>,
}

/// The "cluster" name of EKS security groups given in the config.
pub const CONFIGURED_EKS: &str = "(configured in dbaudit.toml)";

impl<'a> RegionIndex<'a> {
    pub fn new(region: &'a Region) -> Self {
        let mut explicit_tables = HashMap::new();
        let mut main_tables = HashMap::new();
        for rt in &region.route_tables {
            for a in &rt.associations {
                if a.main {
                    main_tables.insert(rt.vpc_id.as_str(), rt);
                }
                if let Some(s) = &a.subnet_id {
                    explicit_tables.insert(s.as_str(), rt);
                }
            }
        }
        let mut eks_groups = HashMap::new();
        let mut eks_vpcs = BTreeSet::new();
        for e in &region.eks_clusters {
            for sg in e
                .cluster_security_group_id
                .iter()
                .chain(&e.additional_security_group_ids)
                .chain(&e.node_security_group_ids)
            {
                eks_groups.insert(sg.as_str(), e.name.as_str());
            }
            if let Some(v) = &e.vpc_id {
                eks_vpcs.insert(v.clone());
            }
        }
        let mut idx = RegionIndex {
            region,
            subnets: region.subnets.iter().map(|s| (s.id.as_str(), s)).collect(),
            explicit_tables,
            main_tables,
            security_groups: region
                .security_groups
                .iter()
                .map(|s| (s.id.as_str(), s))
                .collect(),
            subnet_groups: region
                .db_subnet_groups
                .iter()
                .map(|g| (g.name.as_str(), g))
                .collect(),
            instances: region
                .db_instances
                .iter()
                .map(|i| (i.id.as_str(), i))
                .collect(),
            clusters: region
                .db_clusters
                .iter()
                .map(|c| (c.id.as_str(), c))
                .collect(),
            eks_groups,
            proxy_groups: (region.db_proxies.iter().flatten())
                .flat_map(|p| p.security_group_ids.iter().map(String::as_str))
                .collect(),
            now: None,
            eks_names: region.eks_clusters.iter().map(|e| e.name.clone()).collect(),
            eks_vpcs: eks_vpcs.into_iter().collect(),
            subnet_facts: HashMap::new(),
            global_clusters_unknown: None,
            subnet_groups_unknown: None,
            fact_gaps: Default::default(),
        };
        let facts: Vec<(&'a str, SubnetFacts)> = region
            .subnets
            .iter()
            .filter_map(|s| idx.classify_subnet(s).map(|f| (s.id.as_str(), f)))
            .collect();
        idx.subnet_facts = facts.into_iter().collect();
        idx
    }

    /// Why a fact-level operation's facts are unknown in this region: its
    /// failure, if it failed.
    pub fn fact_gap(&self, operation: crate::vocab::Operation) -> Option<&str> {
        self.fact_gaps.get(operation.name).map(String::as_str)
    }

    /// Sets "now" for the date facts: the snapshot's `collected_at`.
    pub fn at(mut self, collected_at: &str) -> Self {
        self.now = super::lifecycle::epoch(collected_at);
        self
    }

    /// Takes note of the account's gaps that the facts account for
    /// themselves ([`crate::vocab::OnFailure::FactLevel`]).
    pub fn with_gaps(mut self, gaps: &[crate::snapshot::Gap]) -> Self {
        let region = self.region.name.as_str();
        let failed = |operation: crate::vocab::Operation| {
            gaps.iter()
                .find(|g| {
                    g.service == operation.service
                        && g.operation == operation.name
                        && g.region.as_deref().is_none_or(|r| r == region)
                })
                .map(|g| format!("{} failed with {}: {}", operation.name, g.code, g.message))
        };
        self.global_clusters_unknown = failed(op::DESCRIBE_GLOBAL_CLUSTERS);
        self.subnet_groups_unknown = failed(op::DESCRIBE_DB_SUBNET_GROUPS);
        for o in crate::vocab::OPERATIONS {
            if o.on_failure == crate::vocab::OnFailure::FactLevel
                && let Some(why) = failed(*o)
            {
                self.fact_gaps.insert(o.name, why);
            }
        }
        self
    }

    /// Public-ness of a subnet from its effective route table. `None` when the
    /// table cannot be determined (no explicit association and no main table).
    fn classify_subnet(&self, subnet: &'a Subnet) -> Option<SubnetFacts> {
        let rt = self
            .explicit_tables
            .get(subnet.id.as_str())
            .or_else(|| self.main_tables.get(subnet.vpc_id.as_str()))?;
        let igw_default = rt.routes.iter().find(|r| {
            r.target.kind == "igw"
                && r.state.as_deref() != Some("blackhole")
                && (r.destination_cidr.as_deref() == Some("0.0.0.0/0")
                    || r.destination_ipv6_cidr.as_deref() == Some("::/0"))
        });
        let (public, evidence) = match igw_default {
            Some(r) => (
                true,
                format!(
                    "{}: {} -> {}",
                    rt.id,
                    r.destination_cidr
                        .as_deref()
                        .or(r.destination_ipv6_cidr.as_deref())
                        .unwrap_or_default(),
                    r.target.id
                ),
            ),
            None => (
                false,
                format!("{}: no default route to an internet gateway", rt.id),
            ),
        };
        Some(SubnetFacts {
            id: subnet.id.clone(),
            availability_zone: subnet.availability_zone.clone(),
            public,
            route_table_id: rt.id.clone(),
            evidence,
        })
    }

    pub fn eks_clusters(&self) -> &[String] {
        &self.eks_names
    }

    /// The EKS cluster's security groups and VPCs named in the config
    /// (`eks_cluster_security_groups`, `eks_vpc_ids`), for an account whose
    /// EKS clusters the audit role cannot list, or that lives elsewhere.
    pub fn with_configured_eks(mut self, groups: &'a [String], vpcs: &[String]) -> Self {
        for g in groups {
            self.eks_groups.insert(g.as_str(), CONFIGURED_EKS);
        }
        if !groups.is_empty() && !self.eks_names.iter().any(|n| n == CONFIGURED_EKS) {
            self.eks_names.push(CONFIGURED_EKS.to_string());
        }
        for v in vpcs {
            if !self.eks_vpcs.contains(v) {
                self.eks_vpcs.push(v.clone());
            }
        }
        self
    }

    /// Whether anything says which security groups and VPC are the EKS
    /// cluster's in this region: a cluster found, or the config.
    pub fn eks_known(&self) -> bool {
        !self.eks_groups.is_empty() || !self.eks_vpcs.is_empty()
    }

    /// Facts for a DB with this subnet group, security groups and port.
    /// Unknown inputs leave the dependent facts out and say why in `unknown`.
    pub fn network(
        &self,
        subnet_group: Option<&str>,
        sg_ids: &[String],
        port: i64,
        unknown: &mut Vec<String>,
    ) -> NetworkFacts {
        let placement = match subnet_group.map(|g| (g, self.subnet_groups.get(g))) {
            None => {
                unknown.push("the DB has no DB subnet group".to_string());
                None
            }
            Some((g, None)) => {
                unknown.push(match &self.subnet_groups_unknown {
                    Some(why) => format!("DB subnet group `{g}` is unknown: {why}"),
                    None => format!("DB subnet group `{g}` is not in the snapshot"),
                });
                None
            }
            Some((_, Some(group))) => Some((group.vpc_id.as_str(), &group.subnet_ids[..])),
        };
        self.network_in(placement, sg_ids, port, unknown)
    }

    /// Facts for something placed in these VPC and subnets (an RDS Proxy
    /// names them itself; a DB through its subnet group), behind these
    /// security groups, listening on `port`.
    pub fn network_in(
        &self,
        placement: Option<(&str, &[String])>,
        sg_ids: &[String],
        port: i64,
        unknown: &mut Vec<String>,
    ) -> NetworkFacts {
        let mut n = NetworkFacts {
            eks_clusters: self.eks_names.clone(),
            eks_vpc_ids: self.eks_vpcs.clone(),
            security_group_ids: sg_ids.to_vec(),
            ..NetworkFacts::default()
        };
        match placement {
            None => {}
            Some((vpc_id, subnet_ids)) => {
                n.vpc_id = Some(vpc_id.to_string());
                n.in_eks_vpc = Some(self.eks_vpcs.iter().any(|v| v == vpc_id));
                let mut subnets = Vec::new();
                let mut complete = true;
                for id in subnet_ids {
                    match self.subnet_facts.get(id.as_str()) {
                        Some(f) => subnets.push(f.clone()),
                        None => {
                            complete = false;
                            if self.subnets.contains_key(id.as_str()) {
                                unknown.push(format!("no route table applies to subnet `{id}`"));
                            } else {
                                unknown.push(format!("subnet `{id}` is not in the snapshot"));
                            }
                        }
                    }
                }
                if complete {
                    let public: Vec<String> = subnets
                        .iter()
                        .filter(|s| s.public)
                        .map(|s| s.id.clone())
                        .collect();
                    n.all_subnets_private = Some(public.is_empty() && !subnets.is_empty());
                    n.public_subnets = Some(public);
                    n.subnets = Some(subnets);
                }
            }
        }
        let mut ingress = Vec::new();
        let mut broad = Vec::new();
        let mut complete = true;
        for id in sg_ids {
            let Some(sg) = self.security_groups.get(id.as_str()) else {
                complete = false;
                unknown.push(format!("security group `{id}` is not in the snapshot"));
                continue;
            };
            for rule in &sg.ingress {
                let shape = RuleShape::of(rule);
                if shape.all_ports || shape.all_protocols {
                    broad.push(describe(sg, rule));
                }
                if shape.reaches(port) {
                    ingress.extend(self.sources(sg, rule, &shape));
                }
            }
        }
        if complete {
            ingress.sort();
            ingress.dedup();
            n.ingress = Some(ingress);
            n.broad_sg_rules = Some(broad);
        }
        n
    }

    fn sources(&self, sg: &SecurityGroup, rule: &SgRule, shape: &RuleShape) -> Vec<IngressSource> {
        let text = describe(sg, rule);
        let make = |kind: &str, source: &str, world: bool, eks: Option<&str>| IngressSource {
            kind: kind.to_string(),
            source: source.to_string(),
            security_group_id: sg.id.clone(),
            protocol: rule.protocol.clone(),
            from_port: shape.from,
            to_port: shape.to,
            all_ports: shape.all_ports,
            all_protocols: shape.all_protocols,
            open_to_world: world,
            eks_cluster: eks.map(str::to_string),
            rule: text.clone(),
        };
        let mut out = Vec::new();
        for c in &rule.ipv4_ranges {
            out.push(make("cidr", c, c == "0.0.0.0/0", None));
        }
        for c in &rule.ipv6_ranges {
            out.push(make("cidr", c, c == "::/0", None));
        }
        for p in &rule.prefix_list_ids {
            out.push(make("prefix_list", p, false, None));
        }
        for r in &rule.security_groups {
            let foreign = r.user_id.as_deref().is_some_and(|u| u != sg.owner_id);
            let kind = match self.eks_groups.get(r.group_id.as_str()) {
                Some(_) if !foreign => "eks_cluster_sg",
                _ if r.group_id == sg.id => "self",
                _ if !foreign && self.proxy_groups.contains(r.group_id.as_str()) => "rds_proxy_sg",
                _ => "security_group",
            };
            let source = match (&r.user_id, foreign) {
                (Some(u), true) => format!("{u}/{}", r.group_id),
                _ => r.group_id.clone(),
            };
            let eks = if kind == "eks_cluster_sg" {
                self.eks_groups.get(r.group_id.as_str()).copied()
            } else {
                None
            };
            out.push(make(kind, &source, false, eks));
        }
        out
    }
}

struct RuleShape {
    all_protocols: bool,
    all_ports: bool,
    tcp: bool,
    from: i64,
    to: i64,
}

impl RuleShape {
    fn of(rule: &SgRule) -> RuleShape {
        let p = rule.protocol.to_ascii_lowercase();
        let all_protocols = p == "-1" || p == "all";
        let from = rule.from_port.map(i64::from).unwrap_or(0);
        let to = rule.to_port.map(i64::from).unwrap_or(65535);
        // EC2 reports -1 ports for "all" on some protocols.
        let (from, to) = if from < 0 || to < 0 {
            (0, 65535)
        } else {
            (from, to)
        };
        RuleShape {
            all_protocols,
            all_ports: all_protocols || (from == 0 && to == 65535),
            tcp: p == "tcp" || p == "6",
            from: if all_protocols { 0 } else { from },
            to: if all_protocols { 65535 } else { to },
        }
    }

    fn reaches(&self, port: i64) -> bool {
        self.all_protocols || (self.tcp && self.from <= port && port <= self.to)
    }
}

fn describe(sg: &SecurityGroup, rule: &SgRule) -> String {
    let ports = match (rule.protocol.as_str(), rule.from_port, rule.to_port) {
        ("-1", _, _) => "all traffic".to_string(),
        (p, Some(a), Some(b)) if a == b => format!("{p} {a}"),
        (p, Some(a), Some(b)) => format!("{p} {a}-{b}"),
        (p, _, _) => format!("{p} all ports"),
    };
    let mut from: Vec<String> = Vec::new();
    from.extend(rule.ipv4_ranges.iter().cloned());
    from.extend(rule.ipv6_ranges.iter().cloned());
    from.extend(rule.prefix_list_ids.iter().cloned());
    from.extend(rule.security_groups.iter().map(|r| r.group_id.clone()));
    format!("{} ingress {ports} from {}", sg.id, from.join(", "))
}

/// Default port of an engine, for snapshots without one.
pub fn default_port(engine: &str) -> i64 {
    match engine {
        e if e.contains("postgres") => 5432,
        e if e.contains("mysql") || e.contains("mariadb") || e == "aurora" => 3306,
        e if e.starts_with("sqlserver") => 1433,
        e if e.starts_with("oracle") => 1521,
        _ => 5432,
    }
}
