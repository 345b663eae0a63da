"""`python -m benchmarks.clinician_session`: a scripted clinician session of 20 typical questions on
the prostate demo cohort, and how many are answered for free from earlier releases.

Each question is first offered as a free answer (post-processing of a stored release, cost 0,
`privacy.release.free_answer`); otherwise it is released at epsilon 0.1 (an identical question
is served from the ledger at no cost). Prints, per question, how it was answered, then the share
answered for free and the epsilon spent, on a fresh temporary ledger with a large dataset budget.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from privacy.queries import make_query

SESSION = [  # (stat, column, by, (restriction column, index of its public category)): overview, then details
    ("crosstab", "isup_grade_group", "site", None),
    ("histogram", "isup_grade_group", None, None),
    ("histogram", "site", None, None),
    ("count", None, None, None),
    ("count", None, None, ("site", 0)),
    ("histogram", "isup_grade_group", None, ("site", 1)),
    ("crosstab", "clinical_t_stage", "risk_group", None),
    ("histogram", "risk_group", None, None),
    ("histogram", "clinical_t_stage", None, ("risk_group", -1)),
    ("count", None, None, ("risk_group", -1)),
    ("mean", "psa", None, None),
    ("grouped-mean", "psa", "risk_group", None),
    ("histogram", "age", None, None),
    ("crosstab", "treatment", "risk_group", None),
    ("histogram", "treatment", None, ("risk_group", 0)),
    ("count", None, None, ("treatment", 1)),
    ("quantile", "psa", None, None),
    ("grouped-quantile", "psa", "risk_group", None),
    ("histogram", "treatment", None, None),
    ("count", None, None, ("risk_group", 1)),
]


def _session(cohort, schema, choose_epsilon, show: bool) -> tuple[int, float]:
    """Run the 20 questions on a fresh ledger; returns (answered for free, epsilon spent)."""
    from privacy.ledger import BudgetLedger
    from privacy.release import free_answer, release

    cats = {c.name: c.categories for c in schema.of_kind("categorical")}
    free, spent = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        lg = BudgetLedger(Path(tmp) / "session.sqlite")
        lg.set_dataset_budget(schema.dataset_id, 100.0, actor="benchmark")
        for i, (stat, col, by, where) in enumerate(SESSION, 1):
            w = f"{where[0]}={cats[where[0]][where[1]]}" if where else None
            q = make_query(stat, column=col, by=by, where=w)
            rel = free_answer(q, schema, lg, "clinician", record=True)
            how = "free (derived from an earlier release)"
            if rel is None:
                rel = release(q, cohort, choose_epsilon(q), lg, "clinician")
                how = "free (identical release)" if rel.cached else f"released, epsilon {rel.epsilon:.3g}"
                spent += 0.0 if rel.cached else rel.epsilon
            free += how.startswith("free")
            if show:
                print(f"  {i:2d}. {rel.description:62s} {how}")
        lg.close()
    return free, spent


def main() -> int:
    from data.cohorts import load_cohort
    from data.prepare import prepare
    from dashboard.widgets import PRESETS
    from privacy.release import epsilon_for_error
    from privacy.words import DEFAULT_TARGETS, target_halfwidth, target_kind

    frame, schema = load_cohort("prostate")
    cohort = prepare(frame, schema)
    print(f"scripted clinician session on '{schema.dataset_id}' ({cohort.n_rows:,} patients), epsilon 0.1 per "
          "new release")
    free, spent = _session(cohort, schema, lambda q: 0.1, show=True)
    print(f"answered for free: {free} of {len(SESSION)} ({free / len(SESSION):.0%}); epsilon spent {spent:.3g} "
          f"(without free answers: {0.1 * len(SESSION):.3g})")

    def by_target(q):
        kind = target_kind(q.stat)
        return epsilon_for_error(q, schema, target_halfwidth(q.stat, DEFAULT_TARGETS[kind], schema))

    modes = [(f"{name}", lambda q, e=eps: e) for name, eps in PRESETS.items()]
    modes.append(("Target accuracy, the app's defaults (counts ±{counts:g}, means ±{mean:g} unit, quantiles "
                  "±{quantile:g} percentiles)".format(**DEFAULT_TARGETS), by_target))
    print(f"the same session in each privacy mode of the app, against the default budget epsilon "
          f"{schema.default_budget:g}:")
    for name, choose in modes:
        free, spent = _session(cohort, schema, choose, show=False)
        fits = "fits" if spent <= schema.default_budget else "does NOT fit"
        print(f"  {name:70s} spent {spent:6.3g} ({free} free): {fits}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
