"""CFA, the governance kernel for AI agents and data pipelines, on the Rust kernel.

Install with one ``pip install ./cfa-py`` (PyPI name ``cfa-rs``; import name ``cfa``).

- Decisions: :func:`check` decides a signature (dict or JSON text) against a bundle
  (built-in name, ``"default"`` or a path) and a catalog (dict or path), as
  ``cfa policy check`` does.
- The governed flow: :class:`Kernel` (``evaluate(intent)``), reusable across calls and
  threads; with ``audit_log=`` it writes the same hash-chained log ``cfa evaluate
  --audit-log`` writes.
- Guards: :func:`guard` (decorator, async too, and context manager) and
  :func:`guard_tool` for agent-framework tools.
- Testing: :mod:`cfa.testing` (the reference's helper names) and a pytest plugin with
  the ``cfa_catalog`` / ``cfa_kernel`` fixtures.
- Audit: :func:`verify`, :func:`checkpoint`, :func:`prove`, :func:`verify_proof`,
  :func:`generate_key`.
"""

from __future__ import annotations

from ._errors import (
    AuditError,
    BundleError,
    CfaError,
    GovernanceViolation,
    GovernanceWarning,
    Issue,
    ValidationError,
)
from ._native import (
    BUILTIN_BUNDLES,
    Decision,
    Fault,
    Kernel,
    KernelResult,
    VerifyReport,
    __version__,
    check,
    checkpoint,
    generate_key,
    prove,
    verify,
    verify_proof,
)
from .guard import Guard, guard, guard_tool

__all__ = [
    "AuditError",
    "BUILTIN_BUNDLES",
    "BundleError",
    "CfaError",
    "Decision",
    "Fault",
    "Guard",
    "GovernanceViolation",
    "GovernanceWarning",
    "Issue",
    "Kernel",
    "KernelResult",
    "ValidationError",
    "VerifyReport",
    "__version__",
    "check",
    "checkpoint",
    "generate_key",
    "guard",
    "guard_tool",
    "prove",
    "verify",
    "verify_proof",
]
