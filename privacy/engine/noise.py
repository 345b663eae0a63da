"""OpenDP noise over engine aggregates: the measurement half of "aggregate in the engine".

Privacy facts:
- A plan's row-level measurement is `row transformation >> noise` (e.g. `make_count_by_categories`
  then discrete Laplace). An engine may compute the row transformation's output (per-cell counts,
  an integer sum and a count) itself; OpenDP then adds the noise with a measurement over that
  aggregate. Its input distance `d_mid` is the row-level transformation's own stability map at
  d_in = max rows per patient (`t.map(d_in)`), never typed by hand.
- The noise measurement uses the plan's calibrated scale, so its map at `d_mid` equals the plan's
  cost; `aggregate_noise` checks this when it is built and refuses a plan where it does not hold.
  The ledger still charges the plan's cost, which OpenDP computed for the row-level chain. (The
  grouped mean has no row-level OpenDP chain: its plan is calibrated on this form directly, see
  `privacy.stats.mean._grouped_mean_plan`.)
- Trust model: the engine (NumPy, DuckDB, PostgreSQL, Spark) is trusted to aggregate correctly
  (OpenDP calls this honest-but-curious); it sees the private rows, never the noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from privacy.opendp_runtime import dp
from privacy.queries import CountQuery, MeanQuery


class EngineUnsupported(ValueError):
    """This statistic has no aggregate form (it stays on OpenDP's row-level path)."""


@dataclass(frozen=True)
class NoisyPart:
    """One aggregate (a cell-count vector or a scalar) and the OpenDP measurement that noises it."""

    name: str                 # "counts", "sum", "count"
    size: int | None          # vector length (None: a scalar)
    measurement: Any          # OpenDP measurement on the aggregate
    d_mid: Any                # its input distance: the row transformation's map at d_in
    T: str = "i32"            # integer type of the aggregate ("i32" or "i64")

    def release(self, aggregate):
        """Noise the engine's aggregate (integer vector or scalar) through OpenDP."""
        if self.size is None:
            return self.measurement(int(aggregate))
        a = np.ascontiguousarray(aggregate, dtype=np.int32 if self.T == "i32" else np.int64)
        if a.shape != (self.size,):
            raise ValueError(f"the engine returned {a.shape} cells for a {self.size}-cell statistic")
        return self.measurement(a)


@dataclass(frozen=True)
class AggregateNoise:
    """The aggregate-level form of one plan: what the engine computes and how OpenDP noises it.

    `kind` is "cells" (counts of public cells 0..size-1: count, histogram, crosstab, quantile and
    survival cells), "sum_count" (the mean: integer sum of the rounded centred values and the
    number of non-missing values) or "grouped_sum_count" (the same per public group: two vectors,
    built by the grouped mean's plan itself)."""

    kind: str
    parts: tuple[NoisyPart, ...]
    cost: float               # the parts' OpenDP maps at d_mid, composed (checked against the plan)

    def release(self, aggregates: Sequence) -> Any:
        """Output in the row-level measurement's format (a vector, or [sum, count])."""
        outs = [p.release(a) for p, a in zip(self.parts, aggregates)]
        return outs[0] if self.kind == "cells" else outs


def n_cells(plan) -> int:
    """Number of public cells of a counts-type plan (its builder declares them: `Plan.cells`)."""
    if plan.cells is None:
        raise EngineUnsupported(f"{type(plan.query).__name__} has no public-cell form")
    return plan.cells


def _int_space(T):
    return dp.vector_domain(dp.atom_domain(T=T)), dp.symmetric_distance()


def _noise(distribution: str, domain, metric_of, scale: float):
    """OpenDP's own noise measurement for a noisy part named like Plan.noise (discrete laplace/gaussian)."""
    if distribution == "discrete laplace":
        return dp.m.make_laplace(domain, metric_of(dp.l1_distance), scale=scale)
    if distribution == "discrete gaussian":
        return dp.m.make_gaussian(domain, metric_of(dp.l2_distance), scale=scale)
    raise EngineUnsupported(f"no aggregate form for {distribution} noise")


def _cells_part(plan) -> NoisyPart:
    distribution, scale = plan.noise["counts"]
    n = n_cells(plan)
    MO = dp.L1Distance[dp.i32] if distribution == "discrete laplace" else dp.L2Distance[dp.i32]
    t = dp.t.make_count_by_categories(*_int_space(dp.i32), categories=list(range(n)), null_category=False, MO=MO)
    m = _noise(distribution, dp.vector_domain(dp.atom_domain(T=dp.i32), size=n), lambda f: f(T=dp.i32), scale)
    return NoisyPart("counts", n, m, t.map(plan.d_in))


def _count_part(plan) -> NoisyPart:
    distribution, scale = plan.noise["counts"]
    t = dp.t.make_count(*_int_space(dp.i32), TO=dp.i32)
    m = _noise(distribution, dp.atom_domain(T=dp.i32), lambda f: dp.absolute_distance(T=dp.i32), scale)
    return NoisyPart("counts", None, m, t.map(plan.d_in))


def _mean_parts(plan) -> tuple[NoisyPart, NoisyPart]:
    from privacy.stats.mean import SUM_RESOLUTION_STEPS as H
    (d_sum, s_sum), (d_cnt, s_cnt) = plan.noise["sum"], plan.noise["count"]
    space = _int_space(dp.i64)
    t_sum = space >> dp.t.then_clamp(bounds=(-H, H)) >> dp.t.make_bounded_int_split_sum(bounds=(-H, H), T=dp.i64)
    t_cnt = space >> dp.t.then_count()
    scalar = dp.atom_domain(T=dp.i64)
    m_sum = _noise(d_sum, scalar, lambda f: dp.absolute_distance(T=dp.i64), s_sum)
    m_cnt = _noise(d_cnt, dp.atom_domain(T=dp.i32), lambda f: dp.absolute_distance(T=dp.i32), s_cnt)
    return (NoisyPart("sum", None, m_sum, t_sum.map(plan.d_in), "i64"),
            NoisyPart("count", None, m_cnt, t_cnt.map(plan.d_in)))


def _composed(parts: Sequence[NoisyPart]) -> float:
    """Total of the parts' OpenDP maps (epsilon for pure DP, rho for zCDP): both compose by
    adding, which the plan's own composition map (OpenDP's) confirms in `aggregate_noise`."""
    return float(sum(p.measurement.map(p.d_mid) for p in parts))


def _build(plan) -> AggregateNoise:
    q = plan.query
    if isinstance(q, CountQuery):
        kind, parts = "cells", (_count_part(plan),)
    elif isinstance(q, MeanQuery):
        kind, parts = "sum_count", _mean_parts(plan)
    elif set(plan.noise) == {"counts"}:
        kind, parts = "cells", (_cells_part(plan),)
    else:
        raise EngineUnsupported(f"{type(q).__name__} has no aggregate form")
    zcdp = any(d.endswith("gaussian") for d, _ in plan.noise.values())
    total = _composed(parts)
    expected = plan.cost.rho if zcdp else plan.cost[0]
    if not math.isclose(total, expected, rel_tol=1e-9, abs_tol=1e-12):
        raise EngineUnsupported(f"aggregate noise costs {total!r}, the row-level plan {expected!r}")
    return AggregateNoise(kind, parts, total)


def aggregate_noise(plan) -> AggregateNoise:
    """The plan's aggregate form (cached per plan). Raises EngineUnsupported when there is none,
    or when OpenDP's maps of the aggregate form do not reproduce the plan's cost."""
    form = getattr(plan, "_aggregate_noise", None)   # kept on the (cached) plan, outside its fields
    if form is None:
        try:
            form = _build(plan)
        except EngineUnsupported as e:
            form = e
        plan._aggregate_noise = form
    if isinstance(form, EngineUnsupported):
        raise form
    return form
