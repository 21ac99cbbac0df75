"""A kernel (and so a guard) without `audit_log=` keeps a bounded in-memory chain: the
chain head and the last `audit_keep` events; `verify_audit` and `assert_audit_intact`
really verify what is kept, linked to the head's record of what was let go."""

from __future__ import annotations

import pytest

import cfa
from cfa.testing import assert_audit_intact
from conftest import APPROVE, BLOCK, CATALOG


def test_the_in_memory_log_keeps_the_last_events_and_verifies_them():
    k = cfa.Kernel(catalog=CATALOG, sandbox=None, audit_keep=10)
    whole = cfa.Kernel(catalog=CATALOG, sandbox=None, audit_keep=None)
    per_run = []
    for intent in [APPROVE, BLOCK, APPROVE, APPROVE]:
        per_run.append(len(k.evaluate(intent).audit_event_hashes))
        whole.evaluate(intent)
    written = sum(per_run)
    assert written > 10
    assert k.audit_len() == written == whole.audit_len()
    report = k.verify_audit()
    assert report.intact, report.reason
    assert report.events == 10
    full = whole.verify_audit()
    assert full.intact and full.events == written
    assert_audit_intact(k)
    # decisions are the same however much is kept
    assert k.evaluate(APPROVE).state == whole.evaluate(APPROVE).state


def test_a_guard_without_an_audit_log_stays_bounded():
    g = cfa.Guard(APPROVE, catalog=CATALOG, audit_keep=16)
    run = g(lambda: 1)
    for _ in range(20):
        assert run() == 1
    assert g.kernel.audit_len() > 16
    assert g.kernel.verify_audit().events == 16
    assert_audit_intact(g.kernel)
    # the default bound
    assert cfa.Guard(APPROVE, catalog=CATALOG).kernel.verify_audit().events == 0


def test_audit_keep_is_at_least_one():
    with pytest.raises(cfa.CfaError, match="audit_keep"):
        cfa.Kernel(catalog=CATALOG, sandbox=None, audit_keep=0)
