"""The type stubs describe the native module: every public name and method is stubbed,
and the package ships py.typed."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import cfa
import cfa._native as native

STUB = Path(cfa.__file__).with_name("_native.pyi")


def stubbed() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = set()
    return out


def test_every_native_name_and_member_is_stubbed():
    stubs = stubbed()
    assert Path(cfa.__file__).with_name("py.typed").is_file()
    for name in dir(native):
        if name.startswith("_") and name != "__version__":
            continue
        obj = getattr(native, name)
        if inspect.ismodule(obj):
            continue
        assert name in stubs, f"{name} is not in _native.pyi"
        if inspect.isclass(obj):
            members = {m for m in vars(obj) if not m.startswith("_")}
            missing = members - stubs[name]
            assert not missing, f"{name}: {sorted(missing)} not stubbed"


def test_public_api_is_documented():
    for name in cfa.__all__:
        obj = getattr(cfa, name)
        if callable(obj) and not isinstance(obj, type(Exception)):
            assert inspect.getdoc(obj), f"{name} has no docstring"
