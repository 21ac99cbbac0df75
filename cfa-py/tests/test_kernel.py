"""Kernel: the governed flow from Python, reused across calls and threads, its audit
log the one `cfa evaluate --audit-log` writes and `cfa audit verify` accepts."""

from __future__ import annotations

import json
import threading

import pytest

import cfa
from conftest import APPROVE, BLOCK, CATALOG, REPLAN, jsonl, run_cfa


def shape(event: dict) -> tuple:
    """An audit event without its ids, clock and hashes."""
    return (event["stage"], event["event_type"], event["outcome"],
            event["policy_bundle_version"], tuple(sorted(event["details"])))


def test_evaluate_approve_block_replan():
    k = cfa.Kernel(catalog=CATALOG, bundle="prod-v1")
    ok = k.evaluate(APPROVE)
    assert isinstance(ok, cfa.KernelResult)
    assert ok.state == "approved" and ok.executable and ok.passed and not ok.blocked
    assert ok.blocked_reason == "" and ok.signature_hash and ok.audit_event_hashes
    assert ok.signature["target_layer"] == "silver"
    blocked = k.evaluate(BLOCK)
    assert blocked.state == "blocked" and not blocked
    assert "GOVERNANCE_PII_WITHOUT_POLICY" in blocked.fault_codes
    assert blocked.policy_action == "block" and blocked.blocked_reason
    replanned = k.evaluate(REPLAN)
    assert replanned.executable and replanned.replan_count >= 1
    doc = replanned.to_dict()
    assert doc["intent"] == REPLAN and doc["state"] == replanned.state
    assert json.loads(replanned.to_json()) == doc


def test_an_approved_intent_stays_approved_on_every_call(tmp_path):
    """Unlike the reference (bug B1), calls 3 and 4 are approved too, while the skill
    state moves on beside the decision."""
    k = cfa.Kernel(catalog=CATALOG, db=tmp_path / "state.db")
    states = [k.evaluate(APPROVE) for _ in range(4)]
    assert [r.state for r in states] == ["approved"] * 4
    skills = [r.to_dict()["lifecycle"]["skill_state"] for r in states]
    assert skills[-1] != skills[0], skills


def test_same_decision_and_audit_chain_as_the_cli(tmp_path):
    cli_log, py_log = tmp_path / "cli.jsonl", tmp_path / "py.jsonl"
    k = cfa.Kernel(catalog=CATALOG, bundle="prod-v1", audit_log=py_log)
    for intent in (APPROVE, BLOCK, REPLAN):
        out = run_cfa("evaluate", intent, "-c", str(CATALOG), "-p", "prod-v1", "-f", "json",
                      "--audit-log", str(cli_log), "--exit-zero", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        cli = json.loads(out.stdout)
        py = k.evaluate(intent).to_dict()
        for key in ("state", "content_hash", "replan_count", "policy_bundle",
                    "policy_bundle_hash", "blocked_reason", "phases_run"):
            assert py[key] == cli[key], (intent, key)
        assert [f["code"] for f in py["faults"]] == [f["code"] for f in cli["faults"]]
        assert len(py["audit_event_hashes"]) == len(cli["audit_event_hashes"])
    assert [shape(e) for e in jsonl(py_log)] == [shape(e) for e in jsonl(cli_log)]
    # the log written from Python verifies with the CLI and from Python
    out = run_cfa("audit", "verify", "--file", str(py_log))
    assert out.returncode == 0 and "INTACT" in out.stdout, out.stdout + out.stderr
    report = cfa.verify(py_log)
    assert report.intact and report.events == len(jsonl(py_log))
    assert k.verify_audit().intact and k.audit_len() == report.events


def _without_ids(doc: dict) -> dict:
    """A kernel result without its ids, clock and event hashes."""
    doc = dict(doc)
    for key in ("intent_id", "decision_id", "audit_event_hashes", "created_at"):
        doc.pop(key)
    doc["signature"] = {k: v for k, v in doc["signature"].items() if k != "intent_id"}
    return doc


def _event_without_ids(event: dict) -> dict:
    out = {k: v for k, v in event.items()
           if k not in ("intent_id", "timestamp", "event_hash", "previous_hash")}
    out["details"] = {k: v for k, v in event["details"].items() if k != "decision_id"}
    return out


def test_repeated_and_alternating_intents_decide_as_on_a_fresh_kernel(tmp_path):
    """A kernel remembers its last resolution of an intent (docs/python.md, the governed flow):
    repeated and alternating intents decide, and are audited, as each would be on a
    kernel of its own, with their own ids."""
    log = tmp_path / "audit.jsonl"
    k = cfa.Kernel(catalog=CATALOG, bundle="prod-v1", sandbox=None, audit_log=log)
    order = [APPROVE, APPROVE, APPROVE, BLOCK, APPROVE, REPLAN, REPLAN, BLOCK, BLOCK, APPROVE]
    fresh = {}
    for intent in set(order):
        alone = tmp_path / f"alone-{len(fresh)}.jsonl"
        r = cfa.Kernel(catalog=CATALOG, bundle="prod-v1", sandbox=None,
                       audit_log=alone).evaluate(intent)
        fresh[intent] = (_without_ids(r.to_dict()), [_event_without_ids(e) for e in jsonl(alone)])
    results = [k.evaluate(intent) for intent in order]
    events = jsonl(log)
    assert len({r.intent_id for r in results}) == len(order)
    assert len({r.decision_id for r in results}) == len(order)
    for intent, r in zip(order, results):
        doc = r.to_dict()
        assert doc["signature"]["intent_id"] == r.intent_id
        assert _without_ids(doc) == fresh[intent][0], intent
        mine = [e for e in events if e["intent_id"] == r.intent_id]
        assert [e["event_hash"] for e in mine] == r.audit_event_hashes
        assert [_event_without_ids(e) for e in mine] == fresh[intent][1], intent
    assert cfa.verify(log).intact


def test_threads_share_one_kernel(tmp_path):
    log = tmp_path / "audit.jsonl"
    k = cfa.Kernel(catalog=CATALOG, audit_log=log, sandbox=None)
    results: list[cfa.KernelResult] = []
    lock = threading.Lock()

    def work(intent: str) -> None:
        for _ in range(10):
            r = k.evaluate(intent)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work, args=(APPROVE if i % 2 else BLOCK,))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80
    assert sum(r.executable for r in results) == 40
    report = cfa.verify(log)
    assert report.intact
    assert report.events == sum(len(r.audit_event_hashes) for r in results)
    out = run_cfa("audit", "verify", "--file", str(log))
    assert out.returncode == 0, out.stdout + out.stderr


def test_kernel_options_and_errors(tmp_path):
    assert cfa.Kernel(catalog=CATALOG, sandbox=None).evaluate(APPROVE).executable
    assert cfa.Kernel(catalog=CATALOG, normalizer="rule_based_pt").evaluate(APPROVE).executable
    no_catalog = cfa.Kernel().evaluate(APPROVE)
    assert no_catalog.blocked
    with pytest.raises(cfa.CfaError, match="unknown sandbox"):
        cfa.Kernel(sandbox="nope")
    with pytest.raises(cfa.CfaError, match="unknown normalizer"):
        cfa.Kernel(normalizer="nope")
    with pytest.raises(cfa.CfaError, match="needs a sandbox"):
        cfa.Kernel(sandbox=None, db=tmp_path / "x.db")
    with pytest.raises(cfa.BundleError):
        cfa.Kernel(bundle="nope-v9")
    govern_only = cfa.Kernel(catalog=CATALOG, generate=False).evaluate(APPROVE)
    assert govern_only.executable and "generate" not in govern_only.to_dict()["phases_run"]
    assert "generate" in cfa.Kernel(catalog=CATALOG).evaluate(APPROVE).to_dict()["phases_run"]
    k = cfa.Kernel(catalog=CATALOG, bundle="finops-strict-v1")
    assert k.policy_source == "finops-strict-v1" and k.audit_log is None
