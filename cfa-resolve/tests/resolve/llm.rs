//! The LLM normaliser against a local mock of an OpenAI-compatible endpoint
//! (127.0.0.1, one connection per test; no network). Run with
//! `cargo nextest run -p cfa-resolve --features llm`.
#![cfg(feature = "llm")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_resolve::llm::{LlmConfig, LlmNormalizer};
use cfa_resolve::{NormalizeError, Normalizer, NormalizerInput, Resolution, RuleBasedNormalizer};
use cfa_types::{Catalog, ConfirmationMode, TargetLayer, canonical};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
        "nfe":      {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
        "clientes": {"classification": "sensitive",   "size_gb": 0.5,  "pii_columns": ["cpf","email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]},
        "produtos": {"classification": "internal",    "size_gb": 0.1,  "pii_columns": [], "merge_keys": ["produto_id"]}
    }}))
    .unwrap()
}

/// What the mock server saw.
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

enum Reply {
    /// Status and body.
    Send(u16, String),
    /// Read the request and never answer (until the client hangs up).
    Hang,
}

fn chat(content: &str) -> String {
    json!({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})
        .to_string()
}

/// Starts a one-shot server; returns its base URL and the request it saw.
fn serve(reply: Reply) -> (String, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        match reply {
            Reply::Send(status, text) => {
                let mut s = stream;
                write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
                .unwrap();
                s.flush().unwrap();
            }
            Reply::Hang => {
                // Wait for the client to give up and close the connection.
                let mut sink = [0u8; 64];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            }
        }
        Seen {
            request_line: request_line.trim_end().to_owned(),
            headers,
            body: serde_json::from_slice(&body).unwrap(),
        }
    });
    (url, handle)
}

fn normalizer(url: &str, strict: bool) -> LlmNormalizer {
    let mut cfg = LlmConfig::new(url, "sk-test-secret", "test-model");
    cfg.strict = strict;
    cfg.timeout = Duration::from_millis(500);
    LlmNormalizer::new(cfg, RuleBasedNormalizer::default())
}

const INTENT: &str = "Join NFe with Clientes and persist to Silver";

fn run(reply: Reply, strict: bool) -> (Result<Resolution, NormalizeError>, Seen, LlmNormalizer) {
    let (url, handle) = serve(reply);
    let n = normalizer(&url, strict);
    let cat = catalog();
    let out = n.normalize(&NormalizerInput::new(INTENT, &cat, "id-7"));
    (out, handle.join().unwrap(), n)
}

#[test]
fn valid_answer_is_grounded_in_the_catalog() {
    let content = r#"{"target_layer": "silver", "intent": "reconciliation_and_persist", "domain": "fiscal", "datasets": ["clientes", "NFE"], "confidence": 0.99}"#;
    let (out, seen, n) = run(Reply::Send(200, chat(content)), true);
    let r = out.unwrap();
    // The request.
    assert_eq!(seen.request_line, "POST /v1/chat/completions HTTP/1.1");
    let auth = seen
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(auth.1, "Bearer sk-test-secret");
    assert_eq!(seen.body["model"], "test-model");
    assert_eq!(seen.body["temperature"], json!(0));
    assert_eq!(seen.body["response_format"], json!({"type": "json_object"}));
    let cat = catalog();
    let prompt = n.prompt(&NormalizerInput::new(INTENT, &cat, "id-7"));
    assert_eq!(seen.body["messages"], prompt);
    assert!(
        prompt[1]["content"]
            .as_str()
            .unwrap()
            .contains(r#"["nfe","clientes","produtos"]"#)
    );
    // The resolution: names from the model, metadata and order from the catalog.
    let sig = &r.signature;
    assert_eq!(sig.target_layer, TargetLayer::Silver);
    assert_eq!(sig.intent, "reconciliation_and_persist");
    assert_eq!(sig.domain, "fiscal");
    assert_eq!(
        sig.datasets,
        [
            cat.dataset_ref("nfe").unwrap(),
            cat.dataset_ref("clientes").unwrap()
        ]
    );
    assert_eq!(sig.intent_id, "id-7");
    assert!(
        !sig.constraints.no_pii_raw,
        "constraints come from the grounding rules"
    );
    assert_eq!(
        r.confidence, 0.75,
        "confidence comes from the arithmetic, not the model"
    );
    assert_eq!(r.confirmation_mode, ConfirmationMode::Hard);
    assert!(
        r.reasoning
            .starts_with("LLM resolution (test-model): layer=silver")
    );
    let audit = r.llm.unwrap();
    assert_eq!(audit.model, "test-model");
    assert_eq!(audit.prompt_hash, canonical::canonical_sha256(&prompt));
    assert_eq!(
        audit.response_hash,
        canonical::sha256_hex(content.as_bytes())
    );
    assert_eq!(
        audit.catalog_hash,
        "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347"
    );
    assert_eq!(audit.fallback_reason, None);
    assert!(
        !format!("{n:?}").contains("sk-test-secret"),
        "the key is never in Debug"
    );
}

#[test]
fn unknown_dataset_is_rejected_or_falls_back() {
    let content = r#"{"target_layer": "silver", "intent": "reconciliation_and_persist", "datasets": ["nfe", "ghost_table"]}"#;
    let (out, _, _) = run(Reply::Send(200, chat(content)), true);
    match out.unwrap_err() {
        NormalizeError::InvalidAnswer(e) => {
            assert_eq!(e.path, "datasets[1]");
            assert_eq!(e.message, "dataset 'ghost_table' not found in catalog");
        }
        other => panic!("unexpected {other:?}"),
    }
    let (out, _, _) = run(Reply::Send(200, chat(content)), false);
    let r = out.unwrap();
    let cat = catalog();
    let rules = RuleBasedNormalizer::default().resolve(&NormalizerInput::new(INTENT, &cat, "id-7"));
    assert_eq!(
        r.signature, rules.signature,
        "the fallback is the rule-based answer"
    );
    assert_eq!(r.confidence, rules.confidence);
    let audit = r.llm.unwrap();
    assert!(audit.fallback_reason.unwrap().contains("ghost_table"));
    assert_eq!(
        audit.response_hash,
        canonical::sha256_hex(content.as_bytes())
    );
    assert!(r.reasoning.contains("The LLM answer was not used"));
}

#[test]
fn invalid_answers_are_rejected() {
    for (content, path) in [
        ("this is not json", "<answer>"),
        ("[1, 2]", "<answer>"),
        (
            r#"{"target_layer": "platinum", "intent": "ingest", "datasets": []}"#,
            "target_layer",
        ),
        (
            r#"{"target_layer": "gold", "intent": "delete_everything", "datasets": []}"#,
            "intent",
        ),
        (
            r#"{"target_layer": "gold", "intent": "ingest"}"#,
            "datasets",
        ),
        (
            r#"{"target_layer": "gold", "intent": "ingest", "datasets": [3]}"#,
            "datasets[0]",
        ),
    ] {
        let (out, _, _) = run(Reply::Send(200, chat(content)), true);
        match out {
            Err(NormalizeError::InvalidAnswer(e)) => assert_eq!(e.path, path, "{content}"),
            other => panic!("{content}: unexpected {other:?}"),
        }
    }
}

#[test]
fn http_500_is_an_error_or_falls_back() {
    let (out, _, _) = run(Reply::Send(500, r#"{"error": "boom"}"#.to_owned()), true);
    match out.unwrap_err() {
        NormalizeError::Backend(e) => {
            assert_eq!(e.backend, "llm");
            assert!(e.message.starts_with("http status 500"), "{}", e.message);
            assert!(!e.message.contains("sk-test-secret"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let (out, _, _) = run(Reply::Send(500, "{}".to_owned()), false);
    let r = out.unwrap();
    assert!(
        r.llm
            .unwrap()
            .fallback_reason
            .unwrap()
            .contains("http status 500")
    );
    // A 200 without choices is a backend error too.
    let (out, _, _) = run(Reply::Send(200, "{}".to_owned()), true);
    assert!(matches!(out, Err(NormalizeError::Backend(_))));
}

#[test]
fn timeout_is_an_error_or_falls_back() {
    let (out, _, _) = run(Reply::Hang, true);
    assert!(matches!(out, Err(NormalizeError::Backend(_))), "{out:?}");
    let (out, _, _) = run(Reply::Hang, false);
    let r = out.unwrap();
    let audit = r.llm.unwrap();
    assert!(audit.fallback_reason.is_some());
    assert_eq!(audit.response_hash, "");
    assert_eq!(r.signature.datasets.len(), 2);
}

#[test]
fn connection_refused_is_an_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = normalizer(&format!("http://127.0.0.1:{port}/v1"), true);
    let cat = catalog();
    let out = n.normalize(&NormalizerInput::new(INTENT, &cat, "id"));
    assert!(matches!(out, Err(NormalizeError::Backend(_))));
}
