//! The MCP tools of `cfa mcp` (docs/mcp.md#tools, fixed per docs/differences.md#b12-mcp-protocol): input
//! schemas come from the parameter types; replan and block come back as tool results
//! with `isError: true` and the decision in `structuredContent`, so an agent can read
//! the fix and retry. Missing or mistyped arguments come back the same way as every
//! other tool error: `isError: true` with `{"error": {"code": "invalid_arguments",
//! "message"}}` as the structured content and as the text.

use crate::roots::{DEFAULT_MAX_FILE_BYTES, Roots};
use crate::service::FaceError;
use crate::service::decide::{BundleAccess, Governance, is_refusal};
use crate::service::intent;
use rmcp::RoleServer;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use tracing::field::Empty;

/// `cfa_evaluate_signature` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EvaluateSignatureParams {
    /// The StateSignature JSON object (optionally wrapped as `{"signature": {...}}`).
    pub signature: Map<String, Value>,
    /// Policy bundle: a built-in name (prod-v1, finops-strict-v1, compliance-strict-v1,
    /// eu-ai-act-v1, lgpd-v1, default); never a file. Default: the server's active bundle.
    #[serde(default)]
    pub policy_bundle: Option<String>,
    /// Replans already made for this intent (3 or more trips the replan cap).
    #[serde(default)]
    pub replan_count: u32,
}

/// `cfa_evaluate_intent` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EvaluateIntentParams {
    /// The intent in natural language (English or Portuguese), e.g. "Join nfe with clientes into silver".
    pub intent: String,
    /// Policy bundle: a built-in name (never a file). Default: the active bundle.
    #[serde(default)]
    pub policy_bundle: Option<String>,
}

/// `cfa_describe_rules` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DescribeRulesParams {
    /// Policy bundle: a built-in name (never a file). Default: the active bundle.
    #[serde(default)]
    pub policy_bundle: Option<String>,
}

/// `cfa_explain_fault` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainFaultParams {
    /// The fault code, e.g. CONTRACT_MISSING_MERGE_KEY.
    pub fault_code: String,
    /// Policy bundle to look the code up in. Default: the active bundle.
    #[serde(default)]
    pub policy_bundle: Option<String>,
}

/// `cfa_audit_check` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuditCheckParams {
    /// Count this intent's events (the whole chain is verified either way).
    #[serde(default)]
    pub intent_id: Option<String>,
}

/// `cfa_evidence_export` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EvidenceExportParams {
    /// The run: every event of this intent id in the server's audit log.
    pub intent_id: String,
}

/// `cfa_evidence_verify` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EvidenceVerifyParams {
    /// The bundle's files, `{path: text}`, as `cfa_evidence_export` returns them.
    pub files: Map<String, Value>,
    /// Verifier keys (vkey text) of the signers; none: signatures are not checked.
    #[serde(default)]
    pub pubkeys: Vec<String>,
}

/// `cfa_list_backends` arguments (none).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoParams {}

/// `cfa_lifecycle_status` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LifecycleStatusParams {
    /// Path of the lifecycle SQLite database, under the server's `--root` directories
    /// (opened read-only). Default: the server's `--lifecycle-db`.
    #[serde(default)]
    pub db_path: Option<String>,
    /// Only the skill with this signature hash (or hash prefix).
    #[serde(default)]
    pub signature_hash: Option<String>,
}

/// `cfa_budget_status` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BudgetStatusParams {
    /// Only this budget: `domain:NAME`, `target:NAME` or `agent:ID` (default: every budget).
    #[serde(default)]
    pub scope: Option<String>,
}

/// `cfa_compliance_check` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ComplianceCheckParams {
    /// The intent in natural language.
    pub intent: String,
    /// Compliance bundle by built-in name (default prod-v1; e.g. eu-ai-act-v1, lgpd-v1;
    /// never a file). It is really loaded and evaluated.
    #[serde(default)]
    pub bundle: Option<String>,
    /// A catalog object (`{"datasets": {...}}`); default: the server's catalog.
    #[serde(default)]
    pub catalog: Option<Map<String, Value>>,
}

/// The MCP server.
#[derive(Debug, Clone)]
pub struct CfaMcp {
    gov: Arc<Governance>,
    lifecycle_db: Option<std::path::PathBuf>,
    /// The PostgreSQL budgets of a postgres storage (read instead of the file's).
    pg_budgets: Option<crate::service::control_store::BudgetBackend>,
    roots: Arc<Roots>,
    kernels: Arc<intent::Kernels>,
    operator_token: Option<Arc<str>>,
    tool_router: ToolRouter<Self>,
}

fn face_error(e: &FaceError) -> CallToolResult {
    CallToolResult::structured_error(e.to_json())
}

/// The text rmcp puts in front of an argument deserialisation failure it turns into a
/// tool result.
const ARGUMENT_ERROR_PREFIX: &str = "failed to deserialize parameters:";

/// `response` with rmcp's plain-text argument error (missing or mistyped arguments)
/// rewritten as our structured `invalid_arguments` tool error.
fn shape_argument_error(tool: &str, response: CallToolResponse) -> CallToolResponse {
    let CallToolResponse::Complete(result) = response else {
        return response;
    };
    if result.is_error != Some(true) || result.structured_content.is_some() {
        return CallToolResponse::Complete(result);
    }
    let detail = match result.content.as_slice() {
        [only] => only
            .as_text()
            .and_then(|t| t.text.strip_prefix(ARGUMENT_ERROR_PREFIX))
            .map(str::trim),
        _ => None,
    };
    match detail {
        Some(detail) => CallToolResponse::Complete(face_error(&FaceError::new(
            "invalid_arguments",
            format!("invalid arguments for {tool}: {detail}"),
        ))),
        None => CallToolResponse::Complete(result),
    }
}

fn fault_codes(result: &cfa::PolicyResult) -> String {
    result
        .faults
        .iter()
        .map(|f| f.code.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[tool_router]
impl CfaMcp {
    /// A server over `gov`.
    pub fn new(gov: Arc<Governance>, lifecycle_db: Option<std::path::PathBuf>) -> Self {
        Self {
            gov,
            lifecycle_db,
            pg_budgets: None,
            roots: Arc::new(
                Roots::new(&[], DEFAULT_MAX_FILE_BYTES)
                    .unwrap_or_else(|_| Roots::none(DEFAULT_MAX_FILE_BYTES)),
            ),
            kernels: Arc::new(intent::Kernels::default()),
            operator_token: None,
            tool_router: Self::tool_router(),
        }
    }

    /// Runs the intents through `kernels` (budgets charged, execute phase).
    #[must_use]
    pub fn with_kernels(mut self, kernels: intent::Kernels) -> Self {
        self.kernels = Arc::new(kernels);
        self
    }

    /// The token budget changes need (`--operator-token`); none: they are refused.
    #[must_use]
    pub fn with_operator_token(mut self, token: Option<String>) -> Self {
        self.operator_token = token.filter(|t| !t.is_empty()).map(Arc::from);
        self
    }

    fn budget_face(&self) -> super::budget_tools::BudgetFace<'_> {
        super::budget_tools::BudgetFace {
            gov: &self.gov,
            db: self.lifecycle_db.as_deref(),
            token: self.operator_token.as_deref(),
        }
    }

    /// Reads the budgets from PostgreSQL (a postgres storage) instead of the file.
    #[must_use]
    pub fn with_pg_budgets(
        mut self,
        budgets: Option<crate::service::control_store::BudgetBackend>,
    ) -> Self {
        self.pg_budgets = budgets;
        self
    }

    /// Confines the file paths of tool arguments to `roots`.
    #[must_use]
    pub fn with_roots(mut self, roots: Roots) -> Self {
        self.roots = Arc::new(roots);
        self
    }

    /// Evaluates a signature.
    #[tool(
        name = "cfa_evaluate_signature",
        description = "Evaluate a StateSignature against a policy bundle (and the server's catalog). Returns the decision (approve/replan/block) with faults, interventions, machine-applicable patches and manual fixes. Replan and block are returned with isError=true and the decision in structuredContent: apply decision.patches to the signature and call again."
    )]
    fn evaluate_signature(
        &self,
        Parameters(p): Parameters<EvaluateSignatureParams>,
    ) -> Result<CallToolResult, McpError> {
        let span = tracing::info_span!(
            "mcp.tool",
            tool = "cfa_evaluate_signature",
            decision = Empty,
            fault_codes = Empty
        );
        let _g = span.enter();
        let value = Value::Object(p.signature);
        let out = Governance::parse_signature_value(&value).and_then(|sig| {
            self.gov
                .decide(&sig, p.policy_bundle.as_deref(), p.replan_count)
        });
        Ok(match out {
            Ok(d) => {
                span.record("decision", d.result.action.as_str());
                span.record("fault_codes", fault_codes(&d.result).as_str());
                if is_refusal(d.result.action) {
                    CallToolResult::structured_error(d.document())
                } else {
                    CallToolResult::structured(d.document())
                }
            }
            Err(e) => face_error(&e),
        })
    }

    /// Normalises and decides an intent.
    #[tool(
        name = "cfa_evaluate_intent",
        description = "Turn a natural-language intent into a StateSignature grounded in the server's catalog and decide it (with the bounded replan loop applying the decision's own patches). An intent that names no catalog dataset blocks. Non-approved outcomes come back with isError=true and the full outcome in structuredContent."
    )]
    fn evaluate_intent(
        &self,
        Parameters(p): Parameters<EvaluateIntentParams>,
    ) -> Result<CallToolResult, McpError> {
        let span = tracing::info_span!(
            "mcp.tool",
            tool = "cfa_evaluate_intent",
            decision = Empty,
            fault_codes = Empty
        );
        let _g = span.enter();
        Ok(
            match intent::evaluate_intent(
                &self.gov,
                &self.kernels,
                &p.intent,
                p.policy_bundle.as_deref(),
                None,
            ) {
                Ok(o) => {
                    let r = o.as_policy_result();
                    span.record("decision", o.state());
                    span.record("fault_codes", fault_codes(&r).as_str());
                    if is_refusal(r.action) {
                        CallToolResult::structured_error(o.to_json())
                    } else {
                        CallToolResult::structured(o.to_json())
                    }
                }
                Err(e) => face_error(&e),
            },
        )
    }

    /// Approval tickets (docs/mcp.md#approvals-and-the-kill-switch).
    #[tool(
        name = "cfa_approvals",
        description = "Approval tickets: list, show, approve, deny (docs/mcp.md)."
    )]
    fn approvals(
        &self,
        Parameters(p): Parameters<super::control_tools::ApprovalsParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(super::control_tools::approvals(&self.gov, &p))
    }

    /// The kill switch (docs/mcp.md#approvals-and-the-kill-switch).
    #[tool(
        name = "cfa_kill_switch",
        description = "Kill switches: list, engage, release (docs/mcp.md)."
    )]
    fn kill_switch(
        &self,
        Parameters(p): Parameters<super::control_tools::KillSwitchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(super::control_tools::kill_switch(&self.gov, &p))
    }

    /// Lists the rules of a bundle.
    #[tool(
        name = "cfa_describe_rules",
        description = "List the rules of the active (or named) policy bundle in evaluation order: name, action, fault code, severity, family, condition and remediation."
    )]
    fn describe_rules(
        &self,
        Parameters(p): Parameters<DescribeRulesParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_describe_rules").entered();
        Ok(match self.gov.describe_rules(p.policy_bundle.as_deref()) {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => face_error(&e),
        })
    }

    /// Explains a fault code.
    #[tool(
        name = "cfa_explain_fault",
        description = "Explain a fault code of the active (or named) bundle: the rule, its condition, action, severity, family, message and remediation."
    )]
    fn explain_fault(
        &self,
        Parameters(p): Parameters<ExplainFaultParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_explain_fault").entered();
        Ok(
            match self.gov.explain(&p.fault_code, p.policy_bundle.as_deref()) {
                Ok(v) => CallToolResult::structured(v),
                Err(e) => face_error(&e),
            },
        )
    }

    /// Verifies the audit log.
    #[tool(
        name = "cfa_audit_check",
        description = "Verify the hash chain of the server's audit log (--audit-log) in one pass; with intent_id, also count that intent's events. A broken chain comes back with isError=true and the first bad event."
    )]
    fn audit_check(
        &self,
        Parameters(p): Parameters<AuditCheckParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_audit_check").entered();
        Ok(match self.gov.audit_check(p.intent_id.as_deref()) {
            Ok(v) => {
                if v.get("chain_intact") == Some(&Value::Bool(true)) {
                    CallToolResult::structured(v)
                } else {
                    CallToolResult::structured_error(v)
                }
            }
            Err(e) => face_error(&e),
        })
    }

    /// Exports a run's evidence bundle.
    #[tool(
        name = "cfa_evidence_export",
        description = "The evidence bundle of one run (intent_id) from the server's audit log, as {format, intent_id, files: {path: text}}: run summary, provenance (inputs by hash, decision, sandbox metrics, state projected), toolchain, human review, an in-toto statement, the run's events with inclusion proofs against <log>.checkpoint, and a manifest of SHA-256s."
    )]
    fn evidence_export(
        &self,
        Parameters(p): Parameters<EvidenceExportParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_evidence_export").entered();
        let db = self.lifecycle_db.as_deref().filter(|p| p.is_file());
        Ok(
            match crate::service::evidence::export_json(&self.gov, &p.intent_id, db) {
                Ok(v) => CallToolResult::structured(v),
                Err(e) => face_error(&e),
            },
        )
    }

    /// Verifies an evidence bundle.
    #[tool(
        name = "cfa_evidence_verify",
        description = "Check an evidence bundle offline (files as cfa_evidence_export returns them; pubkeys to check the signatures): every hash, the event chain, each inclusion proof, every document against the events. A bundle that does not verify comes back with isError=true and the failed checks, each naming its file."
    )]
    fn evidence_verify(
        &self,
        Parameters(p): Parameters<EvidenceVerifyParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_evidence_verify").entered();
        let doc = serde_json::json!({"files": p.files, "pubkeys": p.pubkeys});
        Ok(match crate::service::evidence::verify_json(&doc) {
            Ok(v) if v.get("ok") == Some(&Value::Bool(true)) => CallToolResult::structured(v),
            Ok(v) => CallToolResult::structured_error(v),
            Err(e) => face_error(&e),
        })
    }

    /// Lists code-generation backends.
    #[tool(
        name = "cfa_list_backends",
        description = "List the code-generation backends (pyspark, sql, dbt) and their capabilities."
    )]
    fn list_backends(
        &self,
        Parameters(_p): Parameters<NoParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_list_backends").entered();
        Ok(CallToolResult::structured(Governance::list_backends()))
    }

    /// Reads the lifecycle skills.
    #[tool(
        name = "cfa_lifecycle_status",
        description = "Read the lifecycle skills (signature hash, promotion state, transitions) from the lifecycle SQLite database. Lifecycle state never changes a decision (B1)."
    )]
    fn lifecycle_status(
        &self,
        Parameters(p): Parameters<LifecycleStatusParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_lifecycle_status").entered();
        // A path from the agent is confined to the roots; the operator's is trusted.
        let path = match p.db_path.as_deref() {
            Some(given) => match self
                .roots
                .resolve(given, "no_lifecycle_db", "lifecycle database")
            {
                Ok(path) => Some(path),
                Err(e) => return Ok(face_error(&e)),
            },
            None => self.lifecycle_db.clone(),
        };
        Ok(match path {
            None => face_error(&FaceError::new(
                "no_lifecycle_db",
                "no lifecycle database: pass db_path or start the server with --lifecycle-db FILE",
            )),
            Some(path) => match lifecycle_skills(&path, p.signature_hash.as_deref()) {
                Ok(v) => CallToolResult::structured(v),
                Err(e) => face_error(&e),
            },
        })
    }

    /// Reads the budgets.
    #[tool(
        name = "cfa_budget_status",
        description = "Read the budgets (per domain:, target: or agent: scope and window: limits, spent, reserved and remaining DBU, runs and rows) from the server's lifecycle database. An approved run that does not fit is blocked with BUDGET_EXCEEDED."
    )]
    fn budget_status(
        &self,
        Parameters(p): Parameters<BudgetStatusParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_budget_status").entered();
        let now = jiff::Timestamp::now().as_second();
        if let Some(pg) = &self.pg_budgets {
            return Ok(
                match crate::service::budget::status_document_of(pg, p.scope.as_deref(), now) {
                    Ok(v) => CallToolResult::structured(v),
                    Err(e) => face_error(&e),
                },
            );
        }
        let Some(path) = self.lifecycle_db.as_deref() else {
            return Ok(face_error(&FaceError::new(
                "no_lifecycle_db",
                "no lifecycle database: start the server with --lifecycle-db FILE",
            )));
        };
        Ok(
            match crate::service::budget::status_document(path, p.scope.as_deref(), now) {
                Ok(v) => CallToolResult::structured(v),
                Err(e) => face_error(&e),
            },
        )
    }

    /// Sets a budget (docs/mcp.md#budgets).
    #[tool(
        name = "cfa_budget_set",
        description = "Set (or replace) the budget of a scope (domain:NAME, target:NAME, agent:ID) in the server's lifecycle database: window and at least one cap (dbu, runs, rows). Needs the server's operator token (argument operator_token); audited as budget_set."
    )]
    fn budget_set(
        &self,
        Parameters(p): Parameters<super::budget_tools::BudgetSetParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_budget_set").entered();
        Ok(self.budget_face().set(&p))
    }

    /// Removes a budget (docs/mcp.md#budgets).
    #[tool(
        name = "cfa_budget_rm",
        description = "Remove the budget of a scope (its past reservations stay on record). Needs the server's operator token (argument operator_token); audited as budget_removed."
    )]
    fn budget_rm(
        &self,
        Parameters(p): Parameters<super::budget_tools::BudgetRmParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_budget_rm").entered();
        Ok(self.budget_face().rm(&p))
    }

    /// Runs golden policy cases (docs/mcp.md#testing-and-backtesting-bundles).
    #[tool(
        name = "cfa_policy_test",
        description = "Run golden policy cases (case files or directories under the server's --root directories, as `cfa policy test`) against a bundle (a built-in name, a file under the roots, or bundle_text; default the active bundle). Returns the cfa.policy_test.v1 report: per-case pass/fail with the differences, rule coverage. Any failed case: isError=true."
    )]
    fn policy_test(
        &self,
        Parameters(p): Parameters<super::policy_tools::PolicyTestParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_policy_test").entered();
        Ok(super::policy_tools::policy_test(&self.gov, &self.roots, &p))
    }

    /// Backtests a candidate bundle (docs/mcp.md#testing-and-backtesting-bundles).
    #[tool(
        name = "cfa_policy_backtest",
        description = "Decide every decision recorded in the server's audit log again with a candidate bundle (a built-in name, a file under the roots, or bundle_text), as `cfa policy backtest`. Returns the cfa.policy_backtest.v1 report: each decision that would change (old -> new action and faults, the candidate's rules) with an inclusion proof of its event. Some decision would change: isError=true. Writes nothing."
    )]
    fn policy_backtest(
        &self,
        Parameters(p): Parameters<super::policy_tools::PolicyBacktestParams>,
    ) -> Result<CallToolResult, McpError> {
        let _g = tracing::info_span!("mcp.tool", tool = "cfa_policy_backtest").entered();
        Ok(super::policy_tools::policy_backtest(
            &self.gov,
            &self.roots,
            &p,
        ))
    }

    /// Checks an intent against a compliance bundle.
    #[tool(
        name = "cfa_compliance_check",
        description = "Evaluate a natural-language intent against a compliance bundle (default prod-v1; e.g. eu-ai-act-v1, lgpd-v1), which is really loaded. Returns decision in upper case (APPROVED, BLOCKED, REPLAN_REQUIRED), faults, blocked_reason and signature_hash; non-approved outcomes have isError=true."
    )]
    fn compliance_check(
        &self,
        Parameters(p): Parameters<ComplianceCheckParams>,
    ) -> Result<CallToolResult, McpError> {
        let span = tracing::info_span!(
            "mcp.tool",
            tool = "cfa_compliance_check",
            decision = Empty,
            fault_codes = Empty
        );
        let _g = span.enter();
        let bundle = p.bundle.unwrap_or_else(|| "prod-v1".to_owned());
        let catalog = match p
            .catalog
            .map(Value::Object)
            .as_ref()
            .map(intent::inline_catalog)
        {
            Some(Err(e)) => return Ok(face_error(&e)),
            Some(Ok(c)) => Some(c),
            None => None,
        };
        let out =
            intent::evaluate_intent(&self.gov, &self.kernels, &p.intent, Some(&bundle), catalog);
        Ok(match out {
            Ok(o) => {
                let r = o.as_policy_result();
                span.record("decision", o.state());
                span.record("fault_codes", fault_codes(&r).as_str());
                let v = intent::compliance_json(&o, &bundle);
                if is_refusal(r.action) {
                    CallToolResult::structured_error(v)
                } else {
                    CallToolResult::structured(v)
                }
            }
            Err(e) => face_error(&e),
        })
    }
}

fn lifecycle_skills(path: &std::path::Path, filter: Option<&str>) -> Result<Value, FaceError> {
    // Read-only: the file is never created, migrated or switched to WAL.
    let db = cfa::LifecycleDb::open_read_only(path).map_err(|e| match e {
        cfa::lifecycle::LifecycleError::NotFound { .. } => FaceError::new(
            "no_lifecycle_db",
            format!("no lifecycle database at {}", path.display()),
        ),
        cfa::lifecycle::LifecycleError::Foreign { .. } => {
            FaceError::new("not_a_lifecycle_db", e.to_string())
        }
        other => FaceError::new("lifecycle_error", other.to_string()),
    })?;
    let skills = db
        .skill_load_all()
        .map_err(|e| FaceError::new("lifecycle_error", e.to_string()))?;
    let list: Vec<Value> = skills
        .iter()
        .filter(|s| filter.is_none_or(|f| s.signature_hash.starts_with(f)))
        .map(|s| {
            serde_json::json!({
                "signature_hash": s.signature_hash,
                "state": s.state.as_str(),
                "transitions": s.history.len(),
                "last_evaluation": s.last_evaluation,
                "demotion_reason": s.demotion_reason,
                "history": s.history,
            })
        })
        .collect();
    Ok(
        serde_json::json!({"db_path": path.display().to_string(), "skill_count": list.len(), "skills": list}),
    )
}

impl CfaMcp {
    /// The names of the tools this server offers.
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CfaMcp {
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tool = request.name.to_string();
        let tcc = ToolCallContext::new(self, request, context);
        let response = self.tool_router.call(tcc).await?;
        Ok(shape_argument_error(&tool, response))
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cfa-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "CFA governance: call cfa_evaluate_signature (or cfa_evaluate_intent) before \
                 running a data job. On replan, apply structuredContent.decision.patches to the \
                 signature and call again; on block, change the intent.",
            )
    }
}

/// The access rule of the MCP face: requests name built-in bundles only, never files
/// (the active bundle, set when the server starts, may be a file).
pub const ACCESS: BundleAccess = BundleAccess::NamesOnly;
