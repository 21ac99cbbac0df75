#!/usr/bin/env bash
# Runs the official Python MCP SDK client (scripts/mcp-python-client.py) against
# `cfa mcp`, in a cached virtualenv:
#
#   venv: ${CFA_CACHE_DIR:-<repo>/target/cfa-cache}/venv-mcp   (created once, reused)
#
# Usage: scripts/mcp-python-client.sh [CFA_BINARY] [CATALOG_JSON]
#        scripts/mcp-python-client.sh --setup   (only create the venv; CI warms it early)
# (defaults: target/debug/cfa and examples/catalog.json)
# Fails loudly (non-zero exit) when python3 or pip fails: the test must not skip.
set -euo pipefail

MCP_VERSION="2.3.0"

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CFA_CACHE_DIR:-$repo/target/cfa-cache}"
venv="$cache/venv-mcp"
marker="$venv/.cfa-mcp-$MCP_VERSION"
binary="${1:-$repo/target/debug/cfa}"
catalog="${2:-$repo/examples/catalog.json}"

# One set-up at a time: tests that need this venv may start together (the later
# ones wait here, then find the marker).
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [[ ! -f "$marker" ]]; then
  rm -rf "$venv"
  echo "mcp-python-client: creating $venv (mcp $MCP_VERSION)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_VERSION" >&2
  touch "$marker"
fi
exec 9>&-
if [[ "${1:-}" == "--setup" ]]; then
  exit 0
fi
exec "$venv/bin/python" "$repo/scripts/mcp-python-client.py" "$binary" "$catalog"
