"""Runs cfa-generated PySpark scripts on a local Spark session and checks what they wrote.

One Spark session (local[2]) for every check, so Spark starts once:

1. the spark-mode merge script (silver, partitioned on processing_date): parquet source
   fixtures written by Spark, the script run, the target read back: rows (the inner join
   of the partition range), PII only as SHA-256 hex of the raw value (Python's hashlib,
   the function F.sha2(col.cast("string"), 256) computes), no raw PII column, the
   partition directories present, the --metrics line; a second run over updated sources:
   updated rows replaced, new rows added, untouched partitions unchanged, no duplicate
   key; a third run whose merge key moved partition fails and leaves the target as it was;
   a run with --stage writes the stage and leaves the target alone;
2. the spark-mode append script (bronze, unpartitioned) twice: rows doubled, hashes; with
   --overwrite, the partitioned bronze overwrite: idempotent, a later partition start
   replacing only its partitions;
3. the Delta-mode scripts checked statically against delta-spark's Python API: every
   call on DeltaTable and on what its methods return exists, and binds the arguments
   the script passes (inspect.signature(...).bind);
4. with --warehouse DIR, the source fixtures written there as <DIR>/<dataset> for the
   spark sandbox (`cfa evaluate --sandbox spark`).

Prints one JSON line `spark_checks {...}` with what was checked; any failed check raises
(non-zero exit). Usage:

    python run_generated.py --work DIR --merge SCRIPT --append SCRIPT [--overwrite SCRIPT] \
        --delta SCRIPT [--delta SCRIPT ...] [--warehouse DIR]
"""

import argparse
import ast
import contextlib
import datetime
import hashlib
import inspect
import io
import json
import pathlib
import runpy
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import types as T

D = datetime.date
NFE = T.StructType([
    T.StructField("nfe_id", T.LongType()),
    T.StructField("cliente_id", T.LongType()),
    T.StructField("valor", T.DoubleType()),
    T.StructField("processing_date", T.DateType()),
])
CLIENTES = T.StructType([
    T.StructField("cliente_id", T.LongType()),
    T.StructField("nome", T.StringType()),
    T.StructField("cpf", T.StringType()),
    T.StructField("email", T.StringType()),
    T.StructField("processing_date", T.DateType()),
])
START = "2026-01-01"

# nfe 4 is before the partition start; client 13 has no row in range, so nfe 5 drops out.
NFE_1 = [
    (1, 10, 10.0, D(2026, 1, 2)),
    (2, 11, 20.0, D(2026, 1, 2)),
    (3, 12, 30.0, D(2026, 1, 3)),
    (4, 10, 40.0, D(2025, 12, 31)),
    (5, 13, 50.0, D(2026, 1, 3)),
]
CLIENTES_1 = [
    (10, "Ana", "111.111.111-11", "ana@example.com", D(2026, 1, 1)),
    (11, "Bia", "222.222.222-22", "bia@example.com", D(2026, 1, 1)),
    (12, "Caio", "333.333.333-33", None, D(2026, 1, 2)),
    (13, "Duda", "444.444.444-44", "duda@example.com", D(2025, 12, 1)),
]
# Second run: nfe 2 updated (same partition), nfe 6 new in a new partition, nfe 7 new in
# an existing one; nfe 1 and 3 are not in the source and must stay as they were.
NFE_2 = [
    (2, 11, 25.0, D(2026, 1, 2)),
    (6, 12, 60.0, D(2026, 1, 4)),
    (7, 10, 70.0, D(2026, 1, 2)),
]
# Third run: nfe 3 arrives in another partition: a keyed partition rewrite cannot move it.
NFE_3 = [(3, 12, 35.0, D(2026, 1, 4))]


def sha256(value):
    return None if value is None else hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def check(cond, what, **details):
    if not cond:
        raise AssertionError(what + (" " + json.dumps(details, default=str) if details else ""))
    CHECKS.append(what)


CHECKS = []


def write(spark, rows, schema, path):
    spark.createDataFrame(rows, schema).write.mode("overwrite").parquet(str(path))


def run_script(script, argv):
    """Runs a generated script in this process's Spark session; returns its metrics."""
    t = time.monotonic()
    try:
        return _run_script(script, argv)
    finally:
        TIMES.append(round(time.monotonic() - t, 2))


TIMES = []


def _run_script(script, argv):
    old = sys.argv
    sys.argv = [str(script)] + [str(a) for a in argv]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old
    lines = [l for l in out.getvalue().splitlines() if l.startswith("cfa_metrics ")]
    return json.loads(lines[-1][len("cfa_metrics "):]) if lines else None


def table(spark, path):
    return {r["nfe_id"]: r.asDict() for r in spark.read.parquet(str(path)).collect()}


def partitions(path):
    return sorted(p.name for p in pathlib.Path(path).iterdir() if p.is_dir() and "=" in p.name)


def expected_rows(nfe, clientes):
    """The inner join of the rows in the partition range, PII hashed."""
    start = D.fromisoformat(START)
    by_id = {c[0]: c for c in clientes if c[4] >= start}
    out = {}
    for n in nfe:
        c = by_id.get(n[1])
        if n[3] >= start and c is not None:
            out[n[0]] = {"nfe_id": n[0], "cliente_id": n[1], "valor": n[2],
                         "processing_date": n[3], "nome": c[1],
                         "cpf_hash": sha256(c[2]), "email_hash": sha256(c[3])}
    return out


def merge_checks(spark, work, script):
    src1, src2, src3 = work / "src1", work / "src2", work / "src3"
    write(spark, NFE_1, NFE, src1 / "nfe")
    write(spark, CLIENTES_1, CLIENTES, src1 / "clientes")
    write(spark, NFE_2, NFE, src2 / "nfe")
    write(spark, NFE_3, NFE, src3 / "nfe")
    target = work / "silver_fiscal"

    def args(src, *extra):
        return ["--source", "nfe=%s" % (src / "nfe"), "--source",
                "clientes=%s" % (src1 / "clientes"), "--target", target,
                "--partition-start", START, *extra]

    m1 = run_script(script, args(src1, "--metrics"))
    want = expected_rows(NFE_1, CLIENTES_1)
    got = table(spark, target)
    check(sorted(got) == [1, 2, 3], "merge run 1 wrote the joined rows in range", got=sorted(got))
    for k, row in want.items():
        check({c: got[k][c] for c in row} == row, "merge run 1 row %d (PII as SHA-256 hex)" % k,
              got=got[k], want=row)
    columns = spark.read.parquet(str(target)).columns
    check("cpf" not in columns and "email" not in columns, "no raw PII column", columns=columns)
    check(partitions(target) == ["processing_date=2026-01-02", "processing_date=2026-01-03"],
          "merge run 1 partitions", got=partitions(target))
    check(m1["rows_written"] == 3 and m1["sources"] == {"nfe": 5, "clientes": 4},
          "merge run 1 metrics", metrics=m1)
    check(m1["null_counts"]["email_hash"] == 1 and m1["null_counts"]["nfe_id"] == 0,
          "merge run 1 null counts", metrics=m1)

    m2 = run_script(script, args(src2, "--metrics"))
    got = table(spark, target)
    rows = spark.read.parquet(str(target)).count()
    check(rows == len(got) == 5, "merge run 2: no duplicate key", rows=rows, keys=sorted(got))
    check(got[2]["valor"] == 25.0, "merge run 2: the updated row replaced", row=got[2])
    check(got[6]["valor"] == 60.0 and got[7]["valor"] == 70.0, "merge run 2: new rows added")
    check(got[1]["valor"] == 10.0 and got[3]["valor"] == 30.0,
          "merge run 2: rows not in the source kept")
    check(got[7]["cpf_hash"] == sha256("111.111.111-11"), "merge run 2: new row hashed")
    check(partitions(target) == ["processing_date=2026-01-02", "processing_date=2026-01-03",
                                 "processing_date=2026-01-04"], "merge run 2 partitions",
          got=partitions(target))
    check(m2["rows_written"] == 3, "merge run 2 metrics", metrics=m2)

    before = table(spark, target)
    try:
        run_script(script, args(src3))
        moved = None
    except ValueError as e:
        moved = str(e)
    check(moved is not None and "partition" in moved, "a merge key that moved partition fails",
          error=moved)
    check(table(spark, target) == before, "the failed merge left the target unchanged")

    stage = work / "stage"
    run_script(script, args(src2, "--stage", stage))
    check(table(spark, target) == before, "--stage leaves the target alone")
    check(partitions(stage) == ["processing_date=2026-01-02", "processing_date=2026-01-04"],
          "--stage holds the rewritten partitions", got=partitions(stage))
    # 2026-01-02: nfe 1 kept, 2 and 7 from the source; 2026-01-04: nfe 6.
    check(spark.read.parquet(str(stage)).count() == 4, "--stage holds the rewritten rows")


def append_checks(spark, work, script):
    src = work / "src1"
    target = work / "bronze_clientes"
    argv = ["--source", "clientes=%s" % (src / "clientes"), "--target", target, "--metrics"]
    m = run_script(script, argv)
    run_script(script, argv)
    got = spark.read.parquet(str(target)).collect()
    check(len(got) == 2 * len(CLIENTES_1), "append twice: rows doubled", rows=len(got))
    hashes = sorted(r["cpf_hash"] for r in got)
    want = sorted(sha256(c[2]) for c in CLIENTES_1) * 2
    check(hashes == sorted(want), "append: cpf as SHA-256 hex")
    check(m["rows_written"] == 4 and m["output_schema"][-2:] == ["cpf_hash", "email_hash"],
          "append metrics", metrics=m)


def overwrite_checks(spark, work, script):
    """The partitioned bronze overwrite: idempotent, and a later partition start replaces
    only the partitions from that date on."""
    src = work / "src1"
    target = work / "bronze_partitioned"

    def run(start):
        return run_script(script, ["--source", "clientes=%s" % (src / "clientes"),
                                   "--target", target, "--partition-start", start, "--metrics"])

    m = run(START)
    first = sorted(r["cliente_id"] for r in spark.read.parquet(str(target)).collect())
    run(START)
    again = sorted(r["cliente_id"] for r in spark.read.parquet(str(target)).collect())
    check(first == again == [10, 11, 12], "overwrite twice: the same rows", first=first, again=again)
    check(m["rows_written"] == 3, "overwrite metrics", metrics=m)
    run("2026-01-02")
    got = sorted(r["cliente_id"] for r in spark.read.parquet(str(target)).collect())
    check(got == [10, 11, 12], "a later partition start replaces only its partitions", got=got)
    check(partitions(target) == ["processing_date=2026-01-01", "processing_date=2026-01-02"],
          "overwrite partitions", got=partitions(target))


def delta_api_checks(script):
    """Every call on DeltaTable (and on what its methods return) exists in delta-spark
    and binds the arguments the script passes."""
    import delta.tables as dt

    tree = ast.parse(pathlib.Path(script).read_text())
    checked = 0
    inner = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if id(node) in inner:
            continue
        # Unwind the chain: DeltaTable.forName(...).alias(...).merge(...)...
        chain = []
        cur = node
        while isinstance(cur, ast.Call) and isinstance(cur.func, ast.Attribute):
            chain.append(cur)
            inner.add(id(cur))
            cur = cur.func.value
        if not (isinstance(cur, ast.Name) and cur.id == "DeltaTable"):
            continue
        owner = dt.DeltaTable
        for call in reversed(chain):
            name = call.func.attr
            member = getattr(owner, name, None)
            check(member is not None, "delta-spark has %s.%s" % (owner.__name__, name))
            sig = inspect.signature(member)
            args = [None] * len(call.args)
            kwargs = {k.arg: None for k in call.keywords}
            bound_self = [] if isinstance(inspect.getattr_static(owner, name), classmethod) else [None]
            try:
                sig.bind(*bound_self, *args, **kwargs)
            except TypeError as e:
                raise AssertionError("%s.%s%s does not take %d positional and %s: %s" % (
                    owner.__name__, name, sig, len(args), sorted(kwargs), e))
            ret = sig.return_annotation
            if isinstance(ret, str):
                ret = getattr(dt, ret.strip("\"'"), None)
            owner = ret if inspect.isclass(ret) else None
            checked += 1
            if owner is None:
                break
    return checked


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--merge", required=True)
    p.add_argument("--append", required=True)
    p.add_argument("--overwrite")
    p.add_argument("--delta", action="append", default=[])
    p.add_argument("--warehouse")
    a = p.parse_args()
    work = pathlib.Path(a.work)
    delta_calls = sum(delta_api_checks(s) for s in a.delta)
    check(delta_calls >= 6 or not a.delta, "the Delta scripts' DeltaTable calls were checked",
          calls=delta_calls)
    spark = (SparkSession.builder.master("local[2]").appName("cfa-spark-checks")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.host", "127.0.0.1")
             # Short local jobs: the client compiler only, and a small collector,
             # start the JVM fast.
             .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.sql.warehouse.dir", str(work / "spark-warehouse"))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    merge_checks(spark, work, a.merge)
    append_checks(spark, work, a.append)
    if a.overwrite:
        overwrite_checks(spark, work, a.overwrite)
    if a.warehouse:
        wh = pathlib.Path(a.warehouse)
        write(spark, NFE_1, NFE, wh / "nfe")
        write(spark, CLIENTES_1, CLIENTES, wh / "clientes")
    spark.stop()
    print("spark_checks " + json.dumps({"checks": len(CHECKS), "delta_calls": delta_calls,
                                         "script_seconds": TIMES, "names": CHECKS}))


if __name__ == "__main__":
    main()
