//! The control plane at the command line: `cfa approvals list|show|approve|deny`,
//! `cfa kill --scope S --reason R` / `cfa kill --list`, `cfa unkill --scope S`, and
//! the flags that put the decisions of `cfa policy check`, `cfa evaluate`, `cfa serve`
//! and `cfa mcp` through the control plane (kill switch, then approval tickets) of the
//! one lifecycle database ([`ControlArgs`], [`one_store`]). The operations and
//! their JSON are [`crate::service::control`]'s, shared with the MCP and HTTP faces.

use crate::service::FaceError;
use crate::service::control::{self, ControlFace};
use crate::service::control_store::{ControlBackend, StateLocation};
use crate::settings::{self, Flags};
use cfa::audit::{AuditStore, Durability};
use cfa::kernel::control::DEFAULT_TICKET_TTL_SECS;
use cfa::{Clock, SystemClock};
use cfa_control::{ControlDb, Resolution};
use clap::{Args, Subcommand, ValueEnum};
use miette::Report;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The flags that put a command's decisions through the control plane. The control
/// tables live in the lifecycle database, resolved once with the command's own flag
/// (`--lifecycle-db`, `--db`) > `cfa.yaml` storage > none: whenever a command has a
/// lifecycle database its decisions check the kill switches and approval tickets there.
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    /// The old name of the lifecycle database flag (`--lifecycle-db`, `--db` of
    /// `evaluate`), kept so existing command lines work: the control tables live in the
    /// lifecycle database. Naming another file than the lifecycle flag is a usage error.
    #[arg(long, value_name = "FILE", hide = true)]
    pub control_db: Option<PathBuf>,
    /// Lifetime of the approval tickets this command opens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TICKET_TTL_SECS, help_heading = "Control plane")]
    pub ticket_ttl: i64,
    /// The decision's time (RFC 3339) instead of the clock (tests, replays): honoured by
    /// `policy check` and `evaluate`; the long-running faces keep the system clock.
    #[arg(long, value_name = "TIME", hide = true)]
    pub now: Option<String>,
}

/// Two flags naming the lifecycle database name different files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--control-db {control} and {flag} {lifecycle} name two files, but the control plane lives in the lifecycle database: give one of them (--control-db is the old name of {flag})"
)]
pub struct TwoStores {
    /// The command's own lifecycle flag (`--lifecycle-db`, `--db`).
    pub flag: &'static str,
    /// What it names.
    pub lifecycle: String,
    /// What `--control-db` names.
    pub control: String,
}

/// The lifecycle database flag of a command whose own flag gave `own` (its name and
/// path), with the old `--control-db` folded in: either one, or both naming the same
/// file; two different files are [`TwoStores`].
pub fn one_store<'a>(
    own: Option<(&'static str, &'a Path)>,
    control_db: Option<&'a Path>,
) -> Result<Option<(&'static str, &'a Path)>, TwoStores> {
    match (own, control_db) {
        (Some((flag, a)), Some(b)) if !same_file(a, b) => Err(TwoStores {
            flag,
            lifecycle: a.display().to_string(),
            control: b.display().to_string(),
        }),
        (Some(own), _) => Ok(Some(own)),
        (None, Some(b)) => Ok(Some(("--control-db", b))),
        (None, None) => Ok(None),
    }
}

/// The same path, or two spellings of one file (which may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((absolute(a), absolute(b)), (Some(x), Some(y)) if x == y)
}

/// `p` with its directory resolved (symlinks, `.`, `..`), the file itself too when it
/// exists.
fn absolute(p: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok().or_else(|| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = std::fs::canonicalize(dir.unwrap_or(Path::new("."))).ok()?;
        Some(dir.join(p.file_name()?))
    })
}

impl ControlArgs {
    /// [`one_store`] of `own` and `--control-db`; two files end the process with a
    /// usage error (exit 2) before anything is written.
    pub fn lifecycle_flag<'a>(
        &'a self,
        own: Option<(&'static str, &'a Path)>,
    ) -> Option<(&'static str, &'a Path)> {
        one_store(own, self.control_db.as_deref())
            .unwrap_or_else(|e| settings::UsageError(e.to_string()).exit())
    }

    /// The control face of the lifecycle database `db` (as the settings resolved it;
    /// `None`: no control plane), tickets requested by `requester`. The database is
    /// created by its first write (the directory now when the config named it).
    pub fn open(
        &self,
        db: &settings::Resolved<Option<PathBuf>>,
        requester: &str,
    ) -> Result<Option<ControlFace>, Report> {
        let Some(path) = db.value.as_deref() else {
            return Ok(None);
        };
        if matches!(db.origin, settings::Origin::Config { .. })
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| Report::msg(format!("cannot create {}: {e}", parent.display())))?;
        }
        ControlFace::open(path, requester, self.ticket_ttl)
            .map(Some)
            .map_err(face_report)
    }
}

fn face_report(e: FaceError) -> Report {
    Report::msg(e.message)
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Summary,
    /// One JSON object.
    Json,
}

/// Where the control store is and how to answer.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Lifecycle database holding the control tables [default: the config's storage:
    /// its sqlite file, or its postgres database (DSN from `storage.dsn_env`)].
    #[arg(
        long,
        visible_alias = "lifecycle-db",
        alias = "control-db",
        value_name = "FILE"
    )]
    pub db: Option<PathBuf>,
    /// Config file giving the defaults (default: discovered upwards; flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t)]
    pub format: Format,
}

/// Where a change is recorded.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Record the change in this JSONL audit log [default: the config's storage].
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// The time of the change (RFC 3339) instead of the clock (tests, replays).
    #[arg(long, value_name = "TIME", hide = true)]
    pub now: Option<String>,
}

/// `cfa approvals` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approval tickets, oldest first.
    #[command(
        after_help = "Examples:\n  cfa approvals list --db cfa.db\n  cfa approvals list --db cfa.db --status pending -f json"
    )]
    List {
        /// Only tickets with this status (pending, granted, denied, spent).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one ticket: what it binds (content_hash, bundle hash), who asked, why, until when.
    #[command(after_help = "Example:\n  cfa approvals show 0193c1e2-... --db cfa.db")]
    Show {
        /// The ticket id (from the held decision's APPROVAL_REQUIRED fault).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Approve a pending ticket: the same signature, resubmitted with
    /// constraints.custom.approval_id = ID under the same bundle, is approved once.
    #[command(
        after_help = "Example:\n  cfa approvals approve 0193c1e2-... --by ana --note \"change CHG-42\" --db cfa.db --audit-log audit.jsonl\n\nThen the agent resubmits the exact signature it was held for, with\n  \"constraints\": {..., \"custom\": {\"approval_id\": \"0193c1e2-...\"}}"
    )]
    Approve(ResolveArgs),
    /// Deny a pending ticket: a resubmission naming it is blocked with APPROVAL_DENIED.
    #[command(
        after_help = "Example:\n  cfa approvals deny 0193c1e2-... --by ana --note \"not during the freeze\" --db cfa.db"
    )]
    Deny(ResolveArgs),
}

/// Arguments of `approvals approve|deny`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The ticket id.
    pub id: String,
    /// Who decides (recorded on the ticket and in the audit event).
    #[arg(long)]
    pub by: String,
    /// Why (recorded on the ticket and in the audit event).
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// Arguments of `cfa kill`.
#[derive(Debug, Args)]
#[command(
    after_help = "Scopes:\n  *              every decision\n  domain:NAME    decisions on the signature's domain NAME\n  target:NAME    decisions writing layer NAME (bronze, silver, gold) or reading dataset NAME\n  agent:ID       decisions of the caller ID (constraints.custom.agent_id)\n\nExamples:\n  cfa kill --scope '*' --reason \"incident 42\" --by ana --db cfa.db\n  cfa kill --scope domain:fiscal --reason \"month-end freeze\" --db cfa.db\n  cfa kill --list --db cfa.db\n  cfa unkill --scope domain:fiscal --db cfa.db\n\nWith `storage: {backend: postgres, dsn_env: CFA_PG_DSN}` in cfa.yaml (and no --db) the\nswitch is stored in that PostgreSQL database and every `cfa serve`/`cfa mcp` replica on it\nblocks its next decision (the DSN only ever in the environment):\n  export CFA_PG_DSN=\"host=db user=cfa dbname=cfa\"\n  cfa kill --scope '*' --reason \"incident 42\""
)]
pub struct KillArgs {
    /// Where decisions stop: `*`, `domain:NAME`, `target:NAME` or `agent:ID`.
    #[arg(long, required_unless_present = "list", conflicts_with = "list")]
    pub scope: Option<String>,
    /// Why (every blocked decision carries it).
    #[arg(long, required_unless_present = "list")]
    pub reason: Option<String>,
    /// Who engages it [default: $USER, else "cli"].
    #[arg(long)]
    pub by: Option<String>,
    /// List the engaged switches instead.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// Arguments of `cfa unkill`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cfa unkill --scope '*' --by ana --db cfa.db")]
pub struct UnkillArgs {
    /// The scope to lift, exactly as it was engaged.
    #[arg(long)]
    pub scope: String,
    /// Who lifts it [default: $USER, else "cli"].
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
}

fn operator(by: Option<&str>) -> String {
    by.map(str::to_owned)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "cli".to_owned())
}

/// The control state of `store`: the `--db` file, else the config's postgres storage
/// (the DSN from its `dsn_env`), else its sqlite storage. A file is never created here.
fn location(store: &StoreArgs) -> Result<StateLocation, Report> {
    let s = settings::resolve_process(&Flags {
        config: store.config.as_deref(),
        state_db: store.db.as_deref().map(|p| ("--db", p)),
        ..Flags::default()
    })?;
    StateLocation::of(&s).ok_or_else(|| {
        Report::msg(
            "no lifecycle database: pass --db FILE (or configure a sqlite or postgres storage in cfa.yaml)",
        )
    })
}

fn read_only(store: &StoreArgs) -> Result<ControlBackend, Report> {
    let opened = match location(store)? {
        StateLocation::File(path) => ControlDb::open_read_only(&path).map(ControlBackend::Sqlite),
        StateLocation::Postgres(env) => ControlBackend::connect_pg(&env),
    };
    opened.map_err(|e| face_report(control::control_error(e)))
}

/// Opens the store for a change: `create` makes a missing database file (a lifecycle
/// database with the control tables), else a missing file is an error. PostgreSQL
/// gets its control tables when missing.
fn writable(store: &StoreArgs, create: bool) -> Result<ControlBackend, Report> {
    let path = match location(store)? {
        StateLocation::File(path) => path,
        StateLocation::Postgres(env) => {
            return ControlBackend::connect_pg(&env)
                .map_err(|e| face_report(control::control_error(e)));
        }
    };
    if create {
        cfa::LifecycleDb::open(&path).map_err(|e| Report::msg(e.to_string()))?;
    } else if !path.is_file() {
        return Err(Report::msg(format!(
            "control store {}: no such file (decisions made with this lifecycle database, --lifecycle-db or cfa.yaml storage, create it)",
            path.display()
        )));
    }
    ControlDb::open(&path)
        .map(ControlBackend::Sqlite)
        .map_err(|e| face_report(control::control_error(e)))
}

fn audit_of(store: &StoreArgs, change: &ChangeArgs) -> Result<Option<Box<dyn AuditStore>>, Report> {
    let s = settings::resolve_process(&Flags {
        config: store.config.as_deref(),
        audit: Flags::audit_log_or_db(change.audit_log.as_deref(), None),
        ..Flags::default()
    })?;
    if let Some(chain) = crate::service::control_store::pg_audit(&s)? {
        return Ok(Some(chain));
    }
    match crate::policy_cmd::audit_target(&s)? {
        Some(t) => Ok(Some(t.open(Durability::Always).map_err(|e| {
            Report::msg(format!("cannot open the audit log: {e}"))
        })?)),
        None => Ok(None),
    }
}

fn now(change: &ChangeArgs) -> String {
    change
        .now
        .clone()
        .unwrap_or_else(|| SystemClock.now_isoformat())
}

fn emit(format: Format, value: &Value, summary: impl FnOnce(&Value) -> String) {
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Summary => out!("{}", summary(value)),
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn ticket_line(t: &Value) -> String {
    format!(
        "  {}  {:<8} expires {}  requester {}  {}\n",
        s(t, "id"),
        s(t, "status"),
        s(t, "expires_at"),
        s(t, "requester"),
        s(t, "reason")
    )
}

fn ticket_details(t: &Value) -> String {
    let mut out = format!("Approval ticket {} ({})\n", s(t, "id"), s(t, "status"));
    for key in [
        "intent_id",
        "content_hash",
        "policy_bundle",
        "policy_bundle_hash",
        "requester",
        "reason",
        "created_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "note",
        "spent_at",
    ] {
        let v = s(t, key);
        if !v.is_empty() {
            out.push_str(&format!("  {:<20}{v}\n", format!("{key}:")));
        }
    }
    out
}

/// Runs `cfa approvals …`.
pub fn run_approvals(cmd: ApprovalsCommand) -> Result<ExitCode, Report> {
    match cmd {
        ApprovalsCommand::List { status, store } => {
            let db = read_only(&store)?;
            let v = control::tickets_json(&db, status.as_deref()).map_err(face_report)?;
            emit(store.format, &v, |v| {
                let tickets = v
                    .get("tickets")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut out = format!("Approval tickets ({}):\n", tickets.len());
                for t in &tickets {
                    out.push_str(&ticket_line(t));
                }
                out
            });
        }
        ApprovalsCommand::Show { id, store } => {
            let db = read_only(&store)?;
            let v = control::ticket_json(&db, &id).map_err(face_report)?;
            emit(store.format, &v, ticket_details);
        }
        ApprovalsCommand::Approve(a) => resolve(&a, Resolution::Grant)?,
        ApprovalsCommand::Deny(a) => resolve(&a, Resolution::Deny)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn resolve(a: &ResolveArgs, resolution: Resolution) -> Result<(), Report> {
    let db = writable(&a.store, false)?;
    let audit = audit_of(&a.store, &a.change)?;
    let v = control::resolve(
        &db,
        audit.as_deref(),
        &a.id,
        resolution,
        &a.by,
        a.note.as_deref(),
        &now(&a.change),
    )
    .map_err(face_report)?;
    emit(a.store.format, &v, |v| {
        let t = v.get("ticket").cloned().unwrap_or(Value::Null);
        let verb = if resolution == Resolution::Grant {
            "granted"
        } else {
            "denied"
        };
        format!(
            "Approval ticket {} {verb} by {}.\n{}",
            s(&t, "id"),
            s(&t, "decided_by"),
            ticket_details(&t)
        )
    });
    Ok(())
}

/// Runs `cfa kill`.
pub fn run_kill(a: KillArgs) -> Result<ExitCode, Report> {
    if a.list {
        let db = read_only(&a.store)?;
        let v = control::kills_json(&db).map_err(face_report)?;
        emit(a.store.format, &v, |v| {
            let kills = v
                .get("kills")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = format!("Kill switches engaged ({}):\n", kills.len());
            for k in &kills {
                out.push_str(&format!(
                    "  {}  by {} at {}: {}\n",
                    s(k, "scope"),
                    s(k, "by"),
                    s(k, "engaged_at"),
                    s(k, "reason")
                ));
            }
            out
        });
        return Ok(ExitCode::SUCCESS);
    }
    let scope = a.scope.as_deref().unwrap_or_default();
    // A bad scope is refused before the store is touched.
    cfa_control::Scope::parse(scope).map_err(|e| face_report(control::control_error(e)))?;
    let db = writable(&a.store, true)?;
    let audit = audit_of(&a.store, &a.change)?;
    let v = control::kill(
        &db,
        audit.as_deref(),
        scope,
        a.reason.as_deref().unwrap_or_default(),
        &operator(a.by.as_deref()),
        &now(&a.change),
    )
    .map_err(face_report)?;
    emit(a.store.format, &v, |v| {
        let k = v.get("kill").cloned().unwrap_or(Value::Null);
        format!(
            "Kill switch engaged on {} by {}: {}\nEvery decision in that scope is blocked (KILL_SWITCH_ENGAGED) until: cfa unkill --scope '{}'\n",
            s(&k, "scope"),
            s(&k, "by"),
            s(&k, "reason"),
            s(&k, "scope")
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs `cfa unkill`.
pub fn run_unkill(a: UnkillArgs) -> Result<ExitCode, Report> {
    cfa_control::Scope::parse(&a.scope).map_err(|e| face_report(control::control_error(e)))?;
    let db = writable(&a.store, false)?;
    let audit = audit_of(&a.store, &a.change)?;
    let v = control::unkill(
        &db,
        audit.as_deref(),
        &a.scope,
        &operator(a.by.as_deref()),
        &now(&a.change),
    )
    .map_err(face_report)?;
    emit(a.store.format, &v, |v| {
        let k = v.get("released").cloned().unwrap_or(Value::Null);
        format!(
            "Kill switch on {} lifted (it was engaged by {}: {}).\n",
            s(&k, "scope"),
            s(&k, "by"),
            s(&k, "reason")
        )
    });
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn control_db_folds_into_the_lifecycle_flag() {
        let (a, b) = (Path::new("a.db"), Path::new("b.db"));
        assert_eq!(one_store(None, None), Ok(None));
        assert_eq!(one_store(Some(("--db", a)), None), Ok(Some(("--db", a))));
        assert_eq!(one_store(None, Some(b)), Ok(Some(("--control-db", b))));
        assert_eq!(
            one_store(Some(("--lifecycle-db", a)), Some(a)),
            Ok(Some(("--lifecycle-db", a)))
        );
        let e = one_store(Some(("--lifecycle-db", a)), Some(b)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--control-db b.db and --lifecycle-db a.db name two files, but the control plane lives in the lifecycle database: give one of them (--control-db is the old name of --lifecycle-db)"
        );
        // Two spellings of one file, existing or not, are one store.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfa.db");
        let other = dir.path().join(".").join("cfa.db");
        assert!(one_store(Some(("--db", &file)), Some(&other)).is_ok());
        std::fs::write(&file, b"").unwrap();
        assert!(one_store(Some(("--db", &file)), Some(&other)).is_ok());
        assert!(one_store(Some(("--db", &file)), Some(&dir.path().join("x.db"))).is_err());
    }
}
