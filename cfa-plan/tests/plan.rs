#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Planner behaviour: step shapes, the join-key rule, write modes, ordering, serde.

use cfa_plan::{
    ConsistencyUnit, CycleError, ExecutionPlan, ExecutionPlanner, JoinStrategy, PlanError,
    PlanStep, Planner, StepConfig, StepKind, WriteMode,
};
use cfa_types::{Catalog, StateSignature};
use serde_json::{Value, json};

fn ok_sig() -> Value {
    cfa_test_support::ok_signature()
}

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "produto_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]},
      "produtos": {"classification": "internal", "size_gb": 0.1, "pii_columns": [], "merge_keys": ["produto_id"],
                   "columns": ["produto_id", "descricao"]}
    }}))
    .unwrap()
}

fn sig(v: Value) -> StateSignature {
    StateSignature::from_value(&v).unwrap()
}

fn plan(v: Value, cat: Option<&Catalog>) -> Result<ExecutionPlan, PlanError> {
    ExecutionPlanner::default().plan(&sig(v), cat)
}

fn ids(p: &ExecutionPlan) -> Vec<&str> {
    p.steps.iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn ok_signature_plan_shape() {
    let cat = catalog();
    let p = plan(ok_sig(), Some(&cat)).unwrap();
    assert_eq!(
        ids(&p),
        [
            "extract_nfe",
            "filter_nfe",
            "extract_clientes",
            "filter_clientes",
            "anonymize_clientes",
            "join_datasets",
            "load_target"
        ]
    );
    assert_eq!(p.target, "silver_fiscal");
    assert_eq!(p.write_mode, WriteMode::Merge);
    assert_eq!(p.consistency_unit, ConsistencyUnit::Partition);
    assert_eq!(
        p.signature_hash,
        "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649"
    );
    let join = p.join().unwrap();
    assert_eq!(join.strategy, JoinStrategy::Broadcast);
    // foreign-key rule: clientes' key cliente_id is a column of nfe.
    assert_eq!(join.conditions.len(), 1);
    assert_eq!(join.conditions[0].left_dataset, "nfe");
    assert_eq!(join.conditions[0].left_column, "cliente_id");
    assert_eq!(join.conditions[0].right_column, "cliente_id");
    let load = p.load().unwrap();
    assert_eq!(load.merge_keys, ["nfe_id"]);
    assert_eq!(
        load.columns.as_ref().unwrap(),
        &[
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
    assert_eq!(
        p.step("join_datasets").unwrap().depends_on,
        ["filter_nfe", "anonymize_clientes"]
    );
    insta::assert_json_snapshot!("ok_plan", p);
}

#[test]
fn every_dataset_is_joined_on_its_own_key() {
    let mut v = ok_sig();
    v["datasets"].as_array_mut().unwrap().push(json!(
        {"name": "produtos", "size_gb": 0.1, "merge_keys": ["produto_id"]}
    ));
    v["constraints"]["partition_by"] = json!([]);
    let cat = catalog();
    let p = plan(v.clone(), Some(&cat)).unwrap();
    assert_eq!(p.consistency_unit, ConsistencyUnit::DagBranch);
    let join = p.join().unwrap();
    assert_eq!(join.datasets, ["nfe", "clientes", "produtos"]);
    assert_eq!(join.strategy, JoinStrategy::SortMerge);
    assert_eq!(join.conditions.len(), 2);
    assert_eq!(join.conditions[1].right_dataset, "produtos");
    assert_eq!(join.conditions[1].left_dataset, "nfe");
    assert_eq!(join.conditions[1].left_column, "produto_id");
    assert!(
        join.output_columns
            .as_ref()
            .unwrap()
            .contains(&"descricao".to_owned())
    );
    // Without catalog columns no key is shared: the join is refused, never guessed
    // from each side's first key.
    let err = plan(v, None).unwrap_err();
    assert!(
        matches!(&err, PlanError::UngroundedJoin { dataset, .. } if dataset == "clientes"),
        "{err:?}"
    );
}

#[test]
fn ungrounded_joins_are_refused_with_what_to_add() {
    let v = ok_sig();
    let err = plan(v.clone(), None).unwrap_err().to_string();
    assert!(err.contains("no join key for dataset 'clientes'"), "{err}");
    assert!(err.contains("cliente_id"), "{err}");
    assert!(err.contains("catalog.datasets.<name>.columns"), "{err}");
    assert!(
        err.contains("catalog.datasets.clientes.join_keys: {\"nfe\""),
        "{err}"
    );
    // Catalog entries without columns do not help either.
    let bare = Catalog::from_value(&json!({"datasets": {
        "nfe": {"merge_keys": ["nfe_id"]}, "clientes": {"merge_keys": ["cliente_id"]}}}))
    .unwrap();
    assert!(matches!(
        plan(v.clone(), Some(&bare)).unwrap_err(),
        PlanError::UngroundedJoin { .. }
    ));
    // Datasets without merge keys never join on the `id` stand-in.
    let no_keys = json!({"domain": "d", "intent": "reconcile", "target_layer": "bronze",
        "datasets": [{"name": "a"}, {"name": "b"}], "constraints": {"partition_by": []}});
    assert!(matches!(
        plan(no_keys, None).unwrap_err(),
        PlanError::UngroundedJoin { .. }
    ));
}

#[test]
fn catalog_join_keys_ground_a_join() {
    let v = ok_sig();
    for cat in [
        json!({"datasets": {"clientes": {"join_keys": {"nfe": ["cliente_id"]}}}}),
        json!({"datasets": {"nfe": {"join_keys": {"clientes": "cliente_id"}}}}),
    ] {
        let cat = Catalog::from_value(&cat).unwrap();
        let p = plan(v.clone(), Some(&cat)).unwrap();
        let c = &p.join().unwrap().conditions[0];
        assert_eq!(
            (
                c.left_dataset.as_str(),
                c.left_column.as_str(),
                c.right_dataset.as_str(),
                c.right_column.as_str()
            ),
            ("nfe", "cliente_id", "clientes", "cliente_id")
        );
    }
    // The declared key must be a real column where columns are listed.
    let missing = Catalog::from_value(&json!({"datasets": {
        "nfe": {"columns": ["nfe_id", "processing_date"], "join_keys": {"clientes": ["cliente_id"]}},
        "clientes": {"columns": ["cliente_id", "cpf", "email", "processing_date"]}}}))
    .unwrap();
    assert_eq!(
        plan(v.clone(), Some(&missing)).unwrap_err().to_string(),
        "join key 'cliente_id' of dataset 'nfe' is not among its catalog columns"
    );
    for bad in [
        json!({"clientes": {"join_keys": ["cliente_id"]}}),
        json!({"clientes": {"join_keys": {"nfe": ["a", "b"]}}}),
        json!({"clientes": {"join_keys": {"nfe": []}}}),
        json!({"clientes": {"join_keys": {"nfe": 3}}}),
        json!({"clientes": {"join_keys": {"nfe": "a"}}, "nfe": {"join_keys": {"clientes": "b"}}}),
    ] {
        let cat = Catalog::from_value(&json!({ "datasets": bad })).unwrap();
        assert!(
            matches!(
                plan(v.clone(), Some(&cat)).unwrap_err(),
                PlanError::CatalogJoinKeys { .. }
            ),
            "{bad}"
        );
    }
}

#[test]
fn shared_merge_key_wins() {
    let v = json!({"domain": "d", "intent": "reconcile", "target_layer": "silver",
        "datasets": [{"name": "a", "merge_keys": ["x", "k"]}, {"name": "b", "merge_keys": ["k"]}],
        "constraints": {"partition_by": []}});
    let p = plan(v, None).unwrap();
    let c = &p.join().unwrap().conditions[0];
    assert_eq!(
        (c.left_column.as_str(), c.right_column.as_str()),
        ("k", "k")
    );
}

#[test]
fn aggregate_reads_the_frame_before_it() {
    let mut v = ok_sig();
    v["intent"] = json!("aggregate_and_persist");
    v["target_layer"] = json!("gold");
    let p = plan(v, Some(&catalog())).unwrap();
    let agg = p.step("aggregate").unwrap();
    assert_eq!(agg.depends_on, ["join_datasets"]);
    assert_eq!(p.load().unwrap().merge_keys, ["processing_date"]);
    assert_eq!(
        p.output_columns.as_ref().unwrap(),
        &["processing_date", "row_count"]
    );

    let single = json!({"domain": "d", "intent": "aggregate", "target_layer": "gold",
        "datasets": [{"name": "nfe", "merge_keys": ["nfe_id"]}],
        "constraints": {"partition_by": ["processing_date"]}});
    let p = plan(single, None).unwrap();
    assert_eq!(p.step("aggregate").unwrap().depends_on, ["filter_nfe"]);
    assert!(p.join().is_none());
    let no_group = json!({"domain": "d", "intent": "aggregate", "target_layer": "gold",
        "datasets": [{"name": "nfe"}], "constraints": {"partition_by": []}});
    assert_eq!(
        plan(no_group, None).unwrap_err(),
        PlanError::AggregateWithoutGroupBy
    );
}

#[test]
fn write_modes() {
    let bronze = json!({"domain": "d", "intent": "ingest", "target_layer": "bronze",
        "datasets": [{"name": "nfe"}], "constraints": {"partition_by": []}});
    let p = plan(bronze.clone(), None).unwrap();
    assert_eq!(p.write_mode, WriteMode::Append);
    assert_eq!(p.consistency_unit, ConsistencyUnit::Dataset);
    assert_eq!(ids(&p), ["extract_nfe", "load_target"]);
    assert_eq!(p.target, "bronze_nfe");
    let mut part = bronze;
    part["constraints"]["partition_by"] = json!(["dt"]);
    assert_eq!(
        plan(part.clone(), None).unwrap().write_mode,
        WriteMode::OverwritePartition
    );
    part["target_layer"] = json!("silver");
    assert_eq!(
        plan(part.clone(), None).unwrap().write_mode,
        WriteMode::Merge
    );
    part["constraints"]["merge_key_required"] = json!(false);
    assert_eq!(
        plan(part, None).unwrap().write_mode,
        WriteMode::OverwritePartition
    );
}

#[test]
fn raw_pii_allowed_skips_anonymize() {
    let mut v = ok_sig();
    v["constraints"]["no_pii_raw"] = json!(false);
    let p = plan(v, Some(&catalog())).unwrap();
    assert!(p.steps.iter().all(|s| s.kind != StepKind::Anonymize));
    assert!(p.output_columns.unwrap().contains(&"cpf".to_owned()));
}

#[test]
fn catalog_adds_pii_columns() {
    let mut v = ok_sig();
    v["datasets"][1]["pii_columns"] = json!(["cpf"]);
    let p = plan(v, Some(&catalog())).unwrap();
    match &p.step("anonymize_clientes").unwrap().config {
        StepConfig::Anonymize(a) => assert_eq!(a.pii_columns, ["cpf", "email"]),
        other => panic!("unexpected config {other:?}"),
    }
}

#[test]
fn planning_errors() {
    let none = json!({"domain": "d", "intent": "i", "datasets": []});
    assert_eq!(plan(none, None).unwrap_err(), PlanError::NoDatasets);
    let dup = json!({"domain": "d", "intent": "i", "datasets": [{"name": "a"}, {"name": "a"}]});
    assert!(matches!(
        plan(dup, None).unwrap_err(),
        PlanError::DuplicateDataset { .. }
    ));
    let pii_key = json!({"domain": "d", "intent": "i", "target_layer": "silver",
        "datasets": [{"name": "a", "pii_columns": ["cpf"], "merge_keys": ["cpf"]}]});
    assert!(matches!(
        plan(pii_key, None).unwrap_err(),
        PlanError::PiiKey { .. }
    ));
    let bad_cols = Catalog::from_value(&json!({"datasets": {"a": {"columns": [1]}}})).unwrap();
    let a = json!({"domain": "d", "intent": "i", "datasets": [{"name": "a", "merge_keys": ["k"]}]});
    assert!(matches!(
        plan(a.clone(), Some(&bad_cols)).unwrap_err(),
        PlanError::CatalogColumns { .. }
    ));
    let collide =
        Catalog::from_value(&json!({"datasets": {"a": {"columns": ["k", "cpf", "cpf_hash"]}}}))
            .unwrap();
    let with_pii = json!({"domain": "d", "intent": "i", "datasets": [{"name": "a", "merge_keys": ["k"], "pii_columns": ["cpf"]}]});
    assert!(matches!(
        plan(with_pii, Some(&collide)).unwrap_err(),
        PlanError::HashedNameCollision { .. }
    ));
    let missing = Catalog::from_value(&json!({"datasets": {"a": {"columns": ["x"]}}})).unwrap();
    let err = plan(a, Some(&missing)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "merge key 'k' of dataset 'a' is not among its catalog columns"
    );
}

fn raw_step(id: &str, deps: &[&str]) -> PlanStep {
    PlanStep {
        id: id.into(),
        kind: StepKind::Extract,
        source: None,
        target: None,
        config: StepConfig::Extract(cfa_plan::ExtractConfig {
            dataset: id.into(),
            columns: None,
        }),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    }
}

#[test]
fn topological_order_is_explicit_and_detects_cycles() {
    let mut p = plan(ok_sig(), Some(&catalog())).unwrap();
    // Reverse the steps: the order must still put dependencies first.
    p.steps.reverse();
    let order: Vec<&str> = p
        .topological_order()
        .unwrap()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let pos = |id: &str| order.iter().position(|x| *x == id).unwrap();
    for s in &p.steps {
        for d in &s.depends_on {
            assert!(pos(d) < pos(&s.id), "{d} must come before {}", s.id);
        }
    }
    assert_eq!(order.last(), Some(&"load_target"));

    p.steps = vec![
        raw_step("a", &["c"]),
        raw_step("b", &["a"]),
        raw_step("c", &["b"]),
        raw_step("d", &[]),
    ];
    match p.topological_order().unwrap_err() {
        CycleError::Cycle { steps } => assert_eq!(steps, ["a", "b", "c"]),
        other => panic!("expected a cycle, got {other:?}"),
    }
    p.steps = vec![raw_step("a", &["zzz"])];
    assert!(matches!(
        p.topological_order().unwrap_err(),
        CycleError::UnknownDependency { .. }
    ));
    p.steps = vec![raw_step("a", &[]), raw_step("a", &[])];
    assert!(matches!(
        p.topological_order().unwrap_err(),
        CycleError::DuplicateStep { .. }
    ));
}

#[test]
fn plan_round_trips_through_serde() {
    let p = plan(ok_sig(), Some(&catalog())).unwrap();
    let text = serde_json::to_string(&p).unwrap();
    let back: ExecutionPlan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
    let v = p.to_value();
    assert_eq!(v["steps"][0]["type"], "extract");
    assert_eq!(v["write_mode"], "merge");
}

#[test]
fn planner_works_behind_a_trait_object() {
    let planner: Box<dyn Planner> = Box::new(ExecutionPlanner::default());
    let p = planner.plan(&sig(ok_sig()), Some(&catalog())).unwrap();
    assert_eq!(p.datasets.len(), 2);
    assert!(p.datasets[1].anonymized);
}
