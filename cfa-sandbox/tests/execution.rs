//! Mock and panic sandboxes through `execute`: aggregation (B9), every runtime check,
//! every failure policy, retries and panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_sandbox::*;
use cfa_types::{DecisionState, FaultSeverity, PolicyAction};
use common::*;

fn run_with(mock: MockConfig, config: &ExecutionConfig) -> RunOutcome {
    let (s, p) = plan(&ok_sig(), true);
    let sb = MockSandbox::new(mock);
    execute(
        &sb,
        &RunContext {
            plan: &p,
            artifact: None,
            signature: &s,
        },
        config,
    )
    .unwrap()
}

#[test]
fn mock_steps_share_one_column_list_and_the_null_counts_they_agree_on() {
    // One step counts a different number of nulls: it gets its own map with its own
    // count; the steps around it keep sharing theirs, and the aggregate holds the load
    // step's columns and counts, not copies.
    let odd = run_with(MockConfig::default(), &ExecutionConfig::default()).step_results[1]
        .step_id
        .clone();
    let mut mock = MockConfig::default();
    mock.step_overrides.insert(
        odd.clone(),
        StepOverride {
            null_ratio: Some(0.5),
            ..StepOverride::default()
        },
    );
    let o = run_with(mock, &ExecutionConfig::default());
    assert_eq!(o.step_results.len(), 7);
    let load = o.step_results.last().unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &o.metrics.output_schema,
        &load.metrics.output_schema
    ));
    assert!(std::sync::Arc::ptr_eq(
        &o.metrics.null_counts,
        &load.metrics.null_counts
    ));
    for r in &o.step_results {
        assert!(std::sync::Arc::ptr_eq(
            &r.metrics.output_schema,
            &o.metrics.output_schema
        ));
        let expected = if r.step_id == odd { 50_000 } else { 1000 };
        assert_eq!(r.metrics.null_counts.len(), o.metrics.output_schema.len());
        assert!(
            r.metrics.null_counts.values().all(|n| *n == expected),
            "{}: {:?}",
            r.step_id,
            r.metrics.null_counts
        );
    }
    // The steps after the odd one agree again and share one map.
    assert_eq!(o.step_results[1].step_id, odd);
    assert!(
        o.step_results[2..]
            .iter()
            .all(|r| std::sync::Arc::ptr_eq(&r.metrics.null_counts, &load.metrics.null_counts))
    );
}

fn codes(o: &RunOutcome) -> Vec<String> {
    o.runtime_faults
        .iter()
        .map(|f| f.code.to_string())
        .collect()
}

fn validator(t: RuntimeThresholds) -> ExecutionConfig {
    ExecutionConfig {
        validator: RuntimeValidator::new(t),
        ..ExecutionConfig::default()
    }
}

#[test]
fn default_mock_publishes_with_load_step_metrics() {
    let o = run_with(MockConfig::default(), &ExecutionConfig::default());
    assert_eq!(o.publish_state, PublishState::Published);
    assert_eq!(o.decision_state(), DecisionState::Approved);
    assert_eq!(o.sandbox_status, SandboxStatus::Completed);
    assert_eq!(o.step_results.len(), 7);
    assert_eq!(o.committed_steps.len(), 7);
    // B9: rows from the load step, not summed; cost/duration/shuffle summed.
    assert_eq!(o.metrics.rows_output, 100_000);
    assert!((o.metrics.cost_dbu - 5.0).abs() < 1e-9);
    assert!((o.metrics.duration_seconds - 17.5).abs() < 1e-9);
    assert!((o.metrics.shuffle_mb - 350.0).abs() < 1e-9);
    assert_eq!(
        *o.metrics.output_schema,
        vec![
            "nfe_id",
            "cliente_id",
            "produto_id",
            "valor",
            "processing_date",
            "nome",
            "cpf_hash",
            "email_hash"
        ]
    );
    assert_eq!(o.metrics.null_counts["valor"], 1000);
    assert!(o.runtime_faults.is_empty());
    assert_eq!(o.runtime_validation, Some(true));
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["publish_state"], "published");
}

#[test]
fn cardinality_checks_fire() {
    let o = run_with(
        MockConfig::default(),
        &validator(RuntimeThresholds {
            max_rows: 1000,
            ..Default::default()
        }),
    );
    assert_eq!(codes(&o), ["RUNTIME_CARDINALITY_ABOVE_MAXIMUM"]);
    assert!(matches!(o.publish_state, PublishState::Quarantined { .. }));
    assert_eq!(o.quarantined_steps.len(), 7);
    assert!(o.committed_steps.is_empty());
    assert!(
        o.runtime_faults[0].message.contains("100000")
            && o.runtime_faults[0].message.contains("1000")
    );
    let o = run_with(
        MockConfig::default(),
        &validator(RuntimeThresholds {
            min_rows: 200_000,
            ..Default::default()
        }),
    );
    assert_eq!(codes(&o), ["RUNTIME_CARDINALITY_BELOW_MINIMUM"]);
}

#[test]
fn cost_ceiling_uses_signature_then_threshold() {
    // Signature ceiling 20.0 DBU.
    let o = run_with(
        MockConfig {
            default_cost_dbu: 100.0,
            ..Default::default()
        },
        &ExecutionConfig::default(),
    );
    assert_eq!(codes(&o), ["RUNTIME_COST_CEILING_EXCEEDED"]);
    assert_eq!(o.runtime_faults[0].severity, FaultSeverity::Critical);
    assert!(
        o.runtime_faults[0].message.contains("100.00")
            && o.runtime_faults[0].message.contains("20.00")
    );
    // No signature ceiling: the threshold applies.
    let mut v = ok_sig();
    v["constraints"]["max_cost_dbu"] = serde_json::Value::Null;
    let (s, p) = plan(&v, true);
    let sb = MockSandbox::new(MockConfig {
        default_cost_dbu: 100.0,
        ..Default::default()
    });
    let cfg = validator(RuntimeThresholds {
        max_cost_dbu: Some(50.0),
        ..Default::default()
    });
    let o = execute(
        &sb,
        &RunContext {
            plan: &p,
            artifact: None,
            signature: &s,
        },
        &cfg,
    )
    .unwrap();
    assert_eq!(codes(&o), ["RUNTIME_COST_CEILING_EXCEEDED"]);
    let o = execute(
        &sb,
        &RunContext {
            plan: &p,
            artifact: None,
            signature: &s,
        },
        &ExecutionConfig::default(),
    )
    .unwrap();
    assert!(codes(&o).is_empty());
}

#[test]
fn null_ratio_is_a_warning_that_still_publishes() {
    let o = run_with(
        MockConfig {
            null_ratio: 0.5,
            ..Default::default()
        },
        &ExecutionConfig::default(),
    );
    assert_eq!(o.publish_state, PublishState::Published);
    assert_eq!(o.runtime_faults.len(), 8);
    let f = o
        .runtime_faults
        .iter()
        .find(|f| f.code == "RUNTIME_NULL_RATIO_EXCEEDED_VALOR")
        .unwrap();
    assert_eq!(f.severity, FaultSeverity::Warning);
    assert_eq!(f.mandatory_action, PolicyAction::Approve);
    assert!(
        f.message.contains("50.00%") && f.message.contains("10.00%"),
        "{}",
        f.message
    );
    // Only the load step's nulls count.
    let mut m = MockConfig::default();
    m.step_overrides.insert(
        "extract_nfe".into(),
        StepOverride {
            null_ratio: Some(0.9),
            ..Default::default()
        },
    );
    assert!(
        run_with(m, &ExecutionConfig::default())
            .runtime_faults
            .is_empty()
    );
}

#[test]
fn shuffle_budget_fires_on_summed_shuffle() {
    let o = run_with(
        MockConfig {
            default_shuffle_mb: 200.0,
            ..Default::default()
        },
        &ExecutionConfig::default(),
    );
    assert_eq!(codes(&o), ["RUNTIME_SHUFFLE_BUDGET_EXCEEDED"]);
    assert!(
        o.runtime_faults[0].message.contains("1400.0")
            && o.runtime_faults[0].message.contains("500.0")
    );
    let mut m = MockConfig::default();
    m.step_overrides.insert(
        "join_datasets".into(),
        StepOverride {
            shuffle_mb: Some(400.0),
            ..Default::default()
        },
    );
    assert_eq!(
        codes(&run_with(m, &ExecutionConfig::default())),
        ["RUNTIME_SHUFFLE_BUDGET_EXCEEDED"]
    );
}

#[test]
fn schema_contract_checks_fire() {
    let (_, p) = plan(&ok_sig(), true);
    let contract = SchemaContract::from_plan(&p);
    assert_eq!(contract.forbidden_columns, ["cpf", "email"]);
    let cfg = ExecutionConfig {
        validator: RuntimeValidator::default().with_schema(contract),
        ..Default::default()
    };
    assert!(codes(&run_with(MockConfig::default(), &cfg)).is_empty());
    let leaky = MockConfig {
        output_schema: Some(vec!["nfe_id".into(), "cpf".into()]),
        ..Default::default()
    };
    let o = run_with(leaky, &cfg);
    assert_eq!(
        codes(&o),
        [
            "RUNTIME_SCHEMA_MISSING_COLUMNS",
            "RUNTIME_SCHEMA_FORBIDDEN_COLUMNS"
        ]
    );
    assert!(o.runtime_faults[1].message.contains("[\"cpf\"]"));
    assert_eq!(o.runtime_faults[1].severity, FaultSeverity::Critical);
    assert!(matches!(o.publish_state, PublishState::Quarantined { .. }));
}

#[test]
fn the_plans_implied_contract_checks_what_the_built_contract_checks() {
    let (_, p) = plan(&ok_sig(), true);
    let built = ExecutionConfig {
        validator: RuntimeValidator::default().with_schema(SchemaContract::from_plan(&p)),
        ..Default::default()
    };
    let implied = ExecutionConfig::default();
    assert!(implied.schema_from_plan && implied.validator.schema.is_none());
    for schema in [
        None,
        Some(vec!["nfe_id".into(), "cpf".into()]),
        Some(vec!["email".into()]),
    ] {
        let mock = MockConfig {
            output_schema: schema,
            ..Default::default()
        };
        assert_eq!(run_with(mock.clone(), &implied), run_with(mock, &built));
    }
    let leaky = MockConfig {
        output_schema: Some(vec!["nfe_id".into(), "cpf".into()]),
        ..Default::default()
    };
    assert_eq!(
        codes(&run_with(leaky, &implied)),
        [
            "RUNTIME_SCHEMA_MISSING_COLUMNS",
            "RUNTIME_SCHEMA_FORBIDDEN_COLUMNS"
        ]
    );
}

#[test]
fn required_and_forbidden_output_columns_fire() {
    let t = RuntimeThresholds {
        required_output_columns: vec!["zeta".into(), "nfe_id".into(), "alpha".into()],
        forbidden_output_columns: vec!["valor".into()],
        ..Default::default()
    };
    let o = run_with(MockConfig::default(), &validator(t));
    assert_eq!(
        codes(&o),
        [
            "RUNTIME_MISSING_REQUIRED_OUTPUT_COLUMNS",
            "RUNTIME_FORBIDDEN_OUTPUT_COLUMNS"
        ]
    );
    assert!(
        o.runtime_faults[0]
            .message
            .contains("[\"alpha\", \"zeta\"]"),
        "{}",
        o.runtime_faults[0].message
    );
}

fn with_policy(p: FailurePolicy) -> ExecutionConfig {
    ExecutionConfig {
        failure_policy: p,
        ..Default::default()
    }
}

#[test]
fn failed_load_is_retried_then_quarantined() {
    let o = run_with(
        MockConfig::default().fail_always("load_target"),
        &ExecutionConfig::default(),
    );
    assert_eq!(o.sandbox_status, SandboxStatus::Partial);
    assert!(matches!(o.publish_state, PublishState::Quarantined { .. }));
    assert_eq!(o.retries, 2);
    assert_eq!(codes(&o), ["RUNTIME_STEP_FAILED"; 3]);
    assert!(o.runtime_faults[0].message.contains("load_target"));
    assert_eq!(o.quarantined_steps, ["load_target"]);
    assert!(o.committed_steps.is_empty());
    assert_eq!(o.runtime_validation, None);
    assert_eq!(o.metrics.rows_output, 0, "the target was not written");
}

#[test]
fn every_failure_policy_after_a_step_failure() {
    let m = || MockConfig::default().fail_always("load_target");
    let o = run_with(m(), &with_policy(FailurePolicy::FullRollback));
    assert_eq!(o.publish_state, PublishState::RolledBack);
    assert_eq!(o.quarantined_steps.len(), 7);
    assert!(o.committed_steps.is_empty());
    let o = run_with(m(), &with_policy(FailurePolicy::PartialCommitNoPublish));
    assert_eq!(o.publish_state, PublishState::CommittedNotPublished);
    assert_eq!(o.decision_state(), DecisionState::PartiallyCommitted);
    assert_eq!(o.committed_steps.len(), 6);
    let o = run_with(m(), &with_policy(FailurePolicy::DegradedPublish));
    assert!(matches!(o.publish_state, PublishState::Degraded { .. }));
    assert_eq!(
        o.decision_state(),
        DecisionState::Degraded,
        "B6: never approved"
    );
    let d = o
        .runtime_faults
        .iter()
        .find(|f| f.code == "PARTIAL_DEGRADED_PUBLISH")
        .unwrap();
    assert_eq!(d.severity, FaultSeverity::Warning);
    assert!(d.message.contains("1 of 7"), "{}", d.message);
    // Nothing succeeded: selective and degraded roll back.
    let first = || MockConfig::default().fail_always("extract_nfe");
    assert_eq!(
        run_with(first(), &ExecutionConfig::default()).publish_state,
        PublishState::RolledBack
    );
    let o = run_with(first(), &with_policy(FailurePolicy::DegradedPublish));
    assert_eq!(o.publish_state, PublishState::RolledBack);
    assert_eq!(o.skipped_steps.len(), 6);
}

#[test]
fn every_failure_policy_after_a_runtime_failure() {
    let m = || MockConfig {
        default_shuffle_mb: 200.0,
        ..Default::default()
    };
    let states: Vec<&str> = [
        FailurePolicy::FullRollback,
        FailurePolicy::SelectiveQuarantine,
        FailurePolicy::PartialCommitNoPublish,
        FailurePolicy::DegradedPublish,
    ]
    .into_iter()
    .map(|p| {
        let o = run_with(m(), &with_policy(p));
        assert!(
            o.committed_steps.is_empty(),
            "a run failing validation is rolled back"
        );
        assert_eq!(o.runtime_validation, Some(false));
        o.publish_state.as_str()
    })
    .collect();
    assert_eq!(
        states,
        [
            PublishState::RolledBack.as_str(),
            "quarantined",
            PublishState::CommittedNotPublished.as_str(),
            "degraded"
        ]
    );
}

#[test]
fn retry_then_success_publishes() {
    let o = run_with(
        MockConfig::default().fail_first("join_datasets", 2),
        &ExecutionConfig::default(),
    );
    assert_eq!(o.publish_state, PublishState::Published);
    assert_eq!(o.retries, 2);
    assert_eq!(codes(&o), ["RUNTIME_STEP_FAILED"; 2]);
    let join = o
        .step_results
        .iter()
        .find(|r| r.step_id == "join_datasets")
        .unwrap();
    assert_eq!(join.attempt, 3);
    assert_eq!(o.step_results.len(), 7, "successful steps are not re-run");
    // One attempt only: no retry.
    let cfg = ExecutionConfig {
        retry: RetryPolicy { max_attempts: 1 },
        ..Default::default()
    };
    let o = run_with(MockConfig::default().fail_first("join_datasets", 1), &cfg);
    assert!(matches!(o.publish_state, PublishState::Quarantined { .. }));
    assert_eq!(o.retries, 0);
}

#[test]
fn panic_rolls_back_with_nothing_written() {
    let (s, p) = plan(&ok_sig(), true);
    let reg = SandboxRegistry::with_builtins();
    let sb = reg.create("panic", &SandboxOptions::default()).unwrap();
    let o = execute(
        sb.as_ref(),
        &RunContext {
            plan: &p,
            artifact: None,
            signature: &s,
        },
        &ExecutionConfig::default(),
    )
    .unwrap();
    assert_eq!(o.sandbox_status, SandboxStatus::Panic);
    assert_eq!(o.publish_state, PublishState::RolledBack);
    assert_eq!(codes(&o), ["ENVIRONMENTAL_PANIC"]);
    assert!(
        o.runtime_faults[0].message.contains("extract_nfe")
            && o.runtime_faults[0].message.contains("cluster_node_lost")
    );
    assert_eq!(o.runtime_validation, None);
    assert_eq!(o.retries, 0);
    assert!(o.committed_steps.is_empty());
    assert_eq!(o.skipped_steps.len(), 6);
}

#[test]
fn registry_lists_builtins_and_rejects_unknown_names() {
    let mut reg = SandboxRegistry::with_builtins();
    assert_eq!(reg.names(), ["mock", "panic", "postgres", "spark"]);
    let e = reg
        .create("flink", &SandboxOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "unknown sandbox 'flink'; available: mock, panic, postgres, spark"
    );
    let e = reg
        .create("postgres", &SandboxOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("--dsn"), "{e}");
    reg.register(
        "mine",
        Box::new(|_| Ok(Box::new(MockSandbox::default()) as Box<dyn Sandbox>)),
    )
    .unwrap();
    assert!(
        reg.register(
            "mock",
            Box::new(|_| Ok(Box::new(MockSandbox::default()) as Box<dyn Sandbox>))
        )
        .is_err()
    );
    assert_eq!(
        reg.create("mine", &SandboxOptions::default())
            .unwrap()
            .name(),
        "mock"
    );
}

#[test]
fn the_plan_contract_applies_by_default() {
    let leaky = MockConfig {
        output_schema: Some(vec!["nfe_id".into(), "cpf".into()]),
        ..Default::default()
    };
    let o = run_with(leaky.clone(), &ExecutionConfig::default());
    assert_eq!(
        codes(&o),
        [
            "RUNTIME_SCHEMA_MISSING_COLUMNS",
            "RUNTIME_SCHEMA_FORBIDDEN_COLUMNS"
        ]
    );
    let off = ExecutionConfig {
        schema_from_plan: false,
        ..Default::default()
    };
    assert!(codes(&run_with(leaky, &off)).is_empty());
}
