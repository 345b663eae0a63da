"""`python -m benchmarks.cohort_load [--big] [--sizes 1e5,1e6,1e7] [--reps N]`: load + prepare a cohort file.

For each size the synthetic prostate cohort is written once as CSV and as Parquet. Then FRESH
Python processes read it, in turn (repetitions interleaved, so drift in machine speed hits every
reader alike):

    data.loaders.load_table + data.prepare.prepare  (the app's and the CLI's path, "ours")
    pandas.read_csv / pandas.read_parquet           (plain readers, to a pandas DataFrame)
    pandas.read_csv(engine="pyarrow")               (CSV: pyarrow's parser, to a pandas DataFrame)
    pyarrow.csv.read_csv / pyarrow.parquet.read_table  (plain readers, to an Arrow table)

and the table prints load, prepare and load + prepare ("ready") seconds (medians), CPU seconds
(all threads: steadier than the clock when other work competes for the 2 CPUs; when the load
average exceeds the CPU count at the start, the ratio target is judged on them), peak memory
(the process's peak RSS above its RSS after imports and one warm-up read of a 100-row file, which
pays the libraries' start-up as an app process does once), and ours / plain for every plain reader.

Targets (issue 14), from 10^6 rows on (below, a read takes a tenth of a second and fixed costs
dominate): our CSV load + prepare ("ready"; for Parquet the load) within 1.5x of the plain read to a
DataFrame by the parser the loader is built on, pyarrow's (`pandas.read_csv(engine="pyarrow")`,
`pandas.read_parquet`); prepare under 0.3 s at 10^6 rows for CSV as for Parquet; (issue 3) 10^6 rows
ready within 2 s, 10^7 within 15 s, peak < 3 GB. The ratio to the fastest plain reader is printed
beside it, not judged: on this machine pandas' single-threaded C parser reads the prostate CSV
faster than pyarrow's parser alone on 2 threads (0.13 s against 0.09 s to split the lines and
0.19 s to a typed table, warm), and it yields text where the loader must yield dates and
categories, which cost another 0.15 s in pandas; no reader that yields the loader's table comes
within 1.5x of it here.
The last lines name the largest cohort loaded, its peak memory, and how many rows of it this
machine's memory holds at that peak per row (what the demo schemas' `max_rows` is set from).
Sizes: 10^5, 10^6 and 10^7 rows, 3 fresh processes per reader (about 2 minutes here); --big (or
DP_BENCH_BIG=1) adds 3x10^7, one process per reader (about 3 minutes more; every reader's peak stays
under 14 GB). The files are flushed to disk (`os.sync`) before any is read, so the first reader does
not pay for the write-back of the others' files. Informational: prints PASS/FAIL, exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_READY_S = {10**6: 2.0, 10**7: 15.0}
TARGET_PEAK_MB = 3072
TARGET_RATIO = 1.5
RATIO_FROM_ROWS = 10**6          # below, a read takes a tenth of a second and fixed costs dominate
TARGET_PREPARE_S = {10**6: 0.3}

CHILD = r"""
import json, resource, sys, time
which, path, max_rows, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.parquet   # libraries the app has imported anyway
import dataclasses
from data.loaders import load_table
from data.prepare import prepare
from data.cohorts import cohort_schema
schema = cohort_schema("prostate")
if max_rows > schema.max_rows:                  # a bench-only bound for sizes above the demo schema's
    schema = dataclasses.replace(schema, max_rows=max_rows)
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
def cpu_s():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
def run(p, out):
    c0 = cpu_s()
    t0 = time.perf_counter()
    if which == "ours":
        frame = load_table(p)
        t1, c1 = time.perf_counter(), cpu_s()
        c = prepare(frame, schema, keep_frame=False)
        del frame
        out.update(prepare_s=time.perf_counter() - t1, prepare_cpu_s=cpu_s() - c1, rows=c.n_rows)
    elif which == "pandas":
        frame = pandas.read_csv(p) if p.endswith(".csv") else pandas.read_parquet(p)
        t1 = time.perf_counter(); out["rows"] = len(frame)
    elif which == "pandas_arrow":
        frame = pandas.read_csv(p, engine="pyarrow")
        t1 = time.perf_counter(); out["rows"] = len(frame)
    else:
        table = pyarrow.csv.read_csv(p) if p.endswith(".csv") else pyarrow.parquet.read_table(p)
        t1 = time.perf_counter(); out["rows"] = table.num_rows
    out["load_s"] = t1 - t0
    out["cpu_s"] = cpu_s() - c0                  # all threads, load (+ prepare for ours)
run(warm, {})                   # library start-up (thread pools, lazy imports): once per app process
base = rss_mb()
out = {}
run(path, out)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out.update(peak_mb=peak - base, base_mb=base)
print(json.dumps(out))
"""

READERS = {"csv": (("ours", "data.loaders + prepare"), ("pandas", "pandas.read_csv"),
                   ("pandas_arrow", "pandas.read_csv(pyarrow)"), ("arrow", "pyarrow.csv.read_csv")),
           "parquet": (("ours", "data.loaders + prepare"), ("pandas", "pandas.read_parquet"),
                       ("arrow", "pyarrow.parquet.read_table"))}
# The judged reader: the plain read to a DataFrame by the parser the loader is built on (pyarrow's).
SAME_PARSER = {"csv": "pandas_arrow", "parquet": "pandas"}


def write_files(n: int, folder: Path) -> dict[str, Path]:
    """The prostate cohort of n rows as CSV (unquoted, like pandas.to_csv) and Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from data.cohorts import generate_prostate

    frame = generate_prostate(rows=n)
    paths = {"csv": folder / f"prostate_{n}.csv", "parquet": folder / f"prostate_{n}.parquet"}
    frame.to_parquet(paths["parquet"])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    del frame
    cols = []
    for c in table.columns:
        if pa.types.is_dictionary(c.type):
            c = c.cast(pa.string())
        elif pa.types.is_timestamp(c.type):
            c = c.cast(pa.date32())
        cols.append(c)
    table = pa.table(cols, names=table.column_names)
    with open(paths["csv"], "wb") as fh:                # header unquoted too, as pandas writes it
        fh.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return paths


def run_child(which: str, path: Path, n: int) -> dict:
    warm = path.with_name("warm-up" + path.suffix)
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(path), str(n), str(warm)], capture_output=True,
                         text=True, cwd=ROOT)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["no output"]
        return {"error": lines[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mem_total_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("MemTotal")) / 1024
    except (OSError, StopIteration, ValueError):
        return None


def median(rs: list[dict], key: str) -> float | None:
    xs = [r[key] for r in rs if key in r]
    return statistics.median(xs) if xs else None


def _ratio(ours: float | None, plain: float | None) -> float | None:
    return ours / plain if ours and plain else None


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cohort_load", description=__doc__.splitlines()[0])
    p.add_argument("--big", action="store_true", help="add 3x10^7 rows (also DP_BENCH_BIG=1)")
    p.add_argument("--sizes", help="comma-separated row counts instead, e.g. 1e5,1e6,3e7")
    p.add_argument("--reps", type=int, default=None, help="fresh processes per reader (default 3; 1 above 10^7)")
    p.add_argument("--json", metavar="PATH", help="write the measurements to PATH")
    a = p.parse_args(argv)
    big = a.big or os.environ.get("DP_BENCH_BIG", "") not in ("", "0")
    if a.sizes:
        sizes = [int(float(s)) for s in a.sizes.split(",") if s.strip()]
    else:
        sizes = [10**5, 10**6, 10**7] + ([3 * 10**7] if big else [])
    load0 = os.getloadavg()[0]
    # Other work on the machine inflates clock times unevenly (group scheduling ignores `nice`); the
    # readers' CPU seconds stay put, so the ratio target is then judged on CPU seconds.
    busy = load0 > (os.cpu_count() or 1)
    print(f"cohort load: prostate cohort as CSV and Parquet, rows {', '.join(f'{n:,}' for n in sizes)}; "
          f"{os.cpu_count()} CPUs, load average {load0:.1f}"
          + (" (above the CPU count: other work competes and every time is inflated; the ratio target "
             "is judged on CPU seconds)" if busy else ""))
    results: list[dict] = []
    largest = None
    ok = True
    with tempfile.TemporaryDirectory(prefix="dp-load-bench-") as tmp:
        for fmt, path in write_files(100, Path(tmp)).items():
            path.rename(path.with_name("warm-up" + path.suffix))
        for n in sizes:
            t = time.perf_counter()
            paths = write_files(n, Path(tmp))
            os.sync()                    # no write-back of these files while the first reader reads
            sizes_mb = {k: v.stat().st_size / 2**20 for k, v in paths.items()}
            print(f"\n{n:,} rows: CSV {sizes_mb['csv']:.1f} MB, Parquet {sizes_mb['parquet']:.1f} MB "
                  f"(written in {time.perf_counter() - t:.0f} s)")
            reps = a.reps or (1 if n > 10**7 else 3)
            print(f"  {'format':<8} {'reader':<28} {'load s':>7} {'prepare s':>9} {'ready s':>8} "
                  f"{'cpu s':>6} {'peak MB':>8}  ours/plain (clock; load cpu = CPU seconds of the load)")
            for fmt in ("csv", "parquet"):
                runs: dict[str, list[dict]] = {w: [] for w, _ in READERS[fmt]}
                for _ in range(reps):
                    for which, _label in READERS[fmt]:
                        runs[which].append(run_child(which, paths[fmt], n))
                errors = {w: r[-1]["error"] for w, r in runs.items() if r and "error" in r[-1]}
                row = {w: {k: median(runs[w], k) for k in ("load_s", "prepare_s", "prepare_cpu_s", "peak_mb", "cpu_s")}
                       for w in runs}
                ours = row["ours"]
                plain = [w for w, _ in READERS[fmt] if w != "ours"]
                ready = None if ours["load_s"] is None else ours["load_s"] + (ours["prepare_s"] or 0.0)
                ours_cpu = None if ours["cpu_s"] is None else ours["cpu_s"] - (ours["prepare_cpu_s"] or 0.0)
                ratios = {w: _ratio(ours["load_s"], row[w]["load_s"]) for w in plain}
                ready_ratios = {w: _ratio(ready, row[w]["load_s"]) for w in plain}
                cpu_ratios = {w: _ratio(ours_cpu, row[w]["cpu_s"]) for w in plain}
                ready_cpu_ratios = {w: _ratio(ours["cpu_s"], row[w]["cpu_s"]) for w in plain}
                for which, label in READERS[fmt]:
                    r = row[which]
                    if which in errors:
                        print(f"  {fmt:<8} {label:<28} FAILED: {errors[which]}")
                        ok = False
                        continue
                    if which == "ours":
                        tail = ""
                    else:
                        tail = (f"load {_f(ratios[which], '{:.2f}x')}, ready {_f(ready_ratios[which], '{:.2f}x')}, "
                                f"load cpu {_f(cpu_ratios[which], '{:.2f}x')}, "
                                f"ready cpu {_f(ready_cpu_ratios[which], '{:.2f}x')}")
                    print(f"  {fmt:<8} {label:<28} {_f(r['load_s']):>7} {_f(r['prepare_s']):>9} "
                          f"{_f(ready if which == 'ours' else None):>8} {_f(r['cpu_s']):>6} "
                          f"{_f(r['peak_mb'], '{:.0f}'):>8}  {tail}")
                if "ours" in errors:
                    continue
                verdicts = []
                # CSV: load + prepare against the plain reader's load (parsing dominates both). Parquet:
                # the load alone (reading 14 MB takes a tenth of preparing it; the prepare target covers it).
                if fmt == "csv":
                    judged, what = (ready_cpu_ratios if busy else ready_ratios), "load + prepare"
                else:
                    judged, what = (cpu_ratios if busy else ratios), "load"
                same = judged.get(SAME_PARSER[fmt])
                label = dict(READERS[fmt])[SAME_PARSER[fmt]]
                if same is not None and n >= RATIO_FROM_ROWS:
                    passed = same <= TARGET_RATIO
                    ok &= passed
                    verdicts.append(f"{what} {same:.2f}x {label}, the plain read by the loader's parser"
                                    f"{' in CPU seconds' if busy else ''} ({'PASS' if passed else 'FAIL'} "
                                    f"<= {TARGET_RATIO}x)")
                    best = max((x for x in judged.values() if x is not None), default=None)
                    if best is not None:             # informational: see the module's docstring
                        verdicts.append(f"{best:.2f}x the fastest plain reader (not judged)")
                prep = ours["prepare_cpu_s"] if busy else ours["prepare_s"]
                if n in TARGET_PREPARE_S and prep is not None:
                    passed = prep < TARGET_PREPARE_S[n]
                    ok &= passed
                    verdicts.append(f"prepare {prep:.2f} s{' CPU' if busy else ''} "
                                    f"{'PASS' if passed else 'FAIL'} (< {TARGET_PREPARE_S[n]} s)")
                if fmt == "parquet" and n in TARGET_READY_S and ready is not None:
                    passed = ready < TARGET_READY_S[n] and (ours["peak_mb"] or 0) < TARGET_PEAK_MB
                    ok &= passed
                    verdicts.append(f"ready {'PASS' if passed else 'FAIL'} (< {TARGET_READY_S[n]:g} s, "
                                    f"< {TARGET_PEAK_MB} MB)")
                if verdicts:
                    print(f"  {fmt:<8} {'':<28} " + "; ".join(verdicts))
                results.append({"rows": n, "format": fmt, "file_mb": sizes_mb[fmt], "reps": reps,
                                "median": row, "ready_s": ready, "load_ratio": ratios,
                                "ready_ratio": ready_ratios, "ready_cpu_ratio": ready_cpu_ratios, "runs": runs})
                if ready is not None and (largest is None or n > largest[0]):
                    largest = (n, {})
                if ready is not None and largest is not None and n == largest[0]:
                    largest[1][fmt] = (ready, ours["peak_mb"])
    load1 = os.getloadavg()[0]
    if largest:
        n, by_fmt = largest
        print(f"\nlargest cohort loaded: {n:,} rows; "
              + "; ".join(f"{fmt} ready in {r:.1f} s, peak {pk:.0f} MB above the interpreter"
                          for fmt, (r, pk) in by_fmt.items()))
        total_mb = _mem_total_mb()
        worst = max((pk for _, pk in by_fmt.values() if pk), default=None)
        if total_mb and worst:
            holds = int(total_mb * 0.9 / (worst / n) // 10**6 * 10**6)
            print(f"memory: {total_mb / 1024:.0f} GB on this machine; at {worst / n * 1e6:.0f} MB per 10^6 rows "
                  f"(the larger peak) about {holds:,} rows fit in 90 % of it "
                  "(the demo schemas declare max_rows 50,000,000)")
    if max(load0, load1) > (os.cpu_count() or 1):
        print(f"WARNING: load average {max(load0, load1):.1f} on {os.cpu_count()} CPUs: other processes were "
              "running; rerun on an idle machine before trusting the seconds and PASS/FAIL.")
    print("COHORT LOAD TARGETS:", "PASS" if ok else "FAIL")
    if a.json:
        Path(a.json).write_text(json.dumps({"sizes": sizes, "loadavg": [load0, load1], "results": results},
                                           indent=1))
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
