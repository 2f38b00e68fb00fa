//! Documentation generated from the rule files (`dbaudit rules explain`,
//! docs/rules.md), through the report's [`RuleDoc`]. A test fails when
//! docs/rules.md is stale.

use crate::report::ruledoc::RuleDoc;
pub use crate::report::ruledoc::anchor;
use crate::rules::{Rule, RuleSet};

/// One rule as Markdown; `level` is the heading level of its title.
pub fn rule_markdown(rule: &Rule, level: usize) -> String {
    RuleDoc::of(rule).markdown(level)
}

/// docs/rules.md.
pub fn rules_reference(set: &RuleSet) -> String {
    let mut out = String::from(
        "# Rules reference\n\n<!-- Generated from rules/*.toml by `cargo test` (DBAUDIT_BLESS=1 rewrites it). Do not edit. -->\n\n",
    );
    out.push_str("| id | severity | resource | environments | title |\n|---|---|---|---|---|\n");
    for r in &set.rules {
        let envs = if r.environments.is_empty() {
            "all".to_string()
        } else {
            r.environments.join(", ")
        };
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | `{}` | {envs} | {} |\n",
            r.id,
            anchor(&r.id),
            r.severity,
            r.resource.as_str(),
            r.title
        ));
    }
    out.push_str("\nParameters (`params.*`) and their defaults per environment are in `rules/params.toml`; the facts each resource kind offers are listed by `dbaudit rules fields KIND`.\n\n");
    for r in &set.rules {
        out.push_str(&format!("<a id=\"{}\"></a>\n\n", anchor(&r.id)));
        out.push_str(&rule_markdown(r, 2));
    }
    out
}
