"""check(): decisions of signatures, bundles by name and path, catalogs as dicts and
paths, validation errors with the reference's issue paths, and the conformance corpus."""

from __future__ import annotations

import json

import pytest

import cfa
from conftest import CATALOG, CONFORMANCE, EXAMPLES, jsonl, run_cfa

SIGS = EXAMPLES / "signatures"


def sig(name: str) -> dict:
    return json.loads((SIGS / f"{name}.json").read_text())


def test_approve_and_typed_result():
    d = cfa.check(sig("ok"))
    assert isinstance(d, cfa.Decision)
    assert d.action == "approve" and d.passed and bool(d)
    assert d.faults == [] and d.interventions == [] and d.patches == []
    assert d.reasoning == "All rules passed. Execution approved."
    assert len(d.signature_hash) == 64 and len(d.content_hash) == 64
    assert d.policy_bundle_hash == ""  # the default rules
    doc = d.to_dict()
    assert doc["action"] == "approve" and doc["decision"]["action"] == "approve"
    assert json.loads(d.to_json()) == doc


def test_block_carries_faults_with_severity_and_family():
    d = cfa.check(sig("raw_pii"))
    assert d.action == "block" and not d.passed
    codes = d.fault_codes
    assert "GOVERNANCE_PII_WITHOUT_POLICY" in codes
    f = d.faults[codes.index("GOVERNANCE_PII_WITHOUT_POLICY")]
    assert isinstance(f, cfa.Fault)
    assert f.severity == "critical" and f.family == "semantic_faults"
    assert f.mandatory_action == "block" and f.message and f.to_dict()["code"] == f.code


def test_replan_has_interventions_and_patches_and_the_cap_blocks():
    d = cfa.check(sig("replan_multi"))
    assert d.action == "replan"
    assert d.interventions and d.patches
    assert all({"op", "path"} <= set(p) for p in d.patches)
    capped = cfa.check(sig("replan_multi"), replan_count=3)
    assert capped.action == "block" and capped.replan_count == 3


def test_json_text_bytes_and_dict_decide_alike():
    text = (SIGS / "ok.json").read_text()
    a, b, c = cfa.check(text), cfa.check(text.encode()), cfa.check(json.loads(text))
    assert a.signature_hash == b.signature_hash == c.signature_hash
    assert a.content_hash == b.content_hash == c.content_hash
    wrapped = cfa.check({"signature": json.loads(text)})
    assert wrapped.signature_hash == a.signature_hash


def test_bundles_by_builtin_name_and_path_and_errors():
    d = cfa.check(sig("ok"), bundle="prod-v1")
    assert d.policy_bundle_hash and d.policy_bundle
    bundle = CONFORMANCE / "policy" / "bundles" / "finops-lite.json"
    by_path = cfa.check(sig("ok"), bundle=str(bundle))
    by_pathlike = cfa.check(sig("ok"), bundle=bundle)
    assert by_path.policy_bundle == "finops-lite-0.9" == by_pathlike.policy_bundle
    with pytest.raises(cfa.BundleError, match="unknown policy bundle 'nope-v9'"):
        cfa.check(sig("ok"), bundle="nope-v9")
    with pytest.raises(cfa.CfaError, match="cannot read policy bundle"):
        cfa.check(sig("ok"), bundle="./missing.yaml")


def test_invalid_bundle_file_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy_bundle:\n  version: v\n  rules: [\n")
    with pytest.raises(cfa.BundleError) as e:
        cfa.check(sig("ok"), bundle=bad)
    assert "bad.yaml:" in str(e.value)


def test_catalog_as_dict_and_path_hash_alike(catalog_dict):
    a = cfa.check(sig("ok"), catalog=catalog_dict)
    b = cfa.check(sig("ok"), catalog=CATALOG)
    assert a.catalog_hash and a.catalog_hash == b.catalog_hash
    assert cfa.check(sig("ok")).catalog_hash == ""


def test_invalid_catalog_raises_with_paths():
    with pytest.raises(cfa.ValidationError) as e:
        cfa.check(sig("ok"), catalog={"datasets": {"nfe": {"size_gb": "big"}}})
    assert e.value.kind == "invalid_catalog"
    assert any(p.startswith("datasets.nfe") for p in e.value.paths), e.value.paths


def test_invalid_json_and_wrong_types():
    with pytest.raises(cfa.ValidationError) as e:
        cfa.check("{not json")
    assert e.value.kind == "invalid_json"
    with pytest.raises(TypeError):
        cfa.check({"domain": object()})
    with pytest.raises(TypeError):
        cfa.check({1: "x"})


def test_validation_paths_match_the_reference():
    cases = [c for c in jsonl(CONFORMANCE / "validation" / "signatures.jsonl")
             if not c["require_datasets"] and isinstance(c["input"], dict)]
    assert len(cases) >= 10
    checked = 0
    for case in cases:
        if case["valid"]:
            cfa.check(case["input"])
            continue
        with pytest.raises(cfa.ValidationError) as e:
            cfa.check(case["input"])
        assert e.value.paths == case["expected_paths"], case["id"]
        assert all(isinstance(i, cfa.Issue) for i in e.value.issues)
        checked += 1
    assert checked >= 10


def test_policy_conformance_corpus():
    """Every reference policy case: same action, faults, interventions, reasoning and
    signature hash through the Python API."""
    cases = jsonl(CONFORMANCE / "policy" / "cases.jsonl")
    assert len(cases) == 1500
    bundles = CONFORMANCE / "policy" / "bundles"
    for case in cases:
        bundle = None if case["bundle"] is None else bundles / case["bundle"]
        d = cfa.check(case["signature"], bundle=bundle, replan_count=case["replan_count"])
        exp = case["expected"]
        assert d.action == exp["action"], case["id"]
        assert d.signature_hash == exp["signature_hash"], case["id"]
        assert d.reasoning == exp["reasoning"], case["id"]
        assert d.interventions == exp["interventions"], case["id"]
        got = [{"code": f.code, "severity": f.severity, "family": f.family,
                "mandatory_action": f.mandatory_action} for f in d.faults]
        assert got == exp["faults"], case["id"]


@pytest.mark.parametrize("name", ["ok", "raw_pii", "replan_multi", "no_merge", "zero_cost"])
@pytest.mark.parametrize("bundle", [None, "prod-v1", "finops-strict-v1"])
def test_same_decision_and_hashes_as_cfa_policy_check(name, bundle):
    """A port of the CLI's policy-check cases: the Python API and `cfa policy check -f
    json` agree on the decision and every hash."""
    args = ["policy", "check", "--signature", str(SIGS / f"{name}.json"), "-c", str(CATALOG), "-f", "json",
            "--exit-zero"]
    if bundle:
        args += ["-p", bundle]
    out = run_cfa(*args)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    d = cfa.check(sig(name), bundle=bundle, catalog=CATALOG)
    py = d.to_dict()
    for key in ("action", "signature_hash", "content_hash", "catalog_hash",
                "policy_bundle", "policy_bundle_hash"):
        assert py[key] == cli[key], key
    for key in ("reasoning", "interventions", "patches", "replan_count"):
        assert py["decision"][key] == cli[key], key
    assert [f.code for f in d.faults] == [f["code"] for f in cli["faults"]]
