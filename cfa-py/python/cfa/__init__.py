"""CFA, the governance kernel for AI agents and data pipelines, on the Rust kernel.

Install with one ``pip install ./cfa-py`` (PyPI name ``cfa-rs``; import name ``cfa``).

- Decisions: :func:`check` decides a signature (dict or JSON text) against a bundle
  (built-in name, ``"default"`` or a path) and a catalog (dict or path), as
  ``cfa policy check`` does; :class:`Checker` holds a bundle and a catalog and
  :class:`Signature` a parsed signature, to decide many times without reading either
  again.
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

import os as _os

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
    Checker,
    Decision,
    Fault,
    Kernel,
    KernelResult,
    Signature,
    VerifyReport,
    __version__,
    check,
    checkpoint,
    generate_key,
    prove,
    verify,
    verify_proof,
)
from ._native import reseed as _reseed
from .guard import Guard, guard, guard_tool

# Decision and intent ids come from a per-process seed and a counter: a forked child
# draws its own seed, so its ids never repeat its parent's.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_reseed)

__all__ = [
    "AuditError",
    "BUILTIN_BUNDLES",
    "BundleError",
    "CfaError",
    "Checker",
    "Decision",
    "Fault",
    "Guard",
    "GovernanceViolation",
    "GovernanceWarning",
    "Issue",
    "Kernel",
    "KernelResult",
    "Signature",
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
