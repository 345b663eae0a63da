"""Data-owner only: many draws of a query on the true data, WITHOUT spending the ledger budget.

This is for privacy-utility demonstrations on data the owner already holds. Its outputs include
the true (non-private) values and must never reach an analyst view.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from data.prepare import PreparedCohort
from privacy.calibrate import DEFAULT_DELTA
from privacy.measurements import build_plan
from privacy.queries import Query

MAX_DRAWS = 100_000


@dataclass(frozen=True)
class Simulation:
    labels: list[str]
    truth: list[float]
    values: np.ndarray     # draws x values
    ci_low: np.ndarray
    ci_high: np.ndarray
    epsilon: float
    delta: float
    mechanism: str
    scale: float
    noise: dict[str, Any]

    @property
    def errors(self) -> np.ndarray:
        return self.values - np.asarray(self.truth)[None, :]

    @property
    def coverage(self) -> float:
        """Share of (draw, value) intervals that contain the true value."""
        t = np.asarray(self.truth)[None, :]
        ok = np.isfinite(t)
        hit = (self.ci_low <= t) & (t <= self.ci_high)
        return float(hit[:, ok[0]].mean()) if ok.any() else float("nan")

    def summary(self) -> dict[str, Any]:
        err = np.abs(self.errors)
        return {"draws": int(self.values.shape[0]), "mean_abs_error": float(np.nanmean(err)),
                "p95_abs_error": float(np.nanquantile(err, 0.95)), "coverage": self.coverage}

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "truth": self.truth, "epsilon": self.epsilon, "delta": self.delta,
                "mechanism": self.mechanism, "scale": self.scale, "noise": self.noise,
                "summary": self.summary(),
                "draws": [{"values": v.tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist()}
                          for v, lo, hi in zip(self.values, self.ci_low, self.ci_high)]}


def simulate(query: Query, cohort: PreparedCohort, epsilon: float, draws: int = 200, mechanism: str = "laplace",
             delta: float = DEFAULT_DELTA, alpha: float = 0.05) -> Simulation:
    """Run the release's own OpenDP measurement `draws` times on the true data (owner only)."""
    draws = int(draws)
    if not 1 <= draws <= MAX_DRAWS:
        raise ValueError(f"draws must be between 1 and {MAX_DRAWS:,}, got {draws}")
    plan = build_plan(query, cohort.schema, epsilon, mechanism, delta)
    data = plan.make_input(cohort)
    outs = [plan.finish(plan.measurement(data), alpha) for _ in range(draws)]
    return Simulation(list(plan.labels), plan.truth(cohort),
                      np.array([o.values for o in outs], dtype=float),
                      np.array([o.ci_low for o in outs], dtype=float),
                      np.array([o.ci_high for o in outs], dtype=float),
                      plan.cost[0], plan.cost[1], plan.mechanism, float(next(iter(plan.noise.values()))[1]),
                      {k: {"distribution": d, "scale": s} for k, (d, s) in plan.noise.items()})
