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


def main() -> int:
    from data.cohorts import load_cohort
    from data.prepare import prepare
    from privacy.ledger import BudgetLedger
    from privacy.release import free_answer, release

    frame, schema = load_cohort("prostate")
    cohort = prepare(frame, schema)
    cats = {c.name: c.categories for c in schema.of_kind("categorical")}
    free = spent = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        lg = BudgetLedger(Path(tmp) / "session.sqlite")
        lg.set_dataset_budget(schema.dataset_id, 100.0, actor="benchmark")
        print(f"scripted clinician session on '{schema.dataset_id}' ({cohort.n_rows:,} patients), epsilon 0.1 per "
              "new release")
        for i, (stat, col, by, where) in enumerate(SESSION, 1):
            w = f"{where[0]}={cats[where[0]][where[1]]}" if where else None
            q = make_query(stat, column=col, by=by, where=w)
            rel = free_answer(q, schema, lg, "clinician", record=True)
            how = "free (derived from an earlier release)"
            if rel is None:
                rel = release(q, cohort, 0.1, lg, "clinician")
                how = "free (identical release)" if rel.cached else f"released, epsilon {rel.epsilon:.3g}"
                spent += 0.0 if rel.cached else rel.epsilon
            free += how.startswith("free")
            print(f"  {i:2d}. {rel.description:62s} {how}")
        lg.close()
    print(f"answered for free: {int(free)} of {len(SESSION)} ({free / len(SESSION):.0%}); epsilon spent {spent:.3g} "
          f"(without free answers: {0.1 * len(SESSION):.3g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
