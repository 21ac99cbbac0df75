//! The project templates of `cfa init --template NAME`: each adds its own files to the
//! base files `cfa init` writes (cfa.yaml, catalog.json, policies/prod-v1.yaml), and
//! every command in them runs as written from the project directory (the cfa-cli tests
//! run them through the real binary).

/// A template: its name, what it sets up, and its files (path, text).
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The `--template` value.
    pub name: &'static str,
    /// One line for `--list`.
    pub summary: &'static str,
    /// Files beside the base files, relative to the project directory.
    pub files: &'static [(&'static str, &'static str)],
    /// What to run next, printed after the file list.
    pub next: &'static str,
}

/// A signature the base files approve (prod-v1 with the sample catalog).
const SIGNATURE: &str = r#"{
  "domain": "fiscal",
  "intent": "reconciliation_and_persist",
  "target_layer": "silver",
  "datasets": [
    {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
     "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
    {"name": "clientes", "classification": "sensitive", "size_gb": 0.5,
     "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
     "merge_keys": ["cliente_id"]}
  ],
  "constraints": {
    "no_pii_raw": true,
    "merge_key_required": true,
    "enforce_types": true,
    "partition_by": ["processing_date"],
    "max_cost_dbu": 20.0
  },
  "execution_context": {
    "policy_bundle_version": "prod-v1.0",
    "catalog_snapshot_version": "cat-2026-01",
    "context_registry_version_id": "v_initial"
  }
}
"#;

const DBT_SCRIPT: &str = r#"#!/bin/sh
# Decide each signature under the project's policy bundle (cfa.yaml) and, for an
# approved one, write a governed dbt project into dbt/<signature name>/. A replan (3)
# or block (4) stops here and writes nothing. Run from the project directory:
#   sh scripts/cfa-dbt.sh
set -eu
for sig in signatures/*.json; do
  name=$(basename "$sig" .json)
  cfa generate --backend dbt -s "$sig" -o "dbt/$name"
done
"#;

const CI_SCRIPT: &str = r#"#!/bin/sh
# The governance gate: the bundle and the catalog must be valid, and every signature
# under signatures/ must be approved (a replan exits 3, a block 4, and fails the job).
# Run from the project directory, in CI or before you push:
#   sh scripts/cfa-gate.sh
set -eu
mkdir -p .cfa
cfa policy validate policies/prod-v1.yaml
cfa catalog validate catalog.json --require-datasets
for sig in signatures/*.json; do
  cfa policy check -s "$sig" --audit-log .cfa/gate-audit.jsonl
done
cfa audit verify --file .cfa/gate-audit.jsonl
"#;

const CI_WORKFLOW: &str = r#"# GitHub Actions: run the CFA governance gate on every pull request.
# `cfa` must be on the PATH: set the repository variable CFA_GIT_URL to the git URL of
# the CFA sources (the step installs cfa-cli from it), or replace that step with your
# own way of installing the binary.
name: cfa-gate
on:
  pull_request:
  push:
    branches: [main]
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Install cfa
        run: cargo install --locked --git "${{ vars.CFA_GIT_URL }}" cfa-cli
      - name: Governance gate
        run: sh scripts/cfa-gate.sh
"#;

const MCP_JSON: &str = r#"{
  "mcpServers": {
    "cfa": {
      "command": "cfa",
      "args": ["mcp", "--config", "cfa.yaml"]
    }
  }
}
"#;

const MCP_README: &str = r#"# CFA as an MCP server

`.mcp.json` registers `cfa mcp` (the governance tools over stdio) with MCP clients that
read a project-level server list (Claude Code and others; for a client with a global
config, copy the `cfa` entry into it). The client starts it from this directory, so
`--config cfa.yaml` gives the server this project's catalog, policy bundle and audit log.

Try it by hand:

    printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}' | cfa mcp --config cfa.yaml

Tools: cfa_evaluate_intent, cfa_evaluate_signature, cfa_describe_rules,
cfa_explain_fault, cfa_audit_check (see docs/mcp.md of the CFA sources).
"#;

/// Every template, in `--list` order.
pub const TEMPLATES: [Template; 3] = [
    Template {
        name: "ci-gate",
        summary: "a CI governance gate: scripts/cfa-gate.sh and a GitHub Actions workflow",
        files: &[
            ("scripts/cfa-gate.sh", CI_SCRIPT),
            (".github/workflows/cfa-gate.yml", CI_WORKFLOW),
            ("signatures/nfe_daily.json", SIGNATURE),
        ],
        next: "sh scripts/cfa-gate.sh",
    },
    Template {
        name: "dbt",
        summary: "governed dbt projects generated from approved signatures (scripts/cfa-dbt.sh)",
        files: &[
            ("scripts/cfa-dbt.sh", DBT_SCRIPT),
            ("signatures/nfe_daily.json", SIGNATURE),
        ],
        next: "sh scripts/cfa-dbt.sh",
    },
    Template {
        name: "mcp",
        summary: "an MCP agent setup: .mcp.json starting `cfa mcp` with this project's config",
        files: &[(".mcp.json", MCP_JSON), ("MCP.md", MCP_README)],
        next: "cfa mcp --config cfa.yaml   (or let your MCP client start it from .mcp.json)",
    },
];

/// The template called `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// Template names, comma-separated.
pub fn names() -> String {
    TEMPLATES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}
