//! Every integration test of the `cfa` binary, as one test binary (one link instead of
//! one per file): each former `tests/<name>.rs` is the module `<name>` here, so a test
//! is named `<name>::<test>` (`cargo nextest run -p cfa-cli -E 'test(/^serve_http::/)'`).
//! To add a file: put it in this directory and add `mod <name>;` below; shared helpers
//! live in `support` (`use crate::support::...`).

mod support;

mod audit_cli;
mod audit_interop;
mod audit_pg;
mod budget_cli;
mod cli_config;
mod cli_demo;
mod cli_evaluate;
mod cli_execute;
mod cli_lifecycle;
mod cli_policy;
mod cli_postgres;
mod cli_storage;
mod cli_ux;
mod config_honoured;
mod control_faces;
mod control_pg;
mod control_plane;
mod dbt_check;
mod doctor;
mod evidence_cli;
mod generate_cli;
mod generate_dbt;
mod init_templates;
mod mcp_jsonrpc_raw;
mod mcp_python_client;
mod mcp_rmcp_client;
mod one_store;
mod policy_backtest;
mod policy_shadow;
mod policy_test;
mod readme;
mod report_browser;
mod report_cli;
mod scale_out;
mod serve_http;
mod serve_metrics_port;
mod serve_otel;
mod shadow_depth;
mod spark_cli;
mod spark_run;
mod spec_validate;
mod status_storage;
mod trust_audit;
mod trust_generate;
mod trust_http;
mod trust_input;
mod trust_mcp;
mod trust_messages;
mod trust_paths;
mod trust_policy;
mod trust_readonly;
mod trust_serve;
