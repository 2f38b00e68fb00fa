//! IAM users and roles as a resource kind (`resource` in `iam_principal`
//! rules): their facts come from the IAM engine (`iam::principal_facts`).

use crate::iam::PrincipalFacts;
use crate::snapshot::Account;
use crate::vocab::Service;

super::cel_facts!(PrincipalFacts {
    name,
    arn,
    kind,
    is_developer,
    rds_write,
    sg_write,
    write_access,
    write_summary,
    can_read_rds,
    can_write_rds,
    connect_resources,
    connect_unscoped,
    is_irsa,
    irsa_subjects,
    irsa_pinned,
    pod_identity_subjects,
    service_accounts,
    scps_evaluated,
    unknown,
});

/// The account's IAM users and roles, when IAM was collected.
pub struct PrincipalKind;

impl super::Kind for PrincipalKind {
    fn scope(&self) -> super::Scope {
        super::Scope::Account
    }

    fn service(&self) -> Option<Service> {
        Some(Service::Iam)
    }

    fn json_schema(&self) -> serde_json::Value {
        super::kind::schema::<PrincipalFacts>()
    }

    fn arn_of_every(&self, account: &Account, _region: &str) -> String {
        format!(
            "arn:{}:iam::{}:*",
            super::kind::partition(account),
            account.account_id
        )
    }

    fn id_of_every(&self, _region: &str, _account: &Account) -> String {
        "iam/*".into()
    }

    fn visit(
        &self,
        at: &super::Place<'_>,
        each: &mut dyn FnMut(super::Resource<'_>),
    ) -> Result<(), String> {
        let Some(principals) = crate::iam::principal_facts(at.account, &at.config.developers)
        else {
            // IAM was not collected: one error per rule for the account.
            let gap = at.account.gaps.iter().find(|g| g.service == Service::Iam);
            return Err(gap.map(super::gap_message).unwrap_or_else(|| {
                "data not collected: the snapshot has no IAM section for this account".to_string()
            }));
        };
        for p in &principals {
            each(super::Resource {
                id: &p.name,
                arn: &p.arn,
                facts: p,
            });
        }
        Ok(())
    }
}
