//! The postgres sandbox on a real PostgreSQL 15 (throwaway cluster from the codegen
//! harness): a good run commits, a run breaking a runtime threshold rolls back, a failing
//! step is retried and rolled back — each verified by querying the database afterwards.
//! One cluster per binary, so every scenario lives in the one test below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_codegen::{Backend, SqlBackend};
use cfa_sandbox::*;
use cfa_test_support::pg::{PgCluster, SHOP_SEED};
use common::*;

#[test]
fn postgres_sandbox_commits_good_runs_and_rolls_back_bad_ones() {
    let pg = PgCluster::start().unwrap();
    pg.create_database("sandbox").unwrap();
    pg.psql("sandbox", SHOP_SEED).unwrap();
    // One NULL amount, for the null-count metrics.
    pg.psql(
        "sandbox",
        "UPDATE public.nfe SET valor = NULL WHERE nfe_id = 2",
    )
    .unwrap();
    let dsn = pg.dsn("sandbox", None);

    let (s, p) = plan(&ok_sig(), true);
    let artifact = SqlBackend::default().generate(&p, &s).unwrap();
    let ctx = RunContext {
        plan: &p,
        artifact: Some(&artifact),
        signature: &s,
    };
    let q = |sql: &str| pg.psql("sandbox", sql).unwrap().trim().to_owned();
    let exists = || {
        q(&format!(
            "SELECT to_regclass('public.\"{}\"') IS NOT NULL",
            p.target
        ))
    };

    // Through the registry, as the kernel would build it.
    let opts = SandboxOptions {
        dsn: Some(dsn.clone()),
        partition_start: Some("2026-01-01".into()),
        ..SandboxOptions::default()
    };
    let sb = SandboxRegistry::with_builtins()
        .create("postgres", &opts)
        .unwrap();
    assert!(sb.check_environment().is_empty());

    // 1. A run that breaks a threshold rolls back: not even the target table remains.
    let strict = ExecutionConfig {
        validator: RuntimeValidator::new(RuntimeThresholds {
            max_rows: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let o = execute(sb.as_ref(), &ctx, &strict).unwrap();
    assert_eq!(o.sandbox_status, SandboxStatus::Completed);
    assert!(matches!(o.publish_state, PublishState::Quarantined { .. }));
    assert!(
        o.runtime_faults
            .iter()
            .any(|f| f.code == "RUNTIME_CARDINALITY_ABOVE_MAXIMUM"),
        "{:?}",
        o.runtime_faults
    );
    assert!(o.committed_steps.is_empty());
    assert_eq!(
        o.metrics.rows_output, 3,
        "rows written come from the MERGE command tag"
    );
    assert_eq!(
        exists(),
        "f",
        "the rollback must remove everything the run did"
    );

    // 2. A good run commits, with real metrics.
    let cfg = ExecutionConfig {
        validator: RuntimeValidator::default().with_schema(SchemaContract::from_plan(&p)),
        ..Default::default()
    };
    let o = execute(sb.as_ref(), &ctx, &cfg).unwrap();
    assert_eq!(
        o.publish_state,
        PublishState::Published,
        "{:?}",
        o.runtime_faults
    );
    assert_eq!(o.committed_steps.len(), p.steps.len());
    assert_eq!(exists(), "t");
    let count: u64 = q(&format!("SELECT count(*) FROM public.\"{}\"", p.target))
        .parse()
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(o.metrics.rows_output, count);
    assert!(o.metrics.cost_dbu > 0.0, "EXPLAIN Total Cost is recorded");
    assert!(o.metrics.output_schema.contains(&"cpf_hash".to_owned()));
    assert!(!o.metrics.output_schema.contains(&"cpf".to_owned()));
    assert_eq!(o.metrics.null_counts["valor"], 1, "nfe 2 has a NULL valor");
    let extract = o
        .step_results
        .iter()
        .find(|r| r.step_id == "extract_nfe")
        .unwrap();
    assert_eq!(extract.metrics.rows_output, 5);

    // 3. New source rows + a broken threshold: the MERGE is rolled back, the table is as before.
    pg.psql(
        "sandbox",
        "INSERT INTO public.nfe VALUES (6, 11, 100, 60.00, '2026-01-09')",
    )
    .unwrap();
    let o = execute(sb.as_ref(), &ctx, &strict).unwrap();
    assert!(matches!(o.publish_state, PublishState::Quarantined { .. }));
    assert_eq!(o.metrics.rows_output, 4);
    assert_eq!(
        q(&format!("SELECT count(*) FROM public.\"{}\"", p.target)),
        "3"
    );
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM public.\"{}\" WHERE nfe_id = 6",
            p.target
        )),
        "0"
    );
    // A null ratio above the threshold is only a warning: the run publishes.
    let loose = ExecutionConfig {
        validator: RuntimeValidator::new(RuntimeThresholds {
            max_null_ratio: 0.0,
            ..Default::default()
        }),
        ..Default::default()
    };
    let o = execute(sb.as_ref(), &ctx, &loose).unwrap();
    assert_eq!(o.publish_state, PublishState::Published);
    assert!(
        o.runtime_faults
            .iter()
            .any(|f| f.code == "RUNTIME_NULL_RATIO_EXCEEDED_VALOR")
    );
    assert_eq!(
        q(&format!("SELECT count(*) FROM public.\"{}\"", p.target)),
        "4"
    );

    // 4. A failing step (missing source) is retried, then everything rolls back.
    pg.psql(
        "sandbox",
        "ALTER TABLE public.clientes RENAME TO clientes_gone",
    )
    .unwrap();
    pg.psql(
        "sandbox",
        "INSERT INTO public.nfe VALUES (7, 10, 100, 70.00, '2026-01-10')",
    )
    .unwrap();
    let o = execute(
        sb.as_ref(),
        &ctx,
        &ExecutionConfig {
            failure_policy: FailurePolicy::FullRollback,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(o.sandbox_status, SandboxStatus::Partial);
    assert_eq!(o.publish_state, PublishState::RolledBack);
    assert_eq!(o.retries, 2);
    assert!(
        o.runtime_faults[0].message.contains("42P01"),
        "{}",
        o.runtime_faults[0].message
    );
    assert_eq!(
        q(&format!("SELECT count(*) FROM public.\"{}\"", p.target)),
        "4"
    );
    pg.psql(
        "sandbox",
        "ALTER TABLE public.clientes_gone RENAME TO clientes",
    )
    .unwrap();

    // 5. A node lost right after the MERGE ran: the write is rolled back for real.
    pg.psql(
        "sandbox",
        "INSERT INTO public.nfe VALUES (8, 10, 100, 80.00, '2026-01-11')",
    )
    .unwrap();
    let inner = SandboxRegistry::with_builtins()
        .create("postgres", &opts)
        .unwrap();
    let panicky = PanicSandbox::after_step_of(inner, "load_target", "cluster_node_lost");
    let o = execute(&panicky, &ctx, &cfg).unwrap();
    assert_eq!(o.sandbox_status, SandboxStatus::Panic);
    assert_eq!(o.publish_state, PublishState::RolledBack);
    assert_eq!(o.runtime_faults.last().unwrap().code, "ENVIRONMENTAL_PANIC");
    assert_eq!(
        q(&format!("SELECT count(*) FROM public.\"{}\"", p.target)),
        "4",
        "nothing written"
    );
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM public.\"{}\" WHERE nfe_id = 8",
            p.target
        )),
        "0"
    );

    // 6. The connection is still usable after all that, and a missing artifact is an error.
    let no_artifact = RunContext {
        artifact: None,
        ..ctx
    };
    assert!(execute(sb.as_ref(), &no_artifact, &cfg).is_err());
    let o = execute(sb.as_ref(), &ctx, &cfg).unwrap();
    assert_eq!(o.publish_state, PublishState::Published);
    assert_eq!(
        q(&format!("SELECT count(*) FROM public.\"{}\"", p.target)),
        "6"
    );

    // 7. No partition start: refused before anything runs, naming the setting; the
    // transaction is closed and the connection still works.
    pg.psql(
        "sandbox",
        "INSERT INTO public.nfe VALUES (9, 10, 100, 90.00, '2026-01-12')",
    )
    .unwrap();
    let unset = PostgresSandbox::connect(&dsn).unwrap();
    let err = execute(&unset, &ctx, &cfg).unwrap_err().to_string();
    assert!(err.contains("cfa.partition_start"), "{err}");
    assert!(err.contains("--partition-start"), "{err}");
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM public.\"{}\" WHERE nfe_id = 9",
            p.target
        )),
        "0"
    );
    let o = execute(sb.as_ref(), &ctx, &cfg).unwrap();
    assert_eq!(o.publish_state, PublishState::Published);

    // A bad DSN is a typed error naming the cause, never the DSN's password.
    let err = PostgresSandbox::connect(
        "host=127.0.0.1 port=1 user=postgres password=s3cret connect_timeout=2",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("onnection refused"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}
