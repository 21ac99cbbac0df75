#!/usr/bin/env python3
"""Times the Python reference (cfa-kernel 1.1.0) on the paths `cfa-gates` measures.

Run by `cargo xtask bench --vs-reference` (through `cfa-gates --reference-python`) with
the reference's virtualenv (scripts/reference-audit-verify.sh --setup):

    python scripts/bench-reference.py --scratch DIR [--budget-ms N] [--runs N]
        [--kernel-calls N] [--chain FILE] [--signature FILE] [--catalog FILE]
        [--process-samples N] [--only KEY[,KEY...]]

Prints one JSON object on stdout:

    {"reference": "cfa-kernel 1.1.0", "python": "3.11.7",
     "paths": {KEY: {"p50_ns": F, "p99_ns": F, "samples": N, "batch": 1, ...}, ...},
     "skipped": {KEY: "why", ...}}

KEYs are the row keys of benches/src/report.rs. Every sample times one call with
time.perf_counter_ns(); percentiles are nearest-rank over the samples; with --runs N
the lowest p50 and the lowest p99 of the runs are kept (as cfa-gates does). The script
checks that each fixture decides as its name says before timing it, and exits 1 when
one does not (a broken comparison is worse than none).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cfa
from cfa.audit.trail import AuditTrail, JsonLinesAuditStorage
from cfa.core.kernel import KernelOrchestrator
from cfa.policy.bundle import PolicyBundle
from cfa.policy.engine import PolicyEngine
from cfa.types import PolicyAction, StateSignature
from cfa.validate.signature import unwrap_signature_data, validate_signature_data

# The reference `sigs/ok.json`, byte for byte what benches/src/fixtures.rs holds.
OK_SIGNATURE = """{
  "domain": "fiscal",
  "intent": "reconciliation_and_persist",
  "target_layer": "silver",
  "datasets": [
    {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
     "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
    {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"],
     "partition_column": "processing_date", "merge_keys": ["cliente_id"]}
  ],
  "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                  "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
  "execution_context": {"policy_bundle_version": "prod-v1.0", "catalog_snapshot_version": "cat-2026-01",
                        "context_registry_version_id": "v_initial"},
  "intent_id": "11111111-2222-3333-4444-555555555555",
  "source_intent_raw": "Join NFe with Clientes and persist to Silver"
}"""

# The executed intents of the full-kernel row (benches/src/kernel.rs): approve and
# replan→approve, alternating.
KERNEL_INTENTS = [
    "Join nfe with clientes daily, anonymize pii, into silver",
    "ingest nfe raw into bronze",
]

# cfa_policy::synth::generated_bundle's condition cycle (BUILTIN_NAMES without
# schema_mismatch), layers (TargetLayer::ALL), severities and families (::ALL).
SYNTH_CONDITIONS = [
    "cost_budget_exceeded",
    "enforce_types_disabled",
    "missing_merge_key",
    "missing_partition",
    "pii_in_protected_layer",
    "pii_without_policy",
    "sensitive_without_partition",
    "shuffle_budget_exceeded",
    "unauthorized_gold_write",
]
SYNTH_LAYERS = ["bronze", "silver", "gold"]
SYNTH_ACTIONS = ["replan", "block", "approve"]
SYNTH_SEVERITIES = ["info", "warning", "high", "critical"]
SYNTH_FAMILIES = ["semantic", "static", "runtime", "environment"]


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile of sorted samples (q in [0, 1])."""
    if not sorted_ns:
        return 0.0
    rank = max(1, min(len(sorted_ns), int(-(-q * len(sorted_ns) // 1))))
    return float(sorted_ns[rank - 1])


def summarize(samples: list[int]) -> dict:
    samples = sorted(samples)
    return {
        "p50_ns": percentile(samples, 0.50),
        "p99_ns": percentile(samples, 0.99),
        "max_ns": float(samples[-1]) if samples else 0.0,
        "samples": len(samples),
        "batch": 1,
    }


def best(a: dict | None, b: dict) -> dict:
    if a is None:
        return b
    out = dict(b)
    for k in ("p50_ns", "p99_ns", "max_ns"):
        out[k] = min(a[k], b[k])
    out["samples"] = max(a["samples"], b["samples"])
    return out


def measure(fn, budget_s: float, runs: int, max_samples: int = 200_000) -> dict:
    """Times fn() one call per sample for budget_s per run; best of runs."""
    result = None
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
        result = best(result, summarize(samples))
    return result


def measure_process(argv: list[str], samples: int, runs: int, cwd: str, warm: bool = True,
                    expect_out: str = "") -> dict:
    """Wall time of a whole process (spawn to exit), after one unmeasured run when
    `warm`; it must exit 0 and print `expect_out`."""

    def once() -> int:
        t = time.perf_counter_ns()
        done = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ns = time.perf_counter_ns() - t
        out = done.stdout.decode(errors="replace")
        if done.returncode != 0 or expect_out not in out:
            raise RuntimeError(f"{argv} exited {done.returncode}: {out[-400:]}")
        return ns

    result = None
    for _ in range(max(1, runs)):
        if warm:
            once()
        result = best(result, summarize([once() for _ in range(samples)]))
    return result


def expect(what: str, got, want) -> None:
    if got != want:
        print(f"bench-reference: fixture '{what}' decided {got}, expected {want}", file=sys.stderr)
        sys.exit(1)


def signature(**constraints) -> StateSignature:
    data = json.loads(OK_SIGNATURE)
    data["constraints"].update(constraints)
    return StateSignature.from_dict(data)


def synth_bundle(n: int) -> dict:
    """The reference-format equivalent of cfa_policy::synth::generated_bundle(n)."""
    rules = []
    for i in range(n):
        cond = SYNTH_CONDITIONS[i % len(SYNTH_CONDITIONS)]
        rule = {
            "name": f"rule_{i}_{cond}",
            "condition": cond,
            "action": SYNTH_ACTIONS[i % 3],
            "fault_code": f"SYNTH_{i:04d}_{cond.upper()}",
            "severity": SYNTH_SEVERITIES[i % 4],
            "family": SYNTH_FAMILIES[i % 4],
            "message": f"Synthetic rule {i} ({cond}).",
            "remediation": [f"Fix synthetic rule {i % 17}"],
        }
        if cond == "missing_partition":
            rule["min_size_gb"] = 1.0 + i
        elif cond == "cost_budget_exceeded":
            rule["max_dbu"] = 50.0 + i
        if i % 3 == 1:
            rule["target_layer"] = SYNTH_LAYERS[(i // 3) % 3]
        rules.append(rule)
    return {"policy_bundle": {"version": f"synthetic-{n}", "description": "generated for benchmarks", "rules": rules}}


def resident_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scratch", required=True, help="scratch directory (audit logs, bundles)")
    ap.add_argument("--budget-ms", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kernel-calls", type=int, default=1000)
    ap.add_argument("--process-samples", type=int, default=10)
    ap.add_argument("--chain", help="a JSONL audit chain for `cfa audit verify --file`")
    ap.add_argument("--signature", help="ok.json for `cfa policy check --signature`")
    ap.add_argument("--catalog", help="the catalog of the full-kernel row (examples/catalog.json)")
    ap.add_argument("--only", help="comma-separated keys to measure (default: all)")
    args = ap.parse_args()

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    budget = max(args.budget_ms, 1) / 1000.0
    only = set(args.only.split(",")) if args.only else None
    paths: dict[str, dict] = {}
    skipped: dict[str, str] = {}

    def want(key: str) -> bool:
        return only is None or key in only

    engine = PolicyEngine()
    approve = signature()
    replan = signature(partition_by=[], enforce_types=False)
    block = signature(no_pii_raw=False)
    expect("approve", engine.evaluate(approve).action, PolicyAction.APPROVE)
    expect("replan", engine.evaluate(replan).action, PolicyAction.REPLAN)
    expect("block", engine.evaluate(block).action, PolicyAction.BLOCK)

    for key, sig in (("evaluate.approve", approve), ("evaluate.replan", replan), ("evaluate.block", block)):
        if want(key):
            paths[key] = measure(lambda s=sig: engine.evaluate(s), budget, args.runs)

    def from_text():
        data = json.loads(OK_SIGNATURE)
        if not validate_signature_data(data).valid:
            raise RuntimeError("ok signature invalid in the reference")
        return StateSignature.from_dict(unwrap_signature_data(data))

    expect("ok-text", engine.evaluate(from_text()).action, PolicyAction.APPROVE)
    if want("json_to_decision"):
        paths["json_to_decision"] = measure(lambda: engine.evaluate(from_text()), budget, args.runs)
    if want("parse_validated"):
        paths["parse_validated"] = measure(from_text, budget, args.runs)
    if want("signature_hash"):
        paths["signature_hash"] = measure(lambda: approve.signature_hash, budget, args.runs)

    # One decision + its audit append, as `cfa policy check --audit-log` records it
    # (JsonLinesAuditStorage: open, write, close per event; no fsync).
    if want("decide_audit.seq"):
        log = scratch / "ref-decide.jsonl"
        log.unlink(missing_ok=True)
        trail = AuditTrail(storage=JsonLinesAuditStorage(log))

        def decide_audited():
            r = engine.evaluate(approve)
            trail.record(
                intent_id=approve.intent_id, stage="policy_check", event_type="policy_evaluation",
                outcome=r.action.value, policy_bundle_version=engine.policy_bundle_version,
                decision_id="35324dcc-4335-455e-bce2-000000000000", signature_hash=approve.signature_hash,
                catalog_hash="", policy_bundle_hash="", faults=[f.code for f in r.faults],
                interventions=r.interventions, reasoning=r.reasoning,
            )

        paths["decide_audit.seq"] = measure(decide_audited, budget, args.runs)
        log.unlink(missing_ok=True)

    for n in (10, 100, 1000, 10000):
        key = f"bundle.{n}"
        if not want(key):
            continue
        raw = synth_bundle(n)
        bundle = PolicyBundle._from_raw(raw, f"synthetic-{n}")
        big = PolicyEngine(rules=bundle.rules, policy_bundle_version=bundle.version)
        action = big.evaluate(approve).action
        if action != PolicyAction.APPROVE:
            skipped[key] = f"the reference's equivalent bundle decides {action.value}, not approve"
            continue
        paths[key] = measure(lambda e=big: e.evaluate(approve), budget, args.runs, max_samples=20_000)

    # Full kernel, intent text → audited decision, mock sandbox, JSONL audit trail.
    if want("kernel.executed"):
        catalog = json.loads(Path(args.catalog).read_text()) if args.catalog else None
        log = scratch / "ref-kernel.jsonl"
        log.unlink(missing_ok=True)
        kernel = KernelOrchestrator(audit_trail=AuditTrail(storage=JsonLinesAuditStorage(log)), catalog=catalog)
        for intent in KERNEL_INTENTS:
            state = str(kernel.process(intent).state)
            if "block" in state.lower():
                print(f"bench-reference: kernel intent {intent!r} ended {state}", file=sys.stderr)
                return 1
        gc.collect()
        rss0 = resident_kb()
        calls = max(args.kernel_calls, 10)
        samples = []
        clock = time.perf_counter_ns
        for i in range(calls):
            t = clock()
            kernel.process(KERNEL_INTENTS[i % 2])
            samples.append(clock() - t)
        window = max(calls // 10, 1)
        row = summarize(samples)
        row["first_p50_ns"] = summarize(samples[:window])["p50_ns"]
        row["last_p50_ns"] = summarize(samples[-window:])["p50_ns"]
        row["rss_start_kb"] = rss0
        row["rss_end_kb"] = resident_kb()
        paths["kernel.executed"] = row
        log.unlink(missing_ok=True)

    cli = [sys.executable, "-m", "cfa.cli"]
    if want("cli.policy_check"):
        if args.signature:
            paths["cli.policy_check"] = measure_process(
                cli + ["policy", "check", "--signature", args.signature],
                max(args.process_samples, 1) * 2, 1, str(scratch), expect_out="APPROVE")
        else:
            skipped["cli.policy_check"] = "no --signature given"
    if want("cli.audit_verify"):
        if args.chain:
            paths["cli.audit_verify"] = measure_process(
                # ~5 s a run: three samples, the first warming the page cache.
                cli + ["audit", "verify", "--file", args.chain],
                max(args.process_samples // 3, 1), 1, str(scratch), warm=False,
                expect_out="Chain INTACT")
        else:
            skipped["cli.audit_verify"] = "no --chain given"

    json.dump(
        {
            "reference": f"cfa-kernel {cfa.__version__}",
            "python": platform.python_version(),
            "paths": paths,
            "skipped": skipped,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
