//! `dbaudit.toml`: accounts, per-environment parameters, tag keys and the
//! developer principal selectors. Validated in one pass that reports every
//! problem with `file:line:col`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config_keys as keys;
use crate::error::{Error, Location};
use crate::finding::{Finding, RepoLocation};
use crate::tomlspan::Reader;

/// Parameters handed to rule conditions as `params`, per environment.
pub type Params = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// File the config came from (for error and SARIF locations).
    pub path: Option<PathBuf>,
    pub accounts: Vec<AccountConfig>,
    /// `[params]`: defaults for every environment.
    pub params: Params,
    /// `[environments.<name>.params]`.
    pub environment_params: BTreeMap<String, Params>,
    /// Tag whose value names the service(s) a DB serves. Default `service`.
    pub service_tag: String,
    pub developers: DeveloperSelectors,
    /// Default regions for accounts that list none.
    pub regions: Vec<String>,
    /// `[[waiver]]` tables.
    pub waivers: Vec<crate::waivers::Waiver>,
    /// `[sarif]`: where results point in the repository.
    pub sarif: SarifConfig,
    /// Read the accounts' service control policies from AWS Organizations.
    pub collect_scps: bool,
    /// `[environments.<name>] databases_expected`: whether the accounts of
    /// an environment must hold databases (default true).
    pub environment_databases_expected: BTreeMap<String, bool>,
    /// `[rules] disable`: rule ids or globs never evaluated (listed in the
    /// report as such).
    pub disabled_rules: Vec<String>,
    /// Where each parameter of `[params]` and `[environments.*.params]` is
    /// set, for checking names and types against the rules.
    pub param_sites: Vec<ParamSite>,
    /// `[environments.<name>] eks_cluster_security_groups` / `eks_vpc_ids`.
    pub environment_eks: BTreeMap<String, EksConfig>,
    /// `[organization]`: accounts discovered from AWS Organizations.
    pub organization: Option<OrganizationConfig>,
    /// `[history] store`: a SQLite path (resolved against the config's
    /// directory) or a `postgres://` URL.
    pub history: Option<String>,
    /// `[history] keep_runs`: prune after each recorded run.
    pub history_keep_runs: Option<usize>,
    /// `[databases]`: the in-database collection (opt-in).
    pub databases: Option<DatabasesConfig>,
    /// `[databases.schemas]`: service name → the schema its application
    /// writes to (default: the service's own name). Read whether or not
    /// this run connects: evaluation of a collected snapshot needs it.
    pub databases_schemas: BTreeMap<String, String>,
}

/// `[databases]`: how the in-database collection connects
/// (docs/in-database.md).
#[derive(Debug, Clone, PartialEq)]
pub struct DatabasesConfig {
    /// Only these environments (empty: every one).
    pub environments: Vec<String>,
    pub user: String,
    pub auth: DbAuth,
    /// Whether collect connects itself, or leaves the databases to parts
    /// read in the cluster (`dbaudit databases`, attached by `merge`).
    pub via: DbVia,
    /// The CA bundle to verify servers against (`None`: the system store).
    pub sslrootcert: Option<PathBuf>,
    pub concurrency: usize,
    pub connect_timeout: std::time::Duration,
    pub statement_timeout_ms: u64,
    /// Endpoint name → address to connect to instead.
    pub addresses: BTreeMap<String, std::net::SocketAddr>,
}

/// How the audit DB user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbAuth {
    /// An IAM auth token (`rds-db:connect`), signed with the scan's
    /// credentials for the account.
    Iam,
    /// The password in `DBAUDIT_DB_PASSWORD`.
    Password,
}

/// Where the databases are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbVia {
    /// By `collect`/`scan` itself, which must reach the endpoints.
    Direct,
    /// By `dbaudit databases` where the endpoints are reachable (a Job in
    /// the cluster); `collect` records each cluster as awaiting its part.
    Parts,
}

impl DatabasesConfig {
    /// Whether the accounts of `environment` are read.
    pub fn wanted(&self, environment: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment)
    }
}

/// `[organization]`: where to list the accounts and how to map them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrganizationConfig {
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// The audit role's name in each account (`{account_id}`, `{name}`).
    pub audit_role: String,
    pub audit_external_id: Option<String>,
    /// The cached resolution (`dbaudit accounts -o FILE`): a path relative
    /// to the config's directory, or an `s3://bucket/key` URL (`{date}`
    /// expands to the UTC date).
    pub accounts_file: Option<PathBuf>,
    pub environments: Vec<EnvironmentMapping>,
}

/// One `[[organization.environment]]`: accounts under `ou` and/or with
/// `tag` belong to `environment`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvironmentMapping {
    pub environment: String,
    pub ou: Option<String>,
    /// (key, value)
    pub tag: Option<(String, String)>,
}

/// Which security groups and VPCs are the EKS cluster's, when the snapshot
/// cannot say (no EKS cluster visible to the audit role in a region).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EksConfig {
    pub security_groups: Vec<String>,
    pub vpc_ids: Vec<String>,
}

/// One parameter set in the config, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSite {
    pub name: String,
    pub value: serde_json::Value,
    /// The position of the value (its message is filled in by a check).
    pub at: crate::error::Problem,
}

/// `eks_cluster_security_groups` and `eks_vpc_ids` of a table, if either is set.
fn eks_config(r: &mut Reader, t: &toml::de::DeTable<'_>) -> Option<EksConfig> {
    let groups = r.string_array(
        t.get("eks_cluster_security_groups"),
        "eks_cluster_security_groups",
    );
    let vpcs = r.string_array(t.get("eks_vpc_ids"), "eks_vpc_ids");
    (groups.is_some() || vpcs.is_some()).then(|| EksConfig {
        security_groups: groups.unwrap_or_default(),
        vpc_ids: vpcs.unwrap_or_default(),
    })
}

/// JSON type names of parameter values, as a config error says them.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
        serde_json::Value::Null => "a date or time",
    }
}

/// Whether a value may stand where the default has another: only an
/// integer where a number is expected.
pub(crate) fn same_type(default: &serde_json::Value, value: &serde_json::Value) -> bool {
    let (d, v) = (json_type(default), json_type(value));
    d == v || (d == "a number" && v == "an integer")
}

fn param_sites(
    path: &Path,
    text: &str,
    table: Option<&toml::Spanned<toml::de::DeValue<'_>>>,
    out: &mut Vec<ParamSite>,
) {
    let Some(t) = table.and_then(|t| t.get_ref().as_table()) else {
        return;
    };
    for (k, v) in t.iter() {
        out.push(ParamSite {
            name: k.get_ref().to_string(),
            value: crate::tomlspan::to_json(v.get_ref()),
            at: crate::error::Problem::at(path, text, v.span().start, ""),
        });
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SarifConfig {
    /// Resource tag holding `path#Lline` of the resource's definition.
    pub source_tag: String,
    /// `[[sarif.location]]`: ARN glob → path and line.
    pub mappings: Vec<SourceMapping>,
}

impl Default for SarifConfig {
    fn default() -> Self {
        SarifConfig {
            source_tag: "dbaudit:source".to_string(),
            mappings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountConfig {
    pub name: String,
    pub environment: String,
    pub account_id: String,
    /// Role to assume in the account; `None` scans with the base credentials.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    pub duration_seconds: Option<i32>,
    /// Roles to assume, in order, before `role_arn` (role chaining).
    pub via_roles: Vec<String>,
    pub regions: Vec<String>,
    /// Overrides the environment's `databases_expected` for this account.
    pub databases_expected: Option<bool>,
    /// Overrides the environment's EKS security groups and VPCs.
    pub eks: Option<EksConfig>,
    /// Where the account is declared (SARIF falls back to this line).
    pub declared_at: Option<Location>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeveloperSelectors {
    pub groups: Vec<String>,
    pub users: Vec<String>,
    pub role_globs: Vec<String>,
}

impl Config {
    /// The regions an account is collected in: its own `regions`, else the
    /// top-level ones.
    pub fn regions_of<'a>(&'a self, account: &'a AccountConfig) -> &'a [String] {
        if account.regions.is_empty() {
            &self.regions
        } else {
            &account.regions
        }
    }

    /// What a collection of `accounts` sets out to read: each account with
    /// its regions (a snapshot's `plan`; for a snapshot without one, the
    /// plan of every declared account is what `evaluate` expects).
    pub fn plan(&self, accounts: &[AccountConfig]) -> Vec<crate::snapshot::PlannedAccount> {
        accounts
            .iter()
            .map(|a| crate::snapshot::PlannedAccount {
                name: a.name.clone(),
                environment: a.environment.clone(),
                account_id: a.account_id.clone(),
                shard: 0,
                regions: self.regions_of(a).to_vec(),
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = crate::error::read_to_string(path)?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let mut r = Reader::new(path, text);
        let doc = r.parse()?;
        let top = doc.get_ref();
        r.deny_unknown(top, "dbaudit.toml", &keys::names(keys::TOP));

        let mut cfg = Config {
            path: Some(path.to_path_buf()),
            service_tag: "service".to_string(),
            ..Config::default()
        };
        if let Some(tag) = r.string(top.get("service_tag"), "service_tag") {
            cfg.service_tag = tag;
        }
        cfg.regions = r
            .string_array(top.get("regions"), "regions")
            .unwrap_or_default();
        cfg.params = r.params(top.get("params"), "params");
        param_sites(path, text, top.get("params"), &mut cfg.param_sites);
        if let Some((envs, _)) = r.table(top.get("environments"), "environments") {
            for (name, env) in envs.iter() {
                let key = format!("environments.{}", name.get_ref());
                if let Some((t, _)) = r.table(Some(env), &key) {
                    r.deny_unknown(t, &format!("[{key}]"), &keys::names(keys::ENVIRONMENT));
                    if let Some(eks) = eks_config(&mut r, t) {
                        cfg.environment_eks.insert(name.get_ref().to_string(), eks);
                    }
                    let params = r.params(t.get("params"), &format!("{key}.params"));
                    param_sites(path, text, t.get("params"), &mut cfg.param_sites);
                    if let Some(b) = r.bool(t.get("databases_expected"), "databases_expected") {
                        cfg.environment_databases_expected
                            .insert(name.get_ref().to_string(), b);
                    }
                    cfg.environment_params
                        .insert(name.get_ref().to_string(), params);
                }
            }
        }
        if let Some((t, _)) = r.table(top.get("rules"), "rules") {
            r.deny_unknown(t, "[rules]", &keys::names(keys::RULES));
            cfg.disabled_rules = r
                .string_array(t.get("disable"), "disable")
                .unwrap_or_default();
        }
        if let Some((dev, _)) = r.table(top.get("developers"), "developers") {
            r.deny_unknown(dev, "[developers]", &keys::names(keys::DEVELOPERS));
            cfg.developers = DeveloperSelectors {
                groups: r
                    .string_array(dev.get("groups"), "groups")
                    .unwrap_or_default(),
                users: r
                    .string_array(dev.get("users"), "users")
                    .unwrap_or_default(),
                role_globs: r
                    .string_array(dev.get("role_globs"), "role_globs")
                    .unwrap_or_default(),
            };
        }

        cfg.collect_scps = r
            .bool(top.get("collect_scps"), "collect_scps")
            .unwrap_or(false);
        cfg.waivers = crate::waivers::parse_tables(&mut r, top.get("waiver"));
        if let Some((sarif, _)) = r.table(top.get("sarif"), "sarif") {
            r.deny_unknown(sarif, "[sarif]", &keys::names(keys::SARIF));
            if let Some(tag) = r.string(sarif.get("source_tag"), "source_tag") {
                cfg.sarif.source_tag = tag;
            }
            for loc in r.table_array(sarif.get("location"), "sarif.location") {
                let t = *loc.get_ref();
                let start = loc.span().start;
                r.deny_unknown(t, "[[sarif.location]]", &keys::names(keys::SARIF_LOCATION));
                let res_v = r.required(t, start, "resource", "[[sarif.location]]");
                let resource = r.string(res_v, "resource");
                let path_v = r.required(t, start, "path", "[[sarif.location]]");
                let path = r.string(path_v, "path");
                if let (Some(p), Some(v)) = (&path, path_v)
                    && parse_source(p).is_none()
                {
                    r.problem(
                        v.span().start,
                        format!(
                            "`path` must be a relative path inside the repository, found `{p}`"
                        ),
                    );
                }
                let line = r.integer(t.get("line"), "line").unwrap_or(1);
                if line < 1
                    && let Some(v) = t.get("line")
                {
                    r.problem(v.span().start, "`line` must be 1 or more");
                }
                if let (Some(resource), Some(path)) = (resource, path) {
                    cfg.sarif.mappings.push(SourceMapping {
                        resource,
                        path,
                        line: line.max(1) as usize,
                    });
                }
            }
        }
        if let Some((history, start)) = r.table(top.get("history"), "history") {
            r.deny_unknown(history, "[history]", &keys::names(keys::HISTORY));
            let store = r.required(history, start, "store", "[history]");
            if let Some(n) = r.integer(history.get("keep_runs"), "keep_runs") {
                match usize::try_from(n) {
                    Ok(n) if n >= 1 => cfg.history_keep_runs = Some(n),
                    _ => r.problem(
                        history.get("keep_runs").map_or(start, |v| v.span().start),
                        "`keep_runs` must be at least 1 (the run just recorded keeps its findings)",
                    ),
                }
            }
            if let Some(store) = r.string(store, "store") {
                cfg.history = Some(
                    if store.starts_with("postgres://") || store.starts_with("postgresql://") {
                        store
                    } else {
                        path.parent()
                            .unwrap_or(Path::new("."))
                            .join(store)
                            .to_string_lossy()
                            .into_owned()
                    },
                );
            }
        }
        if let Some((db, start)) = r.table(top.get("databases"), "databases") {
            r.deny_unknown(db, "[databases]", &keys::names(keys::DATABASES));
            let connect = r.required(db, start, "connect", "[databases]");
            let connect = r.bool(connect, "connect").unwrap_or(false);
            let auth = match r.string(db.get("auth"), "auth").as_deref() {
                None | Some("iam") => DbAuth::Iam,
                Some("password") => DbAuth::Password,
                Some(other) => {
                    r.problem(
                        db.get("auth").map_or(start, |v| v.span().start),
                        format!("`auth` must be `iam` or `password`, found `{other}`"),
                    );
                    DbAuth::Iam
                }
            };
            let via = match r.string(db.get("via"), "via").as_deref() {
                None | Some("direct") => DbVia::Direct,
                Some("parts") => DbVia::Parts,
                Some(other) => {
                    r.problem(
                        db.get("via").map_or(start, |v| v.span().start),
                        format!("`via` must be `direct` or `parts`, found `{other}`"),
                    );
                    DbVia::Direct
                }
            };
            let bounded = |r: &mut Reader, key: &str, min: i64, max: i64, default: i64| match r
                .integer(db.get(key), key)
            {
                None => default,
                Some(n) if (min..=max).contains(&n) => n,
                Some(_) => {
                    r.problem(
                        db.get(key).map_or(start, |v| v.span().start),
                        format!("`{key}` must be between {min} and {max}"),
                    );
                    default
                }
            };
            let concurrency = bounded(&mut r, "concurrency", 1, 64, 4);
            let connect_timeout = bounded(&mut r, "connect_timeout_seconds", 1, 300, 10);
            let statement_timeout = bounded(&mut r, "statement_timeout_ms", 100, 600_000, 5000);
            let mut addresses = BTreeMap::new();
            if let Some((t, _)) = r.table(db.get("addresses"), "addresses") {
                for (k, v) in t.iter() {
                    match v.get_ref().as_str().map(str::parse::<std::net::SocketAddr>) {
                        Some(Ok(a)) => {
                            addresses.insert(k.get_ref().to_string(), a);
                        }
                        _ => r.problem(
                            v.span().start,
                            format!(
                                "address of `{}` must be IP:PORT (e.g. \"127.0.0.1:5432\")",
                                k.get_ref()
                            ),
                        ),
                    }
                }
            }
            if let Some((t, _)) = r.table(db.get("schemas"), "schemas") {
                for (k, v) in t.iter() {
                    match v.get_ref().as_str() {
                        Some(schema) => {
                            cfg.databases_schemas
                                .insert(k.get_ref().to_string(), schema.to_string());
                        }
                        None => r.problem(
                            v.span().start,
                            format!("the schema of service `{}` must be a string", k.get_ref()),
                        ),
                    }
                }
            }
            let settings = DatabasesConfig {
                environments: r
                    .string_array(db.get("environments"), "environments")
                    .unwrap_or_default(),
                user: r
                    .string(db.get("user"), "user")
                    .unwrap_or_else(|| "dbaudit_audit".into()),
                auth,
                via,
                sslrootcert: r
                    .string(db.get("sslrootcert"), "sslrootcert")
                    .map(|p| path.parent().unwrap_or(Path::new(".")).join(p)),
                concurrency: concurrency as usize,
                connect_timeout: std::time::Duration::from_secs(connect_timeout as u64),
                statement_timeout_ms: statement_timeout as u64,
                addresses,
            };
            cfg.databases = connect.then_some(settings);
        }
        if let Some((org, start)) = r.table(top.get("organization"), "organization") {
            r.deny_unknown(org, "[organization]", &keys::names(keys::ORGANIZATION));
            let audit = r.required(org, start, "audit_role", "[organization]");
            let audit_role = r.string(audit, "audit_role").unwrap_or_default();
            let role_arn = r.string(org.get("role_arn"), "role_arn");
            if let (Some(arn), Some(v)) = (&role_arn, org.get("role_arn"))
                && !is_role_arn(arn)
            {
                r.problem(
                    v.span().start,
                    format!("`role_arn` must look like arn:aws:iam::123456789012:role/NAME, found `{arn}`"),
                );
            }
            let mut environments = Vec::new();
            for table in r.table_array(org.get("environment"), "environment") {
                let t = table.get_ref();
                let at = table.span().start;
                r.deny_unknown(
                    t,
                    "[[organization.environment]]",
                    &keys::names(keys::ORGANIZATION_ENVIRONMENT),
                );
                let env = r.required(t, at, "environment", "[[organization.environment]]");
                let environment = r.string(env, "environment").unwrap_or_default();
                let ou = r.string(t.get("ou"), "ou");
                let tag = r.string(t.get("tag"), "tag");
                let parsed_tag = tag.as_ref().and_then(|t| {
                    t.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                });
                if let (Some(tag), Some(v)) = (&tag, t.get("tag"))
                    && parsed_tag.as_ref().is_none_or(|(k, _)| k.is_empty())
                {
                    r.problem(
                        v.span().start,
                        format!("`tag` must be KEY=VALUE, found `{tag}`"),
                    );
                }
                if ou.is_none() && tag.is_none() {
                    r.problem(
                        at,
                        "[[organization.environment]] needs `ou`, `tag` or both: which accounts does it match?",
                    );
                }
                environments.push(EnvironmentMapping {
                    environment,
                    ou,
                    tag: parsed_tag,
                });
            }
            cfg.organization = Some(OrganizationConfig {
                role_arn,
                external_id: r.string(org.get("external_id"), "external_id"),
                audit_role,
                audit_external_id: r.string(org.get("audit_external_id"), "audit_external_id"),
                // An `s3://` URL is kept as it is (a store all shards read).
                accounts_file: r
                    .string(org.get("accounts_file"), "accounts_file")
                    .map(|f| {
                        if f.starts_with("s3://") {
                            PathBuf::from(f)
                        } else {
                            path.parent().unwrap_or(Path::new(".")).join(f)
                        }
                    }),
                environments,
            });
        }
        for table in r.table_array(top.get("account"), "account") {
            let t = table.get_ref();
            let start = table.span().start;
            r.deny_unknown(t, "[[account]]", &keys::names(keys::ACCOUNT));
            let name = r.required(t, start, "name", "[[account]]");
            let name = r.string(name, "name").unwrap_or_default();
            let env = r.required(t, start, "environment", "[[account]]");
            let environment = r.string(env, "environment").unwrap_or_default();
            let id_value = r.required(t, start, "account_id", "[[account]]");
            let account_id = r.string(id_value, "account_id").unwrap_or_default();
            if let Some(v) = id_value
                && v.get_ref().is_str()
                && !is_account_id(&account_id)
            {
                r.problem(
                    v.span().start,
                    format!("`account_id` must be 12 digits, found `{account_id}`"),
                );
            }
            let role_arn = r.string(t.get("role_arn"), "role_arn");
            if let (Some(arn), Some(v)) = (&role_arn, t.get("role_arn"))
                && !is_role_arn(arn)
            {
                r.problem(
                    v.span().start,
                    format!("`role_arn` must look like arn:aws:iam::123456789012:role/NAME, found `{arn}`"),
                );
            }
            let duration = r.integer(t.get("duration_seconds"), "duration_seconds");
            if let (Some(d), Some(v)) = (duration, t.get("duration_seconds"))
                && !(900..=43200).contains(&d)
            {
                r.problem(
                    v.span().start,
                    "`duration_seconds` must be between 900 and 43200",
                );
            }
            if cfg.accounts.iter().any(|a| a.name == name)
                && let Some(v) = t.get("name")
            {
                r.problem(v.span().start, format!("duplicate account name `{name}`"));
            }
            cfg.accounts.push(AccountConfig {
                name,
                environment,
                account_id,
                role_arn,
                external_id: r.string(t.get("external_id"), "external_id"),
                session_name: r.string(t.get("session_name"), "session_name"),
                duration_seconds: duration.map(|d| d as i32),
                via_roles: r
                    .string_array(t.get("via_roles"), "via_roles")
                    .unwrap_or_default(),
                regions: r
                    .string_array(t.get("regions"), "regions")
                    .unwrap_or_default(),
                databases_expected: r.bool(t.get("databases_expected"), "databases_expected"),
                eks: eks_config(&mut r, t),
                declared_at: Some(Location::from_offset(path, text, start)),
            });
        }
        r.finish()?;
        Ok(cfg)
    }

    /// Parameters for one environment: built-in defaults, then the built-in
    /// environment values, then this config's `[params]`, then its
    /// `[environments.<env>.params]`.
    pub fn params_for(&self, environment: &str, builtin: &BuiltinParams) -> Params {
        let mut out = builtin.default.clone();
        if let Some(p) = builtin.environments.get(environment) {
            out.extend(p.clone());
        }
        out.extend(self.params.clone());
        if let Some(p) = self.environment_params.get(environment) {
            out.extend(p.clone());
        }
        out
    }

    /// dbaudit.toml as a repository-relative path, for code-scanning
    /// locations (relative to the working directory, where CI runs).
    pub fn repository_path(&self) -> String {
        let Some(path) = &self.path else {
            return "dbaudit.toml".to_string();
        };
        let rel = if path.is_absolute() {
            std::env::current_dir()
                .ok()
                .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(path.file_name().unwrap_or_default()))
        } else {
            path.clone()
        };
        rel.to_string_lossy()
            .trim_start_matches("./")
            .replace('\\', "/")
    }

    /// Where a finding lives in the repository: its resource's source tag,
    /// else the first `[[sarif.location]]` mapping matching its ARN, else
    /// the line of this file (at `config_path`) declaring its account.
    pub fn locate(&self, f: &Finding, config_path: &str) -> RepoLocation {
        if let Some(src) = &f.source
            && let Some((path, line)) = parse_source(src)
        {
            return RepoLocation { path, line };
        }
        if let Some(m) = self
            .sarif
            .mappings
            .iter()
            .find(|m| crate::glob::matches(&m.resource, &f.resource_arn))
        {
            return RepoLocation {
                path: m.path.clone(),
                line: m.line.max(1),
            };
        }
        let line = self
            .account(&f.account)
            .and_then(|a| a.declared_at.as_ref())
            .map_or(1, |d| d.line);
        RepoLocation {
            path: config_path.to_string(),
            line,
        }
    }

    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The accounts to collect: every one with `all`, else those `names`
    /// (each once, in the order given). An unknown name, or an account with
    /// no regions to scan, is a usage error.
    pub fn select_accounts(
        &self,
        names: &[String],
        all: bool,
    ) -> Result<Vec<AccountConfig>, Error> {
        if self.accounts.is_empty() {
            return Err(Error::Usage(
                "the config declares no [[account]]".to_string(),
            ));
        }
        if all {
            return Ok(self.accounts.clone());
        }
        let mut out: Vec<AccountConfig> = Vec::new();
        for name in names {
            match self.account(name) {
                // `--account prod --account prod` collects prod once.
                Some(a) if out.iter().any(|o| o.name == a.name) => {}
                Some(a) => out.push(a.clone()),
                None => {
                    let known: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
                    return Err(Error::Usage(format!(
                        "no account `{name}` in the config; known accounts: {}",
                        known.join(", ")
                    )));
                }
            }
        }
        for a in &out {
            if a.regions.is_empty() && self.regions.is_empty() {
                return Err(Error::Usage(format!(
                    "account `{}` lists no regions and the config has no top-level `regions`",
                    a.name
                )));
            }
        }
        Ok(out)
    }

    /// The EKS security groups and VPCs configured for an account: its
    /// own, else its environment's.
    pub fn eks_for(&self, account: &str, environment: &str) -> Option<&EksConfig> {
        self.account(account)
            .and_then(|a| a.eks.as_ref())
            .or_else(|| self.environment_eks.get(environment))
    }

    /// Whether an account must hold databases: its own `databases_expected`,
    /// else its environment's, else true (an account with none is then an
    /// error: a wrong region list must not pass as a clean audit).
    pub fn databases_expected(&self, account: &str, environment: &str) -> bool {
        self.account(account)
            .and_then(|a| a.databases_expected)
            .or_else(|| {
                self.environment_databases_expected
                    .get(environment)
                    .copied()
            })
            .unwrap_or(true)
    }
}

/// Default rule parameters shipped with the rule pack (`rules/params.toml`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuiltinParams {
    pub default: Params,
    pub environments: BTreeMap<String, Params>,
}

impl BuiltinParams {
    pub fn parse(text: &str, path: &Path) -> Result<BuiltinParams, Error> {
        let mut r = Reader::new(path, text);
        let doc = r.parse()?;
        let mut out = BuiltinParams::default();
        for (name, v) in doc.get_ref().iter() {
            let p = r.params(Some(v), name.get_ref());
            if name.get_ref() == "default" {
                out.default = p;
            } else {
                out.environments.insert(name.get_ref().to_string(), p);
            }
        }
        r.finish()?;
        Ok(out)
    }

    /// Every parameter name known to the defaults (for rule validation).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.default.keys().cloned().collect();
        for p in self.environments.values() {
            names.extend(p.keys().cloned());
        }
        names.sort();
        names.dedup();
        names
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && is_account_id(parts[4])
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
}

/// The annotated example written by `dbaudit init`.
pub const EXAMPLE: &str = include_str!("../docs/dbaudit.example.toml");

/// A config mapping from resource ARNs to a place in the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMapping {
    pub resource: String,
    pub path: String,
    pub line: usize,
}

/// `path#L12`, `path:12` or `path` (line 1); only relative paths inside
/// the repository are accepted.
pub fn parse_source(s: &str) -> Option<(String, usize)> {
    let s = s.trim();
    let (path, line) = if let Some((p, l)) = s.rsplit_once("#L") {
        (p, l.parse().ok()?)
    } else if let Some((p, l)) = s.rsplit_once(':')
        && let Ok(n) = l.parse::<usize>()
    {
        (p, n)
    } else {
        (s, 1)
    };
    let path = path.trim_start_matches("./");
    if path.is_empty() || path.starts_with('/') || path.contains("..") || path.contains("://") {
        return None;
    }
    Some((path.to_string(), line.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_valid() {
        let cfg = Config::parse(EXAMPLE, Path::new("dbaudit.toml")).unwrap();
        assert_eq!(cfg.accounts.len(), 2);
        assert_eq!(cfg.accounts[1].environment, "prod");
    }

    #[test]
    fn reports_every_problem_with_positions() {
        let text = "colour = 1\n[[account]]\nname = \"prod\"\nenvironment = \"prod\"\naccount_id = \"12\"\nrole = \"x\"\n";
        let err = Config::parse(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml:1:1: unknown key `colour`"), "{err}");
        assert!(
            err.contains("c.toml:5:14: `account_id` must be 12 digits"),
            "{err}"
        );
        assert!(err.contains("c.toml:6:1: unknown key `role`"), "{err}");
        assert!(err.contains("did you mean `role_arn`?"), "{err}");
        assert!(err.contains("3 problems found"), "{err}");
    }

    /// `[databases]`: off unless `connect = true`; every setting read with
    /// its default; a bad address, auth or bound is located.
    #[test]
    fn databases_section() {
        let cfg = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(cfg.databases, None);
        let off = Config::parse("[databases]\nconnect = false\n", Path::new("c.toml")).unwrap();
        assert_eq!(off.databases, None);
        let on = Config::parse(
            "[databases]\nconnect = true\nenvironments = [\"prod\"]\nsslrootcert = \"ca.pem\"\n[databases.addresses]\n\"a.rds.amazonaws.com\" = \"127.0.0.1:5433\"\n",
            Path::new("conf/c.toml"),
        )
        .unwrap()
        .databases
        .unwrap();
        assert_eq!(on.user, "dbaudit_audit");
        assert_eq!(on.auth, DbAuth::Iam);
        assert_eq!(on.concurrency, 4);
        assert_eq!(on.sslrootcert, Some(PathBuf::from("conf/ca.pem")));
        assert!(on.wanted("prod") && !on.wanted("test"));
        assert_eq!(on.addresses["a.rds.amazonaws.com"].port(), 5433);
        let err = Config::parse(
            "[databases]\nconnect = true\nauth = \"kerberos\"\nconcurrency = 0\n[databases.addresses]\nx = \"localhost\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml:3:8:"), "{err}");
        assert!(
            err.contains("c.toml:4:15: `concurrency` must be between 1 and 64"),
            "{err}"
        );
        assert!(
            err.contains("c.toml:6:5: address of `x` must be IP:PORT"),
            "{err}"
        );
        let missing = Config::parse("[databases]\nuser = \"a\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("connect"), "{missing}");
    }
}
