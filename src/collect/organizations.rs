//! Organizations: the service control policies that apply to the account,
//! from the organization root down to the account itself. Only attempted
//! with `collect_scps = true`: member accounts usually cannot read
//! Organizations (only the management account or a delegated administrator
//! can), and an expected AccessDenied every night would only be noise.

use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::{ParentType, PolicyType};

use super::calls::pages;
use super::registry::{BoxFuture, Collector, Done, Plan, Task, client};
use super::{Calls, text};
use crate::snapshot::{ManagedPolicy, ScpLevel};
use crate::vocab::{Service, op};

/// Levels root → account; `None` (with a gap) when they cannot be read.
pub async fn collect(
    client: &Client,
    account_id: &str,
    calls: &mut Calls,
) -> Option<Vec<ScpLevel>> {
    let c = client;
    // Walk up from the account to the root.
    let mut chain = vec![account_id.to_string()];
    let mut child = account_id.to_string();
    for _ in 0..8 {
        let pages = calls
            .call(op::LIST_PARENTS, pages!(c.list_parents().child_id(&child)))
            .await?;
        let Some(parent) = pages.iter().flat_map(|p| p.parents()).next() else {
            break;
        };
        let id = text(parent.id());
        chain.push(id.clone());
        if parent.r#type() == Some(&ParentType::Root) || id.starts_with("r-") {
            break;
        }
        child = id;
    }
    chain.reverse();
    let mut levels = Vec::new();
    for target in chain {
        let listing = c
            .list_policies_for_target()
            .target_id(&target)
            .filter(PolicyType::ServiceControlPolicy);
        let pages = calls
            .call(op::LIST_POLICIES_FOR_TARGET, pages!(listing))
            .await?;
        let mut policies = Vec::new();
        for s in pages.iter().flat_map(|p| p.policies()) {
            let id = s.id().unwrap_or_default();
            let out = calls
                .call(
                    op::DESCRIBE_POLICY,
                    c.describe_policy().policy_id(id).send(),
                )
                .await?;
            let Some(p) = out.policy() else { continue };
            let summary = p.policy_summary();
            policies.push(ManagedPolicy {
                arn: summary.and_then(|x| x.arn()).unwrap_or(id).to_string(),
                name: summary.and_then(|x| x.name()).unwrap_or(id).to_string(),
                default_version_id: String::new(),
                document: super::decode_policy(p.content().unwrap_or("{}")),
            });
        }
        levels.push(ScpLevel { target, policies });
    }
    Some(levels)
}

pub(super) struct Organizations;

impl Collector for Organizations {
    fn service(&self) -> Service {
        Service::Organizations
    }

    fn wanted(&self, plan: &Plan) -> bool {
        plan.collect_scps
    }

    fn run(&self, mut task: Task) -> BoxFuture<Done> {
        Box::pin(async move {
            let client = client!(aws_sdk_organizations, task);
            let scps = collect(&client, &task.account_id, &mut task.calls).await;
            task.into_account(move |a| a.scps = scps)
        })
    }
}

/// Every account of the organization with its OU path and (when `tags`)
/// its tags, listed with `conf`'s credentials (the management account or a
/// delegated administrator). An account whose parent cannot be listed keeps
/// `ou_path: None` and is reported unmapped; a failure to list the accounts
/// or the tree is an error of the whole discovery (`Err`: the gap).
pub async fn discover(
    client: &Client,
    tags: bool,
    calls: &mut Calls,
) -> Result<Vec<crate::org::OrgAccount>, crate::snapshot::Gap> {
    use std::collections::HashMap;
    let c = client;
    let fail = |calls: &mut Calls, operation: crate::vocab::Operation| {
        calls.gaps.pop().unwrap_or_else(|| crate::snapshot::Gap {
            service: Service::Organizations,
            region: None,
            operation: operation.name.into(),
            code: "Failed".into(),
            message: "the listing failed".into(),
        })
    };
    // Organizations' paginators have no item streams: pages, flattened.
    let Some(root_pages) = calls.call(op::LIST_ROOTS, pages!(c.list_roots())).await else {
        return Err(fail(calls, op::LIST_ROOTS));
    };
    let roots: Vec<_> = root_pages.iter().flat_map(|p| p.roots()).collect();
    // OU id → path of names from the root.
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut queue: Vec<(String, String)> = Vec::new();
    for r in &roots {
        let id = text(r.id());
        paths.insert(id.clone(), String::new());
        queue.push((id, String::new()));
    }
    while let Some((parent, path)) = queue.pop() {
        let listing = c.list_organizational_units_for_parent().parent_id(&parent);
        let Some(ou_pages) = calls
            .call(op::LIST_ORGANIZATIONAL_UNITS_FOR_PARENT, pages!(listing))
            .await
        else {
            return Err(fail(calls, op::LIST_ORGANIZATIONAL_UNITS_FOR_PARENT));
        };
        for ou in ou_pages.iter().flat_map(|p| p.organizational_units()) {
            let name = ou.name().unwrap_or_default();
            let p = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            };
            let id = text(ou.id());
            paths.insert(id.clone(), p.clone());
            queue.push((id, p));
        }
    }
    let Some(account_pages) = calls
        .call(op::LIST_ACCOUNTS, pages!(c.list_accounts()))
        .await
    else {
        return Err(fail(calls, op::LIST_ACCOUNTS));
    };
    let accounts: Vec<_> = account_pages.iter().flat_map(|p| p.accounts()).collect();
    let mut out = Vec::with_capacity(accounts.len());
    for a in accounts {
        let id = text(a.id());
        let parent = calls
            .call(op::LIST_PARENTS, pages!(c.list_parents().child_id(&id)))
            .await
            .and_then(|pages| {
                pages
                    .iter()
                    .flat_map(|p| p.parents())
                    .find_map(|p| p.id().map(str::to_string))
            });
        let mut tag_map = std::collections::BTreeMap::new();
        if tags {
            let listing = c.list_tags_for_resource().resource_id(&id);
            if let Some(t) = calls
                .call(op::LIST_TAGS_FOR_RESOURCE, pages!(listing))
                .await
            {
                for tag in t.iter().flat_map(|p| p.tags()) {
                    tag_map.insert(tag.key().to_string(), tag.value().to_string());
                }
            }
        }
        out.push(crate::org::OrgAccount {
            name: text(a.name()),
            status: a
                .state()
                .map(|s| s.as_str().to_string())
                .or_else(|| a.status().map(|s| s.as_str().to_string()))
                .unwrap_or_default(),
            ou_path: parent.and_then(|p| paths.get(&p).cloned()),
            tags: tag_map,
            note: None,
            id,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! moto keeps each account's Organizations data apart, so a member
    //! account cannot see its organization's SCPs there; the walk is
    //! replayed from `tests/fixtures/wire/organizations/`.
    use crate::collect::Calls;
    use crate::collect::wire::{Wire, replayed};
    use crate::vocab::Service;

    #[tokio::test]
    async fn walks_from_the_account_to_the_root_and_reads_each_levels_scps() {
        let wire = Wire::load(&["organizations/scps"]);
        let client = replayed!(aws_sdk_organizations, wire);
        let mut calls = Calls::new(Service::Organizations, None);
        let levels = super::collect(&client, "222222222222", &mut calls)
            .await
            .unwrap();
        assert!(calls.gaps.is_empty(), "{:?}", calls.gaps);
        let targets: Vec<&str> = levels.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, ["r-ab12", "ou-ab12-prod", "222222222222"]);
        assert_eq!(
            levels[0].policies[0].document["Statement"][0]["Effect"],
            "Allow"
        );
        assert_eq!(wire.unanswered(), Vec::<String>::new());
    }
}
