#!/usr/bin/env python3
"""Times the Python package `cfa` (cfa-py, the Rust kernel) against the Python
reference cfa-kernel 1.1.0 in the same run: the guard overhead and `check`. A
benchmark, not a test: it prints the figures and the ratios against the goals
(guard overhead ≥ 50× lower, `check` ≥ 20× faster including the Python call), and
fails only when a fixture does not decide as its name says.

Both packages are imported as `cfa`, so each side is timed in its own interpreter:

    python3 scripts/bench-python.py --ours VENV_PY/bin/python --reference VENV_REF/bin/python
        [--budget-ms N] [--runs N] [--json]

(`cargo xtask bench --python` builds cfa-py in release into
target/cfa-cache/venv-py and sets up the reference's venv, then runs this.)

Rows (p50 and p99 of one call per sample, time.perf_counter_ns, best of --runs):

- check.approve / check.replan / check.block — ours: `cfa.check(dict)` (dict
  conversion, strict validation, the decision and its hashes, the result object);
  reference: `PolicyEngine().evaluate(sig)` on an already built StateSignature (its
  cheapest path: no parsing, no validation, no hashing).
- check.from_dict.approve — the reference as ours is timed: `validate_signature_data`,
  `StateSignature.from_dict`, `evaluate`. The issue's `check` goal ("≥ 20× faster
  `check` including the Python call") is this row; the check.* rows above are a
  harder comparison (a dict read against no read at all).
- checker.approve / checker.replan / checker.block — like for like with the reference's
  `evaluate(sig)`: ours `Checker().check(Signature(dict))`, the signature parsed and
  validated once beforehand as the reference's StateSignature is built once (the
  decision, its id and result object per call; its hashes are read on demand).
- guard.overhead — a guarded no-op function minus the bare no-op: ours `@cfa.guard(
  intent, catalog=…)`; reference `@cfa_guard(intent, catalog=…)`; both block mode, the
  approved intent of the README, the examples catalog. The reference's guard raises
  PermissionError from its third call on (its bug B1): those calls are timed too and
  counted in `raised`.
- guard.overhead.govern_only — ours with `generate=False` (formalize and govern only: no
  plan, code or static validation), against the reference's full-flow guard (it has no
  such form).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OK_SIGNATURE = json.loads((ROOT / "examples" / "signatures" / "ok.json").read_text())
CATALOG = json.loads((ROOT / "examples" / "catalog.json").read_text())
APPROVE = "Join nfe with clientes daily, anonymize pii, into silver"
ROWS = ("check.approve", "check.replan", "check.block", "check.from_dict.approve",
        "checker.approve", "checker.replan", "checker.block",
        "guard.overhead", "guard.overhead.govern_only")
GOALS = {key: 50.0 if key.startswith("guard") else 20.0 for key in ROWS}


def signature(**constraints) -> dict:
    data = json.loads(json.dumps(OK_SIGNATURE))
    data["constraints"].update(constraints)
    return data


FIXTURES = {
    "approve": (signature(), "approve"),
    "replan": (signature(partition_by=[], enforce_types=False), "replan"),
    "block": (signature(no_pii_raw=False), "block"),
}


def percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    rank = max(1, min(len(sorted_ns), int(-(-q * len(sorted_ns) // 1))))
    return float(sorted_ns[rank - 1])


def measure(fn, budget_s: float, runs: int, max_samples: int = 200_000) -> dict:
    best = None
    clock = time.perf_counter_ns
    for _ in range(max(1, runs)):
        for _ in range(20):
            fn()
        samples: list[int] = []
        end = time.perf_counter() + budget_s
        while len(samples) < max_samples and time.perf_counter() < end:
            t = clock()
            fn()
            samples.append(clock() - t)
        samples.sort()
        r = {"p50_ns": percentile(samples, 0.5), "p99_ns": percentile(samples, 0.99),
             "samples": len(samples)}
        if best is None:
            best = r
        else:
            best = {"p50_ns": min(best["p50_ns"], r["p50_ns"]),
                    "p99_ns": min(best["p99_ns"], r["p99_ns"]),
                    "samples": max(best["samples"], r["samples"])}
    return best or {}


def fail(msg: str) -> None:
    print(f"bench-python: {msg}", file=sys.stderr)
    sys.exit(1)


def noop() -> int:
    return 1


def measure_ours(budget: float, runs: int) -> dict:
    import cfa

    rows = {}
    for name, (data, want) in FIXTURES.items():
        got = cfa.check(data).action
        if got != want:
            fail(f"ours: fixture {name} decided {got}, expected {want}")
        rows[f"check.{name}"] = measure(lambda d=data: cfa.check(d), budget, runs)
        checker, parsed = cfa.Checker(), cfa.Signature(data)
        if checker.check(parsed).action != want:
            fail(f"ours: fixture {name} decided otherwise through a Checker")
        rows[f"checker.{name}"] = measure(lambda c=checker, p=parsed: c.check(p), budget, runs)
    rows["check.from_dict.approve"] = rows["check.approve"]
    guarded = cfa.guard(APPROVE, catalog=CATALOG)(noop)
    for _ in range(4):
        guarded()  # approved on every call
    bare = measure(noop, budget, runs)
    g = measure(guarded, budget, runs)
    rows["guard.overhead"] = {
        "p50_ns": max(g["p50_ns"] - bare["p50_ns"], 1.0),
        "p99_ns": max(g["p99_ns"] - bare["p99_ns"], 1.0),
        "samples": g["samples"], "raised": 0,
    }
    fast = cfa.guard(APPROVE, catalog=CATALOG, generate=False)(noop)
    fast()
    f = measure(fast, budget, runs)
    rows["guard.overhead.govern_only"] = {
        "p50_ns": max(f["p50_ns"] - bare["p50_ns"], 1.0),
        "p99_ns": max(f["p99_ns"] - bare["p99_ns"], 1.0),
        "samples": f["samples"], "raised": 0,
    }
    return {"side": f"cfa (cfa-py {cfa.__version__})", "rows": rows}


def measure_reference(budget: float, runs: int) -> dict:
    from cfa.adapters import cfa_guard
    from cfa.policy.engine import PolicyEngine
    from cfa.types import StateSignature
    from cfa.validate.signature import unwrap_signature_data, validate_signature_data

    engine = PolicyEngine()
    rows = {}
    for name, (data, want) in FIXTURES.items():
        sig = StateSignature.from_dict(data)
        got = engine.evaluate(sig).action.value
        if got != want:
            fail(f"reference: fixture {name} decided {got}, expected {want}")
        rows[f"check.{name}"] = measure(lambda s=sig: engine.evaluate(s), budget, runs)
        rows[f"checker.{name}"] = rows[f"check.{name}"]

    def from_dict():
        data = FIXTURES["approve"][0]
        if not validate_signature_data(data).valid:
            raise RuntimeError("invalid")
        return engine.evaluate(StateSignature.from_dict(unwrap_signature_data(data)))

    rows["check.from_dict.approve"] = measure(from_dict, budget, runs)
    guarded = cfa_guard(APPROVE, catalog=CATALOG)(noop)
    raised = 0

    def call():
        nonlocal raised
        try:
            guarded()
        except PermissionError:
            raised += 1

    guarded()  # calls 1 and 2 pass (B1 raises from the third on)
    bare = measure(noop, budget, runs)
    g = measure(call, budget, runs, max_samples=20_000)
    rows["guard.overhead"] = {
        "p50_ns": max(g["p50_ns"] - bare["p50_ns"], 1.0),
        "p99_ns": max(g["p99_ns"] - bare["p99_ns"], 1.0),
        "samples": g["samples"], "raised": raised,
    }
    # the reference's guard has no govern-only form: the same full-flow figure
    rows["guard.overhead.govern_only"] = rows["guard.overhead"]
    return {"side": "cfa-kernel 1.1.0 (reference)", "rows": rows}


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def run_side(python: str, side: str, args) -> dict:
    out = subprocess.run(
        [python, __file__, "--measure", side, "--budget-ms", str(args.budget_ms),
         "--runs", str(args.runs)],
        capture_output=True, text=True, cwd="/",
    )
    if out.returncode != 0:
        fail(f"{side} ({python}) exited {out.returncode}: {out.stderr[-800:]}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", help="python of the venv with cfa-py installed")
    ap.add_argument("--reference", help="python of the venv with cfa-kernel 1.1.0")
    ap.add_argument("--measure", choices=["ours", "reference"], help=argparse.SUPPRESS)
    ap.add_argument("--budget-ms", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    budget = max(args.budget_ms, 1) / 1000.0
    if args.measure == "ours":
        print(json.dumps(measure_ours(budget, args.runs)))
        return 0
    if args.measure == "reference":
        print(json.dumps(measure_reference(budget, args.runs)))
        return 0
    if not args.ours or not args.reference:
        ap.error("give --ours and --reference")
    ours = run_side(args.ours, "ours", args)
    ref = run_side(args.reference, "reference", args)
    print(f"ours: {ours['side']}   reference: {ref['side']}   "
          f"(p50 / p99 per call, best of {args.runs} runs of {args.budget_ms} ms)")
    print(f"{'path':<26}{'ours p50':>11}{'ours p99':>11}{'ref p50':>11}{'ref p99':>11}"
          f"{'ratio p50':>11}{'goal':>7}  verdict")
    report = {}
    for key in ROWS:
        o, r = ours["rows"][key], ref["rows"][key]
        ratio = r["p50_ns"] / o["p50_ns"] if o["p50_ns"] else 0.0
        goal = GOALS[key]
        verdict = "met" if ratio >= goal else "MISSED"
        print(f"{key:<26}{fmt_ns(o['p50_ns']):>11}{fmt_ns(o['p99_ns']):>11}"
              f"{fmt_ns(r['p50_ns']):>11}{fmt_ns(r['p99_ns']):>11}{ratio:>10.1f}×"
              f"{goal:>6.0f}×  {verdict}")
        report[key] = {"ours": o, "reference": r, "ratio_p50": ratio, "goal": goal}
    print("(the issue's goals: check.from_dict.approve — check(dict) against the reference's "
          "validate + from_dict + evaluate — and guard.overhead; check.* compare check(dict) "
          "with the reference's evaluate of a StateSignature built beforehand, checker.* a "
          "Signature parsed beforehand with it)")
    raised = ref["rows"]["guard.overhead"].get("raised", 0)
    print(f"(the reference's guard raised PermissionError on {raised} of its timed calls: bug B1; "
          f"ours raised on none)")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
