//! Opt-in LLM normaliser (feature `llm`): asks an OpenAI-compatible chat-completions
//! endpoint for the signature as JSON, then validates the answer strictly against the
//! catalog. Only the layer, the intent label, the domain and the dataset *names* come
//! from the model: dataset metadata comes from the catalog, constraints from the same
//! grounding rules as the rule-based normaliser (the model cannot declare a constraint
//! safe), and confidence, ambiguity and the confirmation mode from the same arithmetic.
//!
//! With [`LlmConfig::strict`] any failure (transport, HTTP status, timeout, non-JSON,
//! an unknown dataset, layer or intent) is an error; otherwise the rule-based
//! normaliser answers and [`LlmAudit::fallback_reason`] records why. The prompt,
//! answer and catalog hashes are recorded in [`Resolution::llm`]. The API key is sent
//! only in the `Authorization` header and never appears in `Debug`, errors or audit.

use crate::grounding;
use crate::normalizer::{
    BackendError, InvalidAnswerError, LlmAudit, NormalizeError, Normalizer, NormalizerInput,
    Resolution,
};
use crate::pack::DEFAULT_DOMAIN;
use crate::rule_based::{RuleBasedNormalizer, finish};
use crate::words::Words;
use cfa_types::{Catalog, StateSignature, TargetLayer, canonical};
use serde_json::{Value, json};
use std::time::Duration;

/// OpenAI's API base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// DeepSeek's API base URL (OpenAI-compatible).
pub const DEEPSEEK_BASE_URL: &str = "https://api.deepseek.com";
/// The reference's default OpenAI model.
pub const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
/// DeepSeek's chat model.
pub const DEEPSEEK_DEFAULT_MODEL: &str = "deepseek-chat";
/// Largest response body read.
const MAX_BODY_BYTES: u64 = 2 * 1024 * 1024;
/// Longest excerpt of an error body put in a message.
const MAX_EXCERPT_CHARS: usize = 200;
const BACKEND: &str = "llm";

/// Endpoint, credentials and behaviour of the LLM normaliser.
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL; the client posts to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Bearer token. Never logged.
    pub api_key: String,
    /// Model name.
    pub model: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Strict: any failure is an error. Non-strict: fall back to the rule-based normaliser.
    pub strict: bool,
}

impl LlmConfig {
    /// A strict config with a 30 s timeout.
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        LlmConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            timeout: Duration::from_secs(30),
            strict: true,
        }
    }
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("strict", &self.strict)
            .finish()
    }
}

/// The LLM normaliser; `rules` supplies the intent labels, the constraint words and
/// the fallback.
pub struct LlmNormalizer {
    config: LlmConfig,
    rules: RuleBasedNormalizer,
    agent: ureq::Agent,
}

impl std::fmt::Debug for LlmNormalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmNormalizer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A failure, with the answer text when one arrived (for the response hash).
struct Failure {
    error: NormalizeError,
    response: Option<String>,
}

fn backend(message: impl Into<String>) -> NormalizeError {
    NormalizeError::Backend(BackendError {
        backend: BACKEND.to_owned(),
        message: message.into(),
    })
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> NormalizeError {
    NormalizeError::InvalidAnswer(InvalidAnswerError {
        path: path.into(),
        message: message.into(),
    })
}

impl LlmNormalizer {
    /// A normaliser for `config`, validating with and falling back to `rules`.
    pub fn new(config: LlmConfig, rules: RuleBasedNormalizer) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        LlmNormalizer {
            config,
            rules,
            agent,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The chat messages sent for `input` (their canonical SHA-256 is the prompt hash).
    pub fn prompt(&self, input: &NormalizerInput<'_>) -> Value {
        let names: Vec<&str> = input.catalog.datasets.keys().map(String::as_str).collect();
        let labels = self.rules.intent_labels();
        let system = format!(
            "You turn a data-pipeline intent into a JSON object. Answer with one JSON object and nothing else, \
             with exactly these keys: \"target_layer\" (one of \"gold\", \"silver\", \"bronze\"), \
             \"intent\" (one of {}), \"domain\" (a short snake_case business domain, or \"general\"), \
             \"datasets\" (a list of dataset names copied exactly from the catalog; [] when the intent names none). \
             Never invent a dataset name.",
            serde_json::to_string(&labels).unwrap_or_default()
        );
        let user = format!(
            "Catalog datasets: {}\nIntent: {}",
            serde_json::to_string(&names).unwrap_or_default(),
            input.raw_intent
        );
        json!([
            {"role": "system", "content": system},
            {"role": "user", "content": user}
        ])
    }

    fn ask(&self, messages: &Value) -> Result<String, Failure> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": messages,
        });
        let fail = |error| Failure {
            error,
            response: None,
        };
        let mut resp = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.config.api_key))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| fail(backend(format!("request to {url} failed: {e}"))))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| fail(backend(format!("reading the response failed: {e}"))))?;
        if !(200..300).contains(&status) {
            let excerpt: String = text.chars().take(MAX_EXCERPT_CHARS).collect();
            return Err(Failure {
                error: backend(format!("http status {status}: {excerpt}")),
                response: Some(text),
            });
        }
        let content = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
            v.pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        content.ok_or_else(|| Failure {
            error: backend("response has no choices[0].message.content"),
            response: Some(text),
        })
    }

    fn resolve_with_model(
        &self,
        input: &NormalizerInput<'_>,
        messages: &Value,
    ) -> Result<(Resolution, String), Failure> {
        let content = self.ask(messages)?;
        let answer = parse_answer(&content, input.catalog, &self.rules.intent_labels()).map_err(
            |error| Failure {
                error,
                response: Some(content.clone()),
            },
        )?;
        let words = Words::new(input.raw_intent);
        let datasets: Vec<_> = input
            .catalog
            .datasets
            .keys()
            .filter(|k| answer.datasets.contains(k))
            .filter_map(|k| input.catalog.dataset_ref(k))
            .collect();
        let constraints =
            grounding::constraints(&words, self.rules.compiled(), &datasets, answer.layer);
        let signature = StateSignature {
            domain: answer.domain,
            intent: answer.intent,
            target_layer: answer.layer,
            datasets,
            constraints,
            execution_context: input.execution_context.clone(),
            intent_id: input.intent_id.to_owned(),
            source_intent_raw: input.raw_intent.to_owned(),
        };
        let label = format!("LLM resolution ({})", self.config.model);
        Ok((finish(signature, input, &label), content))
    }
}

impl Normalizer for LlmNormalizer {
    fn normalize(&self, input: &NormalizerInput<'_>) -> Result<Resolution, NormalizeError> {
        let messages = self.prompt(input);
        let mut audit = LlmAudit {
            model: self.config.model.clone(),
            prompt_hash: canonical::canonical_sha256(&messages),
            response_hash: String::new(),
            catalog_hash: input.catalog.hash(),
            fallback_reason: None,
        };
        match self.resolve_with_model(input, &messages) {
            Ok((mut resolution, content)) => {
                audit.response_hash = canonical::sha256_hex(content.as_bytes());
                resolution.llm = Some(audit);
                Ok(resolution)
            }
            Err(failure) if self.config.strict => Err(failure.error),
            Err(failure) => {
                if let Some(text) = &failure.response {
                    audit.response_hash = canonical::sha256_hex(text.as_bytes());
                }
                let reason = failure.error.to_string();
                let mut resolution = self.rules.resolve(input);
                resolution.reasoning = format!(
                    "{} The LLM answer was not used: {reason}",
                    resolution.reasoning
                );
                audit.fallback_reason = Some(reason);
                resolution.llm = Some(audit);
                Ok(resolution)
            }
        }
    }
}

/// A validated model answer.
struct Answer {
    layer: TargetLayer,
    intent: String,
    domain: String,
    datasets: Vec<String>,
}

fn parse_answer(
    content: &str,
    catalog: &Catalog,
    labels: &[&str],
) -> Result<Answer, NormalizeError> {
    let v: Value = serde_json::from_str(content.trim())
        .map_err(|e| invalid("<answer>", format!("is not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("<answer>", "must be a JSON object"))?;
    let layer = match obj.get("target_layer") {
        Some(Value::String(s)) => TargetLayer::parse(s).ok_or_else(|| {
            invalid(
                "target_layer",
                format!("'{s}' is not one of gold, silver, bronze"),
            )
        })?,
        _ => return Err(invalid("target_layer", "is required and must be a string")),
    };
    let intent = match obj.get("intent") {
        Some(Value::String(s)) if labels.contains(&s.as_str()) => s.clone(),
        Some(Value::String(s)) => {
            return Err(invalid(
                "intent",
                format!("'{s}' is not one of {}", labels.join(", ")),
            ));
        }
        _ => return Err(invalid("intent", "is required and must be a string")),
    };
    let domain = match obj.get("domain") {
        None | Some(Value::Null) => DEFAULT_DOMAIN.to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => return Err(invalid("domain", "must be a non-empty string")),
    };
    let items = match obj.get("datasets") {
        Some(Value::Array(items)) => items,
        _ => return Err(invalid("datasets", "is required and must be a list")),
    };
    let mut datasets = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("datasets[{i}]");
        let name = item
            .as_str()
            .ok_or_else(|| invalid(path.as_str(), "must be a string"))?;
        let found = if catalog.datasets.contains_key(name) {
            Some(name.to_owned())
        } else {
            let mut ci = catalog
                .datasets
                .keys()
                .filter(|k| k.to_lowercase() == name.to_lowercase());
            match (ci.next(), ci.next()) {
                (Some(k), None) => Some(k.clone()),
                _ => None,
            }
        };
        match found {
            Some(k) => {
                if !datasets.contains(&k) {
                    datasets.push(k);
                }
            }
            None => {
                return Err(invalid(
                    path,
                    format!("dataset '{name}' not found in catalog"),
                ));
            }
        }
    }
    Ok(Answer {
        layer,
        intent,
        domain,
        datasets,
    })
}
