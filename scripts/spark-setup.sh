#!/usr/bin/env bash
# Creates (or reuses) a virtualenv holding PySpark (whose package carries Spark's jars)
# and delta-spark (Delta Lake's Python API only: its jars are not installed, so the
# Delta scripts are checked against the API, not run), for the `spark` sandbox and the
# Spark tests (`cargo xtask spark`). Prints the venv's python on the last line of stdout.
#
#   venv: ${CFA_CACHE_DIR:-<repo>/target/cfa-cache}/venv-spark
#
# Spark needs a Java 17 runtime (`java -version`). Fails loudly (non-zero exit) when
# python3, pip or java fails: the Spark tests must not skip.
set -euo pipefail

PYSPARK_VERSION="3.5.7"
DELTA_SPARK_VERSION="3.3.2"

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CFA_CACHE_DIR:-$repo/target/cfa-cache}"
venv="$cache/venv-spark"
marker="$venv/.cfa-spark-$PYSPARK_VERSION-delta-$DELTA_SPARK_VERSION"

if ! java -version >/dev/null 2>&1; then
  echo "spark-setup: no java on PATH: Spark needs a Java 17 runtime (apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi

# One set-up at a time: tests that need this venv may start together (the later
# ones wait here, then find the marker).
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [[ ! -f "$marker" ]]; then
  rm -rf "$venv"
  echo "spark-setup: creating $venv (pyspark $PYSPARK_VERSION, delta-spark $DELTA_SPARK_VERSION; pyspark is ~320 MB)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "pyspark==$PYSPARK_VERSION" "delta-spark==$DELTA_SPARK_VERSION" >&2
  "$venv/bin/python" -c "import pyspark, delta.tables; print('spark-setup: pyspark', pyspark.__version__)" >&2
  touch "$marker"
fi
exec 9>&-
echo "$venv/bin/python"
