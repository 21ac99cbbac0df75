#!/usr/bin/env bash
# Verifies audit chains with the Python reference, cfa-kernel 1.1.0, to prove that
# chains written by our `cfa` verify in the reference (docs/compatibility.md#audit-chain).
#
#   usage: scripts/reference-audit-verify.sh CHAIN.jsonl [CHAIN.jsonl …]
#          scripts/reference-audit-verify.sh --setup   (only create the venv; CI warms it early)
#   venv:  ${CFA_CACHE_DIR:-<repo>/target/cfa-cache}/venv-ref (created once, then reused)
#
# Exits non-zero unless the reference prints `[OK] Chain INTACT` for every chain.
# Fails loudly (non-zero exit) when python3 or pip fails: the interop test must not skip.
set -euo pipefail

CFA_KERNEL_VERSION="1.1.0"

if [[ $# -lt 1 ]]; then
  echo "usage: $0 CHAIN.jsonl [CHAIN.jsonl ...]" >&2
  exit 2
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CFA_CACHE_DIR:-$repo/target/cfa-cache}"
venv="$cache/venv-ref"
marker="$venv/.cfa-kernel-$CFA_KERNEL_VERSION"

# One set-up at a time: tests that need this venv may start together (the later
# ones wait here, then find the marker).
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [[ ! -f "$marker" ]]; then
  rm -rf "$venv"
  echo "reference-audit-verify: creating $venv (cfa-kernel $CFA_KERNEL_VERSION)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "cfa-kernel==$CFA_KERNEL_VERSION" >&2
  touch "$marker"
fi
exec 9>&-
if [[ "$1" == "--setup" ]]; then
  exit 0
fi

status=0
for chain in "$@"; do
  out="$("$venv/bin/cfa" audit verify --file "$chain" 2>&1)" || true
  echo "reference: $chain: $out"
  if ! grep -Eq '^(\[OK\]|✓) Chain INTACT' <<<"$out"; then
    status=1
  fi
done
exit "$status"
