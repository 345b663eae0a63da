"""`python -m benchmarks.cohort_load [--big]`: time and peak memory to make a Parquet cohort queryable.

For each size, the synthetic prostate cohort is written to a Parquet file, then a FRESH Python
process loads it (data.loaders.load_table) and prepares it (data.prepare.prepare) — the work the
app caches once per cohort. Peak memory is that process's peak RSS (ru_maxrss), interpreter and
libraries included. Targets (issue 3): 10^6 rows ready within 2 s, 10^7 within 15 s, peak < 3 GB.
Informational: prints PASS/FAIL, always exits 0.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = {10**6: 2.0, 10**7: 15.0}
TARGET_PEAK_MB = 3072

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import pandas, numpy  # libraries the app has imported anyway
from data.loaders import load_table
from data.prepare import prepare
from data.cohorts import cohort_schema
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
frame = load_table(sys.argv[1])
t2 = time.perf_counter()
c = prepare(frame, cohort_schema("prostate"), keep_frame=False)
del frame
t3 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"load_s": t2 - t1, "prepare_s": t3 - t2, "ready_s": t3 - t1, "peak_mb": peak / 1024,
                  "base_mb": base / 1024, "rows": c.n_rows}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cohort_load", description=__doc__.splitlines()[0])
    p.add_argument("--big", action="store_true", help="add 10^7 rows")
    a = p.parse_args(argv)
    from data.cohorts import generate_prostate

    sizes = [10**5, 10**6] + ([10**7] if a.big else [])
    print(f"{'rows':>6} {'file MB':>8} {'load s':>7} {'prepare s':>9} {'ready s':>8} {'peak MB':>8}  target")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"prostate_{n}.parquet"
            generate_prostate(rows=n).to_parquet(path)
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parents[1])
            if out.returncode != 0:
                print(f"{n:>6.0e} FAILED: {out.stderr.strip().splitlines()[-1]}")
                ok = False
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            tgt = TARGET_S.get(n)
            verdict = ""
            if tgt is not None:
                passed = r["ready_s"] < tgt and r["peak_mb"] < TARGET_PEAK_MB
                ok &= passed
                verdict = f"{'PASS' if passed else 'FAIL'} (< {tgt:g} s, < {TARGET_PEAK_MB} MB)"
            print(f"{n:>6.0e} {path.stat().st_size / 2**20:>8.1f} {r['load_s']:>7.2f} {r['prepare_s']:>9.2f} "
                  f"{r['ready_s']:>8.2f} {r['peak_mb']:>8.0f}  {verdict}")
    print("COHORT LOAD TARGETS:", "PASS" if ok else "FAIL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
