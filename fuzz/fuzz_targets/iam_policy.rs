//! IAM policy documents: parsing, then evaluating a few requests with them.
#![no_main]
use dbaudit::iam::{Context, Policy, eval};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(policy) = Policy::parse("fuzz", &doc) else {
        return;
    };
    let mut ctx = Context::default();
    ctx.set("aws:username", "alice");
    ctx.set("aws:SourceIp", "10.1.2.3");
    for (action, resource) in [
        (
            "rds:ModifyDBCluster",
            "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders",
        ),
        (
            "rds-db:connect",
            "arn:aws:rds-db:eu-west-1:222222222222:dbuser:cluster-ABC/orders",
        ),
        ("iam:ChangePassword", "arn:aws:iam::222222222222:user/alice"),
    ] {
        let _ = eval::evaluate(
            &[&policy],
            Some(&policy),
            &eval::Request {
                action,
                resource,
                context: &ctx,
            },
        );
    }
});
