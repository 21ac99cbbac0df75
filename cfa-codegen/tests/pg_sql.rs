//! The SQL backend on a real PostgreSQL 15: generated scripts run, re-run idempotently
//! (MERGE), update non-key columns, and never store raw PII. One cluster for the whole
//! binary, so every scenario lives in the one test below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_test_support::pg::{PgCluster, SHOP_SEED};
use common::*;
use serde_json::{Value, json};

const RAW_PII: &[&str] = &[
    "12345678900",
    "98765432100",
    "ana@example.com",
    "bruno@example.com",
];

struct Db<'a> {
    pg: &'a PgCluster,
    name: String,
    dir: tempfile::TempDir,
}

impl Db<'_> {
    fn run(&self, v: &Value) -> String {
        let (s, a) = generate("sql", v, true);
        let r = cfa_codegen::validate_artifact(&a, &s);
        assert!(r.passed, "{:?}", r.faults);
        let path = self.dir.path().join(&a.files[0].path);
        std::fs::write(&path, &a.files[0].content).unwrap();
        self.pg
            .psql_file(
                &self.name,
                &path,
                &[("PGOPTIONS", "-c cfa.partition_start=2026-01-01")],
            )
            .unwrap_or_else(|e| {
                panic!(
                    "generated SQL failed on PostgreSQL:\n{e}\n{}",
                    a.files[0].content
                )
            });
        a.target
    }

    fn q(&self, sql: &str) -> String {
        self.pg.psql(&self.name, sql).unwrap().trim().to_owned()
    }

    fn count(&self, table: &str) -> i64 {
        self.q(&format!("SELECT count(*) FROM public.\"{table}\""))
            .parse()
            .unwrap()
    }

    fn assert_no_raw_pii(&self, table: &str) {
        let cols = self.q(&format!(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '{table}'"
        ));
        for raw in ["cpf", "email"] {
            assert!(
                !cols.split(',').any(|c| c == raw),
                "raw column {raw} in {table}: {cols}"
            );
        }
        for raw in RAW_PII {
            let hits = self.q(&format!(
                "SELECT count(*) FROM public.\"{table}\" t WHERE t::text LIKE '%{raw}%'"
            ));
            assert_eq!(hits, "0", "raw value {raw} stored in {table}");
        }
    }
}

fn new_db<'a>(pg: &'a PgCluster, name: &str) -> Db<'a> {
    pg.create_database(name).unwrap();
    pg.psql(name, SHOP_SEED).unwrap();
    Db {
        pg,
        name: name.into(),
        dir: tempfile::tempdir().unwrap(),
    }
}

#[test]
fn generated_sql_runs_on_postgresql_15() {
    let pg = PgCluster::start().expect("throwaway PostgreSQL cluster");
    assert!(
        pg.psql("postgres", "SHOW server_version")
            .unwrap()
            .starts_with("15")
    );

    // 1. The reference signature: two datasets, PII, partition filter, silver MERGE.
    let db = new_db(&pg, "cfa_ok");
    let target = db.run(&ok_sig());
    assert_eq!(target, "silver_fiscal");
    // nfe in range: 1, 2, 3, 5; clientes in range: 10, 11, 12 → joined: 1, 2, 3.
    assert_eq!(db.count(&target), 3);
    let hashes =
        db.q("SELECT string_agg(cpf_hash || ' ' || email_hash, ' ') FROM public.silver_fiscal");
    for h in hashes.split(' ') {
        assert_eq!(h.len(), 64, "{h}");
        assert!(
            h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
    let ana = db.q("SELECT cpf_hash FROM public.silver_fiscal WHERE nfe_id = 1");
    assert_eq!(ana, cfa_types::canonical::sha256_hex(b"12345678900"));
    db.assert_no_raw_pii(&target);
    // Second run: MERGE keeps it idempotent.
    db.run(&ok_sig());
    assert_eq!(db.count(&target), 3);
    // A changed source row updates the non-key columns; a new one is inserted.
    db.q("UPDATE public.nfe SET valor = 99.99 WHERE nfe_id = 2; INSERT INTO public.nfe VALUES (6, 12, 102, 7.00, '2026-01-09')");
    db.run(&ok_sig());
    assert_eq!(db.count(&target), 4);
    assert_eq!(
        db.q("SELECT valor FROM public.silver_fiscal WHERE nfe_id = 2"),
        "99.99"
    );
    db.assert_no_raw_pii(&target);

    // 2. Three datasets: every one joined on its own key (produtos on produto_id).
    let db = new_db(&pg, "cfa_three");
    let target = db.run(&three_sig());
    // no partition filter: nfe 1..5 all have clientes and produtos → 5 rows.
    assert_eq!(db.count(&target), 5);
    assert_eq!(
        db.q("SELECT descricao FROM public.silver_fiscal WHERE nfe_id = 2"),
        "papel"
    );
    db.run(&three_sig());
    assert_eq!(db.count(&target), 5);
    db.assert_no_raw_pii(&target);

    // 3. Gold aggregate merged on the group-by column.
    let db = new_db(&pg, "cfa_agg");
    let target = db.run(&aggregate_sig());
    assert_eq!(target, "gold_fiscal");
    assert_eq!(
        db.q("SELECT string_agg(processing_date || '=' || row_count, ',' ORDER BY processing_date) FROM public.gold_fiscal"),
        "2026-01-05=1,2026-01-06=1,2026-01-07=1"
    );
    db.run(&aggregate_sig());
    assert_eq!(db.count(&target), 3);

    // 4. Bronze partition overwrite: re-running replaces the range instead of duplicating.
    let db = new_db(&pg, "cfa_bronze");
    let mut part = bronze_sig();
    part["constraints"]["partition_by"] = json!(["processing_date"]);
    let target = db.run(&part);
    assert_eq!(target, "bronze_clientes");
    assert_eq!(db.count(&target), 3);
    db.run(&part);
    assert_eq!(db.count(&target), 3);
    db.assert_no_raw_pii(&target);

    // 5. Bronze append (no partition): appends every run, PII still hashed.
    let target = db.run(&bronze_sig());
    assert_eq!(db.count(&target), 3 + 4);
    db.assert_no_raw_pii(&target);

    // 6. SQL keywords and one-letter names as tables and columns: quoting holds.
    let db = new_db(&pg, "cfa_keywords");
    db.q("CREATE TABLE public.\"order\" (\"from\" int, \"where\" int, \"t\" text, \"inner\" date);
          CREATE TABLE public.\"select\" (\"where\" int, \"s\" text, \"inner\" date, \"delta\" text);
          INSERT INTO public.\"order\" VALUES (1, 7, 'x', '2026-02-01'), (2, 8, 'y', '2026-02-01');
          INSERT INTO public.\"select\" VALUES (7, 'secret-s', '2026-02-01', 'secret-d'), (8, 'other', '2026-02-02', 'z')");
    let names: Vec<String> = [
        "order", "select", "from", "where", "inner", "t", "s", "delta", "group",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (kw_sig, kw_cat) = build(&names, "silver", true, false, true);
    let (s, a) = {
        let s = sig(&kw_sig);
        let cat = cfa_types::Catalog::from_value(&kw_cat).unwrap();
        let p = plan(&s, Some(&cat));
        let a = cfa_codegen::BackendRegistry::with_builtins()
            .get("sql")
            .unwrap()
            .generate(&p, &s)
            .unwrap();
        (s, a)
    };
    assert!(cfa_codegen::validate_artifact(&a, &s).passed);
    let path = db.dir.path().join("keywords.sql");
    std::fs::write(&path, &a.files[0].content).unwrap();
    for _ in 0..2 {
        pg.psql_file(
            "cfa_keywords",
            &path,
            &[("PGOPTIONS", "-c cfa.partition_start=2026-01-01")],
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", a.files[0].content));
    }
    assert_eq!(db.count("silver_group"), 2);
    assert_eq!(
        db.q("SELECT count(*) FROM public.silver_group t WHERE t::text LIKE '%secret%'"),
        "0"
    );

    // A missing partition parameter fails the run (fail closed) instead of reading everything.
    let (_, a) = generate("sql", &ok_sig(), true);
    let path = db.dir.path().join("no_param.sql");
    std::fs::write(&path, &a.files[0].content).unwrap();
    let err = pg.psql_file("cfa_ok", &path, &[]).unwrap_err();
    assert!(err.contains("cfa.partition_start"), "{err}");
}
