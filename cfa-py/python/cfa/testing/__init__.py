"""Testing helpers with the reference's names and meanings (``cfa.testing``), so a
test suite written against the reference switches by changing its import.

``evaluate(intent, …)`` runs the governed flow on a fresh kernel and returns an
:class:`EvaluationResult`; the ``assert_*`` helpers raise ``AssertionError`` with the
decision in the message. Unlike the reference, :func:`assert_audit_intact` really
verifies the hash chain (the reference's ``audit_chain`` was hard-coded intact).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Union

from .._native import Kernel, KernelResult, VerifyReport, verify

#: The reference's ``DEFAULT_CATALOG`` (``cfa_catalog``): nfe, clientes and produtos,
#: without merge keys.
DEFAULT_CATALOG: dict[str, Any] = {
    "datasets": {
        "nfe": {
            "classification": "high_volume",
            "size_gb": 4000,
            "pii_columns": [],
            "partition_column": "processing_date",
        },
        "clientes": {
            "classification": "sensitive",
            "size_gb": 0.5,
            "pii_columns": ["cpf", "email"],
            "partition_column": "processing_date",
        },
        "produtos": {"classification": "internal", "size_gb": 0.1, "pii_columns": []},
    }
}

_PASSING = {"approved", "approved_with_warnings", "promotion_candidate"}


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns (the reference's fields): ``faults`` are the
    policy fault codes, ``all_faults`` the codes of every phase, ``events`` the audit
    event hashes, ``raw`` the :class:`cfa.KernelResult`, ``audit_chain`` the real
    verification of the run's audit log."""

    intent: str
    intent_id: str
    state: str
    signature_hash: str
    blocked_reason: str
    faults: list[str]
    all_faults: list[str]
    events: list[str]
    replan_count: int
    audit_events_count: int
    raw: KernelResult
    audit_chain: VerifyReport | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        """The state is approved, approved_with_warnings or promotion_candidate."""
        return self.state in _PASSING

    @property
    def blocked(self) -> bool:
        """The run may not proceed."""
        return not self.passed

    @property
    def has_warnings(self) -> bool:
        """Any fault is a warning."""
        return self.raw.has_warnings

    @classmethod
    def of(cls, intent: str, raw: KernelResult, chain: VerifyReport | None) -> "EvaluationResult":
        """Builds one from a kernel result (``chain``: the verified audit log)."""
        return cls(
            intent=intent,
            intent_id=raw.intent_id,
            state=raw.state,
            signature_hash=raw.signature_hash,
            blocked_reason=raw.blocked_reason,
            faults=raw.policy_fault_codes,
            all_faults=raw.fault_codes,
            events=raw.audit_event_hashes,
            replan_count=raw.replan_count,
            audit_events_count=len(raw.audit_event_hashes),
            raw=raw,
            audit_chain=chain,
        )


def evaluate(
    intent: str,
    *,
    policy: Any = "default",
    catalog: Any = None,
    backend: str = "pyspark",
    sandbox: str | None = "mock",
    audit: Union[str, "PathLike[str]", None] = None,
    warnings_blocking: bool = False,
    lenient: bool = False,
    normalizer: str = "rule_based",
    kernel: Kernel | None = None,
) -> EvaluationResult:
    """Runs the governed flow on ``intent`` with a fresh kernel (or ``kernel``):
    ``policy`` a bundle (built-in name, ``"default"`` or a path), ``catalog`` a dict or
    path (default :data:`DEFAULT_CATALOG`), ``audit`` an audit log path (default: in
    memory). The run's audit chain is verified into ``audit_chain``."""
    if kernel is None:
        kernel = Kernel(
            catalog=copy.deepcopy(DEFAULT_CATALOG) if catalog is None else catalog,
            bundle=policy,
            audit_log=audit,
            sandbox=sandbox,
            backend=backend,
            warnings_blocking=warnings_blocking,
            lenient=lenient,
            normalizer=normalizer,
        )
    raw = kernel.evaluate(intent)
    return EvaluationResult.of(intent, raw, kernel.verify_audit())


def _describe(r: EvaluationResult) -> str:
    return (
        f"intent {r.intent[:80]!r}: state={r.state}, faults={r.all_faults}, "
        f"reason={r.blocked_reason!r}"
    )


def assert_passed(result: EvaluationResult, msg: str | None = None) -> None:
    """The run passed (approved, with warnings, or promotion candidate)."""
    if not result.passed:
        raise AssertionError(msg or f"expected the intent to pass; {_describe(result)}")


def assert_blocked(
    result: EvaluationResult, reason_contains: str | None = None, msg: str | None = None
) -> None:
    """The run was blocked, and its reason contains ``reason_contains`` if given."""
    if not result.blocked:
        raise AssertionError(msg or f"expected the intent to be blocked; {_describe(result)}")
    if reason_contains is not None and reason_contains not in result.blocked_reason:
        raise AssertionError(
            msg
            or f"blocked reason does not contain {reason_contains!r}; {_describe(result)}"
        )


def assert_has_fault(result: EvaluationResult, code: str, msg: str | None = None) -> None:
    """A fault with this code fired (in any phase)."""
    if code not in result.all_faults:
        raise AssertionError(msg or f"expected fault {code}; {_describe(result)}")


def assert_no_fault(result: EvaluationResult, code: str, msg: str | None = None) -> None:
    """No fault with this code fired."""
    if code in result.all_faults:
        raise AssertionError(msg or f"unexpected fault {code}; {_describe(result)}")


def assert_no_faults(result: EvaluationResult, msg: str | None = None) -> None:
    """No policy fault fired."""
    if result.faults:
        raise AssertionError(msg or f"expected no policy faults; {_describe(result)}")


def assert_replan_attempted(result: EvaluationResult, msg: str | None = None) -> None:
    """At least one replan was applied."""
    if result.replan_count < 1:
        raise AssertionError(msg or f"expected a replan; {_describe(result)}")


def assert_audit_intact(
    target: Union[EvaluationResult, Kernel, str, "PathLike[str]", VerifyReport],
    msg: str | None = None,
) -> VerifyReport:
    """Verifies the hash chain of ``target`` — an :class:`EvaluationResult` (its
    run's log), a :class:`cfa.Kernel`, or an audit log path — and fails with the first
    bad index and reason when it is broken. Returns the report.

    A kernel without ``audit_log`` keeps its chain in memory, bounded (the chain head
    and the last ``audit_keep`` events, 4096 by default): what it kept is really
    verified — every kept event's hash and link, the first kept event's link to the
    head's record of the last event let go — and ``report.events`` counts the kept
    events. Give the kernel an ``audit_log`` to verify every event ever written."""
    if isinstance(target, EvaluationResult):
        report = target.audit_chain
        if report is None:
            raise AssertionError("this result carries no audit chain")
    elif isinstance(target, Kernel):
        report = target.verify_audit()
    elif isinstance(target, VerifyReport):
        report = target
    else:
        report = verify(target)
    if not report.intact:
        raise AssertionError(
            msg
            or f"audit chain broken at event {report.first_bad_index}: {report.reason}"
        )
    return report


__all__ = [
    "DEFAULT_CATALOG",
    "EvaluationResult",
    "assert_audit_intact",
    "assert_blocked",
    "assert_has_fault",
    "assert_no_fault",
    "assert_no_faults",
    "assert_passed",
    "assert_replan_attempted",
    "evaluate",
]
