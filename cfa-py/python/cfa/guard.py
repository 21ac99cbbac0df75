"""Guards: run a function (plain or ``async``) only when the kernel approves the intent
behind it.

The reference's ``cfa_guard`` and ``RuntimeGate.guard`` are covered by one
:func:`guard`:

- ``@guard("Load clientes into silver, anonymize pii", catalog=CATALOG)`` — the intent
  is given;
- ``@guard`` (bare) or ``@guard(catalog=CATALOG)`` — the function's docstring is the
  intent (its name when it has none), as in the reference;
- ``with guard("…", catalog=CATALOG) as result:`` — a block (``async with`` too);
- :func:`guard_tool` wraps an agent-framework tool callable, the intent built from the
  tool's name and arguments.

``mode="block"`` (the default) raises :class:`~cfa.GovernanceViolation` with the
faults and the fixes as data; ``mode="warn"`` issues a :class:`~cfa.GovernanceWarning`
and runs the function; ``mode="audit"`` runs it silently (the decision is still in the
audit log when one is configured). As in the reference, warnings block only in
``block`` mode. Unlike the reference (bug B1), an approved intent stays approved on
every call: lifecycle state never changes a decision.

The kernel is built once per guard (lazily, on first use) and reused; it runs without
a sandbox: the guarded function is the work. Without ``audit_log=`` its chain is kept
in memory, bounded: the chain head and the last ``audit_keep`` events (4096 by default,
about 1 KB each; ``audit_keep=None`` keeps every event), so a guard on a hot path does
not grow without end; :func:`cfa.testing.assert_audit_intact` verifies what is kept.
"""

from __future__ import annotations

import functools
import inspect
import threading
import warnings
from typing import Any, Callable, Mapping, TypeVar, overload

from ._errors import GovernanceViolation, GovernanceWarning
from ._native import Kernel, KernelResult

F = TypeVar("F", bound=Callable[..., Any])

_MODES = ("block", "warn", "audit")


def _intent_of(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn)
    if doc and doc.strip():
        return doc.strip()
    return getattr(fn, "__name__", "function")


class Guard:
    """A reusable guard: one kernel, one mode, optionally one intent.

    ``Guard(intent=None, *, bundle=None, catalog=None, mode="block", kernel=None,
    audit_log=None, **kernel_kwargs)``; ``kernel_kwargs`` go to :class:`cfa.Kernel`
    (``backend``, ``lenient``, ``normalizer``, …). Pass ``kernel=`` to share a kernel
    between guards.
    """

    def __init__(
        self,
        intent: str | None = None,
        *,
        bundle: Any = None,
        catalog: Any = None,
        mode: str = "block",
        kernel: Kernel | None = None,
        audit_log: Any = None,
        **kernel_kwargs: Any,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
        self.intent = intent
        self.mode = mode
        self._bundle = bundle
        self._catalog = catalog
        self._audit_log = audit_log
        self._kernel_kwargs = kernel_kwargs
        self._kernel = kernel
        self._lock = threading.Lock()

    @property
    def kernel(self) -> Kernel:
        """The guard's kernel, built on first use."""
        k = self._kernel
        if k is None:
            with self._lock:
                if self._kernel is None:
                    kw = dict(self._kernel_kwargs)
                    kw.setdefault("sandbox", None)
                    kw.setdefault("warnings_blocking", self.mode == "block")
                    self._kernel = Kernel(
                        catalog=self._catalog,
                        bundle=self._bundle,
                        audit_log=self._audit_log,
                        **kw,
                    )
                k = self._kernel
        return k

    def check(self, intent: str | None = None) -> KernelResult:
        """Decides ``intent`` (default: the guard's) and applies the mode: raises
        :class:`GovernanceViolation` in block mode when it may not run, warns in warn
        mode; returns the kernel result."""
        text = intent if intent is not None else self.intent
        if text is None:
            raise TypeError("this guard has no intent: give one to guard(…) or check(…)")
        result = self.kernel.evaluate(text)
        if not result.executable:
            self._refuse(text, result, 4)
        return result

    def _refuse(self, text: str, result: KernelResult, stacklevel: int) -> None:
        """Applies the mode to a result that may not run: raises in block mode, warns
        in warn mode (``stacklevel`` counts this frame: the warning names the line that
        called the guarded function or :meth:`check`)."""
        if self.mode == "block":
            raise GovernanceViolation(text, result)
        if self.mode == "warn":
            warnings.warn(
                f"CFA would block intent '{text[:80]}': {result.blocked_reason}",
                GovernanceWarning,
                stacklevel=stacklevel,
            )

    def wrap(self, fn: F, intent: str | None = None) -> F:
        """``fn`` guarded by ``intent`` (default: the guard's, else ``fn``'s
        docstring, else its name); ``async`` functions stay ``async``."""
        text = intent or self.intent or _intent_of(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                self.check(text)
                return await fn(*args, **kwargs)

            async_wrapper.cfa_intent = text  # type: ignore[attr-defined]
            async_wrapper.cfa_guard = self  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # `check(text)` inlined (a guarded call's own per-call work: one frame and
            # one property read fewer); the same kernel, decision and mode
            kernel = self._kernel
            if kernel is None:
                kernel = self.kernel
            result = kernel.evaluate(text)
            if not result.executable:
                self._refuse(text, result, 3)
            return fn(*args, **kwargs)

        wrapper.cfa_intent = text  # type: ignore[attr-defined]
        wrapper.cfa_guard = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def guard(self, intent: str | None = None) -> Callable[[F], F]:
        """A decorator over this guard's kernel (the reference's ``guard.guard("…")``)."""
        return lambda fn: self.wrap(fn, intent)

    @overload
    def __call__(self, fn_or_intent: F) -> F: ...
    @overload
    def __call__(self, fn_or_intent: str) -> Callable[[F], F]: ...
    def __call__(self, fn_or_intent: Any) -> Any:
        if isinstance(fn_or_intent, str):
            return self.guard(fn_or_intent)
        if callable(fn_or_intent):
            return self.wrap(fn_or_intent)
        raise TypeError("a guard decorates a function or takes an intent string")

    def __enter__(self) -> KernelResult:
        return self.check()

    def __exit__(self, *exc: object) -> bool:
        return False

    async def __aenter__(self) -> KernelResult:
        return self.check()

    async def __aexit__(self, *exc: object) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Guard(intent={self.intent!r}, mode={self.mode!r})"


def guard(
    intent: Any = None,
    *,
    bundle: Any = None,
    catalog: Any = None,
    mode: str = "block",
    **kernel_kwargs: Any,
) -> Any:
    """A guard, as a decorator (``@guard("intent", …)``, bare ``@guard``, or
    ``@guard(catalog=…)`` using the docstring) or a context manager
    (``with guard("intent", …) as result``). See :class:`Guard`."""
    if callable(intent) and not isinstance(intent, str):
        return Guard(bundle=bundle, catalog=catalog, mode=mode, **kernel_kwargs).wrap(intent)
    return Guard(intent, bundle=bundle, catalog=catalog, mode=mode, **kernel_kwargs)


def tool_intent(name: str, arguments: Mapping[str, Any]) -> str:
    """The default intent of a tool call: the tool's name with ``_`` as spaces, then
    each argument as ``name value`` (e.g. ``load table source clientes target
    silver``)."""
    words = [name.replace("_", " ").replace("-", " ").strip()]
    for key, value in arguments.items():
        if isinstance(value, (list, tuple, set)):
            value = " ".join(str(v) for v in value)
        words.append(f"{key.replace('_', ' ')} {value}")
    return " ".join(w for w in words if w)


def _arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        out = {f"arg{i}": a for i, a in enumerate(args)}
        out.update(kwargs)
        return out
    out = {}
    for key, value in bound.arguments.items():
        if isinstance(value, dict) and key == "kwargs":
            out.update(value)
        else:
            out[key] = value
    return out


def guard_tool(
    tool: F,
    *,
    name: str | None = None,
    intent: Callable[[str, Mapping[str, Any]], str] | None = None,
    bundle: Any = None,
    catalog: Any = None,
    mode: str = "block",
    kernel: Kernel | None = None,
    **kernel_kwargs: Any,
) -> F:
    """Wraps a tool callable (plain or ``async``) of an agent framework (LangGraph,
    OpenAI agents, …) so that each call is governed first: the intent is
    ``intent(name, arguments)`` (default :func:`tool_intent`), ``name`` defaults to
    the tool's ``name`` attribute or ``__name__``. The wrapper keeps the tool's
    signature and docstring, so the framework's schema of it is unchanged."""
    g = Guard(bundle=bundle, catalog=catalog, mode=mode, kernel=kernel, **kernel_kwargs)
    tool_name = name or getattr(tool, "name", None) or getattr(tool, "__name__", "tool")
    build = intent or tool_intent

    if inspect.iscoroutinefunction(tool):

        @functools.wraps(tool)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            g.check(build(tool_name, _arguments(tool, args, kwargs)))
            return await tool(*args, **kwargs)

        async_tool.cfa_guard = g  # type: ignore[attr-defined]
        return async_tool  # type: ignore[return-value]

    @functools.wraps(tool)
    def sync_tool(*args: Any, **kwargs: Any) -> Any:
        g.check(build(tool_name, _arguments(tool, args, kwargs)))
        return tool(*args, **kwargs)

    sync_tool.cfa_guard = g  # type: ignore[attr-defined]
    return sync_tool  # type: ignore[return-value]


__all__ = ["Guard", "guard", "guard_tool", "tool_intent"]
