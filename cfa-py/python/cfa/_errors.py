"""The exceptions of the `cfa` package.

Every error the package raises is a :class:`CfaError`. Input that does not validate is a
:class:`ValidationError` (also a ``ValueError``) whose ``issues`` carry the reference's
issue paths (``datasets[0].name``, ``target_layer``, …); a policy bundle that cannot be
loaded is a :class:`BundleError`; an audit log that cannot be read, or a proof or
checkpoint that does not verify, is an :class:`AuditError`. A guard that refuses a call
raises :class:`GovernanceViolation` (also a ``PermissionError``, as the reference's
``cfa_guard`` raised), with the faults and the fixes as data.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence


class Issue(NamedTuple):
    """One validation issue: the JSON path of the offending value and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class CfaError(Exception):
    """Base class of every error the package raises."""


class ValidationError(CfaError, ValueError):
    """A signature (``kind == "invalid_signature"``), JSON text (``"invalid_json"``) or
    catalog (``"invalid_catalog"``) that does not validate. ``issues`` lists every
    issue in the reference's order; ``paths`` is just their paths."""

    def __init__(self, message: str, kind: str = "invalid_signature",
                 issues: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.issues: list[Issue] = [Issue(p, m) for p, m in issues]

    @property
    def paths(self) -> list[str]:
        """The issue paths, in order."""
        return [i.path for i in self.issues]


class BundleError(CfaError, ValueError):
    """A policy bundle that is unknown, unreadable or invalid (``issues``: its
    validation issues, when it was parsed)."""

    def __init__(self, message: str, issues: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues: list[Issue] = [Issue(p, m) for p, m in issues]


class AuditError(CfaError):
    """An audit log that cannot be read, or a checkpoint, key or proof that does not
    verify."""


class GovernanceViolation(CfaError, PermissionError):
    """A guarded call the kernel did not approve.

    ``intent`` is the intent that was governed, ``reason`` the kernel's blocked reason,
    ``state`` its final state, ``faults`` the :class:`cfa.Fault` objects, ``fixes`` one
    ``{"code", "message", "remediation"}`` dict per fault (what to change), and
    ``result`` the whole :class:`cfa.KernelResult`.
    """

    def __init__(self, intent: str, result: Any) -> None:
        self.intent = intent
        self.result = result
        self.reason: str = result.blocked_reason
        self.state: str = result.state
        self.faults = list(result.faults)
        self.fixes: list[dict[str, Any]] = [
            {"code": f.code, "message": f.message, "remediation": list(f.remediation)}
            for f in self.faults
        ]
        super().__init__(f"CFA blocked intent '{intent[:80]}': {self.reason}")

    @property
    def fault_codes(self) -> list[str]:
        """The fault codes, in order."""
        return [f.code for f in self.faults]


class GovernanceWarning(UserWarning):
    """Issued by a guard in ``mode="warn"`` when it lets a refused call run."""
