//! A plan's changes applied to the live snapshot: what will be true after
//! the apply. Each resource type the rules read has one applier, which
//! reads the change's `after` (or removes the resource for a delete) and
//! records what the plan leaves unknown (`after_unknown`) instead of
//! guessing it: an unknown attribute becomes an absent fact, which the
//! rules report as `unknown` (docs/plan.md).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::format::{Action, PlanJson, ResourceChange};
use crate::facts::ResourceKind;
use crate::snapshot::{
    Account, DbClusterMember, DbProxy, DbSubnetGroup, IamGroup, IamRole, IamUser, InlinePolicy,
    InternetGateway, ManagedPolicy, Region, Route, RouteTableAssociation, RouteTarget,
    ServerlessV2Scaling, SgReference, SgRule, Snapshot, Subnet, Tags,
};

/// How dbaudit treats a resource change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// Applied to the predicted snapshot.
    Applied,
    /// Nothing to apply (`no-op`, a data source read).
    NoChange,
    /// A type no rule reads: listed, not applied.
    NotRead,
    /// A type whose changes some rule's facts depend on, which dbaudit does
    /// not predict (the reason): the gate cannot trust the prediction.
    NotPredicted(String),
}

/// One resource change of the plan, as dbaudit understood it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub address: String,
    pub tf_type: String,
    pub action: Action,
    pub treatment: Treatment,
    /// The resource it is in the snapshot, when it is one a rule is about.
    pub resource: Option<(ResourceKind, String)>,
    /// Whether the resource is new (no live counterpart): its findings get
    /// fingerprints from its Terraform address.
    pub new: bool,
    /// Attributes (`name` or `name.sub`) known only after apply that a fact
    /// reads and that could not be resolved from the snapshot or the plan.
    pub unknown: Vec<String>,
    /// Top-level attributes whose value the change sets or alters (every
    /// attribute of a create), for the line a finding points at.
    pub changed: Vec<String>,
    /// Why something could not be applied as planned.
    pub notes: Vec<String>,
    /// The security group, subnet group, subnet or route table the change
    /// is about, for the databases it reaches.
    pub touches: Option<String>,
    /// The region the change applies to.
    pub region: String,
    /// Module call names from the root (`module.a["k"].module.b` → a, b).
    pub module_path: Vec<String>,
    /// `TYPE.NAME` inside its module.
    pub local_address: String,
}

/// The predicted state and what each change did.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub snapshot: Snapshot,
    /// Index of the plan's account in `snapshot.accounts`.
    pub account: usize,
    pub region: String,
    pub changes: Vec<Planned>,
    /// Resolutions made (an unknown value read from the prior state, a data
    /// source or another planned resource), for the report.
    pub resolved: Vec<String>,
}

/// Which account and region the plan is for.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Types the built-in rules read whose changes dbaudit does not apply, with
/// what they would change. A change to one makes the gate incomplete.
pub const NOT_PREDICTED_TYPES: &[(&str, &str)] = &[
    (
        "aws_secretsmanager_secret_rotation",
        "the rotation of master user secrets (db.master.secret-rotation)",
    ),
    (
        "aws_rds_global_cluster",
        "cross-region replicas (db.ha.cross-region-replica)",
    ),
    (
        "aws_db_cluster_snapshot",
        "manual cluster snapshots (db.snapshots.*)",
    ),
    (
        "aws_db_proxy_default_target_group",
        "a proxy's targets (db.proxy.*)",
    ),
    ("aws_db_proxy_target", "a proxy's targets (db.proxy.*)"),
    (
        "aws_eks_pod_identity_association",
        "which roles pods assume (iam.app.*)",
    ),
    ("aws_iam_openid_connect_provider", "IRSA trust (iam.irsa.*)"),
    (
        "aws_organizations_policy",
        "service control policies (iam.*)",
    ),
    (
        "aws_organizations_policy_attachment",
        "service control policies (iam.*)",
    ),
    (
        "aws_default_security_group",
        "the VPC's default security group",
    ),
    ("aws_default_route_table", "the VPC's main route table"),
    (
        "aws_main_route_table_association",
        "the VPC's main route table",
    ),
];

/// The types dbaudit applies.
pub const APPLIED_TYPES: &[&str] = &[
    "aws_db_instance",
    "aws_db_proxy",
    "aws_db_subnet_group",
    "aws_eks_cluster",
    "aws_iam_group",
    "aws_iam_group_membership",
    "aws_iam_group_policy",
    "aws_iam_group_policy_attachment",
    "aws_iam_policy",
    "aws_iam_policy_attachment",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_iam_user",
    "aws_iam_user_group_membership",
    "aws_iam_user_policy",
    "aws_iam_user_policy_attachment",
    "aws_internet_gateway",
    "aws_nat_gateway",
    "aws_rds_cluster",
    "aws_rds_cluster_instance",
    "aws_rds_cluster_parameter_group",
    "aws_route",
    "aws_route_table",
    "aws_route_table_association",
    "aws_security_group",
    "aws_security_group_rule",
    "aws_subnet",
    "aws_vpc_security_group_ingress_rule",
];

/// Applies every change of `plan` to a copy of `snapshot`.
pub fn predict(
    snapshot: &Snapshot,
    plan: &PlanJson,
    target: &Target,
) -> Result<Prediction, crate::error::Error> {
    predict_without(snapshot, plan, target, &BTreeSet::new())
}

/// As [`predict`], leaving out the changes at the indices of `skip` (their
/// resources keep their live state): what the attribution of findings to
/// changes compares.
pub fn predict_without(
    snapshot: &Snapshot,
    plan: &PlanJson,
    target: &Target,
    skip: &BTreeSet<usize>,
) -> Result<Prediction, crate::error::Error> {
    let account = choose_account(snapshot, plan, target)?;
    let region = choose_region(&snapshot.accounts[account], plan, target)?;
    let mut predicted = snapshot.clone();
    let mut ctx = Ctx {
        plan,
        data: plan.data_sources(),
        prior: prior_values(plan),
        region: region.clone(),
        resolved: Vec::new(),
        ids: BTreeMap::new(),
    };
    // Ids of planned resources first: a new cluster's instances name it
    // through a reference that is unknown in the plan.
    for rc in &plan.resource_changes {
        if let Some(id) = planned_id(rc) {
            ctx.ids.insert(rc.address.clone(), id);
        }
    }
    let mut changes = Vec::new();
    // Apply in an order where containers exist before their contents.
    let mut order: Vec<usize> = (0..plan.resource_changes.len()).collect();
    order.sort_by_key(|&i| rank(&plan.resource_changes[i].type_));
    let mut planned: Vec<Option<Planned>> = vec![None; plan.resource_changes.len()];
    for i in order {
        let rc = &plan.resource_changes[i];
        let mut p = describe(rc);
        if rc.mode == "data" || p.action == Action::NoOp || p.action == Action::Other {
            p.treatment = Treatment::NoChange;
        } else if let Some((_, why)) = NOT_PREDICTED_TYPES.iter().find(|(t, _)| *t == rc.type_) {
            p.treatment =
                Treatment::NotPredicted(format!("changes {why}, which dbaudit does not predict"));
        } else if !APPLIED_TYPES.contains(&rc.type_.as_str()) {
            p.treatment = Treatment::NotRead;
        } else if !predicted.accounts[account]
            .regions
            .iter()
            .any(|r| Some(&r.name) == plan.region_of(rc).as_ref().or(Some(&region)))
        {
            p.treatment = Treatment::NotPredicted(format!(
                "its provider's region {} was not collected for account {}",
                plan.region_of(rc).unwrap_or_default(),
                predicted.accounts[account].name
            ));
        } else if !skip.contains(&i) {
            // A provider alias may name another region of the account.
            ctx.region = plan.region_of(rc).unwrap_or_else(|| region.clone());
            p.region = ctx.region.clone();
            let acct = &mut predicted.accounts[account];
            apply_one(&mut ctx, acct, rc, &mut p);
        } else {
            p.treatment = Treatment::Applied;
        }
        planned[i] = Some(p);
    }
    changes.extend(planned.into_iter().flatten());
    predicted.normalize();
    Ok(Prediction {
        snapshot: predicted,
        account,
        region,
        changes,
        resolved: ctx.resolved,
    })
}

/// Containers before contents: networks, groups and policies before the
/// databases and attachments that name them.
fn rank(t: &str) -> u8 {
    match t {
        "aws_subnet"
        | "aws_internet_gateway"
        | "aws_security_group"
        | "aws_iam_policy"
        | "aws_iam_role"
        | "aws_iam_user"
        | "aws_iam_group"
        | "aws_route_table"
        | "aws_rds_cluster_parameter_group" => 0,
        "aws_nat_gateway"
        | "aws_route"
        | "aws_route_table_association"
        | "aws_db_subnet_group"
        | "aws_security_group_rule"
        | "aws_vpc_security_group_ingress_rule"
        | "aws_eks_cluster" => 1,
        "aws_rds_cluster" | "aws_db_instance" => 2,
        "aws_rds_cluster_instance" | "aws_db_proxy" => 3,
        _ => 4,
    }
}

fn describe(rc: &ResourceChange) -> Planned {
    Planned {
        address: rc.address.clone(),
        tf_type: rc.type_.clone(),
        action: Action::of(&rc.change.actions),
        treatment: Treatment::Applied,
        resource: None,
        new: false,
        unknown: Vec::new(),
        changed: changed_attributes(rc),
        notes: Vec::new(),
        touches: None,
        region: String::new(),
        module_path: super::format::module_path(rc.module_address.as_deref().unwrap_or("")),
        local_address: format!("{}.{}", rc.type_, rc.name),
    }
}

/// Top-level attributes a change sets or alters.
fn changed_attributes(rc: &ResourceChange) -> Vec<String> {
    let empty = serde_json::Map::new();
    let after = rc.change.after.as_ref().and_then(Value::as_object);
    let before = rc.change.before.as_ref().and_then(Value::as_object);
    let unknown = rc
        .change
        .after_unknown
        .as_ref()
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = BTreeSet::new();
    if let Some(after) = after {
        for (k, v) in after {
            let b = before.and_then(|b| b.get(k));
            if b != Some(v) && !(v.is_null() && b.is_none()) {
                out.insert(k.clone());
            }
        }
    }
    for (k, v) in unknown {
        if has_true(v) {
            out.insert(k.clone());
        }
    }
    if let (Some(before), None) = (before, after) {
        out.extend(before.keys().cloned());
    }
    out.into_iter().collect()
}

fn has_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Array(a) => a.iter().any(has_true),
        Value::Object(o) => o.values().any(has_true),
        _ => false,
    }
}

/// The id a planned resource will have, when the plan knows it (a
/// `cluster_identifier`, `identifier` or `name` given in the configuration).
fn planned_id(rc: &ResourceChange) -> Option<String> {
    let after = rc.change.after.as_ref()?;
    let key = match rc.type_.as_str() {
        "aws_rds_cluster" => "cluster_identifier",
        "aws_rds_cluster_instance" | "aws_db_instance" => "identifier",
        "aws_db_subnet_group"
        | "aws_iam_policy"
        | "aws_iam_role"
        | "aws_db_proxy"
        | "aws_rds_cluster_parameter_group"
        | "aws_eks_cluster" => "name",
        _ => "id",
    };
    after
        .get(key)
        .and_then(Value::as_str)
        .or_else(|| after.get("id").and_then(Value::as_str))
        .map(str::to_string)
}

/// Values of managed resources in the prior state, by address.
fn prior_values(plan: &PlanJson) -> BTreeMap<String, Value> {
    plan.data_sources()
        .into_iter()
        .filter(|(a, _)| !a.contains("data."))
        .collect()
}

fn choose_account(
    snapshot: &Snapshot,
    plan: &PlanJson,
    target: &Target,
) -> Result<usize, crate::error::Error> {
    use crate::error::Error;
    if let Some(name) = &target.account {
        return snapshot
            .accounts
            .iter()
            .position(|a| &a.name == name || &a.account_id == name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--account {name}: the snapshot has no such account (it has: {})",
                    snapshot.account_names()
                ))
            });
    }
    if snapshot.accounts.len() == 1 {
        return Ok(0);
    }
    // The account whose resources the plan names: its id in ARNs, or the
    // ids of its groups, subnets, VPCs, databases and subnet groups.
    let mut named = BTreeSet::new();
    fn strings(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => {
                out.insert(s.clone());
            }
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    for r in &plan.resource_changes {
        for v in [&r.change.before, &r.change.after].into_iter().flatten() {
            strings(v, &mut named);
        }
    }
    let score = |a: &Account| -> usize {
        let arn = named
            .iter()
            .filter(|s| s.contains(&format!(":{}:", a.account_id)))
            .count();
        let ids = a
            .regions
            .iter()
            .flat_map(|r| {
                r.security_groups
                    .iter()
                    .map(|x| &x.id)
                    .chain(r.subnets.iter().map(|x| &x.id))
                    .chain(r.vpcs.iter().map(|x| &x.id))
                    .chain(r.db_clusters.iter().map(|x| &x.id))
                    .chain(r.db_instances.iter().map(|x| &x.id))
                    .chain(r.db_subnet_groups.iter().map(|x| &x.name))
            })
            .filter(|id| named.contains(*id))
            .count();
        let iam = a.iam.iter().flat_map(|i| {
            i.users
                .iter()
                .map(|x| &x.name)
                .chain(i.groups.iter().map(|x| &x.name))
                .chain(i.roles.iter().map(|x| &x.name))
        });
        arn + ids + iam.filter(|n| named.contains(*n)).count()
    };
    let scores: Vec<usize> = snapshot.accounts.iter().map(score).collect();
    let best = scores.iter().copied().max().unwrap_or(0);
    let hits: Vec<usize> = (0..scores.len())
        .filter(|&i| best > 0 && scores[i] == best)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        _ => Err(Error::Usage(format!(
            "which account does the plan change? Name it with --account (the snapshot has: {}); the plan's values name resources of {}",
            snapshot.account_names(),
            if hits.is_empty() {
                "none of them".to_string()
            } else {
                hits.iter()
                    .map(|&i| snapshot.accounts[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))),
    }
}

fn choose_region(
    account: &Account,
    plan: &PlanJson,
    target: &Target,
) -> Result<String, crate::error::Error> {
    use crate::error::Error;
    let region = target
        .region
        .clone()
        .or_else(|| plan.provider_region())
        .or_else(|| (account.regions.len() == 1).then(|| account.regions[0].name.clone()));
    let Some(region) = region else {
        return Err(Error::Usage(format!(
            "which region does the plan change? The aws provider's region is not a constant in the plan; name it with --region (account {} has: {})",
            account.name,
            account
                .regions
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if !account.regions.iter().any(|r| r.name == region) {
        return Err(Error::Usage(format!(
            "the plan is for region {region}, which the snapshot did not collect for account {} (it has: {}): collect that region first",
            account.name,
            account
                .regions
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(region)
}

struct Ctx<'p> {
    plan: &'p PlanJson,
    data: BTreeMap<String, Value>,
    prior: BTreeMap<String, Value>,
    region: String,
    resolved: Vec<String>,
    /// Planned resources' ids by address, where the plan knows them.
    ids: BTreeMap<String, String>,
}

/// A change's attributes, read with what the plan leaves unknown.
struct Attrs<'a> {
    after: &'a Value,
    unknown: &'a Value,
    rc: &'a ResourceChange,
    out: Vec<String>,
    notes: Vec<String>,
    resolved: Vec<String>,
}

impl<'a> Attrs<'a> {
    fn is_unknown(&self, key: &str) -> bool {
        self.unknown.get(key).is_some_and(has_true)
    }

    /// An attribute's value; `None` when absent, null or unknown (then
    /// recorded, unless `resolve` finds it).
    fn get(&mut self, ctx: &Ctx, key: &str) -> Option<Value> {
        if self.is_unknown(key) {
            if let Some(v) = resolve(ctx, self.rc, key) {
                self.resolved
                    .push(format!("{}.{key} = {v}", self.rc.address));
                return Some(v);
            }
            self.out.push(key.to_string());
            return None;
        }
        self.after.get(key).filter(|v| !v.is_null()).cloned()
    }

    fn str(&mut self, ctx: &Ctx, key: &str) -> Option<String> {
        self.get(ctx, key)
            .and_then(|v| v.as_str().map(str::to_string))
    }

    fn bool(&mut self, ctx: &Ctx, key: &str) -> Option<bool> {
        self.get(ctx, key).and_then(|v| v.as_bool())
    }

    fn int(&mut self, ctx: &Ctx, key: &str) -> Option<i32> {
        self.get(ctx, key)
            .and_then(|v| v.as_i64())
            .and_then(|n| i32::try_from(n).ok())
    }

    fn strs(&mut self, ctx: &Ctx, key: &str) -> Option<Vec<String>> {
        let v = self.get(ctx, key)?;
        Some(match v {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s],
            _ => Vec::new(),
        })
    }

    fn tags(&mut self, ctx: &Ctx) -> Tags {
        let key = if self.after.get("tags_all").is_some_and(|v| !v.is_null()) {
            "tags_all"
        } else {
            "tags"
        };
        self.get(ctx, key)
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                o.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nested blocks (`ingress`, `route`, `vpc_config`…) as objects; `None`
    /// when unknown.
    fn blocks(&mut self, ctx: &Ctx, key: &str) -> Option<Vec<Value>> {
        match self.get(ctx, key)? {
            Value::Array(a) => Some(a),
            Value::Object(o) => Some(vec![Value::Object(o)]),
            _ => Some(Vec::new()),
        }
    }
}

/// An unknown attribute that the configuration computes from exactly one
/// other resource's attribute, read from where that value is known: a
/// planned resource whose id the plan knows, the prior state, or a data
/// source. Lists are left unknown: the plan's configuration does not keep
/// the literal elements a list may mix with references.
fn resolve(ctx: &Ctx, rc: &ResourceChange, key: &str) -> Option<Value> {
    let (_, config) = ctx.plan.config_of(rc)?;
    let refs = config
        .expressions
        .get(key)?
        .get("references")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>();
    // Terraform lists `a.b.id` and `a.b`: keep the longest of each.
    let attr_refs: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|r| {
            !refs
                .iter()
                .any(|o| o.len() > r.len() && o.starts_with(&format!("{r}.")))
        })
        .collect();
    let [one] = attr_refs.as_slice() else {
        return None;
    };
    let (addr, attr) = one.rsplit_once('.')?;
    let prefix = rc
        .module_address
        .clone()
        .map(|m| format!("{m}."))
        .unwrap_or_default();
    let full = format!("{prefix}{addr}");
    if let Some(v) = ctx.data.get(&full).and_then(|v| v.get(attr)) {
        return Some(v.clone()).filter(|v| !v.is_null() && !v.is_array());
    }
    if matches!(attr, "id" | "name" | "cluster_identifier" | "identifier")
        && let Some(id) = ctx.ids.get(&full)
    {
        return Some(Value::String(id.clone()));
    }
    ctx.prior
        .get(&full)
        .and_then(|v| v.get(attr))
        .filter(|v| !v.is_null() && !v.is_array())
        .cloned()
}

fn region_mut<'a>(account: &'a mut Account, region: &str) -> &'a mut Region {
    account
        .regions
        .iter_mut()
        .find(|r| r.name == region)
        .expect("the region was checked when the plan was read")
}

fn placeholder(address: &str) -> String {
    format!("terraform:{address}")
}

fn apply_one(ctx: &mut Ctx, account: &mut Account, rc: &ResourceChange, p: &mut Planned) {
    let delete = p.action == Action::Delete;
    let before = rc.change.before.clone().unwrap_or(Value::Null);
    let null = Value::Null;
    let mut a = Attrs {
        after: rc.change.after.as_ref().unwrap_or(&null),
        unknown: rc.change.after_unknown.as_ref().unwrap_or(&null),
        rc,
        out: Vec::new(),
        notes: Vec::new(),
        resolved: Vec::new(),
    };
    let partition = account.partition.clone();
    let account_id = account.account_id.clone();
    let region_name = ctx.region.clone();
    // The resource's id before the change (for update, replace and delete).
    let before_id = |key: &str| {
        before
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| before.get("id").and_then(Value::as_str))
            .map(str::to_string)
    };
    match rc.type_.as_str() {
        "aws_rds_cluster" => {
            let region = region_mut(account, &region_name);
            let old = before_id("cluster_identifier");
            let live = old
                .as_ref()
                .and_then(|id| region.db_clusters.iter().position(|c| &c.id == id));
            if delete {
                if let Some(i) = live {
                    let c = region.db_clusters.remove(i);
                    region
                        .db_instances
                        .retain(|x| x.cluster_id.as_deref() != Some(&c.id));
                    p.resource = Some((ResourceKind::DbCluster, c.id));
                }
                return;
            }
            if live.is_none() && old.is_some() {
                a.notes.push(format!(
                    "the plan changes cluster {}, which the snapshot does not have: predicted as new",
                    old.as_deref().unwrap_or_default()
                ));
            }
            let mut c = live
                .map(|i| region.db_clusters[i].clone())
                .unwrap_or_default();
            let id = a
                .str(ctx, "cluster_identifier")
                .unwrap_or_else(|| placeholder(&rc.address));
            p.new = live.is_none();
            c.arn = a.str(ctx, "arn").unwrap_or_else(|| {
                if id.starts_with("terraform:") {
                    id.clone()
                } else {
                    format!("arn:{partition}:rds:{region_name}:{account_id}:cluster:{id}")
                }
            });
            c.id = id.clone();
            if let Some(r) = a.str(ctx, "cluster_resource_id") {
                c.resource_id = r;
            }
            c.engine = a.str(ctx, "engine").unwrap_or_default();
            c.engine_version = a
                .str(ctx, "engine_version_actual")
                .or_else(|| a.str(ctx, "engine_version"))
                .unwrap_or_default();
            c.engine_mode = a.str(ctx, "engine_mode");
            c.port = a.int(ctx, "port");
            c.endpoint = a.str(ctx, "endpoint").or(c.endpoint);
            c.iam_database_authentication_enabled =
                a.bool(ctx, "iam_database_authentication_enabled");
            c.storage_encrypted = a.bool(ctx, "storage_encrypted");
            c.kms_key_id = a.str(ctx, "kms_key_id");
            c.backup_retention_period = a.int(ctx, "backup_retention_period");
            c.deletion_protection = a.bool(ctx, "deletion_protection");
            // Aurora clusters: Multi-AZ when members span AZs; the
            // provider has no such argument (dbaudit's facts derive it).
            if p.new {
                c.multi_az = None;
            }
            c.global_cluster_id = a.str(ctx, "global_cluster_identifier");
            c.vpc_security_group_ids = a.strs(ctx, "vpc_security_group_ids").unwrap_or_default();
            c.db_subnet_group = a.str(ctx, "db_subnet_group_name");
            c.replication_source_identifier = a.str(ctx, "replication_source_identifier");
            c.tags = a.tags(ctx);
            c.master_username = a.str(ctx, "master_username");
            let managed = a.bool(ctx, "manage_master_user_password").unwrap_or(false);
            c.master_user_secret = match (managed, c.master_user_secret.take()) {
                (true, Some(s)) => Some(s),
                (true, None) => Some(crate::snapshot::MasterUserSecret {
                    secret_arn: placeholder(&format!("{}.master_user_secret", rc.address)),
                    ..Default::default()
                }),
                (false, _) => None,
            };
            c.enabled_cloudwatch_logs_exports = Some(
                a.strs(ctx, "enabled_cloudwatch_logs_exports")
                    .unwrap_or_default(),
            );
            c.parameter_group = a.str(ctx, "db_cluster_parameter_group_name");
            c.engine_lifecycle_support = a.str(ctx, "engine_lifecycle_support");
            c.serverless_v2 = a
                .blocks(ctx, "serverlessv2_scaling_configuration")
                .and_then(|b| b.into_iter().next())
                .and_then(|b| {
                    Some(ServerlessV2Scaling {
                        min_capacity: b.get("min_capacity")?.as_f64()?,
                        max_capacity: b.get("max_capacity")?.as_f64()?,
                    })
                });
            // A replacement under a new identifier leaves the old one.
            if let (Some(i), Some(old)) = (live, &old)
                && old != &id
            {
                region.db_clusters.remove(i);
                p.new = true;
            }
            // Members report their cluster's network.
            for i in region.db_instances.iter_mut() {
                if i.cluster_id.as_deref() == Some(&id) {
                    i.db_subnet_group = c.db_subnet_group.clone();
                    i.vpc_security_group_ids = c.vpc_security_group_ids.clone();
                    i.storage_encrypted = c.storage_encrypted;
                }
            }
            match region.db_clusters.iter_mut().find(|x| x.id == id) {
                Some(slot) => *slot = c,
                None => region.db_clusters.push(c),
            }
            p.resource = Some((ResourceKind::DbCluster, id));
        }
        "aws_rds_cluster_instance" | "aws_db_instance" => {
            let member = rc.type_ == "aws_rds_cluster_instance";
            let region = region_mut(account, &region_name);
            let old = before_id("identifier");
            let live = old
                .as_ref()
                .and_then(|id| region.db_instances.iter().position(|c| &c.id == id));
            if delete {
                if let Some(i) = live {
                    let inst = region.db_instances.remove(i);
                    for c in &mut region.db_clusters {
                        c.members.retain(|m| m.instance_id != inst.id);
                    }
                    p.resource = Some((ResourceKind::DbInstance, inst.id));
                }
                return;
            }
            let mut inst = live
                .map(|i| region.db_instances[i].clone())
                .unwrap_or_default();
            let before_ca = inst.ca_certificate_identifier.clone();
            p.new = live.is_none();
            let id = a
                .str(ctx, "identifier")
                .unwrap_or_else(|| placeholder(&rc.address));
            inst.arn = a.str(ctx, "arn").unwrap_or_else(|| {
                if id.starts_with("terraform:") {
                    id.clone()
                } else {
                    format!("arn:{partition}:rds:{region_name}:{account_id}:db:{id}")
                }
            });
            inst.id = id.clone();
            inst.instance_class = a.str(ctx, "instance_class").unwrap_or_default();
            inst.engine = a.str(ctx, "engine").unwrap_or_default();
            inst.availability_zone = a.str(ctx, "availability_zone");
            inst.publicly_accessible = a.bool(ctx, "publicly_accessible");
            inst.auto_minor_version_upgrade = a.bool(ctx, "auto_minor_version_upgrade");
            inst.performance_insights_enabled = a.bool(ctx, "performance_insights_enabled");
            inst.performance_insights_kms_key_id = a.str(ctx, "performance_insights_kms_key_id");
            // Without `ca_cert_identifier`, a new instance gets the CA the
            // account set as its default (`customer_override`), when the
            // snapshot shows one; else the CA is unknown until apply.
            let override_ca = region
                .certificates
                .iter()
                .flatten()
                .find(|c| c.customer_override)
                .map(|c| c.id.clone());
            inst.ca_certificate_identifier = match (a.is_unknown("ca_cert_identifier"), override_ca)
            {
                (true, Some(ca)) => {
                    a.resolved.push(format!(
                        "{}.ca_cert_identifier = {ca} (the account's default CA)",
                        rc.address
                    ));
                    Some(ca)
                }
                _ => a.str(ctx, "ca_cert_identifier"),
            };
            // A new or re-certified instance gets a new server certificate,
            // which expires no later than its CA: the CA's expiry from the
            // snapshot's CA list bounds it.
            if p.new || inst.ca_certificate_identifier != before_ca {
                inst.certificate_valid_till =
                    inst.ca_certificate_identifier.as_ref().and_then(|ca| {
                        region
                            .certificates
                            .iter()
                            .flatten()
                            .find(|c| &c.id == ca)
                            .and_then(|c| c.valid_till.clone())
                    });
            }
            inst.tags = a.tags(ctx);
            if member {
                inst.cluster_id = a.str(ctx, "cluster_identifier");
                // The member's settings are the cluster's for these.
                inst.iam_database_authentication_enabled = None;
                if let Some(c) = inst
                    .cluster_id
                    .as_ref()
                    .and_then(|cid| region.db_clusters.iter().find(|c| &c.id == cid))
                {
                    inst.db_subnet_group = c.db_subnet_group.clone();
                    inst.vpc_security_group_ids = c.vpc_security_group_ids.clone();
                    inst.storage_encrypted = c.storage_encrypted;
                    inst.port = c.port;
                }
            } else {
                inst.cluster_id = None;
                inst.iam_database_authentication_enabled =
                    a.bool(ctx, "iam_database_authentication_enabled");
                inst.storage_encrypted = a.bool(ctx, "storage_encrypted");
                inst.vpc_security_group_ids =
                    a.strs(ctx, "vpc_security_group_ids").unwrap_or_default();
                inst.db_subnet_group = a.str(ctx, "db_subnet_group_name");
                inst.port = a.int(ctx, "port");
                inst.backup_retention_period = a.int(ctx, "backup_retention_period");
                inst.deletion_protection = a.bool(ctx, "deletion_protection");
                inst.multi_az = a.bool(ctx, "multi_az");
            }
            if let (Some(i), Some(old)) = (live, &old)
                && old != &id
            {
                region.db_instances.remove(i);
                for c in &mut region.db_clusters {
                    c.members.retain(|m| &m.instance_id != old);
                }
                p.new = true;
            }
            if member
                && let Some(cid) = &inst.cluster_id
                && let Some(c) = region.db_clusters.iter_mut().find(|c| &c.id == cid)
                && !c.members.iter().any(|m| m.instance_id == id)
            {
                // A new member of a cluster that has a writer reads; in
                // a new cluster, which member writes is decided at
                // apply (unknown).
                let has_writer = c.members.iter().any(|m| m.is_writer == Some(true));
                c.members.push(DbClusterMember {
                    instance_id: id.clone(),
                    is_writer: has_writer.then_some(false),
                });
                if !has_writer {
                    a.out.push("writer".into());
                    a.notes
                        .push("which member writes is decided at apply".into());
                }
            }
            match region.db_instances.iter_mut().find(|x| x.id == id) {
                Some(slot) => *slot = inst,
                None => region.db_instances.push(inst),
            }
            p.resource = Some((ResourceKind::DbInstance, id));
        }
        "aws_db_subnet_group" => {
            let region = region_mut(account, &region_name);
            let old = before_id("name");
            region
                .db_subnet_groups
                .retain(|g| Some(&g.name) != old.as_ref());
            if delete {
                return;
            }
            let subnet_ids = a.strs(ctx, "subnet_ids").unwrap_or_default();
            let vpc_id = a
                .str(ctx, "vpc_id")
                .or_else(|| {
                    region
                        .subnets
                        .iter()
                        .find(|s| subnet_ids.contains(&s.id))
                        .map(|s| s.vpc_id.clone())
                })
                .unwrap_or_default();
            let name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            p.touches = Some(name.clone());
            region.db_subnet_groups.push(DbSubnetGroup {
                arn: a.str(ctx, "arn"),
                name,
                vpc_id,
                subnet_ids,
            });
        }
        "aws_security_group" => {
            let region = region_mut(account, &region_name);
            let old = before_id("id");
            let live = old
                .as_ref()
                .and_then(|id| region.security_groups.iter().position(|g| &g.id == id));
            if delete {
                if let Some(i) = live {
                    region.security_groups.remove(i);
                }
                return;
            }
            let mut g = live
                .map(|i| region.security_groups[i].clone())
                .unwrap_or_default();
            g.id = a
                .str(ctx, "id")
                .or(old)
                .unwrap_or_else(|| placeholder(&rc.address));
            g.name = a.str(ctx, "name").unwrap_or_default();
            g.vpc_id = a.str(ctx, "vpc_id").unwrap_or_default();
            g.owner_id = account_id.clone();
            g.tags = a.tags(ctx);
            // Inline rules: the provider manages them exclusively when
            // given; an absent `ingress` leaves rules of separate resources.
            if let Some(ing) = a.blocks(ctx, "ingress") {
                g.ingress = ing.iter().map(|b| sg_rule_block(b, &g.id)).collect();
            }
            if let Some(eg) = a.blocks(ctx, "egress") {
                g.egress = eg.iter().map(|b| sg_rule_block(b, &g.id)).collect();
            }
            let id = g.id.clone();
            p.touches = Some(id.clone());
            match live {
                Some(i) => region.security_groups[i] = g,
                None => region.security_groups.push(g),
            }
            ctx.ids.insert(rc.address.clone(), id);
        }
        "aws_security_group_rule" | "aws_vpc_security_group_ingress_rule" => {
            let modern = rc.type_ == "aws_vpc_security_group_ingress_rule";
            // Delete (and the old half of a replace/update): the rule
            // `before` described leaves its group.
            if let Some((gid, ingress, rule)) = sg_rule_of(&before, modern) {
                let region = region_mut(account, &region_name);
                if let Some(g) = region.security_groups.iter_mut().find(|g| g.id == gid) {
                    let list = if ingress {
                        &mut g.ingress
                    } else {
                        &mut g.egress
                    };
                    remove_rule(list, &rule);
                }
            }
            if delete {
                return;
            }
            let gid = a.str(ctx, "security_group_id");
            p.touches = gid.clone().or_else(|| {
                before
                    .get("security_group_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            // Read the attributes through `Attrs` so that unknowns count.
            let mut after = a.after.clone();
            for key in [
                "cidr_blocks",
                "ipv6_cidr_blocks",
                "cidr_ipv4",
                "cidr_ipv6",
                "source_security_group_id",
                "referenced_security_group_id",
                "prefix_list_ids",
                "prefix_list_id",
                "from_port",
                "to_port",
            ] {
                if a.is_unknown(key)
                    && let Some(v) = a.get(ctx, key)
                {
                    after[key] = v;
                }
            }
            let Some(gid) = gid else {
                return;
            };
            after["security_group_id"] = Value::String(gid.clone());
            let region = region_mut(account, &region_name);
            if let (Some((_, ingress, rule)), Some(g)) = (
                sg_rule_of(&after, modern),
                region.security_groups.iter_mut().find(|g| g.id == gid),
            ) {
                let list = if ingress {
                    &mut g.ingress
                } else {
                    &mut g.egress
                };
                list.push(rule);
            } else {
                a.out.push("security_group_id".into());
                a.notes
                    .push(format!("group {gid} is not in the snapshot or the plan"));
            }
        }
        "aws_subnet" => {
            let region = region_mut(account, &region_name);
            let old = before_id("id");
            region.subnets.retain(|s| Some(&s.id) != old.as_ref());
            if delete {
                return;
            }
            let id = a
                .str(ctx, "id")
                .or(old)
                .unwrap_or_else(|| placeholder(&rc.address));
            region.subnets.push(Subnet {
                id: id.clone(),
                vpc_id: a.str(ctx, "vpc_id").unwrap_or_default(),
                availability_zone: a.str(ctx, "availability_zone").unwrap_or_default(),
                cidr_block: a.str(ctx, "cidr_block"),
                ipv6_cidr_blocks: a.str(ctx, "ipv6_cidr_block").into_iter().collect(),
                map_public_ip_on_launch: a.bool(ctx, "map_public_ip_on_launch").unwrap_or(false),
                tags: a.tags(ctx),
            });
            ctx.ids.insert(rc.address.clone(), id);
        }
        "aws_internet_gateway" => {
            let region = region_mut(account, &region_name);
            let old = before_id("id");
            region
                .internet_gateways
                .retain(|g| Some(&g.id) != old.as_ref());
            if delete {
                return;
            }
            let id = a
                .str(ctx, "id")
                .or(old)
                .unwrap_or_else(|| placeholder(&rc.address));
            region.internet_gateways.push(InternetGateway {
                id: id.clone(),
                vpc_ids: a.str(ctx, "vpc_id").into_iter().collect(),
            });
            ctx.ids.insert(rc.address.clone(), id);
        }
        "aws_nat_gateway" => {
            let region = region_mut(account, &region_name);
            let old = before_id("id");
            region.nat_gateways.retain(|g| Some(&g.id) != old.as_ref());
            if delete {
                return;
            }
            let id = a
                .str(ctx, "id")
                .or(old)
                .unwrap_or_else(|| placeholder(&rc.address));
            let subnet_id = a.str(ctx, "subnet_id").unwrap_or_default();
            let vpc_id = region
                .subnets
                .iter()
                .find(|s| s.id == subnet_id)
                .map(|s| s.vpc_id.clone())
                .unwrap_or_default();
            region.nat_gateways.push(crate::snapshot::NatGateway {
                id: id.clone(),
                vpc_id,
                subnet_id,
                state: Some("available".into()),
            });
            ctx.ids.insert(rc.address.clone(), id);
        }
        "aws_route_table" => {
            let region = region_mut(account, &region_name);
            let old = before_id("id");
            let live = old
                .as_ref()
                .and_then(|id| region.route_tables.iter().position(|t| &t.id == id));
            if delete {
                if let Some(i) = live {
                    region.route_tables.remove(i);
                }
                return;
            }
            let mut t = live
                .map(|i| region.route_tables[i].clone())
                .unwrap_or_default();
            t.id = a
                .str(ctx, "id")
                .or(old)
                .unwrap_or_else(|| placeholder(&rc.address));
            t.vpc_id = a.str(ctx, "vpc_id").unwrap_or_default();
            if let Some(routes) = a.blocks(ctx, "route") {
                t.routes = routes.iter().filter_map(route_block).collect();
            }
            let id = t.id.clone();
            match live {
                Some(i) => region.route_tables[i] = t,
                None => region.route_tables.push(t),
            }
            ctx.ids.insert(rc.address.clone(), id);
        }
        "aws_route" => {
            if let Some(rt) = before.get("route_table_id").and_then(Value::as_str)
                && let Some(old) = route_block(&before)
            {
                let region = region_mut(account, &region_name);
                if let Some(t) = region.route_tables.iter_mut().find(|t| t.id == rt) {
                    t.routes.retain(|r| r != &old);
                }
            }
            if delete {
                return;
            }
            let rt = a.str(ctx, "route_table_id");
            let mut after = a.after.clone();
            for key in ["gateway_id", "nat_gateway_id"] {
                if a.is_unknown(key)
                    && let Some(v) = a.get(ctx, key)
                {
                    after[key] = v;
                }
            }
            let region = region_mut(account, &region_name);
            match (rt, route_block(&after)) {
                (Some(rt), Some(route)) => {
                    match region.route_tables.iter_mut().find(|t| t.id == rt) {
                        Some(t) => t.routes.push(route),
                        None => {
                            a.out.push("route_table_id".into());
                            a.notes
                                .push(format!("route table {rt} is not in the snapshot"));
                        }
                    }
                }
                _ => a.out.push("route".into()),
            }
        }
        "aws_route_table_association" => {
            let region = region_mut(account, &region_name);
            if let (Some(rt), Some(subnet)) = (
                before.get("route_table_id").and_then(Value::as_str),
                before.get("subnet_id").and_then(Value::as_str),
            ) && let Some(t) = region.route_tables.iter_mut().find(|t| t.id == rt)
            {
                t.associations
                    .retain(|x| x.subnet_id.as_deref() != Some(subnet));
            }
            if delete {
                return;
            }
            let rt = a.str(ctx, "route_table_id");
            let subnet = a.str(ctx, "subnet_id");
            let region = region_mut(account, &region_name);
            if let (Some(rt), Some(subnet)) = (rt, subnet) {
                // A subnet has one route table: the new association
                // replaces the one it had.
                for t in region.route_tables.iter_mut() {
                    t.associations
                        .retain(|x| x.subnet_id.as_deref() != Some(&subnet));
                }
                match region.route_tables.iter_mut().find(|t| t.id == rt) {
                    Some(t) => t.associations.push(RouteTableAssociation {
                        subnet_id: Some(subnet),
                        main: false,
                    }),
                    None => {
                        a.out.push("route_table_id".into());
                        a.notes
                            .push(format!("route table {rt} is not in the snapshot"));
                    }
                }
            }
        }
        "aws_rds_cluster_parameter_group" => {
            let region = region_mut(account, &region_name);
            let old = before_id("name");
            let groups = region
                .db_cluster_parameter_groups
                .get_or_insert_with(Vec::new);
            groups.retain(|g| Some(&g.name) != old.as_ref());
            if delete {
                return;
            }
            let name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            let parameters = a
                .blocks(ctx, "parameter")
                .unwrap_or_default()
                .iter()
                .filter_map(|b| {
                    Some((
                        b.get("name")?.as_str()?.to_string(),
                        b.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect();
            let region = region_mut(account, &region_name);
            region
                .db_cluster_parameter_groups
                .get_or_insert_with(Vec::new)
                .push(crate::snapshot::ClusterParameterGroup { name, parameters });
        }
        "aws_db_proxy" => {
            let region = region_mut(account, &region_name);
            let proxies = region.db_proxies.get_or_insert_with(Vec::new);
            let old = before_id("name");
            let live = old
                .as_ref()
                .and_then(|n| proxies.iter().position(|x| &x.name == n));
            if delete {
                if let Some(i) = live {
                    let x = proxies.remove(i);
                    p.resource = Some((ResourceKind::DbProxy, x.name));
                }
                return;
            }
            let mut x: DbProxy = live.map(|i| proxies[i].clone()).unwrap_or_default();
            p.new = live.is_none();
            x.name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            x.arn = a
                .str(ctx, "arn")
                .unwrap_or_else(|| placeholder(&rc.address));
            x.engine_family = a.str(ctx, "engine_family").unwrap_or_default();
            x.require_tls = a.bool(ctx, "require_tls");
            x.subnet_ids = a.strs(ctx, "vpc_subnet_ids").unwrap_or_default();
            x.security_group_ids = a.strs(ctx, "vpc_security_group_ids").unwrap_or_default();
            x.auth = a
                .blocks(ctx, "auth")
                .unwrap_or_default()
                .iter()
                .map(|b| crate::snapshot::ProxyAuth {
                    iam_auth: b
                        .get("iam_auth")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    client_password_auth_type: b
                        .get("client_password_auth_type")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
                .collect();
            x.default_auth_scheme = a.str(ctx, "default_auth_scheme");
            let region = region_mut(account, &region_name);
            x.vpc_id = region
                .subnets
                .iter()
                .find(|s| x.subnet_ids.contains(&s.id))
                .map(|s| s.vpc_id.clone())
                .unwrap_or_default();
            let name = x.name.clone();
            let proxies = region.db_proxies.get_or_insert_with(Vec::new);
            match live {
                Some(i) => proxies[i] = x,
                None => proxies.push(x),
            }
            p.resource = Some((ResourceKind::DbProxy, name));
        }
        "aws_eks_cluster" => {
            let region = region_mut(account, &region_name);
            let old = before_id("name");
            let live = old
                .as_ref()
                .and_then(|n| region.eks_clusters.iter().position(|x| &x.name == n));
            if delete {
                if let Some(i) = live {
                    region.eks_clusters.remove(i);
                }
                return;
            }
            let mut e = live
                .map(|i| region.eks_clusters[i].clone())
                .unwrap_or_default();
            e.name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            e.arn = a
                .str(ctx, "arn")
                .unwrap_or_else(|| placeholder(&rc.address));
            if let Some(vpc) = a
                .blocks(ctx, "vpc_config")
                .and_then(|b| b.into_iter().next())
            {
                let strs = |k: &str| -> Vec<String> {
                    vpc.get(k)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                e.subnet_ids = strs("subnet_ids");
                e.additional_security_group_ids = strs("security_group_ids");
                e.vpc_id = vpc
                    .get("vpc_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(e.vpc_id);
                e.cluster_security_group_id = vpc
                    .get("cluster_security_group_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(e.cluster_security_group_id);
            }
            if e.cluster_security_group_id.is_none() {
                a.out.push("vpc_config".into());
            }
            match live {
                Some(i) => region.eks_clusters[i] = e,
                None => region.eks_clusters.push(e),
            }
        }
        t if t.starts_with("aws_iam_") => {
            apply_iam(ctx, account, rc, &before, &mut a, delete, p);
        }
        _ => unreachable!("only APPLIED_TYPES reach apply_one"),
    }
    a.out.sort();
    a.out.dedup();
    p.unknown = a.out;
    p.notes = a.notes;
    ctx.resolved.extend(a.resolved);
}

#[allow(clippy::too_many_arguments)]
fn apply_iam(
    ctx: &Ctx,
    account: &mut Account,
    rc: &ResourceChange,
    before: &Value,
    a: &mut Attrs,
    delete: bool,
    p: &mut Planned,
) {
    let partition = account.partition.clone();
    let account_id = account.account_id.clone();
    let Some(iam) = account.iam.as_mut() else {
        a.out.push("policy".into());
        a.notes
            .push("the snapshot has no IAM section for this account".into());
        return;
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let doc = |text: Option<String>| -> Option<Value> { serde_json::from_str(&text?).ok() };
    match rc.type_.as_str() {
        "aws_iam_policy" => {
            let old = s(before, "arn");
            iam.policies.retain(|x| Some(&x.arn) != old.as_ref());
            if delete {
                return;
            }
            let name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            let path = a.str(ctx, "path").unwrap_or_else(|| "/".into());
            let arn = a
                .str(ctx, "arn")
                .or(old)
                .unwrap_or_else(|| format!("arn:{partition}:iam::{account_id}:policy{path}{name}"));
            match doc(a.str(ctx, "policy")) {
                Some(document) => iam.policies.push(ManagedPolicy {
                    arn,
                    name,
                    default_version_id: "planned".into(),
                    document,
                }),
                None => a.out.push("policy".into()),
            }
        }
        "aws_iam_role" => {
            let old = s(before, "name");
            let live = old
                .as_ref()
                .and_then(|n| iam.roles.iter().position(|r| &r.name == n));
            if delete {
                if let Some(i) = live {
                    let r = iam.roles.remove(i);
                    p.resource = Some((ResourceKind::IamPrincipal, r.name));
                }
                return;
            }
            let mut r: IamRole = live.map(|i| iam.roles[i].clone()).unwrap_or_default();
            p.new = live.is_none();
            r.name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            r.path = a.str(ctx, "path").unwrap_or_else(|| "/".into());
            r.arn = a.str(ctx, "arn").unwrap_or_else(|| {
                format!("arn:{partition}:iam::{account_id}:role{}{}", r.path, r.name)
            });
            match doc(a.str(ctx, "assume_role_policy")) {
                Some(d) => r.trust_policy = d,
                None => a.out.push("assume_role_policy".into()),
            }
            r.permissions_boundary = a.str(ctx, "permissions_boundary");
            r.tags = a.tags(ctx);
            let name = r.name.clone();
            match live {
                Some(i) => iam.roles[i] = r,
                None => iam.roles.push(r),
            }
            p.resource = Some((ResourceKind::IamPrincipal, name));
        }
        "aws_iam_user" | "aws_iam_group" => {
            let user = rc.type_ == "aws_iam_user";
            let old = s(before, "name");
            if user {
                let live = old
                    .as_ref()
                    .and_then(|n| iam.users.iter().position(|u| &u.name == n));
                if delete {
                    if let Some(i) = live {
                        let u = iam.users.remove(i);
                        p.resource = Some((ResourceKind::IamPrincipal, u.name));
                    }
                    return;
                }
                let mut u: IamUser = live.map(|i| iam.users[i].clone()).unwrap_or_default();
                p.new = live.is_none();
                u.name = a
                    .str(ctx, "name")
                    .unwrap_or_else(|| placeholder(&rc.address));
                let path = a.str(ctx, "path").unwrap_or_else(|| "/".into());
                u.arn = a.str(ctx, "arn").unwrap_or_else(|| {
                    format!("arn:{partition}:iam::{account_id}:user{path}{}", u.name)
                });
                u.permissions_boundary = a.str(ctx, "permissions_boundary");
                u.tags = a.tags(ctx);
                let name = u.name.clone();
                match live {
                    Some(i) => iam.users[i] = u,
                    None => iam.users.push(u),
                }
                p.resource = Some((ResourceKind::IamPrincipal, name));
            } else {
                let live = old
                    .as_ref()
                    .and_then(|n| iam.groups.iter().position(|g| &g.name == n));
                if delete {
                    if let Some(i) = live {
                        let g = iam.groups.remove(i);
                        for u in &mut iam.users {
                            u.groups.retain(|x| x != &g.name);
                        }
                    }
                    return;
                }
                let mut g: IamGroup = live.map(|i| iam.groups[i].clone()).unwrap_or_default();
                g.name = a
                    .str(ctx, "name")
                    .unwrap_or_else(|| placeholder(&rc.address));
                let path = a.str(ctx, "path").unwrap_or_else(|| "/".into());
                g.arn = a.str(ctx, "arn").unwrap_or_else(|| {
                    format!("arn:{partition}:iam::{account_id}:group{path}{}", g.name)
                });
                match live {
                    Some(i) => iam.groups[i] = g,
                    None => iam.groups.push(g),
                }
            }
        }
        "aws_iam_user_group_membership" | "aws_iam_group_membership" => {
            // (user, group) pairs a value declares.
            let pairs = |v: &Value| -> Vec<(String, String)> {
                let list = |k: &str| -> Vec<String> {
                    v.get(k)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                if rc.type_ == "aws_iam_user_group_membership" {
                    let Some(u) = s(v, "user") else {
                        return Vec::new();
                    };
                    list("groups").into_iter().map(|g| (u.clone(), g)).collect()
                } else {
                    let Some(g) = s(v, "group") else {
                        return Vec::new();
                    };
                    list("users").into_iter().map(|u| (u, g.clone())).collect()
                }
            };
            for (u, g) in pairs(before) {
                if let Some(user) = iam.users.iter_mut().find(|x| x.name == u) {
                    user.groups.retain(|x| x != &g);
                }
            }
            if delete {
                return;
            }
            let key = if rc.type_ == "aws_iam_user_group_membership" {
                "groups"
            } else {
                "users"
            };
            if a.is_unknown(key) {
                a.out.push(key.into());
                return;
            }
            for (u, g) in pairs(a.after) {
                match iam.users.iter_mut().find(|x| x.name == u) {
                    Some(user) if !user.groups.contains(&g) => user.groups.push(g),
                    Some(_) => {}
                    None => {
                        a.out.push(key.into());
                        a.notes
                            .push(format!("user {u} is not in the snapshot or the plan"));
                    }
                }
            }
        }
        "aws_iam_role_policy" | "aws_iam_group_policy" | "aws_iam_user_policy" => {
            let owner_key = match rc.type_.as_str() {
                "aws_iam_role_policy" => "role",
                "aws_iam_group_policy" => "group",
                _ => "user",
            };
            fn inline<'i>(
                iam: &'i mut crate::snapshot::Iam,
                owner_key: &str,
                owner: &str,
            ) -> Option<&'i mut Vec<InlinePolicy>> {
                match owner_key {
                    "role" => iam
                        .roles
                        .iter_mut()
                        .find(|r| r.name == owner)
                        .map(|r| &mut r.inline_policies),
                    "group" => iam
                        .groups
                        .iter_mut()
                        .find(|r| r.name == owner)
                        .map(|r| &mut r.inline_policies),
                    _ => iam
                        .users
                        .iter_mut()
                        .find(|r| r.name == owner)
                        .map(|r| &mut r.inline_policies),
                }
            }
            if let (Some(owner), Some(name)) = (s(before, owner_key), s(before, "name"))
                && let Some(list) = inline(iam, owner_key, &owner)
            {
                list.retain(|x| x.name != name);
            }
            if delete {
                return;
            }
            let owner = a.str(ctx, owner_key);
            let name = a
                .str(ctx, "name")
                .unwrap_or_else(|| placeholder(&rc.address));
            let document = doc(a.str(ctx, "policy"));
            match (owner, document) {
                (Some(owner), Some(document)) => match inline(iam, owner_key, &owner) {
                    Some(list) => list.push(InlinePolicy { name, document }),
                    None => {
                        a.out.push("policy".into());
                        a.notes.push(format!(
                            "{owner_key} {owner} is not in the snapshot or the plan"
                        ));
                    }
                },
                (None, _) => {}
                (_, None) => a.out.push("policy".into()),
            }
        }
        "aws_iam_role_policy_attachment"
        | "aws_iam_group_policy_attachment"
        | "aws_iam_user_policy_attachment"
        | "aws_iam_policy_attachment" => {
            // (owner kind, owner name) pairs a value attaches to.
            let owners = |v: &Value| -> Vec<(&'static str, String)> {
                match rc.type_.as_str() {
                    "aws_iam_role_policy_attachment" => {
                        s(v, "role").map(|n| ("role", n)).into_iter().collect()
                    }
                    "aws_iam_group_policy_attachment" => {
                        s(v, "group").map(|n| ("group", n)).into_iter().collect()
                    }
                    "aws_iam_user_policy_attachment" => {
                        s(v, "user").map(|n| ("user", n)).into_iter().collect()
                    }
                    _ => {
                        let list = |k: &str| -> Vec<String> {
                            v.get(k)
                                .and_then(Value::as_array)
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default()
                        };
                        let mut out: Vec<(&'static str, String)> = Vec::new();
                        out.extend(list("roles").into_iter().map(|n| ("role", n)));
                        out.extend(list("groups").into_iter().map(|n| ("group", n)));
                        out.extend(list("users").into_iter().map(|n| ("user", n)));
                        out
                    }
                }
            };
            fn attached<'i>(
                iam: &'i mut crate::snapshot::Iam,
                kind: &str,
                name: &str,
            ) -> Option<&'i mut Vec<String>> {
                match kind {
                    "role" => iam
                        .roles
                        .iter_mut()
                        .find(|r: &&mut IamRole| r.name == name)
                        .map(|r| &mut r.attached_policies),
                    "group" => iam
                        .groups
                        .iter_mut()
                        .find(|r: &&mut IamGroup| r.name == name)
                        .map(|r| &mut r.attached_policies),
                    _ => iam
                        .users
                        .iter_mut()
                        .find(|r: &&mut IamUser| r.name == name)
                        .map(|r| &mut r.attached_policies),
                }
            }
            if let Some(arn) = s(before, "policy_arn") {
                for (k, n) in owners(before) {
                    if let Some(list) = attached(iam, k, &n) {
                        list.retain(|x| x != &arn);
                    }
                }
            }
            if delete {
                return;
            }
            let arn = a.str(ctx, "policy_arn").or_else(|| {
                // A policy created in the same plan, named by reference.
                resolve_policy_arn(ctx, rc, &partition, &account_id)
            });
            let Some(arn) = arn else {
                a.out.push("policy_arn".into());
                return;
            };
            for (k, n) in owners(a.after) {
                match attached(iam, k, &n) {
                    Some(list) if !list.contains(&arn) => list.push(arn.clone()),
                    Some(_) => {}
                    None => {
                        a.out.push("policy_arn".into());
                        a.notes
                            .push(format!("{k} {n} is not in the snapshot or the plan"));
                    }
                }
            }
        }
        _ => p.treatment = Treatment::NotRead,
    }
}

/// The ARN of a policy created in the same plan that an attachment names by
/// reference (`aws_iam_policy.x.arn`): from its name and path.
fn resolve_policy_arn(
    ctx: &Ctx,
    rc: &ResourceChange,
    partition: &str,
    account_id: &str,
) -> Option<String> {
    let (_, config) = ctx.plan.config_of(rc)?;
    let refs = config
        .expressions
        .get("policy_arn")?
        .get("references")?
        .as_array()?;
    let target = refs
        .iter()
        .filter_map(Value::as_str)
        .find_map(|r| r.strip_suffix(".arn"))?;
    let prefix = rc
        .module_address
        .clone()
        .map(|m| format!("{m}."))
        .unwrap_or_default();
    let full = format!("{prefix}{target}");
    let policy = ctx
        .plan
        .resource_changes
        .iter()
        .find(|x| x.address == full && x.type_ == "aws_iam_policy")?;
    let after = policy.change.after.as_ref()?;
    let name = after.get("name")?.as_str()?;
    let path = after.get("path").and_then(Value::as_str).unwrap_or("/");
    Some(format!(
        "arn:{partition}:iam::{account_id}:policy{path}{name}"
    ))
}

/// An `ingress`/`egress` block of `aws_security_group`.
fn sg_rule_block(b: &Value, own_id: &str) -> SgRule {
    let strs = |k: &str| -> Vec<String> {
        b.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut groups: Vec<SgReference> = strs("security_groups")
        .into_iter()
        .map(|g| SgReference {
            group_id: g,
            user_id: None,
        })
        .collect();
    if b.get("self").and_then(Value::as_bool) == Some(true) {
        groups.push(SgReference {
            group_id: own_id.to_string(),
            user_id: None,
        });
    }
    let protocol = b
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("-1")
        .to_string();
    let (from_port, to_port) = ports(&protocol, b.get("from_port"), b.get("to_port"));
    SgRule {
        protocol: normalise_protocol(&protocol),
        from_port,
        to_port,
        ipv4_ranges: strs("cidr_blocks"),
        ipv6_ranges: strs("ipv6_cidr_blocks"),
        prefix_list_ids: strs("prefix_list_ids"),
        security_groups: groups,
    }
}

/// `tcp`/`6`, `-1`/`all`: as EC2 reports them.
fn normalise_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "all" | "-1" => "-1".into(),
        other => other.to_string(),
    }
}

fn ports(protocol: &str, from: Option<&Value>, to: Option<&Value>) -> (Option<i32>, Option<i32>) {
    if normalise_protocol(protocol) == "-1" {
        return (None, None);
    }
    let n = |v: Option<&Value>| {
        v.and_then(Value::as_i64)
            .and_then(|x| i32::try_from(x).ok())
    };
    (n(from), n(to))
}

/// The group, direction and rule an `aws_security_group_rule` or
/// `aws_vpc_security_group_ingress_rule` value describes.
fn sg_rule_of(v: &Value, modern: bool) -> Option<(String, bool, SgRule)> {
    let gid = v.get("security_group_id")?.as_str()?.to_string();
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if modern {
        let protocol = s("ip_protocol").unwrap_or_else(|| "-1".into());
        let (from_port, to_port) = ports(&protocol, v.get("from_port"), v.get("to_port"));
        let rule = SgRule {
            protocol: normalise_protocol(&protocol),
            from_port,
            to_port,
            ipv4_ranges: s("cidr_ipv4").into_iter().collect(),
            ipv6_ranges: s("cidr_ipv6").into_iter().collect(),
            prefix_list_ids: s("prefix_list_id").into_iter().collect(),
            security_groups: s("referenced_security_group_id")
                .map(|g| SgReference {
                    group_id: g,
                    user_id: None,
                })
                .into_iter()
                .collect(),
        };
        return Some((gid, true, rule));
    }
    let ingress = s("type").as_deref() != Some("egress");
    let mut b = v.clone();
    if let Some(src) = s("source_security_group_id") {
        b["security_groups"] = Value::Array(vec![Value::String(src)]);
    }
    Some((gid.clone(), ingress, sg_rule_block(&b, &gid)))
}

/// Removes one rule equal to `rule` (or, for a rule the provider split
/// across several CIDRs, the ranges it named).
fn remove_rule(list: &mut Vec<SgRule>, rule: &SgRule) {
    if let Some(i) = list.iter().position(|r| r == rule) {
        list.remove(i);
        return;
    }
    for r in list.iter_mut() {
        if r.protocol == rule.protocol && r.from_port == rule.from_port && r.to_port == rule.to_port
        {
            r.ipv4_ranges.retain(|c| !rule.ipv4_ranges.contains(c));
            r.ipv6_ranges.retain(|c| !rule.ipv6_ranges.contains(c));
            r.prefix_list_ids
                .retain(|c| !rule.prefix_list_ids.contains(c));
            r.security_groups.retain(|c| {
                !rule
                    .security_groups
                    .iter()
                    .any(|x| x.group_id == c.group_id)
            });
        }
    }
    list.retain(|r| {
        !(r.ipv4_ranges.is_empty()
            && r.ipv6_ranges.is_empty()
            && r.prefix_list_ids.is_empty()
            && r.security_groups.is_empty())
    });
}

/// A route of `aws_route_table`'s `route` blocks or of `aws_route`.
fn route_block(b: &Value) -> Option<Route> {
    let s = |k: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let target = [
        ("gateway_id", "igw"),
        ("nat_gateway_id", "nat"),
        ("egress_only_gateway_id", "eigw"),
        ("transit_gateway_id", "tgw"),
        ("vpc_peering_connection_id", "pcx"),
        ("network_interface_id", "eni"),
        ("vpc_endpoint_id", "vpce"),
        ("local_gateway_id", "lgw"),
        ("carrier_gateway_id", "cagw"),
    ]
    .iter()
    .find_map(|(k, kind)| {
        s(k).map(|id| {
            // `gateway_id` also names virtual private gateways and `local`.
            let kind = match (*k, id.as_str()) {
                ("gateway_id", "local") => "local",
                ("gateway_id", g) if g.starts_with("vgw-") => "vgw",
                _ => kind,
            };
            RouteTarget {
                kind: kind.to_string(),
                id,
            }
        })
    })?;
    Some(Route {
        destination_cidr: s("cidr_block").or_else(|| s("destination_cidr_block")),
        destination_ipv6_cidr: s("ipv6_cidr_block").or_else(|| s("destination_ipv6_cidr_block")),
        destination_prefix_list_id: s("destination_prefix_list_id"),
        target,
        state: Some("active".into()),
    })
}

impl Planned {
    /// Whether the change was applied to the predicted snapshot.
    pub fn applied(&self) -> bool {
        self.treatment == Treatment::Applied
    }
}
