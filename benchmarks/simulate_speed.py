"""`python -m benchmarks.simulate_speed [--draws 500] [--epsilon 0.5] [--repeats 1] [--all] [--page]`: owner simulations.

Time for `--draws` simulated releases of each statistic on the default cohort (prostate demo,
20,000 patients) against the 5 s target of issue 10, on the same plan and data:
- per-draw: what simulate did before the vectorised path (the release's measurement invoked once
  per draw on the input converted once to OpenDP's native form, draws on threads, `finish`);
- now: `privacy.simulate.simulate` (true aggregate once, one OpenDP noise invocation per chunk
  of draws on the tiled aggregate, chunks on threads, the release's own `finish`);
- page: `simulate(..., only_groups_with_truth=True)`, what the Trade-off page runs at each epsilon
  (grouped statistics draw no noise for groups without patients: nothing to compare there);
- floor: OpenDP's sampler alone for the noisy values of `page`, at the CPU time per noisy value
  measured here on one thread: no simulation of this statistic can use less CPU.
Wall times are the best of `--repeats` runs; CPU is this process's CPU time in that run (with 2
threads it can exceed wall). `target` is page wall / 5 s (< 1: under target). `--all` adds the
other statistics; `--page` times the Trade-off page's whole epsilon grid. Wall times are inflated
when other processes compete for the CPUs (load average shown): read CPU times and ratios then.
"""
from __future__ import annotations

import argparse
import os
import time

MAIN = [  # the statistics named in issue 10, grouped median first
    ("grouped-quantile", "psa", "isup_grade_group", "grouped median"),
    ("quantile", "psa", None, "median"),
    ("mean", "psa", None, "mean"),
    ("grouped-mean", "psa", "isup_grade_group", "grouped mean"),
    ("histogram", "age", None, "histogram"),
    ("survival", "followup_months", None, "survival"),
]
MORE = [
    ("count", None, None, "count"),
    ("histogram", "isup_grade_group", None, "histogram"),
    ("crosstab", "isup_grade_group", "site", "crosstab"),
    ("mean", "age", None, "mean"),
    ("quantile", "age", None, "median"),
    ("grouped-quantile", "age", "site", "grouped median"),
]
PAGE_CASES = [("grouped-quantile", "psa", "isup_grade_group"), ("quantile", "psa", None), ("mean", "psa", None),
              ("histogram", "age", None)]
TARGET_S = 5.0


def _name(stat, column, by, nick) -> str:
    return f"{nick}: " + stat + (f" {column}" if column else "") + (f" by {by}" if by else "")


def _timed(fn, repeats: int = 1):
    best = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        run = (time.perf_counter() - t, time.process_time() - c)
        best = run if best is None or run[0] < best[0] else best
    return best


def _sampler_us(repeats: int) -> float:
    """CPU microseconds per discrete Laplace value of OpenDP's sampler, one thread, 50,000 values."""
    import numpy as np

    from privacy.simulate import noise_measurement
    m = noise_measurement("discrete laplace", 2.0)
    x = np.zeros(50_000, dtype=np.int32)
    best = min(_timed(lambda: m(x.copy()))[1] for _ in range(max(1, repeats)))
    return best / len(x) * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.simulate_speed", description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--epsilon", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=1, help="best wall time of this many runs")
    p.add_argument("--all", action="store_true", help="also the other statistics")
    p.add_argument("--no-per-draw", action="store_true", help="skip the (slow) per-draw baseline")
    p.add_argument("--page", action="store_true", help="also time the Trade-off page's full epsilon grid")
    a = p.parse_args(argv)

    import numpy as np

    from data.cohorts import load_cohort
    from data.prepare import prepare
    from privacy.measurements import build_plan
    from privacy.queries import make_query
    from privacy.simulate import _workers, draw_outcomes, simulate, tradeoff, vectorised

    frame, schema = load_cohort("prostate")
    cohort = prepare(frame, schema)
    load0 = os.getloadavg()[0]
    us = _sampler_us(3)
    print(f"simulate_speed: prostate demo, {cohort.n_rows:,} patients, {a.draws} draws at epsilon {a.epsilon:g}, "
          f"{os.cpu_count()} CPUs, {_workers(a.draws, None)} threads; load average {load0:.2f}; OpenDP sampler "
          f"{us:.1f} us CPU per noisy value")
    head = (f"{'statistic':52s} {'noisy/draw':>10s} {'per-draw s':>10s} {'cpu':>6s} {'now s':>6s} {'cpu':>6s} "
            f"{'page s':>6s} {'cpu':>6s} {'floor cpu':>9s} {'speed-up':>8s} {'target':>7s}")
    print(head)
    print("-" * len(head))
    for stat, col, by, nick in MAIN + (MORE if a.all else []):
        q = make_query(stat, col, by=by)
        plan = build_plan(q, schema, a.epsilon)
        data = plan.make_input(cohort)
        truth = plan.truth(cohort)
        hide = [i for i, t in enumerate(truth) if not np.isfinite(t)]
        vec_all, vec_page = vectorised(plan, data), vectorised(plan, data, hide)
        simulate(q, cohort, a.epsilon, 2)                          # warm caches (interval tables) for all paths
        if a.no_per_draw:
            old = old_cpu = float("nan")
        else:
            old, old_cpu = _timed(lambda: draw_outcomes(plan, data, a.draws), a.repeats)
        now, now_cpu = _timed(lambda: simulate(q, cohort, a.epsilon, a.draws), a.repeats)
        page, page_cpu = _timed(lambda: simulate(q, cohort, a.epsilon, a.draws, only_groups_with_truth=True),
                                a.repeats)
        floor = vec_page.noisy_per_draw * a.draws * us / 1e6
        print(f"{_name(stat, col, by, nick):52s} {vec_all.noisy_per_draw:>10,} {old:10.2f} {old_cpu:6.2f} "
              f"{now:6.2f} {now_cpu:6.2f} {page:6.2f} {page_cpu:6.2f} {floor:9.2f} {old / page:7.1f}x "
              f"{page / TARGET_S:6.2f}{' ' if page < TARGET_S else '!'}", flush=True)
    print("noisy/draw: noisy values per release (all groups; 'page' skips groups without patients). speed-up: "
          "per-draw wall / page wall. target: page wall / 5 s, '!' = over the target.")

    if a.page:
        from dashboard.widgets import PRESETS
        grid = sorted({0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, *PRESETS.values()})
        print()
        print(f"Trade-off page: {a.draws} draws at each of {len(grid)} epsilons")
        for stat, col, by in PAGE_CASES:
            q = make_query(stat, col, by=by)
            wall, cpu = _timed(lambda: tradeoff(q, cohort, grid, a.draws))
            print(f"  {_name(stat, col, by, stat):50s} {wall:6.1f} s (cpu {cpu:.1f} s)", flush=True)
    load1 = os.getloadavg()[0]
    if max(load0, load1) > (os.cpu_count() or 1) * 0.75:
        print(f"WARNING: load average {max(load0, load1):.1f} on {os.cpu_count()} CPUs: other processes competed, "
              "so wall times (and the thread speed-up) are worse than on an idle machine; CPU columns are this "
              "process's CPU time.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
