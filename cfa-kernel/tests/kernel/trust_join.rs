#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A join the catalog cannot ground is refused by the planner, and the kernel blocks
//! (never approves) with a fault that says what to add.

use crate::common;

use cfa_kernel::KernelConfig;
use cfa_policy::PolicyEngine;
use cfa_types::{Catalog, DecisionState};
use common::{APPROVE, kernel_with, steps};

fn catalog(v: serde_json::Value) -> Catalog {
    Catalog::from_value(&v).unwrap()
}

fn reference_catalog() -> serde_json::Value {
    // The reference catalog: merge keys only, no columns, so no key is shared.
    serde_json::from_str(include_str!("../../../examples/catalog-reference.json")).unwrap()
}

#[test]
fn an_ungrounded_join_blocks_with_what_to_add() {
    for bundle in ["default", "prod-v1"] {
        let engine = if bundle == "default" {
            PolicyEngine::default()
        } else {
            PolicyEngine::builtin(bundle).unwrap()
        };
        let config = KernelConfig::new(engine, catalog(reference_catalog()));
        let (k, store) = kernel_with(config, |b| b);
        let r = k.process(APPROVE);
        assert_eq!(r.state, DecisionState::Blocked, "{bundle}: {r:?}");
        assert!(!r.is_executable());
        let f = r
            .faults
            .iter()
            .find(|f| f.code == "KERNEL_PLANNER_FAILED")
            .unwrap_or_else(|| panic!("{:?}", r.faults));
        assert!(
            f.message.contains("no join key for dataset 'clientes'"),
            "{}",
            f.message
        );
        assert!(f.message.contains("join_keys"), "{}", f.message);
        assert!(r.blocked_reason.starts_with("Planning failed:"));
        // Nothing was generated; the refusal is in the audit log.
        assert!(r.artifact.is_none());
        let s = steps(store.as_ref());
        assert!(
            s.iter()
                .any(|(_, t, o)| t == "plan_generated" && o == "error"),
            "{s:?}"
        );
        assert_eq!(s.last().unwrap().2, "blocked");
    }
}

#[test]
fn a_catalog_join_key_or_columns_ground_the_same_join() {
    let mut with_key = reference_catalog();
    with_key["datasets"]["clientes"]["join_keys"] = serde_json::json!({"nfe": ["cliente_id"]});
    let mut with_columns = reference_catalog();
    with_columns["datasets"]["nfe"]["columns"] =
        serde_json::json!(["nfe_id", "cliente_id", "valor", "processing_date"]);
    with_columns["datasets"]["clientes"]["columns"] =
        serde_json::json!(["cliente_id", "nome", "cpf", "email", "processing_date"]);
    for cat in [with_key, with_columns] {
        let config = KernelConfig::new(PolicyEngine::default(), catalog(cat));
        let (k, _) = kernel_with(config, |b| b);
        let r = k.process(APPROVE);
        assert!(r.is_executable(), "{r:?}");
        assert!(r.artifact.is_some());
    }
}
