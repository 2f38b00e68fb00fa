//! A rule's documentation as the report carries it: everything `dbaudit
//! rules explain`, docs/rules.md and SARIF's rule help show, so that a
//! renderer needs the report alone (not the rule set that produced it).

use serde::{Deserialize, Serialize};

use crate::facts::ResourceKind;
use crate::finding::Severity;
use crate::rules::Rule;
use crate::vocab::Service;

/// Where a rule is defined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinedIn {
    pub path: String,
    pub line: usize,
    /// Part of dbaudit's built-in pack (documented in docs/rules.md).
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleDoc {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub resource: ResourceKind,
    /// Environments the rule applies to; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// Services whose collection gaps make the rule's outcome `error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Service>,
    #[serde(default)]
    pub defined_in: DefinedIn,
    #[serde(default)]
    pub rationale: String,
    #[serde(default)]
    pub remediation: String,
    /// The CEL expression selecting the resources the rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_if: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none_applies_error: Option<String>,
    /// The CEL expression that passes.
    #[serde(default)]
    pub condition: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// The compliance controls the rule checks, per framework
    /// (docs/compliance.md).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub compliance: std::collections::BTreeMap<String, Vec<String>>,
}

impl RuleDoc {
    pub fn of(rule: &Rule) -> RuleDoc {
        RuleDoc {
            id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            resource: rule.resource,
            environments: rule.environments.clone(),
            needs: rule.needs().collect(),
            defined_in: DefinedIn {
                path: rule.source.path.display().to_string(),
                line: rule.source.line,
                builtin: rule.source.builtin,
            },
            rationale: rule.rationale.clone(),
            remediation: rule.remediation.clone(),
            applies_if: rule.applies_if.as_ref().map(|a| a.source.clone()),
            none_applies_error: rule.none_applies_error.clone(),
            condition: rule.condition.source.clone(),
            references: rule.references.clone(),
            compliance: rule.compliance.clone(),
        }
    }

    /// `fsbp RDS.27`, `cis_aws_v5 2.2.1`, …: each control as framework and
    /// id, in the frameworks' order (ASFF's related requirements, OCSF's
    /// requirements).
    pub fn requirements(&self) -> Vec<String> {
        crate::compliance::frameworks()
            .into_iter()
            .flat_map(|f| {
                self.compliance
                    .get(f)
                    .into_iter()
                    .flatten()
                    .map(move |id| format!("{f} {id}"))
            })
            .collect()
    }

    /// `fsbp RDS.27; cis_aws_v5 2.2.1`, in the frameworks' order.
    pub fn compliance_line(&self) -> String {
        crate::compliance::frameworks()
            .into_iter()
            .filter_map(|f| {
                self.compliance
                    .get(f)
                    .filter(|ids| !ids.is_empty())
                    .map(|ids| format!("{f} {}", ids.join(", ")))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The rule as Markdown; `level` is the heading level of its title.
    pub fn markdown(&self, level: usize) -> String {
        let h = "#".repeat(level);
        let envs = if self.environments.is_empty() {
            "all".to_string()
        } else {
            self.environments.join(", ")
        };
        let mut out = format!("{h} `{}`: {}\n\n", self.id, self.title);
        out.push_str(&format!(
            "- severity: **{}**\n- resource: `{}`\n- environments: {envs}\n",
            self.severity,
            self.resource.as_str()
        ));
        if !self.needs.is_empty() {
            let needs: Vec<&str> = self.needs.iter().map(|s| s.as_str()).collect();
            out.push_str(&format!(
                "- needs collected data from: {}\n",
                needs.join(", ")
            ));
        }
        if !self.compliance.is_empty() {
            out.push_str(&format!("- compliance: {}\n", self.compliance_line()));
        }
        out.push_str(&format!(
            "- defined in: `{}:{}`\n\n",
            self.defined_in.path, self.defined_in.line
        ));
        out.push_str(&format!(
            "**Why.** {}\n\n",
            self.rationale.replace('\n', " ")
        ));
        out.push_str(&format!(
            "**Fix.** {}\n\n",
            self.remediation.replace('\n', " ")
        ));
        if let Some(a) = &self.applies_if {
            out.push_str(&format!("Applies when: `{a}`\n\n"));
        }
        if let Some(m) = &self.none_applies_error {
            out.push_str(&format!(
                "When nothing in an account applies: `error` ({})\n\n",
                m.replace('\n', " ")
            ));
        }
        out.push_str(&format!("Passes when: `{}`\n\n", self.condition));
        if !self.references.is_empty() {
            out.push_str("References:\n");
            for r in &self.references {
                out.push_str(&format!("- <{r}>\n"));
            }
            out.push('\n');
        }
        out
    }

    /// The anchor of the rule's section in docs/rules.md.
    pub fn anchor(&self) -> String {
        anchor(&self.id)
    }
}

pub fn anchor(id: &str) -> String {
    id.replace('.', "-")
}
