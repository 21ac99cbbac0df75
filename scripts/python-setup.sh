#!/usr/bin/env bash
# Creates (or reuses) the virtualenv of the Python package `cfa` (cfa-py/, PyPI name
# cfa-rs), with maturin and pytest, then builds and installs the package into it with
# one `pip install ./cfa-py` (maturin is the build backend). Prints the venv's python
# on the last line of stdout.
#
#   venv:  ${CFA_CACHE_DIR:-<repo>/target/cfa-cache}/venv-py
#   usage: scripts/python-setup.sh [--setup] [--release]
#            --setup    only create the venv (CI warms it early), do not build
#            --release  build the extension optimised (the benchmark does), with the
#                       workspace's `wheel` profile (release with fat LTO and one codegen
#                       unit: PyO3's wrappers inline into the dict walk; ~10% fewer
#                       instructions per check(dict), docs/development.md); the default
#                       is cargo's dev profile, which reuses the workspace's debug build
#
# Fails loudly (non-zero exit) when python3, pip or the build fails: the Python tests
# must not skip.
set -euo pipefail

MATURIN_VERSION="1.16.0"
PYTEST_VERSION="9.2.0"

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CFA_CACHE_DIR:-$repo/target/cfa-cache}"
venv="$cache/venv-py"
marker="$venv/.cfa-py-maturin-$MATURIN_VERSION-pytest-$PYTEST_VERSION"

setup_only=0
profile="dev"
for arg in "$@"; do
  case "$arg" in
    --setup) setup_only=1 ;;
    --release) profile="wheel" ;;
    *) echo "python-setup: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

# One set-up at a time: tests that need this venv may start together (the later
# ones wait here, then find the marker).
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [[ ! -f "$marker" ]]; then
  rm -rf "$venv"
  echo "python-setup: creating $venv (maturin $MATURIN_VERSION, pytest $PYTEST_VERSION)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin==$MATURIN_VERSION" "pytest==$PYTEST_VERSION" >&2
  touch "$marker"
fi
exec 9>&-
if [[ "$setup_only" == 1 ]]; then
  echo "$venv/bin/python"
  exit 0
fi

# maturin (the build backend, already in the venv: no isolated build environment)
# builds the cdylib in the workspace's target directory with the chosen cargo profile.
echo "python-setup: pip install ./cfa-py (cargo profile $profile)" >&2
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile $profile --locked" \
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps "$repo/cfa-py" >&2
echo "$venv/bin/python"
