//! Documentation generated from the rule files (`dbaudit rules explain`,
//! docs/rules.md). A test fails when docs/rules.md is stale.

use crate::rules::{Rule, RuleSet};

/// One rule as Markdown; `level` is the heading level of its title.
pub fn rule_markdown(rule: &Rule, level: usize) -> String {
    let h = "#".repeat(level);
    let envs = if rule.environments.is_empty() {
        "all".to_string()
    } else {
        rule.environments.join(", ")
    };
    let mut out = format!("{h} `{}`: {}\n\n", rule.id, rule.title);
    out.push_str(&format!(
        "- severity: **{}**\n- resource: `{}`\n- environments: {envs}\n",
        rule.severity,
        rule.resource.as_str()
    ));
    let needs: Vec<&str> = rule.needs().map(|s| s.as_str()).collect();
    if !needs.is_empty() {
        out.push_str(&format!(
            "- needs collected data from: {}\n",
            needs.join(", ")
        ));
    }
    out.push_str(&format!(
        "- defined in: `{}:{}`\n\n",
        rule.source.path.display(),
        rule.source.line
    ));
    out.push_str(&format!(
        "**Why.** {}\n\n",
        rule.rationale.replace('\n', " ")
    ));
    out.push_str(&format!(
        "**Fix.** {}\n\n",
        rule.remediation.replace('\n', " ")
    ));
    if let Some(a) = &rule.applies_if {
        out.push_str(&format!("Applies when: `{}`\n\n", a.source));
    }
    if let Some(m) = &rule.none_applies_error {
        out.push_str(&format!(
            "When nothing in an account applies: `error` ({})\n\n",
            m.replace('\n', " ")
        ));
    }
    out.push_str(&format!("Passes when: `{}`\n\n", rule.condition.source));
    if !rule.references.is_empty() {
        out.push_str("References:\n");
        for r in &rule.references {
            out.push_str(&format!("- <{r}>\n"));
        }
        out.push('\n');
    }
    out
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

pub fn anchor(id: &str) -> String {
    id.replace('.', "-")
}
