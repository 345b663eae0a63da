"""`python -m benchmarks.report_budget [--draws N]`: accuracy per epsilon of the radiology review.

Measured in one run on the default radiology cohort at a report total of epsilon 0.5, with the
report's public shares: the median 95% interval width of every line, BEFORE (each department's
median a separate release at 4% of the total, as the report used to be) and AFTER (one grouped
quantile at 20%: the departments are disjoint, so all medians cost one), plus how many of the
five department medians have an interval narrower than half the public range. Then how many
"Balanced" questions a default dataset budget allows under each accounting, at the former Balanced
preset (epsilon 0.5) and at today's (dashboard.widgets.PRESETS).
Draws call the plans' OpenDP measurements directly (no ledger, nothing stored). Informational.
"""
from __future__ import annotations

import argparse
import statistics


def _widths(plan, cohort, draws: int) -> list[list[float]]:
    out = []
    for _ in range(draws):
        o = plan.run(cohort)
        out.append([h - lo for lo, h in zip(o.ci_low, o.ci_high)])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report_budget", description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=200)
    a = p.parse_args(argv)

    from data.cohorts import load_cohort
    from data.prepare import prepare
    from privacy.ledger import BudgetLedger
    from privacy.measurements import build_plan
    from privacy.queries import QuantileQuery, Where
    from privacy.reports import radiology_report
    import tempfile
    from pathlib import Path

    frame, schema = load_cohort("radiology")
    cohort = prepare(frame, schema)
    total = 0.5
    items = radiology_report(schema)
    depts = list(schema.column("department").categories)
    half_range = (schema.column("turnaround_hours").upper - schema.column("turnaround_hours").lower) / 2
    print(f"radiology review at total epsilon {total} on '{schema.dataset_id}' ({cohort.n_rows:,} exams), "
          f"{a.draws} draws per line; median 95% interval width")
    print(f"  {'line':44s} {'before':>10s} {'after':>10s}")
    narrow_before, narrow_after = [], []
    for it in items:
        plan = build_plan(it.query, schema, it.epsilon(total))
        w = _widths(plan, cohort, a.draws)
        if it.key != "turnaround_median":
            med = statistics.median(statistics.median(row) for row in w)
            print(f"  {it.title:44s} {med:10.3g} {med:10.3g}  (unchanged)")
            continue
        for i, d in enumerate(depts):
            old = build_plan(QuantileQuery(column="turnaround_hours", q=0.5, where=Where("department", d)),
                             schema, round(total * 0.20 / len(depts), 10))
            wb = statistics.median(row[0] for row in _widths(old, cohort, a.draws))
            wa = statistics.median(row[i] for row in w)
            narrow_before.append(wb < half_range)
            narrow_after.append(wa < half_range)
            print(f"  {'median turnaround: ' + d:44s} {wb:10.3g} {wa:10.3g}  hours")
    print(f"department medians with a typical 95% interval narrower than half the public range "
          f"({half_range:g} h): before {sum(narrow_before)} of {len(depts)}, after {sum(narrow_after)} of {len(depts)}")

    from dashboard.widgets import PRESETS
    balanced = next(v for k, v in PRESETS.items() if k.startswith("Balanced"))
    with tempfile.TemporaryDirectory() as tmp:
        from privacy.queries import HistogramQuery
        from privacy.release import questions_left
        for cohort_name in ("prostate", "radiology"):
            _, s = load_cohort(cohort_name)
            q = HistogramQuery(column=s.of_kind("categorical")[0].name)
            lg = BudgetLedger(Path(tmp) / f"{cohort_name}.sqlite")
            lg.ensure_budget(s.dataset_id, "bench", s.default_budget)
            for label, eps in (("before (epsilon 0.5)", 0.5), (f"after (epsilon {balanced:g})", balanced)):
                lg.set_dataset_budget(s.dataset_id, accounting="pure")
                pure = questions_left(q, s, eps, lg, "bench")
                gauss_pure = questions_left(q, s, eps, lg, "bench", "gaussian", 1e-7)
                lg.set_dataset_budget(s.dataset_id, accounting="zcdp")
                zl = questions_left(q, s, eps, lg, "bench")
                zg = questions_left(q, s, eps, lg, "bench", "gaussian", 1e-7)
                print(f"'{cohort_name}' default budget epsilon {s.default_budget:g} (delta 1e-6), Balanced {label}: "
                      f"questions allowed: pure accounting {pure} Laplace / {gauss_pure} Gaussian; zCDP accounting "
                      f"{zl} Laplace / {zg} Gaussian; identical and derived questions are free in every mode")
            lg.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
