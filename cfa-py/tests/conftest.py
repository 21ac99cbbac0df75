"""Shared paths of the cfa-py test suite: the workspace, its examples, the conformance
corpus (../shared/conformance beside the workspace, or $CFA_CONFORMANCE_DIR) and the debug
`cfa` binary ($CFA_BIN, else target/debug/cfa; `cargo xtask python` builds it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CATALOG = EXAMPLES / "catalog.json"
CONFORMANCE = Path(os.environ.get("CFA_CONFORMANCE_DIR", ROOT.parent / "shared" / "conformance"))
CFA_BIN = Path(os.environ.get("CFA_BIN", ROOT / "target" / "debug" / "cfa"))

APPROVE = "Join nfe with clientes daily, anonymize pii, into silver"
BLOCK = "Join NFe with Clientes and persist to Silver"
REPLAN = "ingest nfe raw into bronze"


def jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_cfa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the built `cfa` (fails the test when it is missing: nothing skips)."""
    assert CFA_BIN.is_file(), f"no cfa binary at {CFA_BIN}: cargo build -p cfa-cli --bin cfa"
    return subprocess.run(
        [str(CFA_BIN), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def catalog_dict() -> dict:
    return json.loads(CATALOG.read_text())
