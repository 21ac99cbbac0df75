"""A real MCP client (the official Python SDK, `mcp` on PyPI) against `cfa mcp`.

Usage: python mcp-python-client.py CFA_BINARY CATALOG_JSON

Initializes a stdio session, lists the tools, calls cfa_evaluate_signature with a
signature that needs a replan, applies the returned patches by hand and calls again,
expecting approve. Prints one JSON summary line on stdout; exits non-zero on any
mismatch.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


SIGNATURE = {
    "domain": "fiscal",
    "intent": "reconciliation_and_persist",
    "target_layer": "silver",
    "datasets": [
        {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
         "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
    ],
    "constraints": {"no_pii_raw": True, "merge_key_required": True, "enforce_types": False,
                    "partition_by": [], "max_cost_dbu": 20.0, "custom": {}},
    "execution_context": {"policy_bundle_version": "prod-v1.0",
                          "catalog_snapshot_version": "cat-2026-01",
                          "context_registry_version_id": "v_initial"},
    "intent_id": "py-client-1",
    "source_intent_raw": "Load all NFe",
}


def fail(msg):
    print(f"mcp-python-client: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def apply_patches(sig, patches):
    sig = json.loads(json.dumps(sig))
    for p in patches:
        if p["op"] != "set":
            fail(f"unexpected patch op {p['op']}")
        node = sig
        parts = p["path"].split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = p["value"]
    return sig


async def main(binary, catalog):
    params = StdioServerParameters(command=binary, args=["mcp", "--catalog", catalog], env={})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            if init.server_info.name != "cfa-mcp":
                fail(f"serverInfo.name is {init.server_info.name!r}")
            tools = await session.list_tools()
            names = sorted(t.name for t in tools.tools)
            if "cfa_evaluate_signature" not in names:
                fail(f"cfa_evaluate_signature missing from {names}")
            first = await session.call_tool("cfa_evaluate_signature", {"signature": SIGNATURE})
            decision = first.structured_content
            if not first.is_error or decision is None or decision["action"] != "replan":
                fail(f"expected a replan with isError, got isError={first.is_error} {decision}")
            fixed = apply_patches(SIGNATURE, decision["decision"]["patches"])
            second = await session.call_tool(
                "cfa_evaluate_signature", {"signature": fixed, "replan_count": 1})
            if second.is_error or second.structured_content["action"] != "approve":
                fail(f"expected approve after patches, got {second.structured_content}")
            print(json.dumps({
                "protocol_version": init.protocol_version,
                "server": init.server_info.name,
                "tools": names,
                "first": decision["action"],
                "second": second.structured_content["action"],
            }))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: mcp-python-client.py CFA_BINARY CATALOG_JSON")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
