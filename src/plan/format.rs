//! The JSON of `terraform show -json PLANFILE` (the "JSON output format",
//! `format_version` 1.x): the parts dbaudit reads. Values stay JSON: each
//! resource type's attributes are read where they are applied (`apply.rs`).
//!
//! Tested against plans written in the format of Terraform 1.5–1.9 (and
//! OpenTofu 1.6–1.8, which writes the same document): hashicorp's
//! terraform-json testdata shows its shape. Format 1.x only adds fields, so
//! an unknown field is ignored, never an error; another major is refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Location};

/// The plan JSON format majors this dbaudit reads.
pub const FORMAT_MAJOR: &str = "1";

#[derive(Debug, Clone, Deserialize)]
pub struct PlanJson {
    pub format_version: String,
    #[serde(default)]
    pub terraform_version: Option<String>,
    #[serde(default)]
    pub resource_changes: Vec<ResourceChange>,
    #[serde(default)]
    pub prior_state: Option<State>,
    #[serde(default)]
    pub configuration: Option<Configuration>,
    /// `false` when the plan could not be applied (`terraform plan` failed
    /// part way): such a plan predicts nothing.
    #[serde(default)]
    pub errored: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceChange {
    /// `module.db["orders"].aws_rds_cluster.this[0]`.
    pub address: String,
    #[serde(default)]
    pub module_address: Option<String>,
    /// `managed` or `data`.
    pub mode: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    /// The `count` index (number) or `for_each` key (string), if any.
    #[serde(default)]
    pub index: Option<Value>,
    pub change: Change,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    /// `no-op`, `create`, `read`, `update`, `delete`, `forget`, or a
    /// replacement (`delete`+`create` in either order).
    pub actions: Vec<String>,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    /// Attributes known only after apply: `true` where unknown, mirroring
    /// `after`'s shape.
    #[serde(default)]
    pub after_unknown: Option<Value>,
}

/// What a change does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    NoOp,
    Create,
    Update,
    Delete,
    Replace,
    /// `read` of a data source, `forget` (removed from state, not destroyed).
    Other,
}

impl Action {
    pub fn of(actions: &[String]) -> Action {
        let a: Vec<&str> = actions.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["no-op"] => Action::NoOp,
            ["create"] => Action::Create,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["delete", "create"] | ["create", "delete"] => Action::Replace,
            _ => Action::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
            Action::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct State {
    #[serde(default)]
    pub values: Option<StateValues>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StateValues {
    #[serde(default)]
    pub root_module: Option<StateModule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StateModule {
    #[serde(default)]
    pub resources: Vec<StateResource>,
    #[serde(default)]
    pub child_modules: Vec<StateModule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StateResource {
    pub address: String,
    #[serde(default)]
    pub values: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Configuration {
    #[serde(default)]
    pub provider_config: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub root_module: ConfigModule,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub expressions: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigModule {
    #[serde(default)]
    pub resources: Vec<ConfigResource>,
    #[serde(default)]
    pub module_calls: BTreeMap<String, ModuleCall>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConfigResource {
    /// The address inside its module, without instance keys.
    pub address: String,
    /// The provider configuration it uses (`aws`, `aws.replica`).
    #[serde(default)]
    pub provider_config_key: Option<String>,
    #[serde(default)]
    pub expressions: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModuleCall {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub module: ConfigModule,
}

impl PlanJson {
    /// Reads a plan: JSON errors with their line and column, another
    /// format major refused, an errored plan refused.
    pub fn load(path: &Path) -> Result<PlanJson, Error> {
        let text = crate::error::read_to_string_limited(path, crate::error::MAX_LARGE_INPUT)?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<PlanJson, Error> {
        let at = |line, column, message| Error::Input {
            location: Location::new(path, line, column),
            message,
        };
        #[derive(Deserialize)]
        struct Probe {
            format_version: Option<Value>,
        }
        let probe: Probe = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(e) if e.classify() == serde_json::error::Category::Data => Probe {
                format_version: None,
            },
            Err(e) => {
                return Err(at(
                    e.line(),
                    e.column(),
                    format!(
                        "not valid JSON: {e} (expected the output of `terraform show -json PLANFILE`)"
                    ),
                ));
            }
        };
        let version = match probe.format_version.as_ref().map(|v| v.as_str()) {
            Some(Some(v)) => v.to_string(),
            _ => {
                return Err(at(
                    1,
                    1,
                    "not a Terraform plan: expected a JSON object with \"format_version\" (the output of `terraform show -json PLANFILE`)".into(),
                ));
            }
        };
        if version.split('.').next() != Some(FORMAT_MAJOR) {
            return Err(at(
                1,
                1,
                format!(
                    "unsupported plan format_version `{version}`: this dbaudit reads the plan JSON format {FORMAT_MAJOR}.x"
                ),
            ));
        }
        let plan: PlanJson = serde_json::from_str(text)
            .map_err(|e| at(e.line(), e.column(), format!("not a Terraform plan: {e}")))?;
        if plan.errored {
            return Err(at(
                1,
                1,
                "the plan is marked `errored`: Terraform could not finish it, so it predicts nothing; fix the plan first".into(),
            ));
        }
        Ok(plan)
    }

    /// The `region` the default `aws` provider configuration names as a
    /// constant, if any.
    pub fn provider_region(&self) -> Option<String> {
        let cfg = self.configuration.as_ref()?;
        let aws = cfg.provider_config.get("aws")?;
        aws.expressions
            .get("region")?
            .get("constant_value")?
            .as_str()
            .map(str::to_string)
    }

    /// The region of the provider configuration a resource change uses,
    /// when the configuration states it as a constant (an alias such as
    /// `aws.replica` for another region).
    pub fn region_of(&self, rc: &ResourceChange) -> Option<String> {
        let (_, r) = self.config_of(rc)?;
        let key = r.provider_config_key.as_deref()?;
        // Module resources name their provider as `MODULE:aws` in older
        // Terraform versions: the part after the colon.
        let key = key.rsplit_once(':').map_or(key, |(_, k)| k);
        self.configuration
            .as_ref()?
            .provider_config
            .get(key)?
            .expressions
            .get("region")?
            .get("constant_value")?
            .as_str()
            .map(str::to_string)
    }

    /// The data sources Terraform read while planning, by address
    /// (`data.aws_security_group.eks`, `module.x.data.…`).
    pub fn data_sources(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        fn walk(m: &StateModule, out: &mut BTreeMap<String, Value>) {
            for r in &m.resources {
                out.insert(r.address.clone(), r.values.clone());
            }
            for c in &m.child_modules {
                walk(c, out);
            }
        }
        if let Some(root) = self
            .prior_state
            .as_ref()
            .and_then(|s| s.values.as_ref())
            .and_then(|v| v.root_module.as_ref())
        {
            walk(root, &mut out);
        }
        for rc in &self.resource_changes {
            if rc.mode == "data"
                && let Some(after) = &rc.change.after
            {
                out.insert(rc.address.clone(), after.clone());
            }
        }
        out
    }

    /// The configuration of a resource change: its module (by the module
    /// calls' names, instance keys dropped) and its `resource` block.
    pub fn config_of(&self, rc: &ResourceChange) -> Option<(Vec<String>, &ConfigResource)> {
        let cfg = self.configuration.as_ref()?;
        let path = module_path(rc.module_address.as_deref().unwrap_or(""));
        let mut module = &cfg.root_module;
        for name in &path {
            module = &module.module_calls.get(name)?.module;
        }
        let local = format!("{}.{}", rc.type_, rc.name);
        let local = if rc.mode == "data" {
            format!("data.{local}")
        } else {
            local
        };
        let r = module.resources.iter().find(|r| r.address == local)?;
        Some((path, r))
    }

    /// The `source` of each module call along a module path.
    pub fn module_sources(&self, path: &[String]) -> Option<Vec<String>> {
        let cfg = self.configuration.as_ref()?;
        let mut module = &cfg.root_module;
        let mut out = Vec::new();
        for name in path {
            let call = module.module_calls.get(name)?;
            out.push(call.source.clone());
            module = &call.module;
        }
        Some(out)
    }
}

/// The module call names of a module address: `module.a["k"].module.b[0]`
/// → `["a", "b"]`.
pub fn module_path(module_address: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = module_address;
    while let Some(r) = rest.strip_prefix("module.") {
        let end = r.find(['.', '[']).unwrap_or(r.len());
        out.push(r[..end].to_string());
        rest = &r[end..];
        // Skip an instance key: `["a.b"]` may hold dots.
        if rest.starts_with('[') {
            rest = skip_index(rest);
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    out
}

/// What follows an index `[…]` at the start of `s`, honouring quotes.
fn skip_index(s: &str) -> &str {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            ']' if !in_str => return &s[i + 1..],
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_drop_instance_keys_even_with_dots() {
        assert_eq!(module_path(""), Vec::<String>::new());
        assert_eq!(module_path("module.db"), vec!["db"]);
        assert_eq!(
            module_path("module.db[\"a.b]\"].module.rule[0]"),
            vec!["db", "rule"]
        );
    }

    #[test]
    fn actions_are_classified() {
        let a = |v: &[&str]| Action::of(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&["no-op"]), Action::NoOp);
        assert_eq!(a(&["create", "delete"]), Action::Replace);
        assert_eq!(a(&["delete", "create"]), Action::Replace);
        assert_eq!(a(&["read"]), Action::Other);
    }

    #[test]
    fn bad_plans_are_located_errors() {
        let p = Path::new("plan.json");
        let e = PlanJson::parse("{\"format_version\": \"1.2\", \"resource_changes\": [", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("plan.json:1:"), "{e}");
        assert!(e.contains("not valid JSON"), "{e}");
        let e = PlanJson::parse("{\"format_version\": \"2.0\"}", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported plan format_version `2.0`"), "{e}");
        let e = PlanJson::parse("{\"schema\": \"dbaudit.snapshot/v1.3\"}", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a Terraform plan"), "{e}");
        let e = PlanJson::parse(
            "{\"format_version\": \"1.2\",\n \"resource_changes\": [{\"address\": 3}]}",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("plan.json:2:"), "{e}");
        let e = PlanJson::parse("{\"format_version\": \"1.2\", \"errored\": true}", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("errored"), "{e}");
    }
}
