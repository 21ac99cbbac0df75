"""check(dict) reads the dict in place into the typed signature. Property-style: the
same inputs through the dict path and the JSON-text path give the same decision and
hashes, or the same error (type, kind, message, issues with their paths); values JSON
has not raise as they always did, wherever they sit."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest

import cfa
from conftest import EXAMPLES

SIGS = EXAMPLES / "signatures"
BASES = [json.loads((SIGS / f"{n}.json").read_text())
         for n in ("ok", "raw_pii", "replan_multi", "no_merge", "zero_cost")]

# The leaves the Rust property test uses, and a few more Python ones with a JSON form.
LEAVES = [None, True, False, 0, -1, 1, -0.0, 2.5, 1e300, "", " \x1c", "x", "silver",
          "public", "high_volume", "sensitive", [], ["a"], [""], [1], {}, {"public": None},
          {"a": 1}, [True, False, True, [], None, {}], "é\u2028", 2**63, 2**64 - 1,
          -(2**63)]


def outcome(signature, **kw):
    """What `check` gives: the decision document without its fresh id, or the error."""
    try:
        d = cfa.check(signature, **kw)
    except cfa.ValidationError as e:
        return ("error", type(e).__name__, e.kind, str(e), list(e.issues))
    doc = d.to_dict()
    del doc["decision_id"]
    return ("decision", doc, [f.to_dict() for f in d.faults], d.reasoning)


def pointers(value, base=()):
    """Every path into `value` (keys and indices)."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(base + (k,))
            out.extend(pointers(v, base + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append(base + (i,))
            out.extend(pointers(v, base + (i,)))
    return out


def mutate(rng: random.Random, value):
    value = copy.deepcopy(value)
    for _ in range(rng.randrange(0, 4)):
        ps = pointers(value)
        if not ps:
            break
        p = rng.choice(ps)
        parent = value
        for step in p[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[p[-1]]
        elif isinstance(parent, dict) and rng.random() < 0.2:
            parent["unknown_" + str(rng.randrange(3))] = copy.deepcopy(rng.choice(LEAVES))
        else:
            parent[p[-1]] = copy.deepcopy(rng.choice(LEAVES))
    wrap = rng.randrange(4)
    if wrap == 1:
        return {"signature": value}
    if wrap == 2:
        return {"state_signature": value}
    return value


def test_dict_and_json_text_agree_on_every_mutation():
    rng = random.Random(20261202)
    seen = {"decision": 0, "error": 0}
    for case in range(1500):
        data = mutate(rng, rng.choice(BASES))
        text = json.dumps(data)
        via_dict, via_text = outcome(data), outcome(text)
        assert via_dict == via_text, (case, text)
        assert outcome(json.loads(text)) == via_dict
        seen[via_dict[0]] += 1
    # both sides of the property are exercised
    assert seen["decision"] > 200 and seen["error"] > 200, seen


def test_signature_objects_agree_with_text():
    rng = random.Random(7)
    for _ in range(300):
        data = mutate(rng, rng.choice(BASES))
        text = json.dumps(data)
        try:
            a = cfa.Signature(data)
        except cfa.ValidationError as e:
            with pytest.raises(cfa.ValidationError) as t:
                cfa.Signature(text)
            assert (str(t.value), t.value.issues) == (str(e), e.issues)
            continue
        b = cfa.Signature(text)
        assert (a.signature_hash, a.content_hash, a.to_dict()) == (
            b.signature_hash, b.content_hash, b.to_dict())


def test_tuples_and_subclasses_read_as_their_json():
    class Dict(dict):
        pass

    class Str(str):
        pass

    class Float(float):
        pass

    base = copy.deepcopy(BASES[0])
    odd = Dict(copy.deepcopy(base))
    odd["datasets"] = tuple(Dict(d) for d in base["datasets"])
    odd["datasets"][0]["merge_keys"] = (Str("nfe_id"),)
    odd["datasets"][1]["size_gb"] = Float(0.5)
    odd["constraints"]["custom"] = {"t": (1, (2.5, None))}
    plain = copy.deepcopy(base)
    plain["constraints"]["custom"] = {"t": [1, [2.5, None]]}
    assert outcome(odd) == outcome(json.dumps(plain))


@pytest.mark.parametrize("where", ["custom", "unknown", "dataset"])
def test_values_json_has_not_raise_wherever_they_are(where):
    """A value `to_value` refuses (object, set, bytes, NaN, a 65-bit int, a non-str key,
    a lone surrogate) raises TypeError (or the UnicodeEncodeError of the str) even in a
    key the reader ignores; no decision is made."""
    bad_values = [object(), {1, 2}, b"x", math.nan, math.inf, 2**64, -(2**63) - 1,
                  {1: "x"}, "\ud800"]
    for bad in bad_values:
        data = copy.deepcopy(BASES[0])
        if where == "custom":
            data["constraints"]["custom"] = {"k": [bad]}
        elif where == "unknown":
            data["extra"] = {"deep": bad}
        else:
            data["datasets"][0]["extra"] = bad
        with pytest.raises((TypeError, UnicodeEncodeError)):
            cfa.check(data)
        with pytest.raises((TypeError, UnicodeEncodeError)):
            cfa.Signature(data)


def test_nesting_limit_holds_inside_ignored_keys():
    def nested(n):
        v = None
        for _ in range(n):
            v = [v]
        return v

    ok = copy.deepcopy(BASES[0])
    ok["extra"] = nested(120)  # within 128 levels of the top
    assert cfa.check(ok).action == cfa.check(BASES[0]).action
    deep = copy.deepcopy(BASES[0])
    deep["extra"] = nested(200)
    with pytest.raises(TypeError, match="nested deeper"):
        cfa.check(deep)


def test_a_dict_is_read_when_checked_not_remembered():
    """No cache keyed by identity: a dict changed between calls decides anew."""
    data = copy.deepcopy(BASES[0])
    first = cfa.check(data)
    data["constraints"]["no_pii_raw"] = False
    second = cfa.check(data)
    assert first.action == "approve" and second.action == "block"
    assert first.signature_hash != second.signature_hash


def test_nested_dict_subclasses_read_as_their_json():
    """`constraints`, `execution_context` and each dataset as `dict` subclasses (the
    walk's nested dicts take the subclass branch) decide as the same JSON text."""
    class Dict(dict):
        pass

    base = copy.deepcopy(BASES[0])
    odd = copy.deepcopy(base)
    odd["constraints"] = Dict(odd["constraints"])
    odd["execution_context"] = Dict(odd["execution_context"])
    odd["datasets"] = [Dict(d) for d in odd["datasets"]]
    assert outcome(odd) == outcome(json.dumps(base))
    odd["constraints"]["no_pii_raw"] = False
    base["constraints"]["no_pii_raw"] = False
    assert outcome(odd) == outcome(json.dumps(base))


def test_hashes_read_after_the_dict_changed_are_the_checked_signatures():
    """The hashes are computed when first read: a dict changed (or emptied) between the
    check and that read still gives the hashes and document of what was checked."""
    for base in BASES:
        data = copy.deepcopy(base)
        want = cfa.check(json.dumps(base))
        got = cfa.check(data)
        data["constraints"]["no_pii_raw"] = not data["constraints"].get("no_pii_raw", True)
        data["datasets"][0]["name"] = "changed"
        data.clear()
        assert (got.signature_hash, got.content_hash, got.intent_id) == (
            want.signature_hash, want.content_hash, want.intent_id)
        doc, want_doc = got.to_dict(), want.to_dict()
        del doc["decision_id"], want_doc["decision_id"]
        assert doc == want_doc
