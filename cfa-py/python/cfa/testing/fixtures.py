"""The pytest plugin of ``cfa`` (registered through the ``pytest11`` entry point, as
the reference's ``cfa.testing.fixtures``): the ``cfa_catalog``, ``cfa_kernel``,
``cfa_strict_kernel`` and ``cfa_noexec_kernel`` fixtures and the reference's markers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .._native import Kernel
from . import DEFAULT_CATALOG

_MARKERS = (
    "cfa_governance: a governance test",
    "cfa_policy(bundle): the policy bundle a test uses",
    "cfa_audit: an audit test",
    "cfa_backend(name): the code-generation backend a test uses",
    "cfa_layer(layer): the target layer a test is about",
)


def pytest_configure(config: Any) -> None:
    for marker in _MARKERS:
        config.addinivalue_line("markers", marker)


def _marker_arg(request: Any, name: str) -> Any:
    marker = request.node.get_closest_marker(name)
    return marker.args[0] if marker is not None and marker.args else None


@pytest.fixture
def cfa_catalog() -> dict[str, Any]:
    """The reference's DEFAULT_CATALOG (nfe, clientes, produtos; no merge keys), a fresh
    copy per test."""
    return copy.deepcopy(DEFAULT_CATALOG)


def _kernel(request: Any, catalog: dict[str, Any], **kw: Any) -> Kernel:
    bundle = _marker_arg(request, "cfa_policy")
    backend = _marker_arg(request, "cfa_backend")
    return Kernel(catalog=catalog, bundle=bundle, backend=backend, **kw)


@pytest.fixture
def cfa_kernel(request: Any, cfa_catalog: dict[str, Any]) -> Kernel:
    """A kernel over ``cfa_catalog`` with the mock sandbox and an in-memory audit log
    (bundle from ``@pytest.mark.cfa_policy(…)``, backend from ``cfa_backend``)."""
    return _kernel(request, cfa_catalog)


@pytest.fixture
def cfa_strict_kernel(request: Any, cfa_catalog: dict[str, Any]) -> Kernel:
    """``cfa_kernel`` with warnings blocking."""
    return _kernel(request, cfa_catalog, warnings_blocking=True)


@pytest.fixture
def cfa_noexec_kernel(request: Any, cfa_catalog: dict[str, Any]) -> Kernel:
    """``cfa_kernel`` without the execute phase."""
    return _kernel(request, cfa_catalog, sandbox=None)
