//! The OpenAPI 3.1 document of `cfa serve` (`GET /openapi.json`). The signature and
//! decision schemas are `cfa::types::schema`'s, so the document cannot drift from the
//! types; every route the router serves is listed (a test checks both ways).

use serde_json::{Value, json};

/// Every (method, path) the server routes, in document order.
pub const ROUTES: [(&str, &str); 21] = [
    ("post", "/v1/decisions"),
    ("post", "/v1/evaluate"),
    ("get", "/v1/rules"),
    ("post", "/v1/policy/test"),
    ("post", "/v1/policy/backtest"),
    ("get", "/v1/audit/verify"),
    ("get", "/v1/evidence/{intent_id}"),
    ("post", "/v1/evidence/verify"),
    ("get", "/v1/budgets"),
    ("put", "/v1/budgets/{scope}"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/dashboard"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/deny"),
    ("get", "/v1/kills"),
    ("post", "/v1/kills/engage"),
    ("post", "/v1/kills/release"),
];

/// The paths of the control plane (docs/http.md#approvals-and-the-kill-switch).
fn control_paths(secured: &Value) -> Value {
    let id = json!({"name": "id", "in": "path", "required": true, "description": "The ticket id.", "schema": {"type": "string"}});
    let obj = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": {"type": "object"}}}});
    let body = |props: Value, required: Value| {
        json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": props}}}})
    };
    let resolve_body = body(
        json!({"by": {"type": "string"}, "note": {"type": "string"}}),
        json!(["by"]),
    );
    let no_control = error_response(
        "The server runs without a lifecycle database, --lifecycle-db or a cfa.yaml sqlite storage (no_control_db), or no such ticket / switch.",
    );
    let unauthorized = error_response("Missing or wrong bearer token.");
    json!({
        "/v1/approvals": {"get": {
            "operationId": "listApprovals", "summary": "Approval tickets, oldest first", "security": secured,
            "parameters": [{"name": "status", "in": "query", "required": false,
                            "description": "pending, granted, denied or spent.", "schema": {"type": "string"}}],
            "responses": {"200": obj("{count, tickets}."), "400": error_response("Unknown status."),
                          "401": unauthorized, "404": no_control}}},
        "/v1/approvals/{id}": {"get": {
            "operationId": "showApproval", "summary": "One approval ticket", "security": secured,
            "parameters": [id],
            "responses": {"200": obj("The ticket."), "401": unauthorized, "404": no_control}}},
        "/v1/approvals/{id}/approve": {"post": {
            "operationId": "approveTicket", "summary": "Approve a pending ticket (the operator's token when the server has one)",
            "security": secured, "parameters": [id], "requestBody": resolve_body,
            "responses": {"200": obj("{ticket, audit_event_hash}."), "401": unauthorized, "404": no_control,
                          "409": error_response("The ticket is not pending (ticket_not_pending) or expired (ticket_expired).")}}},
        "/v1/approvals/{id}/deny": {"post": {
            "operationId": "denyTicket", "summary": "Deny a pending ticket", "security": secured,
            "parameters": [id], "requestBody": resolve_body,
            "responses": {"200": obj("{ticket, audit_event_hash}."), "401": unauthorized, "404": no_control,
                          "409": error_response("The ticket is not pending or expired.")}}},
        "/v1/kills": {"get": {
            "operationId": "listKills", "summary": "The engaged kill switches", "security": secured,
            "responses": {"200": obj("{count, kills}."), "401": unauthorized, "404": no_control}}},
        "/v1/kills/engage": {"post": {
            "operationId": "engageKill", "summary": "Engage a kill switch: every decision in the scope blocks with KILL_SWITCH_ENGAGED",
            "security": secured,
            "requestBody": body(json!({"scope": {"type": "string", "description": "*, domain:NAME, target:NAME or agent:ID"},
                                       "reason": {"type": "string"}, "by": {"type": "string"}}), json!(["scope", "reason", "by"])),
            "responses": {"200": obj("{kill, audit_event_hash}."), "400": error_response("Bad scope (bad_scope) or body."),
                          "401": unauthorized, "404": no_control}}},
        "/v1/kills/release": {"post": {
            "operationId": "releaseKill", "summary": "Lift a kill switch", "security": secured,
            "requestBody": body(json!({"scope": {"type": "string"}, "by": {"type": "string"}}), json!(["scope", "by"])),
            "responses": {"200": obj("{released, audit_event_hash}."), "400": error_response("Bad scope or body."),
                          "401": unauthorized, "404": error_response("No switch engaged on that scope (not_engaged), or no --lifecycle-db (no_control_db).")}}}
    })
}

fn strip_dialect(mut schema: Value) -> Value {
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    schema
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn bundle_param() -> Value {
    json!({"name": "policy_bundle", "in": "query", "required": false,
           "description": "Built-in bundle name (prod-v1, finops-strict-v1, compliance-strict-v1, eu-ai-act-v1, lgpd-v1, default). Default: the server's active bundle.",
           "schema": {"type": "string"}})
}

/// The document.
pub fn document() -> Value {
    let secured = json!([{"bearer": []}]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CFA decision service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Pre-execution governance: evaluate a StateSignature (or an intent) against a policy bundle and get approve, replan (with patches) or block. Every endpoint except /health needs `Authorization: Bearer <token>` when the server runs with a token."
        },
        "servers": [{"url": "http://127.0.0.1:8765"}],
        "paths": {
            "/v1/decisions": {"post": {
                "operationId": "decide",
                "summary": "Decide one StateSignature",
                "security": secured,
                "parameters": [bundle_param(),
                    {"name": "replan_count", "in": "query", "required": false,
                     "description": "Replans already made for this intent.",
                     "schema": {"type": "integer", "minimum": 0}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/StateSignature"},
                        {"type": "object", "required": ["signature"], "properties": {
                            "signature": {"$ref": "#/components/schemas/StateSignature"},
                            "policy_bundle": {"type": "string"}}}
                    ]}}}},
                "responses": {
                    "200": {"description": "The decision (approve, replan or block).",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DecisionEnvelope"}}}},
                    "400": error_response("Malformed JSON, bad query or unknown bundle."),
                    "401": error_response("Missing or wrong bearer token."),
                    "413": error_response("Body larger than the limit."),
                    "415": error_response("The body is not declared as Content-Type: application/json."),
                    "422": error_response("The JSON is not a valid StateSignature."),
                    "500": error_response("The decision could not be audited.")
                }
            }},
            "/v1/evaluate": {"post": {
                "operationId": "evaluateIntent",
                "summary": "Ground a natural-language intent in the catalog and decide it",
                "security": secured,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["intent"], "properties": {
                        "intent": {"type": "string"},
                        "policy_bundle": {"type": "string"}}}}}},
                "responses": {
                    "200": {"description": "The outcome: state, the final decision, the signature and the applied patches.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IntentOutcome"}}}},
                    "400": error_response("Malformed JSON or unknown bundle."),
                    "401": error_response("Missing or wrong bearer token."),
                    "413": error_response("Body larger than the limit."),
                    "415": error_response("The body is not declared as Content-Type: application/json.")
                }
            }},
            "/v1/policy/test": {"post": {
                "operationId": "testPolicy",
                "summary": "Run golden policy cases (signatures inline) against the active (or named) bundle",
                "security": secured,
                "parameters": [bundle_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "description": "One case, a list of cases, or {cases: [...]}: {name, signature, catalog, replan_count, expect: {action, faults, patches, reasoning}} (docs/cli.md#cfa-policy-test).",
                    "type": ["object", "array"]}}}},
                "responses": {
                    "200": {"description": "The cfa.policy_test.v1 report: per-case pass/fail/error with differences, rule coverage.",
                            "content": {"application/json": {"schema": {"type": "object",
                                "required": ["schema_version", "ok", "summary", "cases", "coverage"]}}}},
                    "400": error_response("Malformed cases (with line:column) or unknown bundle."),
                    "401": error_response("Missing or wrong bearer token."),
                    "413": error_response("Body larger than the limit.")
                }
            }},
            "/v1/rules": {"get": {
                "operationId": "listRules",
                "summary": "The rules of the active (or named) bundle",
                "security": secured,
                "parameters": [bundle_param()],
                "responses": {
                    "200": {"description": "Rules in evaluation order.", "content": {"application/json": {"schema": {"type": "object",
                        "required": ["policy_bundle", "rule_count", "rules"],
                        "properties": {"policy_bundle": {"type": "string"}, "rule_count": {"type": "integer"},
                                       "rules": {"type": "array", "items": {"type": "object"}}}}}}},
                    "400": error_response("Unknown bundle."),
                    "401": error_response("Missing or wrong bearer token.")
                }
            }},
            "/v1/audit/verify": {"get": {
                "operationId": "verifyAudit",
                "summary": "Verify the server's audit chain in one pass",
                "security": secured,
                "parameters": [{"name": "intent_id", "in": "query", "required": false,
                                "description": "Also count this intent's events.", "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The verification report.", "content": {"application/json": {"schema": {"type": "object",
                        "required": ["chain_intact", "total_events"],
                        "properties": {"chain_intact": {"type": "boolean"}, "total_events": {"type": "integer"},
                                       "tail_hash": {"type": "string"}, "first_bad": {}, "intent_id": {"type": "string"},
                                       "event_count": {"type": "integer"}, "file": {"type": "string"},
                                       "legacy_events": {"type": "integer"}}}}}},
                    "401": error_response("Missing or wrong bearer token."),
                    "404": error_response("No audit log is configured.")
                }
            }},
            "/health": {"get": {
                "operationId": "health", "summary": "Liveness", "security": [],
                "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"status": {"const": "ok"}, "version": {"type": "string"},
                    "audit": {"type": "object", "description": "The audit log, with the torn tails moved aside (`repairs`).",
                              "properties": {"file": {"type": "string"}, "status": {"enum": ["ok", "repaired"]},
                                             "repairs": {"type": "array", "items": {"type": "object"}}}}}}}}}}
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics (OpenMetrics text)",
                "security": secured,
                "responses": {"200": {"description": "Metrics.", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}},
                              "401": error_response("Missing or wrong bearer token.")}
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": secured,
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}},
                              "401": error_response("Missing or wrong bearer token.")}
            }},
            "/dashboard": {"get": {
                "operationId": "dashboard", "summary": "The dashboard page (self-contained HTML, inline SVG, nothing fetched) from the server's audit log; reloads every 30 s", "security": secured,
                "parameters": [{"name": "period", "in": "query", "required": false,
                    "description": "Days before now that the page covers (default 90).",
                    "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
                              "401": error_response("Missing or wrong bearer token."),
                              "500": error_response("The audit log could not be read.")}
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "StateSignature": strip_dialect(cfa::types::schema::signature_schema()),
                "PolicyDecision": strip_dialect(cfa::types::schema::decision_schema()),
                "DecisionEnvelope": {
                    "type": "object",
                    "required": ["decision_id", "action", "passed", "decision", "signature_hash", "content_hash", "policy_bundle"],
                    "properties": {
                        "decision_id": {"type": "string"},
                        "action": {"enum": ["approve", "replan", "block"]},
                        "passed": {"type": "boolean"},
                        "decision": {"$ref": "#/components/schemas/PolicyDecision"},
                        "signature_hash": {"type": "string"},
                        "content_hash": {"type": "string"},
                        "intent_id": {"type": "string"},
                        "policy_bundle": {"type": "string"},
                        "policy_bundle_hash": {"type": "string"},
                        "catalog_hash": {"type": "string"},
                        "audit_event_hash": {"type": "string", "description": "Empty when the server has no audit log."}
                    }
                },
                "IntentOutcome": {
                    "description": "The kernel's result (cfa-kernel KernelResult) plus the intent text.",
                    "type": "object",
                    "required": ["intent", "intent_id", "decision_id", "state", "blocked_reason", "faults", "audit_event_hashes"],
                    "properties": {
                        "intent": {"type": "string"},
                        "intent_id": {"type": "string"},
                        "decision_id": {"type": "string"},
                        "state": {"type": "string"},
                        "executable": {"type": "boolean"},
                        "blocked_reason": {"type": "string"},
                        "replan_count": {"type": "integer"},
                        "replan_history": {"type": "array"},
                        "signature": {"oneOf": [{"$ref": "#/components/schemas/StateSignature"}, {"type": "null"}]},
                        "policy_result": {"oneOf": [{"$ref": "#/components/schemas/PolicyDecision"}, {"type": "null"}]},
                        "faults": {"type": "array"},
                        "audit_event_hashes": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "Budget": {
                    "type": "object",
                    "required": ["scope", "window", "window_start", "window_end", "limits", "spent", "reserved", "remaining"],
                    "description": "DBU in DBU; a dimension without a cap has null limits and remaining.",
                    "properties": {
                        "scope": {"type": "string"}, "window": {"type": "string"},
                        "window_start": {"type": "string"}, "window_end": {"type": "string"},
                        "limits": {"$ref": "#/components/schemas/BudgetAmounts"},
                        "spent": {"$ref": "#/components/schemas/BudgetAmounts"},
                        "reserved": {"$ref": "#/components/schemas/BudgetAmounts"},
                        "remaining": {"$ref": "#/components/schemas/BudgetAmounts"}
                    }
                },
                "BudgetAmounts": {
                    "type": "object",
                    "properties": {"dbu": {"type": ["number", "null"]}, "runs": {"type": ["integer", "null"]},
                                   "rows": {"type": ["integer", "null"]}}
                },
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}
                }
            }
        }
    });
    // The operator routes (evidence, budgets) in a second `json!`: one macro call holding
    // every path exceeds the macro's recursion limit.
    if let (Some(paths), Value::Object(more)) = (
        doc.get_mut("paths").and_then(Value::as_object_mut),
        operator_paths(&secured),
    ) {
        paths.extend(more);
    }
    if let (Some(Value::Object(paths)), Value::Object(extra)) =
        (doc.get_mut("paths"), control_paths(&secured))
    {
        paths.extend(extra);
    }
    if let (Some(Value::Object(paths)), Value::Object(extra)) =
        (doc.get_mut("paths"), backtest_paths(&secured))
    {
        paths.extend(extra);
    }
    doc
}

/// The path of `POST /v1/policy/backtest`.
fn backtest_paths(secured: &Value) -> Value {
    json!({
        "/v1/policy/backtest": {"post": {
            "operationId": "backtestPolicy",
            "summary": "Decide every decision of the server's audit log again with a candidate bundle: what would change, with inclusion proofs (the report of `cfa policy backtest -f json`); writes nothing",
            "security": secured,
            "parameters": [{"name": "policy_bundle", "in": "query", "required": false,
                            "description": "The candidate, a built-in bundle name (or give it in the body).",
                            "schema": {"type": "string"}}],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false, "properties": {
                    "bundle": {"type": "string", "description": "The candidate, a built-in bundle name."},
                    "bundle_text": {"type": "string", "description": "The candidate bundle's text: YAML, or JSON starting with `{`."}}}}}},
            "responses": {
                "200": {"description": "The `cfa.policy_backtest.v1` report (200 whether decisions change or not: read `changed`).",
                        "content": {"application/json": {"schema": {"type": "object",
                            "required": ["schema_version", "decisions", "changed", "changes", "missing", "root", "tree_size"],
                            "properties": {"schema_version": {"const": "cfa.policy_backtest.v1"},
                                "log": {"type": "string"}, "inputs": {"type": "string"}, "candidate": {"type": "object"},
                                "events": {"type": "integer"}, "decisions": {"type": "integer"}, "replayed": {"type": "integer"},
                                "unchanged": {"type": "integer"}, "changed": {"type": "integer"}, "not_replayable": {"type": "integer"},
                                "root": {"type": "string"}, "tree_size": {"type": "integer"},
                                "changes": {"type": "array", "items": {"type": "object"}},
                                "missing": {"type": "array", "items": {"type": "object"}}}}}}},
                "400": error_response("No candidate, an unknown name, a file path (names only), a bundle text that does not load (`bundle_text:LINE:COLUMN`), or a bad body."),
                "401": error_response("Missing or wrong bearer token."),
                "404": error_response("The server has no audit log (no_audit_log)."),
                "409": error_response("The chain is broken (audit_broken), or the log is a PostgreSQL chain that keeps no inputs (backtest_unavailable).")
            }
        }}
    })
}

/// The paths of the operator routes: evidence bundles and budgets.
fn operator_paths(secured: &Value) -> Value {
    json!({
            "/v1/evidence/{intent_id}": {"get": {
                "operationId": "exportEvidence",
                "summary": "The run's evidence bundle as one JSON document (the files `cfa evidence export` writes)",
                "security": secured,
                "parameters": [{"name": "intent_id", "in": "path", "required": true,
                                "description": "The run: every event of this intent id.", "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "`{format, intent_id, files: {path: text}}`; proofs are against `<log>.checkpoint`, the statement is unsigned.",
                            "content": {"application/json": {"schema": {"type": "object", "required": ["format", "files"],
                        "properties": {"format": {"type": "string"}, "intent_id": {"type": "string"},
                                       "files": {"type": "object", "additionalProperties": {"type": "string"}}}}}}},
                    "401": error_response("Missing or wrong bearer token."),
                    "404": error_response("No audit log is configured, or the log has no event of the intent."),
                    "409": error_response("No checkpoint beside the log covers the run (`no_checkpoint`), or the chain is broken.")
                }
            }},
            "/v1/evidence/verify": {"post": {
                "operationId": "verifyEvidence",
                "summary": "Check an evidence bundle document offline: hashes, chain, proofs, documents, signatures",
                "security": secured,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["files"],
                    "properties": {"files": {"type": "object", "additionalProperties": {"type": "string"}},
                                   "pubkeys": {"type": "array", "items": {"type": "string"}, "description": "Verifier keys (vkey text); none: signatures not checked."}}}}}},
                "responses": {
                    "200": {"description": "The report (`ok` false with the failed checks when anything differs).", "content": {"application/json": {"schema": {"type": "object",
                        "required": ["ok", "checks"],
                        "properties": {"ok": {"type": "boolean"}, "intent_id": {}, "signatures_checked": {"type": "boolean"},
                                       "failures": {"type": "integer"}, "checks": {"type": "array"}}}}}},
                    "400": error_response("Not a bundle document, or a bad verifier key."),
                    "401": error_response("Missing or wrong bearer token.")
                }
            }},
            "/v1/budgets": {"get": {
                "operationId": "listBudgets",
                "summary": "Every budget (or one, with scope) and where it stands in its current window",
                "security": secured,
                "parameters": [{"name": "scope", "in": "query", "required": false,
                                "description": "Only this budget: domain:NAME, target:NAME or agent:ID.",
                                "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "`{now, budgets: [Budget]}`, or `{now, budget: Budget}` with scope.",
                            "content": {"application/json": {"schema": {"type": "object", "required": ["now"],
                                "properties": {"now": {"type": "string"},
                                               "budgets": {"type": "array", "items": {"$ref": "#/components/schemas/Budget"}},
                                               "budget": {"$ref": "#/components/schemas/Budget"}}}}}},
                    "400": error_response("Bad scope or query."),
                    "401": error_response("Missing or wrong bearer token."),
                    "404": error_response("No lifecycle database, or no budget for the scope.")
                }
            }},
            "/v1/budgets/{scope}": {"put": {
                "operationId": "setBudget",
                "summary": "Set (or replace) the budget of a scope; audited as budget_set. Needs the operator's token: a server without --token answers 403",
                "security": secured,
                "parameters": [{"name": "scope", "in": "path", "required": true,
                                "description": "domain:NAME, target:NAME or agent:ID.", "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["window"], "additionalProperties": false, "properties": {
                        "window": {"type": "string", "description": "A number and a unit s, m, h, d or w (1h, 24h, 30d); fixed windows anchored at the Unix epoch."},
                        "dbu": {"type": "number", "minimum": 0}, "runs": {"type": "integer", "minimum": 0},
                        "rows": {"type": "integer", "minimum": 0}, "by": {"type": "string"}}}}}},
                "responses": {
                    "200": {"description": "`{budget: Budget, replaced}`.", "content": {"application/json": {"schema": {"type": "object",
                        "properties": {"budget": {"$ref": "#/components/schemas/Budget"}, "replaced": {"type": "boolean"}}}}}},
                    "400": error_response("Bad scope, window, amount or body; nothing was changed."),
                    "401": error_response("Missing or wrong bearer token."),
                    "403": error_response("The server has no operator token."),
                    "404": error_response("No lifecycle database."),
                    "500": error_response("The change could not be audited (it was undone).")
                }
            }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_the_type_schemas() {
        let doc = document();
        assert_eq!(doc.get("openapi"), Some(&json!("3.1.0")));
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        assert_eq!(paths.len(), ROUTES.len());
        for (method, path) in ROUTES {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing"
            );
        }
        let schemas = doc
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            schemas.pointer("/PolicyDecision/properties"),
            cfa::types::schema::decision_schema().get("properties")
        );
    }
}
