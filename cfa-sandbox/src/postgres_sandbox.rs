//! The `postgres` sandbox: runs the SQL backend's artifact for real on PostgreSQL 15+
//! inside ONE transaction. Each step runs under a savepoint (so a failed attempt can be
//! retried); extract steps count their source rows; filter/anonymize/join/aggregate are
//! fused into the artifact's source view; the load step runs the artifact's statements,
//! taking rows written from the write's command tag, the planner's `Total Cost` from
//! `EXPLAIN (FORMAT JSON)`, null counts over the rows written (the source view) and the
//! target's schema from `information_schema.columns`. [`crate::execute`] commits only
//! when the outcome keeps data and runtime validation passed; otherwise it rolls back.

use crate::error::SandboxError;
use crate::metrics::StepMetrics;
use crate::sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus, step_failed_fault};
use cfa_codegen::ident::check_identifier;
use cfa_codegen::sql::PARTITION_SETTING;
use cfa_plan::{PlanStep, StepKind};
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};
use postgres::{Client, NoTls, SimpleQueryMessage};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Configuration of [`PostgresSandbox`].
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {
    /// Schema of the source tables (`public`).
    pub source_schema: String,
    /// Schema of the target table (`public`).
    pub target_schema: String,
    /// Value for the `cfa.partition_start` session setting, when the plan filters.
    pub partition_start: Option<String>,
    /// DBU per planner cost unit (0.001: 1000 planner units = 1 DBU).
    pub dbu_per_cost_unit: f64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            source_schema: "public".into(),
            target_schema: "public".into(),
            partition_start: None,
            dbu_per_cost_unit: 0.001,
        }
    }
}

/// The PostgreSQL sandbox.
pub struct PostgresSandbox {
    client: Mutex<Client>,
    config: PostgresConfig,
}

impl std::fmt::Debug for PostgresSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSandbox")
            .field("config", &self.config)
            .finish()
    }
}

fn fail(op: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::failure("postgres", op, e.to_string())
}

impl PostgresSandbox {
    /// Connects to `dsn` (libpq key/value or URL form, no TLS) with the default config.
    pub fn connect(dsn: &str) -> Result<Self, SandboxError> {
        Self::connect_with(dsn, PostgresConfig::default())
    }

    /// Connects to `dsn` with `config`.
    pub fn connect_with(dsn: &str, config: PostgresConfig) -> Result<Self, SandboxError> {
        check_identifier(&config.source_schema, "postgres sandbox source_schema")
            .map_err(|e| fail("connect", e))?;
        check_identifier(&config.target_schema, "postgres sandbox target_schema")
            .map_err(|e| fail("connect", e))?;
        let client = Client::connect(dsn, NoTls).map_err(|e| fail("connect", error_chain(&e)))?;
        Ok(PostgresSandbox {
            client: Mutex::new(client),
            config,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Client>, SandboxError> {
        self.client
            .lock()
            .map_err(|_| fail("lock", "the connection lock is poisoned"))
    }
}

/// Checks that `dsn` reaches a PostgreSQL server within `timeout`: parses it, connects
/// (no TLS, as [`PostgresSandbox::connect`]) with `timeout` as the connect timeout, runs
/// `SELECT 1` and disconnects; nothing is written. Returns the server's
/// `server_version`. Error messages never contain the DSN.
pub fn probe(dsn: &str, timeout: std::time::Duration) -> Result<String, SandboxError> {
    let mut config: postgres::Config = dsn
        .parse()
        .map_err(|e: postgres::Error| fail("parse the DSN", error_chain(&e)))?;
    config.connect_timeout(timeout);
    let mut client = config
        .connect(NoTls)
        .map_err(|e| fail("connect", error_chain(&e)))?;
    let version = client
        .query_one("SELECT current_setting('server_version')", &[])
        .and_then(|row| row.try_get::<_, String>(0))
        .map_err(|e| fail("query", error_chain(&e)))?;
    drop(client.close());
    Ok(version)
}

/// `e` and its sources, `: `-separated (the postgres client's own message hides the
/// cause, e.g. `Connection refused`). The messages never contain the DSN.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

fn env_fault(reason: &str) -> Fault {
    Fault {
        code: "ENVIRONMENTAL_DATABASE_UNAVAILABLE".into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: "sandbox".into(),
        message: format!("PostgreSQL is not available: {reason}").into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec!["Check the database connection"].into(),
        detected_before_execution: false,
    }
}

fn qi(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

struct PgRun<'a> {
    client: MutexGuard<'a, Client>,
    config: &'a PostgresConfig,
    statements: Vec<String>,
    target: String,
    target_schema: String,
    finished: bool,
}

fn is_write(stmt: &str) -> bool {
    let head = stmt.trim_start().to_ascii_uppercase();
    head.starts_with("MERGE") || head.starts_with("INSERT")
}

/// The artifact's statements without comments, `BEGIN` and `COMMIT`.
fn statements(sql: &str) -> Vec<String> {
    let body: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_owned())
        .filter(|s| !s.is_empty())
        .filter(|s| {
            let u = s.to_ascii_uppercase();
            u != "BEGIN" && u != "COMMIT"
        })
        .collect()
}

fn total_cost(v: &serde_json::Value) -> f64 {
    v.get(0)
        .and_then(|p| p.get("Plan"))
        .and_then(|p| p.get("Total Cost"))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

impl PgRun<'_> {
    fn in_savepoint<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, postgres::Error>,
    ) -> Result<T, String> {
        self.client
            .batch_execute("SAVEPOINT cfa_step")
            .map_err(|e| e.to_string())?;
        match f(self) {
            Ok(v) => self
                .client
                .batch_execute("RELEASE SAVEPOINT cfa_step")
                .map(|()| v)
                .map_err(|e| e.to_string()),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK TO SAVEPOINT cfa_step");
                Err(db_error(&e))
            }
        }
    }

    fn extract(&mut self, dataset: &str) -> Result<StepMetrics, postgres::Error> {
        let sql = format!(
            "SELECT count(*) FROM {}.{}",
            qi(&self.config.source_schema),
            qi(dataset)
        );
        let row = self.client.query_one(sql.as_str(), &[])?;
        let n: i64 = row.get(0);
        Ok(StepMetrics {
            rows_output: u64::try_from(n).unwrap_or(0),
            ..StepMetrics::default()
        })
    }

    fn load(&mut self) -> Result<StepMetrics, postgres::Error> {
        let mut m = StepMetrics::default();
        let mut planner_cost = 0.0;
        for stmt in self.statements.clone() {
            if is_write(&stmt) {
                let explain = format!("EXPLAIN (FORMAT JSON) {stmt}");
                for msg in self.client.simple_query(&explain)? {
                    if let SimpleQueryMessage::Row(row) = msg {
                        let text = row.get(0).unwrap_or("null");
                        let plan: serde_json::Value =
                            serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
                        planner_cost += total_cost(&plan);
                    }
                }
            }
            let msgs = self.client.simple_query(&stmt)?;
            if is_write(&stmt) {
                for msg in msgs {
                    if let SimpleQueryMessage::CommandComplete(n) = msg {
                        m.rows_output = n;
                    }
                }
            }
        }
        m.cost_dbu = planner_cost * self.config.dbu_per_cost_unit;
        let cols = self.client.query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&self.target_schema, &self.target],
        )?;
        m.output_schema = cols.iter().map(|r| r.get::<_, String>(0)).collect();
        let mut null_counts = BTreeMap::new();
        if !m.output_schema.is_empty() {
            let exprs: Vec<String> = m
                .output_schema
                .iter()
                .map(|c| format!("count(*) - count({})", qi(c)))
                .collect();
            let sql = format!(
                "SELECT {} FROM {}",
                exprs.join(", "),
                qi(cfa_codegen::sql::SOURCE_VIEW)
            );
            if let Ok(row) = self.client.query_one(sql.as_str(), &[]) {
                for (i, c) in m.output_schema.iter().enumerate() {
                    let n: i64 = row.try_get(i).unwrap_or(0);
                    null_counts.insert(c.clone(), u64::try_from(n).unwrap_or(0));
                }
            }
        }
        m.null_counts = Arc::new(null_counts);
        Ok(m)
    }
}

fn db_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl SandboxRun for PgRun<'_> {
    fn check_environment(&mut self) -> Vec<Fault> {
        match self.client.simple_query("SELECT 1") {
            Ok(_) => Vec::new(),
            Err(e) => vec![env_fault(&e.to_string())],
        }
    }

    fn execute_step(&mut self, step: &PlanStep, attempt: u32) -> StepResult {
        let started = Instant::now();
        let result = match step.kind {
            StepKind::Extract => match step.source.clone() {
                Some(ds) => self.in_savepoint(|r| r.extract(&ds)),
                None => Err("extract step without a source".to_owned()),
            },
            StepKind::Load => self.in_savepoint(PgRun::load),
            // Fused into the artifact's source view; nothing runs on its own.
            StepKind::Filter | StepKind::Anonymize | StepKind::Join | StepKind::Aggregate => {
                Ok(StepMetrics::default())
            }
        };
        match result {
            Ok(mut m) => {
                m.duration_seconds = started.elapsed().as_secs_f64();
                StepResult::succeeded(&step.id, m, attempt)
            }
            Err(reason) => StepResult::failed(
                &step.id,
                StepStatus::Failed,
                step_failed_fault(&step.id, &reason),
                attempt,
            ),
        }
    }

    fn commit(mut self: Box<Self>) -> Result<(), SandboxError> {
        self.finished = true;
        self.client
            .batch_execute("COMMIT")
            .map_err(|e| fail("commit", db_error(&e)))
    }

    fn rollback(mut self: Box<Self>) -> Result<(), SandboxError> {
        self.finished = true;
        self.client
            .batch_execute("ROLLBACK")
            .map_err(|e| fail("rollback", db_error(&e)))
    }
}

impl Drop for PgRun<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

impl Sandbox for PostgresSandbox {
    fn name(&self) -> &str {
        "postgres"
    }

    fn check_environment(&self) -> Vec<Fault> {
        match self.lock() {
            Ok(mut c) => match c.simple_query("SELECT 1") {
                Ok(_) => Vec::new(),
                Err(e) => vec![env_fault(&e.to_string())],
            },
            Err(e) => vec![env_fault(&e.to_string())],
        }
    }

    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError> {
        let artifact = ctx.artifact.ok_or_else(|| {
            fail(
                "begin",
                "the postgres sandbox needs the generated SQL artifact",
            )
        })?;
        if let Some(wanted) = crate::execution::artifact_requirement(self.name())
            && artifact.language != wanted.language
        {
            return Err(fail(
                "begin",
                format!(
                    "artifact language is {}, expected {}",
                    artifact.language.as_str(),
                    wanted.language.as_str()
                ),
            ));
        }
        let sql = artifact
            .main_file()
            .ok_or_else(|| fail("begin", "the artifact has no files"))?;
        check_identifier(&ctx.plan.target, "plan target").map_err(|e| fail("begin", e))?;
        let mut client = self.lock()?;
        client
            .batch_execute("BEGIN")
            .map_err(|e| fail("begin", db_error(&e)))?;
        let mut run = PgRun {
            client,
            config: &self.config,
            statements: statements(&sql.content),
            target: ctx.plan.target.clone(),
            target_schema: self.config.target_schema.clone(),
            finished: false,
        };
        if let Some(p) = &self.config.partition_start {
            run.client
                .execute("SELECT set_config('cfa.partition_start', $1, true)", &[p])
                .map_err(|e| fail("begin", db_error(&e)))?;
        }
        // The artifact reads the partition start from the session: say so before
        // anything runs instead of failing every attempt of the load step.
        if sql
            .content
            .contains(&format!("current_setting('{PARTITION_SETTING}')"))
        {
            let row = run
                .client
                .query_one("SELECT current_setting('cfa.partition_start', true)", &[])
                .map_err(|e| fail("begin", db_error(&e)))?;
            let value: Option<String> = row.try_get(0).map_err(|e| fail("begin", db_error(&e)))?;
            if value.is_none_or(|v| v.trim().is_empty()) {
                // Dropping `run` rolls the open transaction back.
                return Err(fail(
                    "begin",
                    "the SQL artifact filters on the session setting cfa.partition_start, which is not set: give a partition start (cfa evaluate --partition-start DATE) or set it for the database or role",
                ));
            }
        }
        Ok(Box::new(run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_a_bad_dsn_and_a_closed_port_without_the_dsn() {
        let t = std::time::Duration::from_secs(2);
        let e = probe("host=127.0.0.1 nonsense=pw-123", t)
            .unwrap_err()
            .to_string();
        assert!(e.contains("parse the DSN") && e.contains("nonsense"), "{e}");
        assert!(!e.contains("pw-123"), "{e}");
        let e = probe("host=127.0.0.1 port=1 user=u password=pw-123 dbname=d", t)
            .unwrap_err()
            .to_string();
        assert!(e.contains("connect"), "{e}");
        assert!(!e.contains("pw-123"), "{e}");
    }

    #[test]
    fn statements_drop_comments_begin_and_commit() {
        let s = statements(
            "-- c\nBEGIN;\n\nCREATE VIEW v AS\nSELECT 1;\n\nMERGE INTO t USING s ON a\nWHEN MATCHED THEN DELETE;\n\nCOMMIT;\n",
        );
        assert_eq!(
            s,
            vec![
                "CREATE VIEW v AS\nSELECT 1".to_owned(),
                "MERGE INTO t USING s ON a\nWHEN MATCHED THEN DELETE".to_owned()
            ]
        );
        assert!(is_write(&s[1]));
        assert!(!is_write(&s[0]));
    }
}
