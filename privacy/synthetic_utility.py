"""Data owner only: how useful is a released DP synthetic cohort, side by side with direct DP
releases of the same marginals, and how identifiable is it?

Reads the TRUE data (not private): never shown to analysts. For every 1-way and 2-way marginal of
the synthetic table's columns: the total variation distance (TVD) between the true marginal and
the synthetic one, and the median TVD of simulated direct releases of that marginal (a histogram
or 2-D count through the release's own OpenDP measurement, at the synthetic cohort's epsilon,
spending nothing). The anonymity measures of `data.anonymity` are run on the synthetic table.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from privacy.queries import CrossTabQuery, HistogramQuery
from privacy.simulate import simulate, total_variation

GOOD, FAIR = 0.05, 0.15     # TVD below GOOD: answers this question well; above FAIR: poorly


@dataclass(frozen=True)
class MarginalUtility:
    columns: tuple[str, ...]
    tvd_synthetic: float
    tvd_direct: float        # median over simulated direct DP releases at the same epsilon

    @property
    def verdict(self) -> str:
        t = self.tvd_synthetic
        return "well" if t < GOOD else ("fairly" if t < FAIR else "poorly")


def _synthetic_counts(synthetic: pd.DataFrame, cols: tuple[str, ...], labels) -> np.ndarray:
    """Counts of the synthetic table over the public cells (the labels the direct release uses)."""
    if len(cols) == 1:
        keys = synthetic[cols[0]].astype(str)
    else:
        keys = synthetic[cols[0]].astype(str) + " | " + synthetic[cols[1]].astype(str)
    counts = keys.value_counts()
    return np.array([float(counts.get(str(lab), 0.0)) for lab in labels])


def utility_report(cohort, synthetic: pd.DataFrame, epsilon: float, draws: int = 20,
                   mechanism: str = "laplace") -> list[MarginalUtility]:
    """Every 1-way and 2-way marginal of the synthetic columns, worst synthetic TVD first. The true
    marginal is the simulation's (from the rows, or the engine's exact cell counts when the rows
    stay in an engine)."""
    cols = list(synthetic.columns)
    out = []
    for k in (1, 2):
        for combo in itertools.combinations(cols, k):
            q = HistogramQuery(column=combo[0]) if k == 1 else CrossTabQuery(column=combo[0], by=combo[1])
            sim = simulate(q, cohort, float(epsilon), draws, mechanism)
            truth = np.asarray(sim.truth, dtype=float)
            direct = float(np.median([total_variation(truth, v) for v in sim.values]))
            out.append(MarginalUtility(tuple(combo), total_variation(truth, _synthetic_counts(synthetic, combo,
                                                                                              sim.labels)), direct))
    return sorted(out, key=lambda m: -m.tvd_synthetic)


def summary(rows: list[MarginalUtility], schema) -> list[str]:
    """Plain-language sentences: which questions the synthetic table answers well, which not."""
    def name(m):
        return " by ".join(schema.label(c) for c in m.columns)
    good = [name(m) for m in rows if m.verdict == "well"]
    poor = [name(m) for m in rows if m.verdict == "poorly"]
    worse = [name(m) for m in rows if m.tvd_synthetic > m.tvd_direct]
    lines = []
    if good:
        lines.append(f"Answers well (distribution within {GOOD:.0%} total variation of the truth): {', '.join(good)}.")
    if poor:
        lines.append(f"Answers poorly (more than {FAIR:.0%} off): {', '.join(poor)}; ask these as direct releases.")
    if worse:
        lines.append("A direct DP release at the same ε would be closer for: " + ", ".join(worse) + ".")
    if not lines:
        lines.append("Every marginal is moderately close to the truth.")
    return lines
