//! IAM (global): users, groups, roles and managed policies from
//! `GetAccountAuthorizationDetails`, documents of attached policies it did not
//! return (`GetPolicy` + `GetPolicyVersion`), and OIDC providers.

use std::collections::BTreeSet;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::{EntityType, GroupDetail, RoleDetail, UserDetail};

use super::calls::pages;
use super::registry::{BoxFuture, Collector, Done, Task, client};
use super::{Calls, tags_of, text, texts};
use crate::snapshot::{Iam, IamGroup, IamRole, IamUser, InlinePolicy, ManagedPolicy};
use crate::vocab::{Service, op};

/// Users, groups, roles, the policies they use, and OIDC providers; `None`
/// when the authorization details cannot be read.
pub async fn collect(client: &Client, calls: &mut Calls) -> Option<Iam> {
    let c = client;
    let details = c
        .get_account_authorization_details()
        .filter(EntityType::User)
        .filter(EntityType::Group)
        .filter(EntityType::Role)
        .filter(EntityType::LocalManagedPolicy)
        .filter(EntityType::AwsManagedPolicy);
    let pages = calls
        .call(op::GET_ACCOUNT_AUTHORIZATION_DETAILS, pages!(details))
        .await?;
    let mut iam = Iam::default();
    for page in &pages {
        iam.users.extend(page.user_detail_list().iter().map(user));
        iam.groups
            .extend(page.group_detail_list().iter().map(group));
        iam.roles.extend(page.role_detail_list().iter().map(role));
        for p in page.policies() {
            let arn = text(p.arn());
            let default = text(p.default_version_id());
            let doc = p
                .policy_version_list()
                .iter()
                .find(|v| v.is_default_version() || v.version_id() == Some(default.as_str()))
                .and_then(|v| v.document());
            let Some(doc) = doc else { continue };
            iam.policies.push(ManagedPolicy {
                // moto omits PolicyName here; the ARN always ends with it.
                name: p
                    .policy_name()
                    .map(str::to_string)
                    .unwrap_or_else(|| text(arn.rsplit('/').next())),
                arn,
                default_version_id: default,
                document: decode_policy(doc),
            });
        }
    }
    // Attached policies whose documents were not in the answer.
    let have: BTreeSet<String> = iam.policies.iter().map(|p| p.arn.clone()).collect();
    let wanted: BTreeSet<String> = iam
        .users
        .iter()
        .flat_map(|u| u.attached_policies.iter().chain(&u.permissions_boundary))
        .chain(iam.groups.iter().flat_map(|g| &g.attached_policies))
        .chain(
            iam.roles
                .iter()
                .flat_map(|r| r.attached_policies.iter().chain(&r.permissions_boundary)),
        )
        .filter(|a| !have.contains(*a))
        .cloned()
        .collect();
    for arn in wanted {
        let Some(policy) = calls
            .call(op::GET_POLICY, c.get_policy().policy_arn(&arn).send())
            .await
        else {
            continue;
        };
        let Some(version) = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .map(str::to_string)
        else {
            continue;
        };
        let doc = calls
            .call(
                op::GET_POLICY_VERSION,
                c.get_policy_version()
                    .policy_arn(&arn)
                    .version_id(&version)
                    .send(),
            )
            .await;
        if let Some(doc) = doc.as_ref().and_then(|o| o.policy_version()?.document()) {
            iam.policies.push(ManagedPolicy {
                name: text(arn.rsplit('/').next()),
                arn: arn.clone(),
                default_version_id: version,
                document: decode_policy(doc),
            });
        }
    }
    if let Some(o) = calls
        .call(
            op::LIST_OPEN_ID_CONNECT_PROVIDERS,
            c.list_open_id_connect_providers().send(),
        )
        .await
    {
        iam.oidc_providers = texts(o.open_id_connect_provider_list(), |p| p.arn());
    }
    Some(iam)
}

fn user(u: &UserDetail) -> IamUser {
    IamUser {
        name: text(u.user_name()),
        arn: text(u.arn()),
        groups: u.group_list().to_vec(),
        inline_policies: inlines(u.user_policy_list()),
        attached_policies: attached(u.attached_managed_policies()),
        permissions_boundary: boundary(u.permissions_boundary()),
        tags: iam_tags(u.tags()),
    }
}

fn group(g: &GroupDetail) -> IamGroup {
    let inline_policies = inlines(g.group_policy_list());
    IamGroup {
        name: text(g.group_name()),
        arn: text(g.arn()),
        inline_policies,
        attached_policies: attached(g.attached_managed_policies()),
    }
}

fn role(r: &RoleDetail) -> IamRole {
    IamRole {
        name: text(r.role_name()),
        arn: text(r.arn()),
        path: r.path().unwrap_or("/").to_string(),
        trust_policy: decode_policy(r.assume_role_policy_document().unwrap_or("{}")),
        inline_policies: inlines(r.role_policy_list()),
        attached_policies: attached(r.attached_managed_policies()),
        permissions_boundary: boundary(r.permissions_boundary()),
        tags: iam_tags(r.tags()),
    }
}

/// Inline policies of a user, group or role.
fn inlines(list: &[aws_sdk_iam::types::PolicyDetail]) -> Vec<InlinePolicy> {
    list.iter()
        .map(|p| InlinePolicy {
            name: text(p.policy_name()),
            document: decode_policy(p.policy_document().unwrap_or("{}")),
        })
        .collect()
}

fn iam_tags(tags: &[aws_sdk_iam::types::Tag]) -> crate::snapshot::Tags {
    tags_of(tags.iter().map(|t| (Some(t.key()), Some(t.value()))))
}

fn attached(list: &[aws_sdk_iam::types::AttachedPolicy]) -> Vec<String> {
    texts(list, |p| p.policy_arn())
}

fn boundary(b: Option<&aws_sdk_iam::types::AttachedPermissionsBoundary>) -> Option<String> {
    b.and_then(|b| b.permissions_boundary_arn())
        .map(str::to_string)
}

/// IAM returns policy documents URL-encoded (RFC 3986); moto returns trust
/// policies as raw JSON. A document that starts with `{` is JSON; anything else
/// is percent-decoded first. A document that still does not parse is kept as
/// a string, so that the policy engine reports it instead of guessing.
pub fn decode_policy(raw: &str) -> serde_json::Value {
    let text = raw.trim_start();
    let decoded = if text.starts_with('{') {
        std::borrow::Cow::Borrowed(text)
    } else {
        percent_encoding::percent_decode_str(text).decode_utf8_lossy()
    };
    serde_json::from_str(&decoded).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}

/// IAM is global; its endpoint lives in us-east-1 for the aws partition.
pub(super) struct IamCollector;

impl Collector for IamCollector {
    fn service(&self) -> Service {
        Service::Iam
    }

    fn run(&self, mut task: Task) -> BoxFuture<Done> {
        Box::pin(async move {
            let iam = collect(&client!(aws_sdk_iam, task), &mut task.calls).await;
            task.into_account(move |a| a.iam = iam)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::decode_policy;

    #[test]
    fn decodes_url_encoded_and_raw_documents() {
        let raw = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(raw), decode_policy(enc));
        assert_eq!(decode_policy(raw)["Version"], "2012-10-17");
        assert!(decode_policy("%7Bnot json").is_string());
    }
}
