"""cfa.testing (the reference's helpers, audit_chain really verified) and the pytest
plugin's fixtures."""

from __future__ import annotations

import json

import pytest

import cfa
from cfa.testing import (
    DEFAULT_CATALOG,
    EvaluationResult,
    assert_audit_intact,
    assert_blocked,
    assert_has_fault,
    assert_no_fault,
    assert_no_faults,
    assert_passed,
    assert_replan_attempted,
    evaluate,
)
from conftest import APPROVE, BLOCK, CATALOG, REPLAN


def test_evaluate_and_assertions():
    ok = evaluate(APPROVE, catalog=CATALOG)
    assert isinstance(ok, EvaluationResult)
    assert ok.passed and not ok.blocked and ok.state == "approved"
    assert ok.audit_events_count == len(ok.events) > 0 and ok.intent_id
    assert_passed(ok)
    assert_no_faults(ok)
    assert_no_fault(ok, "GOVERNANCE_PII_WITHOUT_POLICY")
    assert_audit_intact(ok)
    with pytest.raises(AssertionError, match="expected the intent to be blocked"):
        assert_blocked(ok)
    with pytest.raises(AssertionError, match="expected a replan"):
        assert_replan_attempted(ok)

    bad = evaluate(BLOCK, catalog=CATALOG, policy="prod-v1")
    assert_blocked(bad)
    assert_blocked(bad, reason_contains=bad.blocked_reason[:10])
    with pytest.raises(AssertionError, match="does not contain"):
        assert_blocked(bad, reason_contains="no such words")
    assert_has_fault(bad, "GOVERNANCE_PII_WITHOUT_POLICY")
    assert "GOVERNANCE_PII_WITHOUT_POLICY" in bad.faults
    with pytest.raises(AssertionError, match="unexpected fault"):
        assert_no_fault(bad, "GOVERNANCE_PII_WITHOUT_POLICY")
    with pytest.raises(AssertionError, match="expected fault NOPE"):
        assert_has_fault(bad, "NOPE")
    with pytest.raises(AssertionError):
        assert_passed(bad)
    with pytest.raises(AssertionError):
        assert_no_faults(bad)

    re = evaluate(REPLAN, catalog=CATALOG)
    assert_replan_attempted(re)
    assert_passed(re)


def test_default_catalog_is_the_reference_one():
    assert set(DEFAULT_CATALOG["datasets"]) == {"nfe", "clientes", "produtos"}
    assert all("merge_keys" not in d for d in DEFAULT_CATALOG["datasets"].values())
    r = evaluate(APPROVE)  # the default catalog
    assert r.state in {"approved", "approved_with_warnings", "blocked"}
    assert r.signature_hash


def test_assert_audit_intact_really_verifies(tmp_path):
    log = tmp_path / "audit.jsonl"
    r = evaluate(APPROVE, catalog=CATALOG, audit=log)
    assert assert_audit_intact(log).events == r.audit_events_count
    lines = log.read_text().splitlines()
    event = json.loads(lines[1])
    event["details"]["forged"] = True
    lines[1] = json.dumps(event)
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(AssertionError, match="audit chain broken at event 1"):
        assert_audit_intact(log)
    with pytest.raises(AssertionError):
        assert_audit_intact(cfa.verify(log))


def test_plugin_fixtures(cfa_catalog, cfa_kernel, cfa_strict_kernel, cfa_noexec_kernel):
    assert cfa_catalog == DEFAULT_CATALOG and cfa_catalog is not DEFAULT_CATALOG
    r = evaluate(REPLAN, kernel=cfa_kernel)
    assert r.raw.executable
    assert_audit_intact(cfa_kernel)
    assert cfa_noexec_kernel.evaluate(REPLAN).to_dict().get("execution") is None
    assert cfa_kernel.evaluate(REPLAN).to_dict().get("execution") is not None
    assert isinstance(cfa_strict_kernel, cfa.Kernel)


@pytest.mark.cfa_policy("finops-strict-v1")
def test_plugin_policy_marker(cfa_kernel):
    assert cfa_kernel.policy_source == "finops-strict-v1"
