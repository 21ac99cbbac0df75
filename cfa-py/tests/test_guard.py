"""Guards: decorator forms (plain and async), the context manager, modes, the
violation's data, and the tool wrapper for agent frameworks."""

from __future__ import annotations

import asyncio
import warnings

import pytest

import cfa
from cfa.guard import tool_intent
from conftest import APPROVE, BLOCK, CATALOG


def test_decorator_runs_approved_and_blocks_the_rest():
    calls = []

    @cfa.guard(APPROVE, catalog=CATALOG)
    def ok(x):
        calls.append(x)
        return x * 2

    @cfa.guard(BLOCK, catalog=CATALOG)
    def bad():
        calls.append("bad")

    # the third and fourth calls are approved too (the reference's bug B1)
    assert [ok(i) for i in range(4)] == [0, 2, 4, 6]
    with pytest.raises(cfa.GovernanceViolation) as e:
        bad()
    assert calls == [0, 1, 2, 3]
    v = e.value
    assert isinstance(v, PermissionError)
    assert str(v).startswith(f"CFA blocked intent '{BLOCK}': ")
    assert v.intent == BLOCK and v.state == "blocked" and v.reason
    assert "GOVERNANCE_PII_WITHOUT_POLICY" in v.fault_codes
    assert all(isinstance(f, cfa.Fault) for f in v.faults)
    fix = v.fixes[v.fault_codes.index("GOVERNANCE_PII_WITHOUT_POLICY")]
    assert fix["code"] == "GOVERNANCE_PII_WITHOUT_POLICY" and fix["remediation"]
    assert v.result.state == "blocked"
    assert ok.__name__ == "ok" and ok.cfa_intent == APPROVE


def test_bare_form_uses_the_docstring_then_the_name():
    @cfa.guard
    def undocumented():
        return 1

    assert undocumented.cfa_intent == "undocumented"
    with pytest.raises(cfa.GovernanceViolation):
        undocumented()  # no catalog: ungrounded, blocked

    @cfa.guard(catalog=CATALOG)
    def documented():
        """Join nfe with clientes daily, anonymize pii, into silver"""
        return "ran"

    assert documented.cfa_intent == APPROVE
    assert documented() == "ran"


def test_async_function_and_async_tool():
    @cfa.guard(APPROVE, catalog=CATALOG)
    async def fetch(n):
        await asyncio.sleep(0)
        return n + 1

    @cfa.guard(BLOCK, catalog=CATALOG)
    async def leak():
        return "leaked"

    assert asyncio.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(1)) == 2
    with pytest.raises(cfa.GovernanceViolation):
        asyncio.run(leak())

    async def load_table(source: str, target: str, anonymize: bool = False):
        """Loads a table."""
        await asyncio.sleep(0)
        return f"{source}->{target}"

    tool = cfa.guard_tool(load_table, catalog=CATALOG)
    assert asyncio.iscoroutinefunction(tool)
    assert tool.__doc__ == "Loads a table."
    assert asyncio.run(tool("nfe raw", target="bronze")) == "nfe raw->bronze"
    with pytest.raises(cfa.GovernanceViolation) as e:
        asyncio.run(tool("clientes raw", "silver"))
    assert e.value.intent == "load table source clientes raw target silver"


def test_sync_tool_and_custom_intent():
    seen = []

    def join(left, right, layer="silver", **kwargs):
        return (left, right, layer)

    tool = cfa.guard_tool(join, name="join_datasets", catalog=CATALOG,
                          intent=lambda name, args: seen.append((name, dict(args))) or APPROVE)
    assert tool("nfe", "clientes", extra=1) == ("nfe", "clientes", "silver")
    assert seen == [("join_datasets", {"left": "nfe", "right": "clientes", "extra": 1})]
    assert tool_intent("load_table", {"source": "nfe", "cols": ["a", "b"]}) == \
        "load table source nfe cols a b"


def test_context_manager_and_modes():
    with cfa.guard(APPROVE, catalog=CATALOG) as result:
        assert result.executable
    with pytest.raises(cfa.GovernanceViolation):
        with cfa.guard(BLOCK, catalog=CATALOG):
            pytest.fail("the block must not run")

    async def scoped():
        async with cfa.guard(APPROVE, catalog=CATALOG) as r:
            return r.state

    assert asyncio.run(scoped()) == "approved"

    ran = []
    warn = cfa.guard(BLOCK, catalog=CATALOG, mode="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn(lambda: ran.append("warn"))()
    assert ran == ["warn"]
    assert any(issubclass(w.category, cfa.GovernanceWarning) for w in caught)

    audit = cfa.guard(BLOCK, catalog=CATALOG, mode="audit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit(lambda: ran.append("audit"))()
    assert ran == ["warn", "audit"]
    with pytest.raises(ValueError):
        cfa.guard(APPROVE, mode="nope")


def test_one_guard_many_intents_and_a_shared_kernel(tmp_path):
    log = tmp_path / "audit.jsonl"
    g = cfa.Guard(catalog=CATALOG, audit_log=log)

    @g(APPROVE)
    def a():
        return "a"

    @g.guard(BLOCK)
    def b():
        return "b"

    assert a() == "a"
    with pytest.raises(cfa.GovernanceViolation):
        b()
    assert g.check(APPROVE).executable
    shared = cfa.Guard(kernel=g.kernel)
    assert shared.kernel is g.kernel
    assert cfa.verify(log).intact
    with pytest.raises(TypeError):
        g.check()
