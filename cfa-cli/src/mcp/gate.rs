//! The JSON-RPC gate in front of the rmcp server: every stdin line passes through it
//! before rmcp sees it. It answers what rmcp would drop or answer differently — a line
//! that is not JSON gets `-32700`, JSON that is not a JSON-RPC 2.0 message gets
//! `-32600` — and enforces `CFA_MCP_API_KEY` (`-32001`) and the per-tool rate limit
//! (`-32002`) of docs/mcp.md#authentication. The key is removed from `params._meta` before the
//! message is forwarded, so nothing downstream (rmcp's own logging included) can see
//! it. Notifications are never answered: one that fails the key check is dropped.
//! `params` that is not an object (and, for `tools/call`, a `name` that is not a string
//! or `arguments` that is not an object) gets `-32602` here, since rmcp would answer
//! it as an unknown method or an id-less invalid request. The rate limiter keys only
//! the server's own tool names; any other name shares one `other` bucket, so made-up
//! names cannot grow its table.

use super::ratelimit::RateLimiter;
use crate::service::constant_time_eq;
use serde_json::{Map, Value, json};

/// JSON-RPC parse error.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC invalid request.
pub const INVALID_REQUEST: i64 = -32600;
/// Missing or wrong `params._meta.api_key`.
pub const UNAUTHORIZED: i64 = -32001;
/// Per-tool rate limit exceeded.
pub const RATE_LIMITED: i64 = -32002;
/// JSON-RPC invalid params.
pub const INVALID_PARAMS: i64 = -32602;

/// What to do with one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand this line to rmcp (possibly rewritten without the API key).
    Forward(String),
    /// Write this error response to stdout instead.
    Reply(String),
    /// Say nothing (blank line, or an unauthorised notification).
    Drop,
}

/// The gate's configuration and state.
#[derive(Debug)]
pub struct Gate {
    api_key: Option<String>,
    limiter: RateLimiter,
    /// The tool names the limiter keys by name (`None`: every name).
    tools: Option<Vec<String>>,
}

/// Methods that need no API key (docs/mcp.md#authentication).
const OPEN_METHODS: [&str; 2] = ["initialize", "ping"];

impl Gate {
    /// A gate; `api_key` `None` (or empty) disables authentication.
    pub fn new(api_key: Option<String>, limiter: RateLimiter) -> Self {
        Self {
            api_key: api_key.filter(|k| !k.is_empty()),
            limiter,
            tools: None,
        }
    }

    /// Rate-limits only `tools` by name; calls of any other name share one bucket.
    #[must_use]
    pub fn with_tools(mut self, tools: impl IntoIterator<Item = String>) -> Self {
        self.tools = Some(tools.into_iter().collect());
        self
    }

    /// Decides what happens to one line (without its trailing newline).
    pub fn check(&mut self, line: &str) -> Verdict {
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Verdict::Drop;
        }
        let mut value: Value = match serde_json::from_str(trimmed) {
            Ok(v) => v,
            Err(e) => {
                return Verdict::Reply(error_line(
                    &Value::Null,
                    PARSE_ERROR,
                    &format!("Parse error: {e}"),
                ));
            }
        };
        let Some(obj) = value.as_object_mut() else {
            let what = if value.is_array() {
                "batches are not supported; send one JSON-RPC object per line"
            } else {
                "a JSON-RPC message must be a JSON object"
            };
            return Verdict::Reply(error_line(
                &Value::Null,
                INVALID_REQUEST,
                &format!("Invalid request: {what}"),
            ));
        };
        let id = obj.get("id").cloned();
        let reply_id = match &id {
            Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
            _ => Value::Null,
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Verdict::Reply(error_line(
                &reply_id,
                INVALID_REQUEST,
                "Invalid request: \"jsonrpc\" must be \"2.0\"",
            ));
        }
        let method = match obj.get("method") {
            Some(Value::String(m)) => m.clone(),
            Some(_) => {
                return Verdict::Reply(error_line(
                    &reply_id,
                    INVALID_REQUEST,
                    "Invalid request: \"method\" must be a string",
                ));
            }
            None => {
                if obj.contains_key("result") || obj.contains_key("error") {
                    // A response to a server-initiated request: rmcp correlates it.
                    return Verdict::Forward(trimmed.to_owned());
                }
                return Verdict::Reply(error_line(
                    &reply_id,
                    INVALID_REQUEST,
                    "Invalid request: no \"method\"",
                ));
            }
        };
        let is_notification = id.is_none();
        if !is_notification && !matches!(id, Some(Value::String(_) | Value::Number(_))) {
            return Verdict::Reply(error_line(
                &Value::Null,
                INVALID_REQUEST,
                "Invalid request: \"id\" must be a string or a number",
            ));
        }
        let presented = take_api_key(obj);
        if let Some(key) = &self.api_key
            && !OPEN_METHODS.contains(&method.as_str())
        {
            let ok = presented
                .as_deref()
                .is_some_and(|p| constant_time_eq(p.as_bytes(), key.as_bytes()));
            if !ok {
                tracing::warn!(method = %method, "unauthorized request refused");
                if is_notification {
                    return Verdict::Drop;
                }
                return Verdict::Reply(error_line(
                    &reply_id,
                    UNAUTHORIZED,
                    "Unauthorized: set CFA_MCP_API_KEY",
                ));
            }
        }
        if let Some(problem) = params_problem(&method, obj.get("params")) {
            if is_notification {
                return Verdict::Drop;
            }
            return Verdict::Reply(error_line(
                &reply_id,
                INVALID_PARAMS,
                &format!("Invalid params: {problem}"),
            ));
        }
        if method == "tools/call" && !is_notification {
            let tool = obj
                .get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let key = match &self.tools {
                Some(known) if !known.iter().any(|t| t == tool) => "other",
                _ => tool,
            };
            if !self.limiter.allow(key) {
                tracing::warn!(tool = %key, "rate limit exceeded");
                let msg = format!(
                    "Rate limit exceeded: {}/{}s per tool",
                    self.limiter.limit(),
                    self.limiter.window().as_secs()
                );
                return Verdict::Reply(error_line(&reply_id, RATE_LIMITED, &msg));
            }
        }
        if presented.is_some() {
            Verdict::Forward(value.to_string())
        } else {
            Verdict::Forward(trimmed.to_owned())
        }
    }
}

/// What is wrong with the shape of `params`, if anything: it must be an object when
/// present, and a `tools/call` needs a string `name` and object (or absent) `arguments`.
fn params_problem(method: &str, params: Option<&Value>) -> Option<&'static str> {
    let params = match params {
        None | Some(Value::Null) => {
            return (method == "tools/call")
                .then_some("tools/call needs params {\"name\": ..., \"arguments\": {...}}");
        }
        Some(Value::Object(p)) => p,
        Some(_) => return Some("\"params\" must be an object"),
    };
    if method != "tools/call" {
        return None;
    }
    match params.get("name") {
        Some(Value::String(_)) => {}
        None => return Some("tools/call needs \"name\": the tool's name"),
        Some(_) => return Some("\"name\" must be a string"),
    }
    match params.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => None,
        Some(_) => Some("\"arguments\" must be an object of named arguments"),
    }
}

/// Removes `params._meta.api_key` and returns it (as a string; other types count as
/// no key).
fn take_api_key(obj: &mut Map<String, Value>) -> Option<String> {
    let meta = obj
        .get_mut("params")
        .and_then(Value::as_object_mut)
        .and_then(|p| p.get_mut("_meta"))
        .and_then(Value::as_object_mut)?;
    match meta.remove("api_key")? {
        Value::String(s) => Some(s),
        _ => Some(String::new()),
    }
}

/// One JSON-RPC error response line.
pub fn error_line(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::mcp::ratelimit::SystemMonotonic;
    use std::time::Duration;

    fn gate(key: Option<&str>, limit: usize) -> Gate {
        Gate::new(
            key.map(str::to_owned),
            RateLimiter::new(
                limit,
                Duration::from_secs(60),
                Box::new(SystemMonotonic::default()),
            ),
        )
    }

    fn reply(v: Verdict) -> Value {
        match v {
            Verdict::Reply(l) => serde_json::from_str(&l).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn garbage_and_shapes() {
        let mut g = gate(None, 60);
        let r = reply(g.check("{not json"));
        assert_eq!(r["error"]["code"], PARSE_ERROR);
        assert_eq!(r["id"], Value::Null);
        assert_eq!(reply(g.check("[1,2]"))["error"]["code"], INVALID_REQUEST);
        assert_eq!(reply(g.check("42"))["error"]["code"], INVALID_REQUEST);
        let r = reply(g.check(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#));
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(7), json!(INVALID_REQUEST))
        );
        assert_eq!(
            reply(g.check(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#))["error"]["code"],
            INVALID_REQUEST
        );
        assert_eq!(g.check("   "), Verdict::Drop);
        let fwd = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(g.check(fwd), Verdict::Forward(fwd.to_owned()));
    }

    #[test]
    fn api_key_is_checked_and_stripped() {
        let mut g = gate(Some("s3cret"), 60);
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
        assert!(matches!(g.check(init), Verdict::Forward(_)));
        let r = reply(g.check(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#));
        assert_eq!(r["error"]["code"], UNAUTHORIZED);
        assert_eq!(r["error"]["message"], "Unauthorized: set CFA_MCP_API_KEY");
        let wrong = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"api_key":"nope"}}}"#;
        assert_eq!(reply(g.check(wrong))["error"]["code"], UNAUTHORIZED);
        let good = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"api_key":"s3cret","progressToken":1}}}"#;
        match g.check(good) {
            Verdict::Forward(l) => {
                assert!(!l.contains("s3cret"), "{l}");
                let v: Value = serde_json::from_str(&l).unwrap();
                assert_eq!(v["params"]["_meta"]["progressToken"], 1);
            }
            other => panic!("{other:?}"),
        }
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(
            g.check(note),
            Verdict::Drop,
            "unauthorised notifications get silence"
        );
    }

    #[test]
    fn rate_limit_per_tool() {
        let mut g = gate(None, 2);
        let call = |id: u32, name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert!(matches!(g.check(&call(1, "a")), Verdict::Forward(_)));
        assert!(matches!(g.check(&call(2, "a")), Verdict::Forward(_)));
        let r = reply(g.check(&call(3, "a")));
        assert_eq!(r["error"]["code"], RATE_LIMITED);
        assert_eq!(r["error"]["message"], "Rate limit exceeded: 2/60s per tool");
        assert_eq!(r["id"], 3);
        assert!(matches!(g.check(&call(4, "b")), Verdict::Forward(_)));
    }

    #[test]
    fn malformed_params_are_invalid_params() {
        let mut g = gate(None, 60);
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}"#,
        ] {
            let r = reply(g.check(line));
            assert_eq!(r["error"]["code"], INVALID_PARAMS, "{line}");
            assert_eq!(r["id"], 1, "{line}");
        }
        let note = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[1]}"#;
        assert_eq!(g.check(note), Verdict::Drop);
        let ok = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}"#;
        assert!(matches!(g.check(ok), Verdict::Forward(_)));
    }

    #[test]
    fn unknown_tool_names_share_one_bucket() {
        let mut g = gate(None, 2).with_tools(["known".to_owned()]);
        let call = |id: u32, name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert!(matches!(
            g.check(&call(1, "made-up-1")),
            Verdict::Forward(_)
        ));
        assert!(matches!(
            g.check(&call(2, "made-up-2")),
            Verdict::Forward(_)
        ));
        assert_eq!(
            reply(g.check(&call(3, "made-up-3")))["error"]["code"],
            RATE_LIMITED
        );
        assert!(matches!(g.check(&call(4, "known")), Verdict::Forward(_)));
    }
}
