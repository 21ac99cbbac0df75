"""What check() reuses between calls: Checker and Signature decide as check() does,
bundle and catalog files edited between calls are always seen (the caches never serve a
stale decision), and decision ids stay unique across calls, threads and fork."""

from __future__ import annotations

import json
import os
import threading
import uuid

import pytest

import cfa
from conftest import CATALOG, CONFORMANCE, EXAMPLES

SIGS = EXAMPLES / "signatures"
NAMES = ["ok", "raw_pii", "replan_multi", "no_merge", "zero_cost"]


def sig(name: str) -> dict:
    return json.loads((SIGS / f"{name}.json").read_text())


def same(a: cfa.Decision, b: cfa.Decision) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.pop("decision_id") != db.pop("decision_id")
    assert da == db
    assert a.fault_codes == b.fault_codes and a.patches == b.patches


@pytest.mark.parametrize("bundle", [None, "prod-v1", "finops-strict-v1"])
def test_checker_and_signature_decide_as_check(bundle):
    checker = cfa.Checker(bundle=bundle, catalog=CATALOG)
    assert checker.policy_bundle_hash == cfa.check(sig("ok"), bundle=bundle).policy_bundle_hash
    assert checker.catalog_hash == cfa.check(sig("ok"), catalog=CATALOG).catalog_hash
    for name in NAMES:
        want = cfa.check(sig(name), bundle=bundle, catalog=CATALOG)
        parsed = cfa.Signature(sig(name))
        same(checker.check(sig(name)), want)
        same(checker.check(parsed), want)
        same(cfa.check(parsed, bundle=bundle, catalog=CATALOG), want)
        assert parsed.signature_hash == want.signature_hash
        assert parsed.content_hash == want.content_hash
        assert parsed.intent_id == want.intent_id
        assert cfa.Signature(parsed.to_dict()).content_hash == want.content_hash
        capped = checker.check(parsed, replan_count=3)
        same(capped, cfa.check(sig(name), bundle=bundle, catalog=CATALOG, replan_count=3))


def test_signature_validates_as_check():
    bad = sig("ok")
    bad["datasets"][0]["size_gb"] = "big"
    with pytest.raises(cfa.ValidationError) as a:
        cfa.Signature(bad)
    with pytest.raises(cfa.ValidationError) as b:
        cfa.check(bad)
    assert a.value.paths == b.value.paths and a.value.kind == "invalid_signature"
    text = (SIGS / "ok.json").read_text()
    assert cfa.Signature(text).signature_hash == cfa.Signature(text.encode()).signature_hash


def test_a_catalog_file_edited_between_calls_is_seen(tmp_path):
    path = tmp_path / "catalog.json"
    data = json.loads(CATALOG.read_text())
    path.write_text(json.dumps(data))
    first = cfa.check(sig("ok"), catalog=path)
    checker_before = cfa.Checker(catalog=path)
    # same size, same mtime second: only the bytes differ
    text = path.read_text()
    edited = text.replace('"high_volume"', '"sensitive__"', 1)
    assert len(edited) == len(text) and edited != text
    stat = path.stat()
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(cfa.ValidationError):
        cfa.check(sig("ok"), catalog=path)
    data["datasets"]["nfe"]["pii_columns"] = ["cpf"]
    path.write_text(json.dumps(data))
    second = cfa.check(sig("ok"), catalog=path)
    assert second.catalog_hash != first.catalog_hash
    assert second.catalog_hash == cfa.check(sig("ok"), catalog=data).catalog_hash
    # a Checker read the file once, when it was built
    assert checker_before.catalog_hash == first.catalog_hash
    path.write_text(json.dumps(json.loads(CATALOG.read_text())))
    assert cfa.check(sig("ok"), catalog=path).catalog_hash == first.catalog_hash


def test_a_bundle_file_edited_between_calls_is_seen(tmp_path):
    source = json.loads((CONFORMANCE / "policy" / "bundles" / "finops-lite.json").read_text())
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(source))
    first = cfa.check(sig("ok"), bundle=path)
    version = first.policy_bundle
    source["version"] = version[:-1] + ("8" if version[-1] != "8" else "7")
    path.write_text(json.dumps(source))
    second = cfa.check(sig("ok"), bundle=path)
    assert second.policy_bundle == source["version"] != version
    assert second.policy_bundle_hash != first.policy_bundle_hash
    path.write_text("policy_bundle: [")
    with pytest.raises(cfa.BundleError):
        cfa.check(sig("ok"), bundle=path)


def test_decision_ids_are_unique_uuid4_across_100k_calls_and_threads():
    parsed = cfa.Signature(sig("ok"))
    checker = cfa.Checker()
    seen: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        for _ in range(25_000):
            out.append(checker.check(parsed).decision_id)

    threads = [threading.Thread(target=work, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for out in seen for i in out]
    assert len(ids) == 100_000 and len(set(ids)) == 100_000
    for i in ids[:: 997]:
        u = uuid.UUID(i)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == i
    k = cfa.Kernel(catalog=CATALOG, sandbox=None, generate=False)
    runs = [k.evaluate("ingest nfe raw into bronze") for _ in range(50)]
    kernel_ids = {r.decision_id for r in runs} | {r.intent_id for r in runs}
    assert len(kernel_ids) == 100 and not kernel_ids & set(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_does_not_repeat_its_parents_ids():
    parsed = cfa.Signature(sig("ok"))
    cfa.check(parsed)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            ids = [cfa.check(parsed).decision_id for _ in range(100)]
            os.write(write, json.dumps(ids).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = {cfa.check(parsed).decision_id for _ in range(100)}
    with os.fdopen(read) as f:
        child = set(json.loads(f.read()))
    os.waitpid(pid, 0)
    assert len(child) == 100 and not child & parent
