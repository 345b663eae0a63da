"""`python -m benchmarks.engines [--rows N] [--big] [--postgres] [--spark]`: engines side by side (issue 13).

1. At 10^6 rows (the prostate demo), interleaved rounds of the same release (each round in a new
   order, so that cold caches after the memory-heavy jobs hit every job alike): ours end to end
   (`privacy.release.release`, ledger included, plan already built as the app's preview does),
   ours through OpenDP's row-level measurement, IBM diffprivlib (`tools.histogram`, `tools.mean`),
   and a bare NumPy count/mean plus NumPy noise (insecure baseline, timing only). Ratios are to
   diffprivlib and to NumPy in the same run.
2. DuckDB over Parquet (a directory of files written once under var/bench-parquet and reused):
   histogram and mean releases at 10^6 and 10^7 rows, 10^8 with --big, engine and OpenDP time
   split, peak RSS of this process.
3. With --postgres: the same release from a throwaway PostgreSQL server (Debian package) at 10^6
   rows, time split into engine and OpenDP; with --spark: the same from Spark in local mode.
Informational: the exit status is 0 whatever the timings.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PARQUET_DIR = ROOT / "var" / "bench-parquet"
CHUNK = 10**6
BIG = 10**8                # issue 13: a histogram over 10^8 Parquet rows under 2 s, peak RSS under 4 GB
TARGET_BIG_S, TARGET_BIG_MB = 2.0, 4096
HISTORY = 400              # earlier rows on the in-use ledger (past its first WAL checkpoint)


def _median_ms(xs) -> float:
    return 1e3 * statistics.median(xs)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_memory(rows: int, reps: int) -> None:
    import diffprivlib.tools as dpl
    from data.cohorts import load_cohort
    from data.prepare import prepare
    from privacy.engine import ROW_LEVEL, invoke
    from privacy.ledger import BudgetLedger
    from privacy.measurements import build_plan
    from privacy.queries import GroupedMeanQuery, HistogramQuery, MeanQuery
    from privacy.release import preview, release

    frame, schema = load_cohort("prostate", rows=rows, seed=11)
    cohort = prepare(frame, schema, keep_frame=False)
    del frame
    col = schema.column("psa")
    k = len(schema.column("gleason_score").bucket_labels)
    codes, x = cohort.codes["gleason_score"], cohort.numbers["psa"]
    rng = np.random.default_rng()
    queries = {"histogram": HistogramQuery(column="gleason_score"), "mean": MeanQuery(column="psa"),
               "grouped mean": GroupedMeanQuery(column="psa", by="risk_group")}
    peers = {
        "histogram": (lambda: dpl.histogram(codes, epsilon=0.5, bins=k, range=(0, k)),
                      lambda: np.bincount(codes, minlength=k) + rng.laplace(0, 2.0, k)),
        "mean": (lambda: dpl.mean(x, epsilon=0.5, bounds=(col.lower, col.upper)),
                 lambda: (x.sum() + rng.laplace(0, 200.0)) / (x.size + rng.laplace(0, 2.0))),
        "grouped mean": (None, lambda: np.bincount(cohort.codes["risk_group"], weights=x) / np.bincount(cohort.codes["risk_group"])),
    }
    with tempfile.TemporaryDirectory(prefix="dp-bench-engines-") as tmp:
        print(f"\nIn memory, {rows:,} rows (prostate demo), {reps} interleaved rounds, median ms")
        print(f"{'release':<14}{'e2e':>8}{'e2e new':>9}{'engine':>8}{'cold':>8}{'rows':>8}{'dpl':>8}{'numpy':>8}"
              f"{'e2e/dpl':>9}{'new/dpl':>9}{'cold/dpl':>10}{'e2e/numpy':>11}{'cold/numpy':>12}")
        verdicts = []
        for name, q in queries.items():
            preview(q, schema, 0.5)                             # the app's preview readies the plan
            plan = build_plan(q, schema, 0.5)
            # e2e: one ledger in use (a history of earlier releases, past SQLite's first WAL checkpoint,
            # as the app's ledger file is); each round is a new question: the same query on a dataset id
            # of its own (same rows; a repeat would be served from the ledger), whose budget row and plan
            # exist beforehand, as after the app's first page and its preview.
            in_use = BudgetLedger(Path(tmp) / f"{name}-in-use.sqlite")
            release(q, cohort, 0.5, in_use, "history")
            for _ in range(HISTORY):    # audit rows (cost 0), each its own synced commit
                in_use.record_derived(schema.dataset_id, "history", "earlier", q.key(), "history")
            rounds = [dataclasses.replace(cohort, schema=dataclasses.replace(
                schema, dataset_id=f"{schema.dataset_id}-{name}-{i}")) for i in range(reps)]
            for c in rounds:
                preview(q, c.schema, 0.5)
                in_use.ensure_budget(c.schema.dataset_id, "bench", schema.default_budget)
            # e2e new: one fresh ledger file per round (its budget row recorded, as after the app's first page).
            ledgers = [BudgetLedger(Path(tmp) / f"{name}-{i}.sqlite") for i in range(reps + 1)]
            for lg in ledgers:
                lg.ensure_budget(schema.dataset_id, "bench", schema.default_budget)
            release(q, cohort, 0.5, ledgers[-1], "bench")       # warm: the first aggregate of this query
            dpl_f, np_f = peers[name]

            def cold_aggregate():
                for key in [k for k in cohort._cache if k[0] == "aggregates"]:   # cold: aggregate again
                    del cohort._cache[key]
            jobs = {"e2e": (None, lambda i: release(q, rounds[i], 0.5, in_use, "bench")),
                    "new": (None, lambda i: release(q, cohort, 0.5, ledgers[i], "bench")),
                    "engine": (None, lambda i: plan.finish(invoke(plan, cohort), 0.05)),
                    "cold": (cold_aggregate, lambda i: plan.finish(invoke(plan, cohort), 0.05)),
                    "rows": (None, lambda i: plan.finish(invoke(plan, cohort, ROW_LEVEL), 0.05)),
                    "numpy": (None, lambda i: np_f())}
            if dpl_f:
                jobs["dpl"] = (None, lambda i: dpl_f())
            times = {k: [] for k in jobs}
            order = random.Random(13)        # each round runs the jobs in a new order: what runs right after
            for i in range(reps):            # a memory-heavy job pays for cold caches, so no one always does
                names = list(jobs)
                order.shuffle(names)
                for job in names:
                    setup, run = jobs[job]
                    if setup:
                        setup()
                    t = time.perf_counter(); run(i); times[job].append(time.perf_counter() - t)
            t_ours, t_new, t_eng, t_cold, t_rows, t_np = (times[k] for k in ("e2e", "new", "engine", "cold", "rows", "numpy"))
            t_dpl = times.get("dpl", [])
            for lg in ledgers + [in_use]:
                lg.close()
            o, w, e, c, r, n = (_median_ms(t) for t in (t_ours, t_new, t_eng, t_cold, t_rows, t_np))
            d = _median_ms(t_dpl) if t_dpl else float("nan")
            print(f"{name:<14}{o:>8.2f}{w:>9.2f}{e:>8.2f}{c:>8.2f}{r:>8.2f}{d:>8.2f}{n:>8.2f}{o / d:>9.2f}{w / d:>9.2f}"
                  f"{c / d:>10.2f}{o / n:>11.2f}{c / n:>12.2f}")
            if name == "grouped mean":
                verdicts.append(f"grouped mean e2e {o:.1f} ms ({'PASS' if o < 30 else 'FAIL'} < 30 ms)")
            else:
                verdicts.append(f"{name} e2e {o / d:.2f}x diffprivlib ({'PASS' if o <= d else 'FAIL'} <= 1.0x), "
                                f"{o / n:.2f}x NumPy ({'PASS' if o <= 3 * n else 'FAIL'} <= 3x)")
    print(f"e2e: release() of a new question on a ledger in use ({HISTORY} earlier rows), with its one synced "
          "SQLite commit (the charge and the result in one transaction, on disk before it is returned), the "
          "engine's aggregates of this shape already held (as after any earlier question of the same statistic; "
          "'cold' adds what aggregating again costs); e2e new: the same on a new ledger file each time (a growing log file "
          "makes each sync about twice as slow); engine: the same release without the ledger (engine aggregates "
          "kept from the last question of this shape, OpenDP noise, intervals); cold: the same with the "
          "aggregate computed again; rows: OpenDP's row-level measurement (the reference path); dpl: IBM "
          "diffprivlib at the same epsilon (no ledger, no intervals); numpy: bare aggregate + NumPy noise "
          "(not DP, timing only). Targets (issue 13): e2e at most 1.0x dpl and 3x numpy for histogram and mean, "
          "grouped mean under 30 ms.")
    for v in verdicts:
        print("  " + v)


def parquet_dataset(rows: int) -> Path:
    """A directory of `rows` prostate-demo rows in 10^6-row Parquet files (written once, reused)."""
    from data.cohorts import load_cohort
    d = PARQUET_DIR / f"prostate-{rows}"
    files = rows // CHUNK
    if d.exists() and len(list(d.glob("*.parquet"))) == files:
        return d
    d.mkdir(parents=True, exist_ok=True)
    base, _ = load_cohort("prostate", rows=CHUNK, seed=5)
    t = time.perf_counter()
    for i in range(files):
        part = base.copy()
        part["patient_id"] = part["patient_id"] + i * CHUNK
        part.to_parquet(d / f"part-{i:04d}.parquet")
    print(f"  wrote {rows:,} rows to {d} in {time.perf_counter() - t:.0f} s")
    return d


def _engine_rounds(cohort, queries, reps: int, label: str) -> dict[str, tuple[float, float]]:
    """Print one line per release; return {release: (first s, median total s)}."""
    from privacy.engine import aggregate_noise
    from privacy.measurements import build_plan
    out = {}
    for name, q in queries.items():
        plan = build_plan(q, cohort.schema, 0.5)
        form = aggregate_noise(plan)
        t0 = time.perf_counter()
        cohort.engine.aggregates(plan, form)                # first: includes the snapshot's bound check
        first = time.perf_counter() - t0
        eng, noise = [], []
        for _ in range(reps):
            t = time.perf_counter(); agg = cohort.engine.aggregates(plan, form); eng.append(time.perf_counter() - t)
            t = time.perf_counter(); plan.finish(form.release(agg), 0.05); noise.append(time.perf_counter() - t)
        total = [a + b for a, b in zip(eng, noise)]
        print(f"{label:<22}{name:<11}{first:>9.2f}{statistics.median(total):>9.3f}{statistics.median(eng):>9.3f}"
              f"{_median_ms(noise):>10.2f}{_rss_mb():>10.0f}")
        out[name] = (first, statistics.median(total))
    return out


def on_parquet(sizes, reps: int) -> None:
    from data.cohorts import cohort_schema
    from privacy.engine.sources import open_cohort
    from privacy.queries import HistogramQuery, MeanQuery
    schema = cohort_schema("prostate")
    queries = {"histogram": HistogramQuery(column="gleason_score"), "mean": MeanQuery(column="psa")}
    print(f"\nDuckDB over Parquet (embedded), {reps} rounds; seconds except OpenDP (ms) and peak RSS (MB)")
    print(f"{'rows':<22}{'release':<11}{'first s':>9}{'total s':>9}{'engine s':>9}{'OpenDP ms':>10}{'RSS MB':>10}")
    times = {}
    for n in sizes:
        d = parquet_dataset(n)
        cohort = open_cohort(dataclasses.replace(schema, storage=(("kind", "parquet"), ("path", str(d)))))
        times[n] = _engine_rounds(cohort, queries, reps, f"{n:,}")
        cohort.engine.url_engine.dispose()
    print("first: the first release on a new snapshot of the files, including the one-off check that no patient "
          "has more rows than the schema's bound (later releases skip the row_number window while it holds).")
    if BIG in times:
        first, later = times[BIG]["histogram"]
        peak = _rss_mb()
        print(f"  10^8 histogram first release {first:.2f} s, later {later:.2f} s "
              f"({'PASS' if first < TARGET_BIG_S else 'FAIL'} < {TARGET_BIG_S:g} s, judged on the first); "
              f"peak RSS {peak:,.0f} MB ({'PASS' if peak < TARGET_BIG_MB else 'FAIL'} < {TARGET_BIG_MB:,} MB)")


def copy_into(eng, table: str, frame) -> None:
    """Create `table` like `frame` and fill it with PostgreSQL's COPY (bulk load, not row inserts)."""
    import io
    frame.head(0).to_sql(table, eng, index=False, if_exists="replace")
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)
    buf.seek(0)
    raw = eng.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(f'COPY "{table}" FROM STDIN (FORMAT csv)') as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        raw.commit()
    finally:
        raw.close()


def on_postgres(rows: int, reps: int) -> None:
    import sqlalchemy as sa
    from data.cohorts import load_cohort
    from privacy.engine.sources import open_cohort
    from privacy.queries import HistogramQuery, MeanQuery
    sys.path.insert(0, str(ROOT))
    from tests.pg_server import PostgresServer, pg_bin
    if pg_bin() is None:
        print("\nPostgreSQL: server binaries not installed (make system-deps), skipped")
        return
    server = PostgresServer().start()
    try:
        frame, schema = load_cohort("prostate", rows=rows, seed=5)
        eng = sa.create_engine(server.url)
        t = time.perf_counter()
        copy_into(eng, "prostate", frame)
        print(f"\nPostgreSQL {server.bin.parent.name} on loopback: loaded {rows:,} rows in {time.perf_counter() - t:.0f} s")
        print(f"{'rows':<22}{'release':<11}{'first s':>9}{'total s':>9}{'engine s':>9}{'OpenDP ms':>10}{'RSS MB':>10}")
        storage = (("kind", "postgresql"), ("table", "prostate"), ("url_secret", "PG"))
        qs = {"histogram": HistogramQuery(column="gleason_score"), "mean": MeanQuery(column="psa")}
        for label, ddl in ((f"{rows:,} window", None), (f"{rows:,} primary key", "ALTER TABLE prostate ADD PRIMARY KEY (patient_id)")):
            if ddl:
                with eng.begin() as c:
                    c.exec_driver_sql(ddl)
            cohort = open_cohort(dataclasses.replace(schema, storage=storage), secrets={"PG": server.url})
            _engine_rounds(cohort, qs, reps, label)
            cohort.engine.url_engine.dispose()
        eng.dispose()
        print("window: no unique patient id, so row_number() over the patient bounds every query; primary key: the "
              "catalog guarantees one row per patient and the window is left out.")
    finally:
        server.stop()


def on_spark(rows: int, reps: int) -> None:
    import importlib.util
    import shutil
    if shutil.which("java") is None or importlib.util.find_spec("pyspark") is None:
        print("\nSpark: needs pyspark and a Java runtime (make system-deps), skipped")
        return
    from data.cohorts import load_cohort
    from privacy.engine.sources import open_cohort
    from privacy.queries import HistogramQuery, MeanQuery
    d = parquet_dataset(rows)
    _, schema = load_cohort("prostate", rows=1000)
    t = time.perf_counter()
    cohort = open_cohort(dataclasses.replace(schema, storage=(("kind", "spark"), ("path", str(d)))))
    print(f"\nSpark local[2] over the same Parquet directory (session start and check {time.perf_counter() - t:.0f} s; "
          "the window bounds every query)")
    print(f"{'rows':<22}{'release':<11}{'first s':>9}{'total s':>9}{'engine s':>9}{'OpenDP ms':>10}{'RSS MB':>10}")
    _engine_rounds(cohort, {"histogram": HistogramQuery(column="gleason_score"), "mean": MeanQuery(column="psa")},
                   reps, f"{rows:,}")
    cohort.engine.session().stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10**6, help="rows for the in-memory and PostgreSQL rounds")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--big", action="store_true", help="add 10^8 rows on Parquet (writes about 1.4 GB once)")
    p.add_argument("--postgres", action="store_true", help="also time a PostgreSQL server (Debian package)")
    p.add_argument("--spark", action="store_true", help="also time Spark in local mode (needs Java)")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-parquet", action="store_true")
    a = p.parse_args(argv)
    print(f"engines benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if not a.skip_memory:
        in_memory(a.rows, a.reps)
    if not a.skip_parquet:
        on_parquet([10**6, 10**7] + ([BIG] if a.big else []), max(3, a.reps // 3))
    if a.postgres:
        on_postgres(a.rows, max(3, a.reps // 3))
    if a.spark:
        on_spark(a.rows, max(3, a.reps // 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
