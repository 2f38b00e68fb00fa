//! JUnit XML: a test suite per account, a test case per (rule, resource).
//! Failures and errors as such; waived failures as skipped with the reason.

use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};

use super::{Outcome, Report};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut junit = JReport::new("dbaudit");
    let by_account = report.by_account();
    for account in &report.accounts {
        let mut suite = TestSuite::new(format!(
            "{} ({}, {})",
            account.name, account.environment, account.account_id
        ));
        for f in by_account.get(account.name.as_str()).into_iter().flatten() {
            let status = match f.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(f.message.clone())
                        .set_type(f.severity.as_str());
                    s
                }
                Outcome::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(f.message.clone()).set_type("error");
                    s
                }
                Outcome::Waived => {
                    let mut s = TestCaseStatus::skipped();
                    let reason = f
                        .waiver
                        .as_ref()
                        .map(|w| w.reason.as_str())
                        .unwrap_or_default();
                    s.set_message(format!("waived: {reason}"));
                    s
                }
            };
            let mut case = TestCase::new(format!("{} {}", f.rule_id, f.resource_id), status);
            case.set_classname(f.rule_id.clone());
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.serialize(&mut *out).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
