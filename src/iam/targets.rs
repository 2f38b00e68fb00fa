//! The resources IAM questions are asked about, as AWS would see them.
//!
//! An action applies to certain resource types (the catalogue says which).
//! For the types the snapshot lists — DB clusters, DB instances, DB subnet
//! groups, global clusters, security groups — the questions are asked about
//! each existing resource, with its region and its tags as request context
//! (`aws:ResourceTag/…`, `rds:cluster-tag/…`, `rds:db-tag/…`,
//! `ec2:ResourceTag/…`; a key the resource does not carry is *absent*).
//! Everything else — a resource that does not exist yet (create actions), a
//! type the snapshot does not list (parameter groups, snapshots…), or a type
//! whose listing failed in a region — is asked as "some resource of this type
//! in this region" ([`Target::unlisted`]), and actions that take no resource
//! are asked about `*`.

use std::collections::BTreeMap;

use super::catalogue::{Action, Catalogue};
use super::eval::Context;
use crate::snapshot::{Account, Tags};
use crate::vocab::{Operation, op};

/// Resource types (ARN type names) the snapshot lists, with the operation
/// that lists them (whose service is the type's service).
pub const LISTED_TYPES: [(&str, Operation); 5] = [
    ("cluster", op::DESCRIBE_DB_CLUSTERS),
    ("db", op::DESCRIBE_DB_INSTANCES),
    ("subgrp", op::DESCRIBE_DB_SUBNET_GROUPS),
    ("global-cluster", op::DESCRIBE_GLOBAL_CLUSTERS),
    ("security-group", op::DESCRIBE_SECURITY_GROUPS),
];

/// What a create action creates, by the noun after its verb (`CreateDBCluster`,
/// `RestoreDBClusterFromSnapshot` → `cluster`). The new resource does not
/// exist yet, so the question is about a new one, not the listed ones.
const CREATED: [(&str, &str, &str); 5] = [
    ("rds", "DBCluster", "cluster"),
    ("rds", "DBInstance", "db"),
    ("rds", "DBSubnetGroup", "subgrp"),
    ("rds", "GlobalCluster", "global-cluster"),
    ("ec2", "SecurityGroup", "security-group"),
];

/// One resource (or one "some resource of this type") a question is about.
#[derive(Debug, Clone)]
pub struct Target {
    pub arn: String,
    pub service: &'static str,
    pub resource_type: String,
    /// Empty for resources without a region (global clusters).
    pub region: String,
    /// An existing resource of the snapshot, or a new/unlisted one whose ARN
    /// has `*` where the name would be.
    pub existing: bool,
    /// The request context the resource contributes.
    pub context: Context,
    /// Where the ARN's resource part (after the fifth colon) starts.
    pub resource_part: usize,
}

/// Byte offset of an ARN's sixth part (the whole string when it has fewer).
fn resource_part(arn: &str) -> usize {
    arn.match_indices(':').nth(4).map_or(0, |(i, _)| i + 1)
}

impl Target {
    /// The ARN's resource part (`cluster:prod-orders`).
    pub fn resource(&self) -> &str {
        &self.arn[self.resource_part..]
    }
}

impl Target {
    /// "Some resource of this type in this region": the ARN format with the
    /// account and region filled in and `*` for every other part.
    pub fn unlisted(
        service: &'static str,
        resource_type: &str,
        region: &str,
        account: &Account,
    ) -> Option<Target> {
        let format = Catalogue::get().arn_format(service, resource_type)?;
        let has_region = format.contains("${Region}");
        let arn = fill_format(
            format,
            &account.partition,
            if has_region { region } else { "" },
            &account.account_id,
        );
        let mut context = Context::default();
        context.set("aws:ResourceAccount", &account.account_id);
        if has_region {
            context.set("aws:RequestedRegion", region);
            if service == "ec2" {
                context.set("ec2:Region", region);
            }
        }
        Some(Target {
            resource_part: resource_part(&arn),
            arn,
            service,
            resource_type: resource_type.to_string(),
            region: if has_region {
                region.to_string()
            } else {
                String::new()
            },
            existing: false,
            context,
        })
    }
}

/// `arn:${Partition}:rds:${Region}:${Account}:cluster:${Name}` with the
/// partition, region and account filled in and `*` for the rest.
fn fill_format(format: &str, partition: &str, region: &str, account: &str) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            rest = "";
            break;
        };
        out.push_str(match &rest[i + 2..i + j] {
            "Partition" => partition,
            "Region" => region,
            "Account" => account,
            _ => "*",
        });
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// Every resource of an account IAM questions can be about, by type.
pub struct AccountTargets {
    /// (service, type) → existing resources.
    existing: BTreeMap<(&'static str, &'static str), Vec<Target>>,
    /// (service, type) → regions whose listing of that type failed.
    incomplete: BTreeMap<(&'static str, &'static str), Vec<String>>,
    /// The audited regions.
    pub regions: Vec<String>,
    unlisted: BTreeMap<(String, String), Vec<Target>>,
}

/// Tags as condition keys under each prefix (lower-case, as contexts
/// store keys), every other key of the prefix absent.
fn tag_context(ctx: &mut Context, tags: &Tags, prefixes: &[&'static str]) {
    for p in prefixes {
        for (k, v) in tags {
            let mut key = String::with_capacity(p.len() + k.len());
            key.push_str(p);
            key.extend(k.chars().map(|c| c.to_ascii_lowercase()));
            ctx.values.entry(key).or_default().push(v.clone());
        }
        ctx.complete_static(p);
    }
}

impl AccountTargets {
    pub fn new(account: &Account) -> AccountTargets {
        let acct = &account.account_id;
        let part = &account.partition;
        let mut existing: BTreeMap<(&'static str, &'static str), Vec<Target>> = BTreeMap::new();
        let regional = |region: &str| {
            let mut c = Context::default();
            c.set("aws:ResourceAccount", acct);
            c.set("aws:RequestedRegion", region);
            c
        };
        for r in &account.regions {
            let region = r.name.as_str();
            for c in &r.db_clusters {
                let mut ctx = regional(region);
                tag_context(&mut ctx, &c.tags, &["aws:resourcetag/", "rds:cluster-tag/"]);
                existing
                    .entry(("rds", "cluster"))
                    .or_default()
                    .push(target(&c.arn, "rds", "cluster", region, ctx));
            }
            for i in &r.db_instances {
                let mut ctx = regional(region);
                tag_context(&mut ctx, &i.tags, &["aws:resourcetag/", "rds:db-tag/"]);
                existing
                    .entry(("rds", "db"))
                    .or_default()
                    .push(target(&i.arn, "rds", "db", region, ctx));
            }
            for g in &r.db_subnet_groups {
                // Subnet group tags are not collected: tag keys stay unknown.
                let arn = g
                    .arn
                    .clone()
                    .unwrap_or_else(|| format!("arn:{part}:rds:{region}:{acct}:subgrp:{}", g.name));
                existing.entry(("rds", "subgrp")).or_default().push(target(
                    &arn,
                    "rds",
                    "subgrp",
                    region,
                    regional(region),
                ));
            }
            for g in &r.global_clusters {
                let arn = g
                    .arn
                    .clone()
                    .unwrap_or_else(|| format!("arn:{part}:rds::{acct}:global-cluster:{}", g.id));
                let mut ctx = Context::default();
                ctx.set("aws:ResourceAccount", acct);
                let t = target(&arn, "rds", "global-cluster", "", ctx);
                let list = existing.entry(("rds", "global-cluster")).or_default();
                // Listed by every region the cluster spans: keep one.
                if !list.iter().any(|x| x.arn == t.arn) {
                    list.push(t);
                }
            }
            for sg in &r.security_groups {
                let mut ctx = regional(region);
                ctx.set("ec2:Region", region);
                ctx.set("ec2:SecurityGroupID", &sg.id);
                ctx.set(
                    "ec2:Vpc",
                    &format!("arn:{part}:ec2:{region}:{acct}:vpc/{}", sg.vpc_id),
                );
                tag_context(
                    &mut ctx,
                    &sg.tags,
                    &["aws:resourcetag/", "ec2:resourcetag/"],
                );
                let arn = format!("arn:{part}:ec2:{region}:{acct}:security-group/{}", sg.id);
                existing
                    .entry(("ec2", "security-group"))
                    .or_default()
                    .push(target(&arn, "ec2", "security-group", region, ctx));
            }
        }
        let mut incomplete: BTreeMap<(&'static str, &'static str), Vec<String>> = BTreeMap::new();
        for g in &account.gaps {
            for (ty, op) in LISTED_TYPES {
                let svc = op.service.as_str();
                if g.service == op.service && g.operation == op.name {
                    let regions = match &g.region {
                        Some(r) => vec![r.clone()],
                        None => account.regions.iter().map(|r| r.name.clone()).collect(),
                    };
                    incomplete.entry((svc, ty)).or_default().extend(regions);
                }
            }
        }
        let mut regions: Vec<String> = account.regions.iter().map(|r| r.name.clone()).collect();
        regions.sort();
        regions.dedup();
        let mut unlisted = BTreeMap::new();
        for svc in ["rds", "ec2"] {
            let Some(s) = Catalogue::get().services.get(svc) else {
                continue;
            };
            for ty in s.resources.keys() {
                let list: Vec<Target> = regions
                    .iter()
                    .map(String::as_str)
                    .chain(regions.is_empty().then_some(""))
                    .filter_map(|r| Target::unlisted(svc, ty, r, account))
                    .collect();
                let mut list = list;
                list.dedup_by(|a, b| a.arn == b.arn);
                unlisted.insert((svc.to_string(), ty.clone()), list);
            }
        }
        AccountTargets {
            existing,
            incomplete,
            regions,
            unlisted,
        }
    }

    /// Every existing target of every listed type (for grouping).
    pub fn all_existing(&self) -> impl Iterator<Item = &Target> {
        self.existing.values().flatten()
    }

    pub fn existing(&self, service: &str, ty: &str) -> &[Target] {
        self.existing
            .iter()
            .find(|((s, t), _)| *s == service && *t == ty)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }

    pub fn unlisted(&self, service: &str, ty: &str) -> &[Target] {
        self.unlisted
            .get(&(service.to_string(), ty.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// What an action is asked about: the existing resources of the listed
    /// types it applies to (and, where a listing failed, some resource of
    /// that type in that region); for a create action, a new resource in
    /// each audited region; for an action on types the snapshot does not
    /// list, some resource of its first type in each region; `None` for an
    /// action that only takes `*`.
    pub fn for_action<'t>(&'t self, action: &Action) -> Option<ActionTargets<'t>> {
        let types = &action.info.resources;
        if types.is_empty() {
            return None;
        }
        if let Some(created) = created_type(action) {
            return Some(ActionTargets {
                existing: vec![],
                unlisted: self.unlisted(action.service, created).iter().collect(),
            });
        }
        let mut out = ActionTargets {
            existing: vec![],
            unlisted: vec![],
        };
        for ty in types {
            let Some((lt, op)) = LISTED_TYPES
                .iter()
                .find(|(t, op)| op.service.as_str() == action.service && t == ty)
            else {
                continue;
            };
            let svc = &op.service.as_str();
            let list = self.existing(svc, lt);
            if !list.is_empty() {
                out.existing.push(list);
            }
            if let Some(regions) = self.incomplete.get(&(*svc, *lt)) {
                out.unlisted.extend(
                    self.unlisted(svc, lt)
                        .iter()
                        .filter(|t| t.region.is_empty() || regions.contains(&t.region)),
                );
            }
        }
        if out.existing_count() == 0 && out.unlisted.is_empty() {
            let listed = types.iter().any(|ty| {
                LISTED_TYPES
                    .iter()
                    .any(|(t, op)| op.service.as_str() == action.service && t == ty)
            });
            if !listed {
                out.unlisted
                    .extend(self.unlisted(action.service, &types[0]).iter());
            }
        }
        Some(out)
    }
}

/// The targets of one action: lists of existing resources (one per listed
/// type), and new or unlisted ones.
pub struct ActionTargets<'t> {
    pub existing: Vec<&'t [Target]>,
    pub unlisted: Vec<&'t Target>,
}

impl ActionTargets<'_> {
    pub fn existing_count(&self) -> usize {
        self.existing.iter().map(|l| l.len()).sum()
    }
}

fn target(arn: &str, service: &'static str, ty: &str, region: &str, context: Context) -> Target {
    Target {
        resource_part: resource_part(arn),
        arn: arn.to_string(),
        service,
        resource_type: ty.to_string(),
        region: region.to_string(),
        existing: true,
        context,
    }
}

/// The listed type a create action creates, if it creates one.
fn created_type(action: &Action) -> Option<&'static str> {
    let noun = ["Create", "Restore", "Copy"]
        .iter()
        .find_map(|v| action.name.strip_prefix(v))?;
    // RestoreDBClusterFromSnapshot, RestoreDBInstanceToPointInTime,
    // CreateDBInstanceReadReplica: the noun is what comes first.
    let noun = ["From", "To", "ReadReplica"]
        .iter()
        .filter_map(|s| noun.find(s).filter(|i| *i > 0))
        .min()
        .map_or(noun, |i| &noun[..i]);
    CREATED
        .iter()
        .find(|(s, n, _)| *s == action.service && *n == noun)
        .map(|(_, _, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(a: &str) -> Option<&'static str> {
        created_type(&Catalogue::get().action(a).unwrap())
    }

    #[test]
    fn create_actions_create_their_noun() {
        assert_eq!(created("rds:CreateDBCluster"), Some("cluster"));
        assert_eq!(created("rds:RestoreDBClusterFromSnapshot"), Some("cluster"));
        assert_eq!(created("rds:CreateDBInstanceReadReplica"), Some("db"));
        assert_eq!(created("ec2:CreateSecurityGroup"), Some("security-group"));
        // A snapshot of an existing cluster is asked about the cluster.
        assert_eq!(created("rds:CreateDBClusterSnapshot"), None);
        assert_eq!(created("rds:ModifyDBCluster"), None);
    }

    #[test]
    fn formats_fill_account_and_region() {
        assert_eq!(
            fill_format(
                "arn:${Partition}:rds:${Region}:${Account}:cluster-pg:${ClusterParameterGroupName}",
                "aws",
                "eu-west-1",
                "222222222222"
            ),
            "arn:aws:rds:eu-west-1:222222222222:cluster-pg:*"
        );
    }
}
