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
    from privacy.release import _checked
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, cohort.schema, epsilon, mechanism, delta)
    data = plan.make_input(cohort)
    outs = [plan.finish(plan.measurement(data), alpha) for _ in range(draws)]
    return Simulation(list(plan.labels), plan.truth(cohort),
                      np.array([o.values for o in outs], dtype=float),
                      np.array([o.ci_low for o in outs], dtype=float),
                      np.array([o.ci_high for o in outs], dtype=float),
                      plan.cost[0], plan.cost[1], plan.mechanism, float(next(iter(plan.noise.values()))[1]),
                      {k: {"distribution": d, "scale": s} for k, (d, s) in plan.noise.items()})


# ---------------------------------------------------------------- owner-side utility measures
def total_variation(truth, noisy) -> float:
    """TV distance between the true distribution and the noisy one (negatives clipped, renormalised)."""
    t = np.clip(np.nan_to_num(np.asarray(truth, dtype=float)), 0, None)
    n = np.clip(np.nan_to_num(np.asarray(noisy, dtype=float)), 0, None)
    if t.sum() <= 0 or n.sum() <= 0:
        return 1.0
    return float(0.5 * np.abs(t / t.sum() - n / n.sum()).sum())


def relative_error(truth, noisy) -> list[float]:
    t, n = np.asarray(truth, dtype=float), np.asarray(noisy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.abs(n - t) / np.abs(t)).tolist()


@dataclass(frozen=True)
class TradeoffPoint:
    epsilon: float
    analytic: float      # expected 95% half-width from OpenDP accuracy (nan where none exists)
    empirical: float     # 95th percentile of |error| over simulated draws on the true data


def tradeoff_curve(query: Query, cohort: PreparedCohort, epsilons, draws: int = 100,
                   mechanism: str = "laplace", delta: float = DEFAULT_DELTA) -> list[TradeoffPoint]:
    """Error against epsilon, analytic and empirical (owner only: uses the true data, spends nothing)."""
    out = []
    for eps in epsilons:
        plan = build_plan(query, cohort.schema, float(eps), mechanism, delta)
        pv = plan.expected_error(0.05)
        sim = simulate(query, cohort, float(eps), draws, mechanism, delta)
        analytic = float(pv.get("halfwidth", float("nan")))
        if pv.get("unit") == "ranks":  # quantile preview is in patients' ranks, not comparable with value errors
            analytic = float("nan")
        if pv.get("kind") == "mean":  # the half-width of a mean depends on the (true) group size
            n_true = float(np.sum(~np.isnan(plan.make_input(cohort)))) if query.stat == "mean" else float("nan")
            a_s, a_c = pv["sum_halfwidth"], pv["count_halfwidth"]
            analytic = a_s / (n_true - a_c) if n_true > a_c else float("nan")
        err = np.abs(sim.errors)
        out.append(TradeoffPoint(float(eps), analytic, float(np.nanquantile(err, 0.95))))
    return out


def count_error_by_size(query: Query, schema, epsilon: float, sizes, mechanism: str = "laplace",
                        delta: float = DEFAULT_DELTA) -> list[float]:
    """Relative 95% error of a count (or mean, per unit of range) for hypothetical cohort sizes."""
    pv = build_plan(query, schema, float(epsilon), mechanism, delta).expected_error(0.05)
    out = []
    for n in sizes:
        if pv.get("kind") == "mean":
            a_s, a_c = pv["sum_halfwidth"], pv["count_halfwidth"]
            col = schema.column(query.column)
            out.append(a_s / (n - a_c) / (col.upper - col.lower) if n > a_c else float("nan"))
        else:
            out.append(float(pv.get("halfwidth", float("nan"))) / n)
    return out
