#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]
//! Shared helpers for the kernel tests.

use cfa_audit::{AuditEvent, AuditStore, MemoryStore};
use cfa_kernel::{Kernel, KernelBuilder, KernelConfig, SequentialIds, TickClock};
use cfa_policy::PolicyEngine;
use cfa_types::Catalog;
use std::ops::ControlFlow;
use std::sync::Arc;

pub const APPROVE: &str = "Join nfe with clientes daily, anonymize pii, into silver";
pub const REPLAN: &str = "ingest nfe raw into bronze";
pub const BLOCK: &str = "Join NFe with Clientes and persist to Silver";
pub const UNGROUNDED: &str = "do something with unknown table";

pub fn catalog() -> Catalog {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../../../examples/catalog.json")).unwrap();
    Catalog::from_value(&v).unwrap()
}

pub fn config(bundle: &str) -> KernelConfig {
    let engine = if bundle == "default" {
        PolicyEngine::default()
    } else {
        PolicyEngine::builtin(bundle).unwrap()
    };
    KernelConfig::new(engine, catalog())
}

pub fn custom_bundle(yaml: &str) -> PolicyEngine {
    let b = cfa_policy::load_bundle(yaml, cfa_policy::BundleFormat::Yaml, "test.yaml").unwrap();
    PolicyEngine::from_bundle(b).unwrap()
}

/// A kernel with a memory store, sequential ids and a tick clock; `f` adds parts.
pub fn kernel_with(
    config: KernelConfig,
    f: impl FnOnce(KernelBuilder) -> KernelBuilder,
) -> (Kernel, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn AuditStore> = store.clone();
    let b = Kernel::builder(config)
        .audit(dyn_store)
        .ids(SequentialIds::new())
        .clock(TickClock::new(1_767_225_600));
    (f(b).build().unwrap(), store)
}

pub fn kernel(bundle: &str) -> (Kernel, Arc<MemoryStore>) {
    kernel_with(config(bundle), |b| b)
}

pub fn events(store: &dyn AuditStore) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    store
        .scan(&mut |e| {
            out.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

/// `(stage, event_type, outcome)` of every event.
pub fn steps(store: &dyn AuditStore) -> Vec<(String, String, String)> {
    events(store)
        .into_iter()
        .map(|e| (e.stage, e.event_type, e.outcome))
        .collect()
}

pub fn types(store: &dyn AuditStore) -> Vec<String> {
    events(store).into_iter().map(|e| e.event_type).collect()
}
