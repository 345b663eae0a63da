"""`python -m benchmarks [--quick | --big] [--json PATH]`: speed of DP releases vs NumPy.

Prints, per query kind and row count, plan-build, end-to-end release, invocation-only and NumPy
baseline medians with ratios and peak memory, then PASS/FAIL against the speed targets (median
end-to-end at 10^6 rows under 50 ms for histograms and the mean; end-to-end at most 1.5x the
invocation alone). Informational only: the exit status is 0 whatever the timings.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smoke run: 10^5 rows only, 3 repetitions")
    g.add_argument("--big", action="store_true", help="add 10^7 rows (takes a few minutes, several GB)")
    p.add_argument("--json", metavar="PATH", help="write all results (with raw samples) to PATH")
    p.add_argument("--reps", type=int, default=None, help="max repetitions per measurement (default 7, quick 3)")
    p.add_argument("--kinds", default=None, help="comma-separated subset of query kinds")
    p.add_argument("--synthetic", action="store_true", help="use the built-in synthetic frame, not the prostate cohort")
    p.add_argument("--ledger-dir", default=None, help="directory for the temporary ledger (default: system temp)")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    from privacy.opendp_runtime import dp  # noqa: F401  (the one-off import cost, reported)
    import_s = time.perf_counter() - t0

    from benchmarks import png_export, report
    from benchmarks.cohort import KINDS, pick_source
    from benchmarks.measure import MEMORY_METHOD
    from benchmarks.suite import Bench

    sizes = [10**5] if a.quick else [10**5, 10**6] + ([10**7] if a.big else [])
    reps = a.reps or (3 if a.quick else 7)
    kinds = tuple(k.strip() for k in a.kinds.split(",")) if a.kinds else KINDS
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        p.error(f"unknown kind(s) {', '.join(bad)}; choose from {', '.join(KINDS)}")
    source = pick_source(a.synthetic)

    import importlib.metadata as md
    versions = {k: md.version(k) for k in ("opendp", "numpy", "pandas", "polars")}
    print(f"benchmarks: data {source.name}, rows {', '.join(f'{n:,}' for n in sizes)}, up to {reps} reps, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    load = os.getloadavg()
    print(f"import opendp: {import_s:.2f} s; load average {load[0]:.2f} (this process counts about 1; more means other work competes)")

    with tempfile.TemporaryDirectory(prefix="dp-bench-", dir=a.ledger_dir) as tmp:
        bench = Bench(source, tmp, reps, kinds)
        w = bench.warm_up()
        print(f"warm-up (first release of each kind in this process, 2,000 rows): {w:.2f} s total; "
              + ", ".join(f"{k} {v:.0f} ms" for k, v in bench.warmup.items()))
        prep, queries = [], []
        t_all = time.perf_counter()
        for n in sizes:
            cohort, pr = bench.prepare_phase(n, max_reps=3)
            prep.append(pr)
            print(f"  {n:>10,} generate {pr.generate_s:.2f} s, prepare {pr.prepare_s:.2f} s (median of "
                  f"{len(pr.prepare_all_s)})")
            queries += bench.query_phase(n, cohort)
            del cohort
        bench.close()
        total_s = time.perf_counter() - t_all

    print()
    print("Cohort preparation (data.prepare.prepare; generate = data generation, not product code)")
    print(report.prepare_table(prep))
    print()
    print("Releases per query kind")
    print(report.query_table(queries))
    print(report.LEGEND.format(memory=MEMORY_METHOD))
    print()
    text, targets = report.targets_text(queries)
    print(text)
    load_end = os.getloadavg()
    busy = max(load[0], load_end[0])
    if busy > (os.cpu_count() or 1):  # this process itself adds about 1
        print(f"WARNING: load average {busy:.1f} on {os.cpu_count()} CPUs: other processes were running, so these "
              "timings are inflated; rerun on an idle machine before trusting PASS/FAIL (the JSON keeps raw samples).")
    print(f"(measured in {total_s:.0f} s after warm-up; load average at start {load[0]:.2f}, at end {load_end[0]:.2f})")

    if a.json:
        meta = {"source": source.name, "sizes": sizes, "max_reps": reps, "kinds": list(kinds), "cpus": os.cpu_count(),
                "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
                "import_opendp_s": import_s, "warmup_ms": bench.warmup, "memory_method": MEMORY_METHOD,
                "ledger": "temporary SQLite file in " + (a.ledger_dir or tempfile.gettempdir()),
                "epsilon_warm": 0.5, "loadavg_start": load, "loadavg_end": load_end, "mechanism": "laplace", "measured_s": total_s}
        report.write_json(a.json, meta, prep, queries, targets)
        print(f"wrote {a.json}")
    png_export.main(["--rounds", "1" if a.quick else "3"])   # PNG export of the radiology report, old vs batched
    return 0


if __name__ == "__main__":
    sys.exit(main())
