"""Quantiles over public candidate values with OpenDP's exponential mechanism (noisy max).

Public: the candidate grid (schema), the quantile level, the column bounds (values clamped).
Cost: the privacy map of the score + noisy-max chain at d_in = max rows per patient.
"""
from __future__ import annotations

import numpy as np

from privacy.accuracy import accuracy
from privacy.calibrate import calibrate
from privacy.opendp_runtime import dp
from privacy.queries import QuantileQuery


def _quantile_plan(q: QuantileQuery, schema, epsilon, mechanism, delta):
    from privacy.measurements import Outcome, Plan, _centred, _rows, _float_space

    col = schema.column(q.column)
    d_in = schema.max_rows_per_unit
    cands = list(col.quantile_candidates)
    if mechanism != "laplace":
        mechanism_used = "laplace"  # selection is pure-DP; Gaussian does not apply
    def build(scale: float):
        return (_float_space() >> dp.t.then_clamp(bounds=(col.lower, col.upper))
                >> dp.t.then_quantile_score_candidates(candidates=cands, alpha=float(q.q))
                >> dp.m.then_noisy_max(dp.max_divergence(), scale=scale, negate=True))

    m, (scale,), cost = calibrate([build], [1.0], d_in, epsilon, "laplace", 0.0)

    def make_input(cohort):
        return _centred(cohort, q.column, _rows(cohort, q), 0.0)

    def finish(raw, alpha):
        v = cands[int(raw)]
        return Outcome([v], [col.lower], [col.upper], {"interval": "public bounds (placeholder)"})

    def truth(cohort):
        x = make_input(cohort)
        return [float(np.quantile(x, q.q))] if len(x) else [float("nan")]

    def preview(alpha):
        return {"kind": "quantile", "halfwidth": float("nan"), "words": "quantile accuracy depends on the data"}

    return Plan(q, schema, epsilon, "laplace", 0.0, m, d_in, cost, [schema.label(q.column)],
                {"selection": ("gumbel (exponential mechanism)", scale)}, make_input, finish, truth, preview)


from privacy.measurements import register  # noqa: E402
register(QuantileQuery, _quantile_plan)
