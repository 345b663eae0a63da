"""`python -m benchmarks.simulate_speed [--draws 500] [--epsilon 0.5] [--page]`: owner simulations.

Time for `--draws` simulated releases of each statistic on the default cohort (prostate demo,
20,000 patients), measured in this run against two baselines on the same plan and data:
- old: the per-draw path simulate used before (invoke the measurement on the NumPy/Polars input,
  converted on every call, then `plan.finish`, one thread);
- bare: the OpenDP invocation alone on the already converted input, one thread, no
  post-processing: the cost of OpenDP's noise sampler itself, the floor for one thread.
`now` is `privacy.simulate.simulate` (input converted once, draws on threads, same measurement and
post-processing). `--page` also times the Trade-off page's whole computation (every epsilon of its
grid) for a few statistics, now against old. Informational: no PASS/FAIL except the 5 s target
column; wall times are inflated when other processes compete for the CPUs (load average shown).
"""
from __future__ import annotations

import argparse
import os
import time

CASES = [
    ("count", None, None),
    ("histogram", "isup_grade_group", None),
    ("histogram", "age", None),
    ("crosstab", "isup_grade_group", "site"),
    ("mean", "psa", None),
    ("mean", "age", None),
    ("quantile", "age", None),
    ("quantile", "psa", None),
    ("grouped-mean", "psa", "isup_grade_group"),
    ("grouped-quantile", "age", "site"),
    ("grouped-quantile", "psa", "isup_grade_group"),
]
PAGE_CASES = [("quantile", "psa", None), ("mean", "psa", None), ("histogram", "age", None)]
TARGET_S = 5.0


def _name(stat, column, by) -> str:
    return stat + (f" {column}" if column else "") + (f" by {by}" if by else "")


def _old(plan, data, draws, alpha=0.05):
    return [plan.finish(plan.measurement(data), alpha) for _ in range(draws)]


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.simulate_speed", description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--epsilon", type=float, default=0.5)
    p.add_argument("--page", action="store_true", help="also time the Trade-off page's full epsilon grid")
    a = p.parse_args(argv)

    from data.cohorts import load_cohort
    from data.prepare import prepare
    from privacy.measurements import build_plan
    from privacy.queries import make_query
    from privacy.simulate import _workers, native_input, simulate, tradeoff

    frame, schema = load_cohort("prostate")
    cohort = prepare(frame, schema)
    load0 = os.getloadavg()[0]
    print(f"simulate_speed: prostate demo, {cohort.n_rows:,} patients, {a.draws} draws at epsilon {a.epsilon:g}, "
          f"{os.cpu_count()} CPUs, {_workers(a.draws, None)} threads; load average {load0:.2f}")
    head = (f"{'statistic':44s} {'noisy/draw':>10s} {'old s':>7s} {'old cpu':>7s} {'bare s':>7s} {'now s':>7s} "
            f"{'now cpu':>7s} "
            f"{'old/now':>7s} {'now/bare':>8s} {'us/noisy':>8s}  <5 s")
    print(head)
    print("-" * len(head))
    for stat, col, by in CASES:
        q = make_query(stat, col, by=by)
        plan = build_plan(q, schema, a.epsilon)
        data = plan.make_input(cohort)
        native = native_input(plan.measurement, data)
        simulate(q, cohort, a.epsilon, 2)                         # warm caches (interval tables) for all paths
        first = plan.measurement(native)
        noisy = len(first) if hasattr(first, "__len__") else 2 * len(plan.labels) if stat == "grouped-mean" else 1
        old, old_cpu = _timed(lambda: _old(plan, data, a.draws))
        bare, bare_cpu = _timed(lambda: [plan.measurement(native) for _ in range(a.draws)])
        now, now_cpu = _timed(lambda: simulate(q, cohort, a.epsilon, a.draws))
        per = bare_cpu / (a.draws * noisy) * 1e6
        print(f"{_name(stat, col, by):44s} {noisy:>10,} {old:7.2f} {old_cpu:7.2f} {bare:7.2f} {now:7.2f} {now_cpu:7.2f} "
              f"{old / now:6.1f}x {now / bare:7.2f}x {per:8.1f}  {'yes' if now < TARGET_S else 'NO'}", flush=True)
    print("noisy/draw: noisy values OpenDP draws per release (grouped mean: sums and counts inside Polars, so "
          "'bare' there is only the lazy plan, the noise is drawn in finish). us/noisy: bare CPU time per noisy value.")

    if a.page:
        grid = [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]
        print()
        print(f"Trade-off page: {a.draws} draws at each of {len(grid)} epsilons")
        for stat, col, by in PAGE_CASES:
            q = make_query(stat, col, by=by)

            def old_page():
                for e in grid:
                    plan = build_plan(q, schema, e)
                    _old(plan, plan.make_input(cohort), a.draws)

            old, old_cpu = _timed(old_page)
            now, now_cpu = _timed(lambda: tradeoff(q, cohort, grid, a.draws))
            print(f"  {_name(stat, col, by):42s} old {old:6.1f} s (cpu {old_cpu:.1f} s), now {now:6.1f} s "
                  f"(cpu {now_cpu:.1f} s), "
                  f"{old / now:.1f}x", flush=True)
    load1 = os.getloadavg()[0]
    if max(load0, load1) > (os.cpu_count() or 1):
        print(f"WARNING: load average {max(load0, load1):.1f} on {os.cpu_count()} CPUs: other processes competed, "
              "so wall times (and the thread speed-up) are worse than on an idle machine; 'now cpu' is this "
              "process's CPU time.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
