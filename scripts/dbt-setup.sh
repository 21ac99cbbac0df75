#!/usr/bin/env bash
# Creates (or reuses) a virtualenv holding dbt-core + dbt-postgres for the dbt backend
# tests, and prints the path of its `dbt` executable on the last line of stdout.
#
#   venv: ${CFA_CACHE_DIR:-<repo>/target/cfa-cache}/venv-dbt
#
# Fails loudly (non-zero exit) when python3 or pip fails: the dbt test must not skip.
set -euo pipefail

DBT_CORE_VERSION="1.10.15"
DBT_POSTGRES_VERSION="1.9.1"

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CFA_CACHE_DIR:-$repo/target/cfa-cache}"
venv="$cache/venv-dbt"
marker="$venv/.cfa-dbt-$DBT_CORE_VERSION-$DBT_POSTGRES_VERSION"

# One set-up at a time: tests that need this venv may start together (the later
# ones wait here, then find the marker).
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [[ ! -f "$marker" ]]; then
  rm -rf "$venv"
  echo "dbt-setup: creating $venv (dbt-core $DBT_CORE_VERSION, dbt-postgres $DBT_POSTGRES_VERSION)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "dbt-core==$DBT_CORE_VERSION" "dbt-postgres==$DBT_POSTGRES_VERSION" >&2
  "$venv/bin/dbt" --version >&2
  touch "$marker"
fi
exec 9>&-
echo "$venv/bin/dbt"
