//! Command-line interface (clap derive). The commands themselves are in `app`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::OnIncomplete;
use crate::rules::Severity;

const EXIT_CODES: &str = "\
Exit codes:
  0  no failing finding at or above --fail-on
  1  the gate failed: a finding at or above --fail-on failed
  2  usage, config, rule or snapshot error (nothing was evaluated)
  3  evaluated, but some outcomes at or above --fail-on are `error` (data not
     collected or a rule that could not be evaluated) and --on-incomplete is fail";

#[derive(Debug, Parser)]
#[command(
    name = "dbaudit",
    version = crate::long_version(),
    about = "Audit AWS database infrastructure against a multi-environment design, as policy-as-code",
    long_about = "dbaudit gathers the facts that decide whether an AWS account's database estate follows \
the design (Aurora PostgreSQL in private subnets of the EKS VPC, security groups admitting only the EKS \
cluster, IAM database auth, readers across AZs, encryption, backups, deletion protection, one account per \
environment) into a versioned JSON snapshot, evaluates TOML rules on it, and reports findings with an exit \
code a release gate can trust.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); for
    /// `access --who-can-write`, every action and statement.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect from AWS and evaluate in one run: the main job.
    #[command(
        long_about = "Collect from AWS and evaluate in one run: the main job.\n\n\
Required: which accounts (--account NAME, repeatable, or --all-accounts) and a \
configuration declaring them (--config FILE, DBAUDIT_CONFIG, or ./dbaudit.toml; \
`dbaudit init` writes an annotated one).",
        after_help = EXIT_CODES
    )]
    Scan(ScanArgs),
    /// Collect a snapshot from AWS (read-only) and write it to a file.
    Collect(CollectArgs),
    /// Evaluate the rules on one or more saved snapshots and report (offline).
    #[command(after_help = EXIT_CODES)]
    Evaluate(EvaluateArgs),
    /// Gate a Terraform change before it lands: apply a plan (`terraform
    /// show -json`) to the live snapshot, evaluate what will be true after
    /// the apply, and fail on the findings the plan introduces, pointing at
    /// the .tf lines that cause them (docs/plan.md).
    #[command(
        long_about = "Gate a Terraform change before it lands.\n\n\
Applies a plan (`terraform show -json PLANFILE > plan.json`) to the live snapshot (`dbaudit collect`), \
evaluates the same rules on what will be true after the apply, and compares with the live snapshot's \
own evaluation: by default only findings the plan introduces fail the gate; existing ones are reported \
as existing, fixed ones as fixed. A rule that reads a fact the plan leaves unknown until apply gives \
`unknown` (gated like `error`, exit 3, unless --on-unknown warn). With --tf-dir, each finding the plan \
causes points at the .tf line that causes it (SARIF for GitHub code scanning). Never records a run in \
the history.",
        after_help = EXIT_CODES
    )]
    Plan(PlanArgs),
    /// Inspect and check rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write an annotated example dbaudit.toml.
    Init(InitArgs),
    /// Ask the IAM engine: can a principal perform an action on a resource,
    /// and which statements decide it? Or: who can write the databases of an
    /// environment?
    Access(AccessArgs),
    /// Compare two reports (new, fixed, unchanged failures) or two snapshots
    /// (resources added, removed, changed).
    Diff(DiffArgs),
    /// The accounts a scan covers: those of dbaudit.toml and, with
    /// `[organization]`, those discovered in AWS Organizations (mapped to
    /// environments; unmapped and suspended ones listed). `-o FILE` writes
    /// the resolved list for `[organization] accounts_file`, so that shards
    /// read it instead of each listing the organization.
    Accounts(AccountsArgs),
    /// Merge the parts of a sharded collection (`collect --shard K/N`) into
    /// one snapshot: every part present, every planned account exactly once;
    /// a missing part or account becomes a gap (exit 3). Database parts
    /// (`dbaudit databases`) in the same directory are attached to it (or
    /// to the one whole snapshot there). Then evaluate it.
    Merge(MergeArgs),
    /// Read roles and grants inside one account's Aurora PostgreSQL
    /// databases from where they are reachable (a Job in the EKS cluster),
    /// and write a database part for `dbaudit merge` to attach. The clusters
    /// come from a collected snapshot; the audit DB user signs in with an IAM
    /// token signed by this process's own credentials (docs/in-database.md).
    /// Exit 3 when a database could not be read.
    Databases(DatabasesArgs),
    /// An auditor's evidence pack for a framework: evaluate the snapshot and
    /// write into DIR, per control, the findings of the rules that map to
    /// it, their waivers (owner, reason, expiry), the control's history
    /// over the recorded runs and the digests of what was evaluated
    /// (docs/compliance.md).
    Evidence(EvidenceArgs),
    /// Send a report's findings where security teams collect them:
    /// `publish securityhub REPORT.json` imports them (ASFF, the same ids
    /// as `--report asff`) into each account's AWS Security Hub with that
    /// account's role. The one write dbaudit makes to AWS besides the
    /// shard store; exit 3 when some findings were not imported.
    #[command(subcommand)]
    Publish(PublishCommand),
    /// Query the findings history that `scan`/`evaluate --history` record:
    /// runs, a finding's open periods, what is open and since when, and
    /// times to fix.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Print a shell completion script, e.g.
    /// `dbaudit completions bash > /etc/bash_completion.d/dbaudit`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `dbaudit man > /usr/local/share/man/man1/dbaudit.1`;
    /// with --dir, write one page per command there.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `dbaudit history …`.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// The recorded runs, newest first: when, what they covered, their
    /// outcome counts and gate, and how many periods each opened and closed.
    Runs {
        #[command(flatten)]
        store: HistoryStoreArgs,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The periods in which one finding was open: by fingerprint (as the
    /// JSON and SARIF reports give it), or by rule id with --resource.
    Finding {
        #[command(flatten)]
        store: HistoryStoreArgs,
        /// A finding's fingerprint, or a rule id (with --resource).
        #[arg(value_name = "FINGERPRINT|RULE")]
        finding: String,
        /// The resource's ARN or id, when a rule id is given.
        #[arg(long, value_name = "ARN|ID")]
        resource: Option<String>,
    },
    /// The findings open now (at the latest run), oldest first, with the
    /// time they have been open.
    Open {
        #[command(flatten)]
        store: HistoryStoreArgs,
        /// Only these environments (repeatable).
        #[arg(long = "environment", value_name = "ENV")]
        environment: Vec<String>,
        /// Only rules of at least this severity.
        #[arg(long, value_enum, value_name = "SEVERITY")]
        severity: Option<SeverityArg>,
        /// Only these rules: an id or a glob like `db.network.*` (repeatable).
        #[arg(long = "rule", value_name = "ID|GLOB")]
        rule: Vec<String>,
    },
    /// Accept a recorded run's state as a baseline: `--baseline last` then
    /// counts its failures as existing (until they are fixed). For a
    /// reviewed run whose gate failed; a run whose gate passed is a
    /// baseline already. Who and why are recorded and shown by `history
    /// runs`.
    Accept {
        #[command(flatten)]
        store: HistoryStoreArgs,
        /// The run: its id or sequence number, as `history runs` lists it.
        #[arg(value_name = "RUN")]
        run: String,
        /// Why its failures are accepted (recorded with the run).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who accepts them (recorded with the run).
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Keep the store small: drop the per-run findings of all but the
    /// latest runs. Runs, their counts and every open/closed period stay, so
    /// the other queries answer as before; `--baseline last` compares only
    /// with runs whose findings are kept.
    Prune {
        #[command(flatten)]
        store: HistoryStoreArgs,
        /// How many of the latest runs keep their findings.
        #[arg(long, value_name = "N")]
        keep_runs: usize,
    },
    /// Per environment and rule: findings open now and over the last runs,
    /// how many were fixed, and the mean and median time to fix.
    Stats {
        #[command(flatten)]
        store: HistoryStoreArgs,
        /// Runs in the "open over time" series.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Only these environments (repeatable).
        #[arg(long = "environment", value_name = "ENV")]
        environment: Vec<String>,
    },
}

/// Where the history is and how to print it.
#[derive(Debug, Args, Clone)]
pub struct HistoryStoreArgs {
    /// The history: a SQLite file or a postgres:// URL. Default: `[history]
    /// store` of the configuration.
    #[arg(
        long,
        value_name = "FILE|URL",
        env = "DBAUDIT_HISTORY",
        hide_env_values = true
    )]
    pub history: Option<String>,
    /// Configuration file with `[history]`. Default: ./dbaudit.toml when it exists.
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
#[command(after_help = ACCESS_EXIT_CODES)]
pub struct AccessArgs {
    /// Snapshot to answer from (offline).
    #[arg(long, value_name = "FILE")]
    pub snapshot: PathBuf,
    /// Configuration (for `--who-can-write`: who the developers are).
    /// Default: ./dbaudit.toml when it exists.
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Principal ARN (user or role) to evaluate.
    #[arg(long, value_name = "ARN", requires_all = ["action", "resource"], conflicts_with = "who_can_write")]
    pub principal: Option<String>,
    /// Action, e.g. rds:ModifyDBCluster (checked against AWS's action
    /// catalogue; a misspelt name is an error that suggests the nearest).
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Resource ARN; `*` for actions that take no resource; or an ARN
    /// pattern with `*`/`?`, meaning "is there a resource in the snapshot
    /// matching this that the principal can act on?" (the answer lists them).
    #[arg(long, value_name = "ARN")]
    pub resource: Option<String>,
    /// Known request context, e.g. aws:MultiFactorAuthPresent=true (repeatable).
    /// Keys not given are unknown: answers that depend on them are `conditional`.
    /// A resource of the snapshot brings its own tags and region.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// A key absent from the request, e.g. aws:MultiFactorAuthPresent for a
    /// session without MFA (repeatable). AWS's operators treat absent keys
    /// by their own rules (negated operators match, IfExists holds…).
    #[arg(long = "context-absent", value_name = "KEY")]
    pub context_absent: Vec<String>,
    /// Exit 1 unless the answer is this (`deny` includes implicit deny): a
    /// scriptable check.
    #[arg(long, value_enum, requires = "principal")]
    pub expect: Option<Expect>,
    /// List every principal with a non-read RDS or security-group action on
    /// the resources of the accounts of this environment.
    #[arg(long, value_name = "ENV", required_unless_present = "principal")]
    pub who_can_write: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    pub format: DiffFormat,
}

/// Formats of `rules list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    Allow,
    Deny,
    Conditional,
}

const ACCESS_EXIT_CODES: &str = "Exit codes:
  0  the question was answered (and matched --expect, when given)
  1  --expect was given and the answer differs
  2  usage error: unknown action (the nearest name is suggested), malformed
     ARN, unknown principal or environment, unreadable snapshot or config";

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older report or snapshot (JSON); with `--environment`, a
    /// snapshot holding both environments.
    pub old: PathBuf,
    /// The newer report or snapshot (JSON); with `--environment`, an
    /// optional second snapshot merged with the first (e.g. test's and
    /// prod's own snapshots).
    pub new: Option<PathBuf>,
    /// Compare two environments of a snapshot per service instead of two
    /// runs: `--environment test --environment prod` lists, per service,
    /// the databases on each side and the differences the parity rules
    /// gate on (engine major version, IAM auth, cluster parameters other
    /// than `parity_may_differ`), and the services found on one side only.
    #[arg(long = "environment", value_name = "ENV")]
    pub environments: Vec<String>,
    /// With `--environment`: every compared setting too (engine, minor
    /// version, encryption, Serverless v2, parameters allowed to differ),
    /// not only what the parity rules gate on.
    #[arg(long)]
    pub all: bool,
    /// With `--environment`: the configuration naming the service tag
    /// (default: ./dbaudit.toml when it exists, else the tag `service`).
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    pub format: DiffFormat,
    /// Write to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Snapshot files written by `dbaudit collect` or `merge` (the accounts
    /// of several files are merged), or one directory or
    /// `s3://BUCKET/PREFIX` of shard parts, merged as `dbaudit merge`
    /// does (a missing part or account is a gap).
    #[arg(required = true, value_name = "SNAPSHOT|DIR|S3_URL")]
    pub snapshots: Vec<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
    /// How to reach an `s3://` source of shard parts.
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan as JSON: `terraform show -json PLANFILE > plan.json`
    /// (format 1.x; OpenTofu writes the same).
    #[arg(value_name = "PLAN.json")]
    pub plan: PathBuf,
    /// The live snapshot the plan applies to (`dbaudit collect -o`), or a
    /// directory or `s3://BUCKET/PREFIX` of shard parts (S3 read with the
    /// standard AWS credential chain).
    #[arg(long, required = true, value_name = "SNAPSHOT|DIR|S3_URL")]
    pub snapshot: Vec<PathBuf>,
    /// The account the plan changes (name or id). Default: the snapshot's
    /// only account, or the one whose id the plan's ARNs name.
    #[arg(long, value_name = "NAME|ID")]
    pub account: Option<String>,
    /// The region the plan changes. Default: the aws provider's `region`
    /// when the plan gives it as a constant, or the account's only region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    #[command(flatten)]
    pub flags: PlanFlags,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// How a plan is judged and located (`plan`, `scan --plan`).
#[derive(Debug, Args, Clone)]
pub struct PlanFlags {
    /// The root module's directory: each finding the plan causes points at
    /// the `resource` block (or the changed attribute's line) that causes
    /// it, through module calls with a local source.
    #[arg(long, value_name = "DIR")]
    pub tf_dir: Option<PathBuf>,
    /// What SARIF paths are relative to (GitHub resolves them from the
    /// repository root). Default: the current directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo_root: PathBuf,
    /// Whether `unknown` outcomes (facts known only after apply) and changes
    /// dbaudit cannot predict fail the gate with exit 3.
    #[arg(long, value_enum, default_value_t = OnIncomplete::Fail)]
    pub on_unknown: OnIncomplete,
    /// Gate on every failure of the predicted state, not only those the
    /// plan introduces.
    #[arg(long)]
    pub gate_existing: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also save the collected snapshot to FILE.
    #[arg(long, value_name = "FILE")]
    pub save_snapshot: Option<PathBuf>,
    /// Collect, then evaluate this Terraform plan (`terraform show -json`)
    /// on the collected snapshot, as `dbaudit plan` does; the plan's
    /// account is the one scanned (--account names one) and no run is
    /// recorded.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub plan_flags: PlanFlags,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Configuration file naming the accounts, roles and regions
    /// (default: ./dbaudit.toml).
    #[arg(
        short,
        long,
        env = "DBAUDIT_CONFIG",
        value_name = "FILE",
        default_value = "dbaudit.toml"
    )]
    pub config: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where to write the snapshot (atomically): a file, or with --shard
    /// and --run-id an `s3://BUCKET/PREFIX`, under which the part is
    /// written once as `PREFIX/RUN/part-K-of-N.json` (If-None-Match: a
    /// retried shard never replaces a completed part).
    #[arg(short, long, value_name = "FILE|S3_URL")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// Configuration file (default: ./dbaudit.toml).
    #[arg(
        short,
        long,
        env = "DBAUDIT_CONFIG",
        value_name = "FILE",
        default_value = "dbaudit.toml"
    )]
    pub config: PathBuf,
    /// `table` (default) or `json` (the resolved list).
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Write the resolved list to FILE (atomically), the file
    /// `[organization] accounts_file` names.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// List the organization even when `accounts_file` exists.
    #[arg(long)]
    pub refresh: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// How a command that makes a few AWS calls of its own (listing the
/// organization, reading the shard store) reaches AWS.
#[derive(Debug, Args, Clone, Default)]
pub struct AwsArgs {
    /// AWS profile for the base credentials (default: the standard chain).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Region for STS and for the calls that need one.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (an emulator).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL", value_parser = endpoint_url)]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DatabasesArgs {
    /// The collected snapshot naming the account's clusters and endpoints
    /// (with `[databases] via = "parts"`, each cluster awaits this part): a
    /// file, or the shard parts of a sharded run (a directory or
    /// `s3://BUCKET/PREFIX`, merged as `dbaudit merge` does).
    #[arg(long, value_name = "FILE|DIR|S3_URL")]
    pub snapshot: PathBuf,
    /// The sharded run this part belongs to (`{date}` is today): recorded in
    /// the part, so that `merge --run-id` attaches it to that run only, and
    /// with an `s3://` output the part goes to `PREFIX/RUN/`.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// The account whose databases to read, by its name in the snapshot.
    #[arg(long, value_name = "NAME")]
    pub account: String,
    /// The configuration holding `[databases]` (user, auth, sslrootcert,
    /// addresses, timeouts); default ./dbaudit.toml.
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write the database part (atomically): a file beside the
    /// snapshot or shard parts that `merge` reads, or `s3://BUCKET/PREFIX`
    /// (written once as `PREFIX[/RUN]/databases-ACCOUNT.json`).
    #[arg(short, long, value_name = "FILE|S3_URL")]
    pub output: PathBuf,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Where the credentials that sign the IAM tokens come from.
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// A directory holding the parts (every `*.json` file in it and below),
    /// or the `s3://BUCKET/PREFIX` the shards wrote to (every `*.json` object
    /// under it).
    #[arg(value_name = "DIR|S3_URL")]
    pub source: PathBuf,
    /// Where to write the merged snapshot (atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Merge the parts of this run only (needed when the directory holds
    /// parts of several runs).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// How to reach an `s3://` source.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Which accounts to collect and how to reach AWS.
#[derive(Debug, Args, Clone)]
// One group, so that a missing choice names both ways to make it.
#[command(group(
    clap::ArgGroup::new("which_accounts")
        .required(true)
        .args(["accounts", "all_accounts"])
))]
pub struct TargetArgs {
    /// Account to collect, by its name in dbaudit.toml (repeatable).
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// Collect every account of dbaudit.toml.
    #[arg(long)]
    pub all_accounts: bool,
    /// AWS profile for the base credentials (default: the standard chain).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Region for STS and for accounts that list no regions.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL", value_parser = endpoint_url)]
    pub endpoint_url: Option<String>,
    /// Collection tasks (account × region × service) running at once; at
    /// most this many accounts in flight, and 8 tasks of any one account.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Seconds one attempt of one AWS call may take.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub timeout: u64,
    /// Attempts per AWS call (throttling and transient errors are retried with backoff).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Initial retry backoff in milliseconds (tests use a small one).
    #[arg(long, default_value_t = 1000, hide = true, value_name = "MS")]
    pub retry_backoff_ms: u64,
    /// Threads that run the AWS calls (default: 1, the calling thread). The
    /// calls wait on the network and all are in flight at once either way
    /// (--concurrency); more threads help only when parsing the answers
    /// keeps a core busy.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
    /// Collect only shard K of N of the selected accounts (`1/4`), or
    /// `auto/N` with K from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or
    /// AWS_BATCH_JOB_ARRAY_INDEX (Batch array job), both 0-based. The
    /// assignment hashes each account id, so every shard agrees on it;
    /// `dbaudit merge` joins the parts.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// The sharded run this part belongs to, recorded in the part (default
    /// `unnamed`); `dbaudit merge` joins the parts of one run.
    #[arg(long, value_name = "ID", requires = "shard")]
    pub run_id: Option<String>,
    /// No progress display and no summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options shared by every command that evaluates and reports.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Configuration file (accounts, environment parameters, developers,
    /// waivers). Default: ./dbaudit.toml when it exists (`scan` needs one).
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra rule files or directories of `*.toml` rules (repeatable),
    /// added to the built-in pack. A directory with its own params.toml is
    /// a whole pack: it needs --no-builtin.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Evaluate only the --rules given, without the built-in pack (a copy
    /// of rules/ with its params.toml, as `rules validate --no-builtin`).
    #[arg(long, requires = "rules")]
    pub no_builtin: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the report in FORMAT to PATH (atomically), or to stdout
    /// without a path or with `-`; repeatable, e.g. `--report sarif=out.sarif
    /// --report junit=junit.xml`. FORMAT: table, json, sarif, junit, markdown, html,
    /// asff (AWS Security Finding Format, for Security Hub), ocsf (OCSF
    /// Compliance Findings, one per line), ocsf-detection (OCSF Detection
    /// Findings).
    #[arg(long = "report", value_name = "FORMAT[=PATH]", value_parser = report_spec)]
    pub reports: Vec<ReportSpec>,
    /// Also write the JSON report to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write SARIF 2.1.0 for GitHub code scanning to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// Also write SARIF into DIR split for GitHub's limits: a file per
    /// environment (`dbaudit-prod.sarif`), several when an environment has
    /// more than 20 accounts (`dbaudit-prod-2.sarif`), so that no account
    /// is left out. Upload each with its file name as the category.
    #[arg(long, value_name = "DIR")]
    pub sarif_dir: Option<PathBuf>,
    /// Also write JUnit XML to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary to FILE (`-` for stdout), e.g. $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write a self-contained HTML report to FILE: the gate, plots
    /// (trends with --history), the topology per account, every finding
    /// with evidence and remediation. No script or external reference.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Record this run in a findings history: a SQLite file (created if
    /// missing) or a postgres:// URL. Default: `[history] store` of the
    /// configuration. `dbaudit history` queries it.
    #[arg(
        long,
        value_name = "FILE|URL",
        env = "DBAUDIT_HISTORY",
        hide_env_values = true
    )]
    pub history: Option<String>,
    /// Do not record this run in the findings history, whatever `--history`
    /// or `[history] store` say (an ad-hoc run). `--baseline last` still
    /// reads the history.
    #[arg(long)]
    pub no_history: bool,
    /// Record a snapshot older than the history's latest run in its place
    /// in time: every period is replayed from the recorded runs in the
    /// order of their snapshots (refused when runs were pruned). Without
    /// it, such a snapshot is refused (exit 2).
    #[arg(long, conflicts_with = "no_history")]
    pub backfill: bool,
    /// Waivers file (`[[waiver]]` tables), in addition to those in the config.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// A previous JSON report, or `last`: the latest run in the history
    /// that was accepted, by its gate (it passed at this --fail-on or a
    /// stricter one) or by `dbaudit history accept`; a run that failed is
    /// never a baseline. Among them, the latest that evaluated every rule,
    /// account and region of this run. Gate only on failures that are new
    /// since it.
    #[arg(long, value_name = "FILE|last")]
    pub baseline: Option<PathBuf>,
    /// Date waiver expiries are checked against (YYYY-MM-DD; default: today, UTC).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Lowest severity whose failures fail the gate (exit 1).
    #[arg(long, value_enum, default_value_t = SeverityArg::High)]
    pub fail_on: SeverityArg,
    /// Whether `error` outcomes (missing data) fail the gate with exit 3.
    #[arg(long, value_enum, default_value_t = OnIncomplete::Fail)]
    pub on_incomplete: OnIncomplete,
    /// A compliance scorecard for FRAMEWORK (repeatable): each control with
    /// the rules that map to it, pass/fail/error/not evaluated, and the
    /// accounts failing it; in the table, Markdown, HTML and JSON
    /// (docs/compliance.md).
    #[arg(
        long = "framework",
        value_name = "FRAMEWORK",
        value_parser = clap::builder::PossibleValuesParser::new(crate::compliance::frameworks())
    )]
    pub framework: Vec<String>,
    /// List passing findings too in the table.
    #[arg(long)]
    pub show_passed: bool,
    /// The table's per-rule summary only, without a row per finding. On by
    /// default above 200 failing and error findings; `--compact=false` lists
    /// them all.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub compact: Option<bool>,
    /// Evaluate only these rules: an id or a glob like `db.network.*`
    /// (repeatable). Rules left out are listed in the report as not evaluated.
    #[arg(long = "rule", value_name = "ID|GLOB")]
    pub rule: Vec<String>,
    /// Leave these rules out: an id or a glob (repeatable).
    #[arg(long = "skip-rule", value_name = "ID|GLOB")]
    pub skip_rule: Vec<String>,
    /// Evaluate only rules of at least this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub severity: Option<SeverityArg>,
    /// Evaluate only the accounts of this environment (repeatable).
    #[arg(long = "environment", value_name = "ENV")]
    pub environment: Vec<String>,
}

pub use crate::report::render::Format;

/// `--report FORMAT[=PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    pub format: Format,
    /// `None` or `-`: stdout.
    pub path: Option<PathBuf>,
}

fn report_spec(s: &str) -> Result<ReportSpec, String> {
    let (format, path) = match s.split_once('=') {
        Some((f, "")) => {
            return Err(format!("`{f}=` needs a path (or `-` for stdout)"));
        }
        Some((f, p)) => (f, Some(PathBuf::from(p))),
        None => (s, None),
    };
    let format = Format::parse(format).ok_or_else(|| {
        let known: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!(
            "unknown format `{format}`; expected one of: {}",
            known.join(", ")
        )
    })?;
    Ok(ReportSpec { format, path })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::Critical => Severity::Critical,
            SeverityArg::High => Severity::High,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Info => Severity::Info,
        }
    }
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// The snapshot to evaluate (as `evaluate` takes it).
    #[arg(required = true, value_name = "SNAPSHOT")]
    pub snapshots: Vec<PathBuf>,
    /// The framework (repeatable): a directory per framework in DIR.
    #[arg(
        long = "framework",
        required = true,
        value_name = "FRAMEWORK",
        value_parser = clap::builder::PossibleValuesParser::new(crate::compliance::frameworks())
    )]
    pub framework: Vec<String>,
    /// The directory to write the pack into: created, or empty (written
    /// whole or not at all).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Configuration file (default ./dbaudit.toml when it exists).
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra rule files or directories, as `evaluate --rules`.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// The findings history whose recorded runs give each control's
    /// history (default `[history] store`); nothing is recorded.
    #[arg(
        long,
        value_name = "FILE|URL",
        env = "DBAUDIT_HISTORY",
        hide_env_values = true
    )]
    pub history: Option<String>,
    /// Waivers file, in addition to those in the configuration.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Date waiver expiries are checked against (YYYY-MM-DD; default today, UTC).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// How to reach an `s3://` source of shard parts.
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// Import a JSON report's findings into AWS Security Hub (CSPM) with
    /// BatchImportFindings, per account (its `role_arn` in the
    /// configuration: a role with docs/audit-role/securityhub-publish-policy.json)
    /// and region, in batches of at most 100. Importing again updates the
    /// same findings; a baseline's fixed failures are archived.
    Securityhub(PublishArgs),
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A JSON report (`--format json` or `--json FILE` of scan/evaluate).
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    /// The configuration naming each account's role (default ./dbaudit.toml).
    #[arg(short, long, env = "DBAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules (built-in plus --rules).
    List {
        #[arg(long = "rules", value_name = "DIR")]
        rules: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show a rule's documentation: rationale, remediation, references, condition.
    Explain {
        id: String,
        #[arg(long = "rules", value_name = "DIR")]
        rules: Vec<PathBuf>,
    },
    /// Check rule files or directories; reports every problem with file:line:col.
    Validate {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Validate the files on their own, without the built-in pack (e.g.
        /// a copy of rules/); ids are then checked for duplicates among the
        /// given files only, and a directory's params.toml supplies the
        /// parameters the rules may read. A directory with a params.toml
        /// needs it (as `evaluate --rules DIR --no-builtin` does).
        #[arg(long)]
        no_builtin: bool,
    },
    /// List the facts a rule can use for a resource kind (JSON Schema).
    Fields {
        /// The resource kind (the kinds rules can be written for).
        #[arg(value_enum)]
        kind: crate::facts::ResourceKind,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the example (`-` for stdout).
    #[arg(short, long, default_value = "dbaudit.toml")]
    pub output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `--endpoint-url`: an http(s) URL with a host, checked before any call
/// (the SDK would otherwise fail each request with a dump of it).
fn endpoint_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("`{s}` is not an http:// or https:// URL (e.g. http://127.0.0.1:5000)")
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{s}` names no host (e.g. http://127.0.0.1:5000)"));
    }
    Ok(s.to_string())
}
