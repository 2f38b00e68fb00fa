//! The keys of `dbaudit.toml`, declared once: the validator's lists of known
//! keys come from here, and so does the published JSON Schema
//! (`docs/dbaudit.schema.json`, for editors such as taplo / VS Code), so
//! the two cannot drift apart.

use serde_json::{Map, Value, json};

/// What a key holds.
pub enum Kind {
    String,
    /// A string matching a regular expression (JSON Schema `pattern`).
    Pattern(&'static str),
    Bool,
    Integer {
        min: i64,
        max: i64,
    },
    Strings,
    /// Rule parameters: any names, scalar or array values (checked against
    /// the rules when they are loaded).
    Params,
    Table(&'static [Key]),
    /// An array of tables (`[[account]]`).
    Tables(&'static [Key]),
    /// A table of tables keyed by any name (`[environments.<env>]`).
    Named(&'static [Key]),
    /// A table of string values (waiver `tags`).
    StringMap,
    /// A date (`2027-01-31`) or a string holding one.
    Date,
}

pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub doc: &'static str,
}

const fn key(name: &'static str, kind: Kind, doc: &'static str) -> Key {
    Key {
        name,
        kind,
        required: false,
        doc,
    }
}

const fn required(name: &'static str, kind: Kind, doc: &'static str) -> Key {
    Key {
        name,
        kind,
        required: true,
        doc,
    }
}

/// Keys of both `[environments.<env>]` and `[[account]]` (the account's win).
const EKS_SECURITY_GROUPS: Key = key(
    "eks_cluster_security_groups",
    Kind::Strings,
    "The EKS cluster's security groups, when the audit role sees no EKS cluster.",
);
const EKS_VPC_IDS: Key = key(
    "eks_vpc_ids",
    Kind::Strings,
    "The EKS cluster's VPCs, when the audit role sees no EKS cluster.",
);

pub const ACCOUNT: &[Key] = &[
    required(
        "name",
        Kind::String,
        "Unique name used on the command line (--account NAME) and in reports.",
    ),
    required(
        "environment",
        Kind::String,
        "Environment of the account (test, prod, …); rules filter on it.",
    ),
    required(
        "account_id",
        Kind::Pattern("^[0-9]{12}$"),
        "The 12-digit AWS account id; a live scan refuses credentials of another account.",
    ),
    key(
        "role_arn",
        Kind::Pattern("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$"),
        "The read-only audit role to assume (docs/audit-role/).",
    ),
    key(
        "external_id",
        Kind::String,
        "The external id the role's trust policy requires.",
    ),
    key(
        "session_name",
        Kind::String,
        "STS session name (default dbaudit).",
    ),
    key(
        "duration_seconds",
        Kind::Integer {
            min: 900,
            max: 43200,
        },
        "Session length, 900–43200 seconds.",
    ),
    key(
        "via_roles",
        Kind::Strings,
        "Roles to assume first, in order (role chaining).",
    ),
    key(
        "regions",
        Kind::Strings,
        "Regions of this account (default: the top-level regions).",
    ),
    key(
        "databases_expected",
        Kind::Bool,
        "Overrides the environment's databases_expected for this account.",
    ),
    EKS_SECURITY_GROUPS,
    EKS_VPC_IDS,
];

pub const ENVIRONMENT: &[Key] = &[
    key(
        "params",
        Kind::Params,
        "Rule parameters for this environment.",
    ),
    key(
        "databases_expected",
        Kind::Bool,
        "Whether the environment's accounts must hold databases (default true): an account where none is found is an error.",
    ),
    EKS_SECURITY_GROUPS,
    EKS_VPC_IDS,
];

pub const DEVELOPERS: &[Key] = &[
    key(
        "groups",
        Kind::Strings,
        "IAM groups whose users are developers.",
    ),
    key("users", Kind::Strings, "IAM users who are developers."),
    key(
        "role_globs",
        Kind::Strings,
        "Role name patterns of developers (e.g. AWSReservedSSO_Developer*).",
    ),
];

pub const RULES: &[Key] = &[key(
    "disable",
    Kind::Strings,
    "Rule ids or globs never evaluated (listed in the report as not evaluated).",
)];

pub const SARIF_LOCATION: &[Key] = &[
    required(
        "resource",
        Kind::String,
        "ARN glob of the resources defined there.",
    ),
    required(
        "path",
        Kind::Pattern("^[^/\\\\]"),
        "Repository path of the definition (relative to the repository root).",
    ),
    key(
        "line",
        Kind::Integer {
            min: 1,
            max: i64::MAX,
        },
        "Line of the definition.",
    ),
];

pub const HISTORY: &[Key] = &[
    required(
        "store",
        Kind::String,
        "The findings history runs are recorded in: a SQLite file (relative to this file; created if missing) or a postgres:// URL.",
    ),
    key(
        "keep_runs",
        Kind::Integer {
            min: 1,
            max: i64::MAX,
        },
        "After each recorded run, keep the per-finding rows of only the latest N runs (runs and periods are always kept; as `dbaudit history prune --keep-runs N`).",
    ),
];

pub const DATABASES: &[Key] = &[
    required(
        "connect",
        Kind::Bool,
        "Connect to each Aurora PostgreSQL cluster's databases and read their roles and grants (docs/in-database.md). Off unless set.",
    ),
    key(
        "environments",
        Kind::Strings,
        "Only the accounts of these environments (default: every environment).",
    ),
    key(
        "user",
        Kind::String,
        "The audit DB user to sign in as (default dbaudit_audit).",
    ),
    key(
        "auth",
        Kind::Pattern("^(iam|password)$"),
        "`iam` (default): an IAM auth token signed with the scan's credentials; `password`: the password in DBAUDIT_DB_PASSWORD.",
    ),
    key(
        "via",
        Kind::Pattern("^(direct|parts)$"),
        "`direct` (default): collect connects to the databases itself; `parts`: the databases are read where they are reachable (`dbaudit databases`, in the cluster) and attached by `dbaudit merge`, and collect records each cluster as awaiting its part.",
    ),
    key(
        "sslrootcert",
        Kind::String,
        "The CA bundle the servers' certificates are verified against (e.g. RDS's global bundle; relative to this file). Default: the system's store.",
    ),
    key(
        "concurrency",
        Kind::Integer { min: 1, max: 64 },
        "Databases read at once in an account (default 4).",
    ),
    key(
        "connect_timeout_seconds",
        Kind::Integer { min: 1, max: 300 },
        "How long a connection may take (default 10).",
    ),
    key(
        "statement_timeout_ms",
        Kind::Integer {
            min: 100,
            max: 600_000,
        },
        "How long one catalog query may take (default 5000).",
    ),
    key(
        "schemas",
        Kind::StringMap,
        "Service name → the schema its application writes to (default: the service's name), for db.access.app-user-owns-its-schema.",
    ),
    key(
        "addresses",
        Kind::StringMap,
        "Endpoint name (or a pattern with *) → IP:PORT to connect to instead (a tunnel, or a test server); TLS still verifies the endpoint's name.",
    ),
];

pub const SARIF: &[Key] = &[
    key(
        "source_tag",
        Kind::String,
        "Resource tag holding `path#Lline` of the resource's definition (default dbaudit:source).",
    ),
    key(
        "location",
        Kind::Tables(SARIF_LOCATION),
        "Where resources matching an ARN glob are defined in the repository.",
    ),
];

pub const WAIVER: &[Key] = &[
    required(
        "rule",
        Kind::String,
        "The rule id the waiver accepts deviations of.",
    ),
    required(
        "reason",
        Kind::String,
        "Why the deviation is accepted (not empty).",
    ),
    key(
        "resource",
        Kind::String,
        "Resource id or ARN glob the waiver covers.",
    ),
    key(
        "account",
        Kind::String,
        "Account name (glob) the waiver covers.",
    ),
    key(
        "tags",
        Kind::StringMap,
        "Resource tags the waiver covers (all must match).",
    ),
    key(
        "expires",
        Kind::Date,
        "Date (YYYY-MM-DD) after which the waiver no longer applies.",
    ),
    key("owner", Kind::String, "Who answers for the deviation."),
    key("ticket", Kind::String, "Where the deviation is tracked."),
];

pub const ORGANIZATION_ENVIRONMENT: &[Key] = &[
    required(
        "environment",
        Kind::String,
        "The environment of the accounts this entry matches (first match wins).",
    ),
    key(
        "ou",
        Kind::String,
        "OU path from the root, `/`-separated, `*` matching any run of characters (Workloads/Prod, Workloads/*/Prod).",
    ),
    key(
        "tag",
        Kind::Pattern("^[^=]+=.*$"),
        "An account tag, KEY=VALUE (with `ou`, both must match).",
    ),
];

pub const ORGANIZATION: &[Key] = &[
    key(
        "role_arn",
        Kind::Pattern("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$"),
        "Role in the management or delegated-administrator account that may list the organization (default: the base credentials).",
    ),
    key(
        "external_id",
        Kind::String,
        "External id that role's trust policy requires.",
    ),
    required(
        "audit_role",
        Kind::String,
        "Name of the audit role in each account (docs/audit-role/); `{account_id}` and `{name}` are replaced.",
    ),
    key(
        "audit_external_id",
        Kind::String,
        "External id of the audit roles; `{account_id}` and `{name}` are replaced.",
    ),
    key(
        "accounts_file",
        Kind::String,
        "The resolved account list, written by `dbaudit accounts -o FILE`: read instead of calling Organizations when it exists (so that N shards do not each list the organization). A path relative to this file, or s3://BUCKET/KEY (written once; `{date}` is the UTC date).",
    ),
    key(
        "environment",
        Kind::Tables(ORGANIZATION_ENVIRONMENT),
        "How accounts map to environments: [[organization.environment]] entries, first match wins; an account no entry matches is reported, not scanned.",
    ),
];

pub const TOP: &[Key] = &[
    key(
        "account",
        Kind::Tables(ACCOUNT),
        "One table per AWS account.",
    ),
    key(
        "params",
        Kind::Params,
        "Rule parameters for every environment.",
    ),
    key(
        "environments",
        Kind::Named(ENVIRONMENT),
        "Per-environment settings: [environments.<env>].",
    ),
    key(
        "service_tag",
        Kind::String,
        "Tag naming the service(s) a database serves (default service).",
    ),
    key(
        "developers",
        Kind::Table(DEVELOPERS),
        "Who the developers are, for the developer-access rules.",
    ),
    key(
        "regions",
        Kind::Strings,
        "Regions scanned in accounts that list none.",
    ),
    key(
        "waiver",
        Kind::Tables(WAIVER),
        "Accepted deviations, each with a reason and an optional expiry.",
    ),
    key(
        "sarif",
        Kind::Table(SARIF),
        "Where SARIF results point in the repository.",
    ),
    key(
        "collect_scps",
        Kind::Bool,
        "Read the accounts' service control policies from AWS Organizations.",
    ),
    key("rules", Kind::Table(RULES), "Rules turned off for good."),
    key(
        "organization",
        Kind::Table(ORGANIZATION),
        "Discover the accounts from AWS Organizations (besides any [[account]]).",
    ),
    key(
        "history",
        Kind::Table(HISTORY),
        "Record every scan and evaluation in a findings history (dbaudit history).",
    ),
    key(
        "databases",
        Kind::Table(DATABASES),
        "Read roles and grants inside the databases (opt-in; docs/in-database.md).",
    ),
];

/// The names of a table's keys, for the validator.
pub fn names(keys: &[Key]) -> Vec<&'static str> {
    keys.iter().map(|k| k.name).collect()
}

fn schema_of(kind: &Kind) -> Value {
    match kind {
        Kind::String => json!({"type": "string"}),
        Kind::Pattern(p) => json!({"type": "string", "pattern": p}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Integer { min, max } => {
            let mut v = json!({"type": "integer", "minimum": min});
            if *max < i64::MAX {
                v["maximum"] = json!(max);
            }
            v
        }
        Kind::Strings => json!({"type": "array", "items": {"type": "string"}}),
        Kind::Params => json!({
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "array"]}
        }),
        Kind::Table(keys) => table(keys),
        Kind::Tables(keys) => json!({"type": "array", "items": table(keys)}),
        Kind::Named(keys) => json!({"type": "object", "additionalProperties": table(keys)}),
        Kind::StringMap => json!({"type": "object", "additionalProperties": {"type": "string"}}),
        Kind::Date => json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}"}),
    }
}

fn table(keys: &[Key]) -> Value {
    let mut props = Map::new();
    for k in keys {
        let mut s = schema_of(&k.kind);
        s["description"] = json!(k.doc);
        props.insert(k.name.to_string(), s);
    }
    let required: Vec<&str> = keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    let mut t = json!({
        "type": "object",
        "properties": props,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        t["required"] = json!(required);
    }
    t
}

/// The JSON Schema of `dbaudit.toml` (draft-07, which taplo and the VS Code
/// TOML extensions read), pretty-printed with a final newline.
pub fn json_schema() -> String {
    let mut s = table(TOP);
    let obj = s.as_object_mut().expect("a table is an object");
    obj.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    obj.insert("title".into(), json!("dbaudit.toml"));
    obj.insert(
        "description".into(),
        json!("dbaudit's configuration: accounts, environments, developers, waivers (docs/configuration.md)."),
    );
    serde_json::to_string_pretty(&s).expect("schema serialises") + "\n"
}
