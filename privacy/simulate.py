"""Data-owner only: many draws of a query on the true data, WITHOUT spending the ledger budget.

This is for privacy-utility demonstrations on data the owner already holds. Its outputs include
the true (non-private) values and must never reach an analyst view.

Every plan here is (a public row-wise aggregate) >> (OpenDP noise on the aggregate), and the
release's answer is `Plan.finish` of the noisy aggregate. The simulation exploits that:

- Vectorised path (counts, histograms, crosstabs, quantiles, grouped quantiles, survival, means,
  grouped means): the true aggregate (cell counts; a mean's integer sum and count; a grouped
  mean's per-group count and clamped sum) is computed ONCE, by OpenDP's own transformation
  where the plan uses one, and the noise for many draws comes from ONE invocation of an OpenDP
  noise measurement (`dp.m.make_laplace` / `dp.m.make_gaussian` over a vector domain, at the
  plan's own distribution and scale) on the aggregate tiled once per draw. Each draw is then
  handed to the release's own `Plan.finish` in the form the plan's measurement returns. The
  noise law is the release's: the same OpenDP sampler at the same scale, iid per cell and
  draw (tests/test_simulate_vectorised.py checks it against the per-draw path).
- Per-draw path (any other plan, or `vectorised=False`): one invocation of the release's own
  measurement per draw, on the input converted once into OpenDP's native form.

Noise never comes from NumPy. Chunks of draws run on a few threads (OpenDP's native calls
release the GIL). What remains is OpenDP's exact sampler, about 10 microseconds per noisy value
on this kind of machine whichever noise (`benchmarks/simulate_speed.py`): a grouped median over
7 groups x 282 cells is about 10^6 noisy values for 500 draws. The Trade-off page therefore
draws no noise for groups without patients (`only_groups_with_truth`): they have no true value
to compare with, and every group's answer depends on its own cells only.
"""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from data.prepare import PreparedCohort
from privacy.calibrate import DEFAULT_DELTA
from privacy.measurements import build_plan
from privacy.queries import GroupedMeanQuery, GroupedQuantileQuery, Query

MAX_DRAWS = 100_000
MAX_WORKERS = 4
DRAWS_PER_WORKER = 25          # fewer draws than this per thread are run on one thread
CHUNK_VALUES = 20_000          # noisy values per OpenDP noise invocation (several chunks per thread)


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


def native_input(measurement, data):
    """`data` converted once into OpenDP's native input object for `measurement`.

    This is the conversion `measurement(data)` does on every call (`opendp.core.measurement_invoke`
    passes an already converted object through unchanged). OpenDP copies the data into its own
    memory and the measurement only reads it. Falls back to `data` itself (converted on every
    call, as before) if this OpenDP version lays its internals out differently."""
    try:
        from opendp._convert import py_to_c
        from opendp._lib import AnyObjectPtr
        from opendp.core import measurement_input_carrier_type
        return py_to_c(data, c_type=AnyObjectPtr, type_name=measurement_input_carrier_type(measurement))
    except Exception:  # noqa: BLE001 - any failure: the plain (slower) path is always correct
        return data


def _workers(draws: int, workers: int | None) -> int:
    if workers is not None:
        return max(1, min(int(workers), draws))
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1, draws // DRAWS_PER_WORKER))


def draw_outcomes(plan, data, draws: int, alpha: float = 0.05, workers: int | None = None) -> list:
    """`draws` independent (invoke the plan's measurement, then `plan.finish`) on one prepared input."""
    native = native_input(plan.measurement, data)

    def run(n: int) -> list:
        return [plan.finish(plan.measurement(native), alpha) for _ in range(n)]

    w = _workers(draws, workers)
    if w == 1:
        return run(draws)
    sizes = [draws // w + (i < draws % w) for i in range(w)]
    with ThreadPoolExecutor(w, thread_name_prefix="dp-simulate") as ex:
        return [o for chunk in ex.map(run, sizes) for o in chunk]


# ------------------------------------------------------------------------ vectorised draws
@functools.lru_cache(maxsize=64)
def noise_measurement(distribution: str, scale: float, atom: str = "i32"):
    """OpenDP's noise over a vector of any length: the plan's own `distribution` ('discrete
    laplace', 'discrete gaussian', 'laplace', 'gaussian') at the plan's own `scale`, iid per
    element, for integer (`atom` 'i32' / 'i64') or float aggregates."""
    from privacy.opendp_runtime import dp

    discrete = distribution.startswith("discrete")
    T = {"i32": dp.i32, "i64": dp.i64}[atom] if discrete else float
    domain = dp.vector_domain(dp.atom_domain(T=T) if discrete else dp.atom_domain(T=float, nan=False))
    if distribution.endswith("laplace"):
        return dp.m.make_laplace(domain, dp.l1_distance(T=T), scale=float(scale))
    if distribution.endswith("gaussian"):
        return dp.m.make_gaussian(domain, dp.l2_distance(T=T), scale=float(scale))
    raise ValueError(f"unknown noise {distribution!r}")


@dataclass
class Part:
    """One noisy part of a plan's aggregate: its true value (computed once) and OpenDP's noise."""

    truth: np.ndarray           # the true aggregate vector (cell counts, [sum], [count], per-group sums...)
    distribution: str
    scale: float
    atom: str = "i32"           # the aggregate's OpenDP type: 'i32', 'i64' or 'f64'
    noisy: np.ndarray | None = None   # indices that get noise (None: all); the rest stay true (not shown)

    def draws(self, n: int) -> np.ndarray:
        """`n` noisy copies of the aggregate (n x len(truth)), the noise from ONE OpenDP invocation."""
        idx = np.arange(len(self.truth)) if self.noisy is None else self.noisy
        dtype = {"i32": np.int32, "i64": np.int64, "f64": np.float64}[self.atom]
        tiled = np.tile(self.truth[idx].astype(dtype), n)            # a fresh, writable array
        out = np.asarray(noise_measurement(self.distribution, self.scale, self.atom)(tiled), dtype=dtype)
        full = np.repeat(self.truth.astype(dtype)[None, :], n, axis=0)
        full[:, idx] = out.reshape(n, len(idx))
        return full


@dataclass
class Vectorised:
    """A plan's aggregate split into noisy parts, and how one draw becomes the plan's raw output."""

    parts: list[Part]
    to_raw: Callable[[list[np.ndarray]], Any]     # one draw's noisy part vectors -> what the measurement returns
    hidden: tuple[int, ...] = ()                  # released values not simulated (groups without truth)

    @property
    def noisy_per_draw(self) -> int:
        return sum(len(p.truth) if p.noisy is None else len(p.noisy) for p in self.parts)

    def raws(self, n: int) -> list:
        cols = [p.draws(n) for p in self.parts]
        return [self.to_raw([c[i] for c in cols]) for i in range(n)]


def vectorised(plan, data, hide_groups=(), aggregates=None) -> Vectorised | None:
    """The vectorised form of `plan` on its prepared input `data` (or on its engine `aggregates`,
    for a cohort whose rows stay in an engine), or None (per-draw path).

    The true aggregates and their noisy parts are the plan's aggregate form (`privacy.engine`:
    the same cells, sums and counts, distributions and scales as a release). `hide_groups`:
    indices of groups (grouped quantile / grouped mean) whose cells get no noise; their released
    values are set to nan afterwards (each group's answer depends on its own cells only, so the
    other groups' law is unchanged)."""
    from privacy.engine import EngineUnsupported, aggregate_noise, aggregates_of_input

    try:
        form = aggregate_noise(plan)
    except EngineUnsupported:
        return None
    q = plan.query
    hide = tuple(sorted(int(g) for g in hide_groups)) if isinstance(q, (GroupedQuantileQuery,
                                                                       GroupedMeanQuery)) else ()
    parts = []
    if aggregates is None:
        aggregates = aggregates_of_input(form, data)
    for part, agg in zip(form.parts, aggregates):
        dist, scale = plan.noise[part.name]
        keep = None
        if hide:
            n = part.size
            per = n // len(plan.labels)           # cells per group (1 for a grouped mean's vectors)
            keep = np.flatnonzero(~np.isin(np.arange(n) // per, hide))
        parts.append(Part(np.atleast_1d(np.asarray(agg, dtype=np.int64)), dist, scale, part.T, keep))

    def to_raw(p: list[np.ndarray]):             # one draw, in the row-level measurement's format
        vals = [v if part.size is not None else int(v[0]) for part, v in zip(form.parts, p)]
        return vals[0] if form.kind == "cells" else vals

    return Vectorised(parts, to_raw, hide)


def _chunks(draws: int, per_draw: int, workers: int) -> list[int]:
    size = max(1, min(draws, CHUNK_VALUES // max(1, per_draw), -(-draws // workers)))
    return [min(size, draws - i) for i in range(0, draws, size)]


def draw_vectorised(plan, vec: Vectorised, draws: int, alpha: float = 0.05, workers: int | None = None) -> list:
    """`draws` outcomes: chunks of OpenDP noise on the tiled aggregate, each draw then `plan.finish`."""
    def run(n: int) -> list:
        outs = [plan.finish(raw, alpha) for raw in vec.raws(n)]
        if vec.hidden:
            outs = [_hide(o, vec.hidden) for o in outs]
        return outs

    w = _workers(draws, workers)
    sizes = _chunks(draws, vec.noisy_per_draw, w)
    if w == 1 or len(sizes) == 1:
        return [o for n in sizes for o in run(n)]
    with ThreadPoolExecutor(w, thread_name_prefix="dp-simulate") as ex:
        return [o for chunk in ex.map(run, sizes) for o in chunk]


def _hide(o, hidden: tuple[int, ...]):
    """Released values of groups that were not simulated: nan (their cells had no noise)."""
    vals, lo, hi = list(o.values), list(o.ci_low), list(o.ci_high)
    for i in hidden:
        vals[i] = lo[i] = hi[i] = float("nan")
    return type(o)(vals, lo, hi, o.extra)


def simulate(query: Query, cohort: PreparedCohort, epsilon: float, draws: int = 200, mechanism: str = "laplace",
             delta: float = DEFAULT_DELTA, alpha: float = 0.05, workers: int | None = None, *,
             vectorised_draws: bool = True, only_groups_with_truth: bool = False) -> Simulation:
    """Run the release's own OpenDP noise `draws` times on the true data (owner only).

    The plan (the calibrated measurement) and its input are built once; the true aggregate is
    computed once and each chunk of draws is one OpenDP noise invocation (see the module
    docstring; `vectorised_draws=False`: one invocation of the plan's measurement per draw);
    `workers` threads (default: up to 4, at most one per CPU) share the chunks.
    `only_groups_with_truth`: groups of a grouped mean / quantile without patients (no true
    value) are not simulated: their values are nan."""
    draws = int(draws)
    if not 1 <= draws <= MAX_DRAWS:
        raise ValueError(f"draws must be between 1 and {MAX_DRAWS:,}, got {draws}")
    from privacy.release import _checked
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, cohort.schema, epsilon, mechanism, delta)
    if getattr(cohort, "engine", None) is not None:
        return _simulate_on_engine(plan, cohort, draws, alpha, workers, only_groups_with_truth)
    data = plan.make_input(cohort)
    truth = plan.truth(cohort)
    vec = None
    if vectorised_draws:
        hide = [i for i, t in enumerate(truth) if not np.isfinite(t)] if only_groups_with_truth else ()
        vec = vectorised(plan, data, hide)
    outs = draw_vectorised(plan, vec, draws, alpha, workers) if vec is not None else draw_outcomes(
        plan, data, draws, alpha, workers)
    return _simulation(plan, truth, outs)


class RowsNeeded(ValueError):
    """The statistic's simulation reads the table's rows, which stay in the cohort's engine."""


def engine_truth(plan, aggregates, alpha: float = 0.05) -> list[float]:
    """True values (owner only) from the engine's exact aggregates: the release's own `finish`
    without noise. Exact for counts, histograms, crosstabs, grouped counts and survival (the
    same public cells); a mean to the release's quantisation step; a quantile to its public cell.
    A mean or quantile of no patients (a group without any) has none: nan, as from the rows."""
    vec = vectorised(plan, None, aggregates=aggregates)
    values = [float(v) for v in plan.finish(vec.to_raw([p.truth for p in vec.parts]), alpha).values]
    if plan.query.stat in ("mean", "grouped-mean", "quantile", "grouped-quantile"):
        values = [v if n > 0 else float("nan") for v, n in zip(values, _group_counts(plan, aggregates))]
    return values


def _simulate_on_engine(plan, cohort, draws: int, alpha: float, workers, only_groups_with_truth: bool) -> Simulation:
    """`simulate` for a cohort whose rows stay in an engine (Parquet, a database, Spark): the engine
    computes the true aggregate once (the same cells, sums and counts a release reads; nothing is
    charged), the truth is `engine_truth`, the draws are OpenDP's noise on it as for any cohort."""
    from privacy.engine import EngineUnsupported, prepare_input

    try:
        _, aggregates = prepare_input(plan, cohort)
    except EngineUnsupported:
        raise RowsNeeded(f"simulating {plan.query.describe(plan.schema).lower()} reads the table's rows, which "
                         "stay in this cohort's engine") from None
    truth = engine_truth(plan, aggregates, alpha)
    hide = [i for i, t in enumerate(truth) if not np.isfinite(t)] if only_groups_with_truth else ()
    vec = vectorised(plan, None, hide, aggregates=aggregates)
    return _simulation(plan, truth, draw_vectorised(plan, vec, draws, alpha, workers))


def _group_counts(plan, aggregates) -> list[int]:
    """Patients (non-missing values) behind each value of a mean or quantile (one per group of a
    grouped one), from its exact aggregates."""
    from privacy.engine import aggregate_noise
    form = aggregate_noise(plan)
    if form.kind == "sum_count":
        return [int(aggregates[1])]
    if form.kind == "grouped_sum_count":
        return [int(n) for n in np.asarray(aggregates[[p.name for p in form.parts].index("count")])]
    cells = np.asarray(aggregates[0])
    return [int(v) for v in cells.reshape(len(plan.labels), -1).sum(axis=1)]


def _simulation(plan, truth, outs) -> Simulation:
    return Simulation(list(plan.labels), truth,
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


def true_values(query: Query, cohort: PreparedCohort) -> list[np.ndarray]:
    """The true non-missing values of the query's column, one array per released value (one per
    group of a grouped statistic), restricted like the release (owner only)."""
    x = cohort.numbers[query.column]
    keep = ~np.isnan(x)
    if query.where is not None:
        keep &= cohort.mask(query.where.column, query.where.value)
    if not isinstance(query, (GroupedMeanQuery, GroupedQuantileQuery)):
        return [x[keep]]
    g = cohort.codes[query.by][keep]
    v = x[keep]
    return [v[g == i] for i in range(len(cohort.schema.column(query.by).bucket_labels))]


def true_mean(query: Query, cohort: PreparedCohort) -> float:
    """True mean of the query's column over all its (restricted) patients: owner only. On a cohort
    whose rows stay in an engine: the mean's `engine_truth` (exact to its rounding step)."""
    if getattr(cohort, "engine", None) is not None:
        from privacy.engine import prepare_input
        from privacy.queries import MeanQuery
        plan = build_plan(MeanQuery(column=query.column, where=query.where), cohort.schema, 1.0)
        return engine_truth(plan, prepare_input(plan, cohort)[1])[0]
    x = np.concatenate(true_values(query, cohort))
    return float(x.mean()) if len(x) else float("nan")


@dataclass(frozen=True)
class GroupFacts:
    """What the Trade-off's expected line needs of each released value's true data (owner only):
    its number of patients and, for a quantile, its true cell counts and true quantile."""

    n: int
    cells: np.ndarray | None = None
    quantile: float = float("nan")


def group_facts(query: Query, cohort: PreparedCohort) -> list[GroupFacts]:
    """`GroupFacts` of each released value of a mean or quantile (one per group of a grouped one),
    from the rows, or from the engine's exact aggregates when the rows stay in an engine (a
    quantile's true value then to its public candidate cell)."""
    from privacy.quantile import cell_codes
    quantile = query.stat in ("quantile", "grouped-quantile")
    if getattr(cohort, "engine", None) is None:
        groups = true_values(query, cohort)
        if not quantile:
            return [GroupFacts(len(x)) for x in groups]
        cands = np.asarray(cohort.schema.column(query.column).quantile_candidates, dtype=float)
        return [GroupFacts(len(x), np.bincount(cell_codes(x, cands), minlength=len(cands) + 1).astype(float),
                           float(np.quantile(x, float(query.q))) if len(x) else float("nan")) for x in groups]
    from privacy.engine import prepare_input
    plan = build_plan(query, cohort.schema, 1.0)
    _, aggregates = prepare_input(plan, cohort)
    if not quantile:
        return [GroupFacts(n) for n in _group_counts(plan, aggregates)]
    truth = engine_truth(plan, aggregates)
    cells = np.asarray(aggregates[0], dtype=float).reshape(len(plan.labels), -1)
    return [GroupFacts(int(c.sum()), c, t) for c, t in zip(cells, truth)]


@dataclass(frozen=True)
class TradeoffPoint:
    epsilon: float
    analytic: float      # expected 95% error from the public preview, in the statistic's unit (nan: none)
    empirical: float     # 95th percentile of |error| over simulated draws on the true data
    analytic_values: tuple[float, ...] = ()    # per released value (group, bar) before the median
    empirical_values: tuple[float, ...] = ()


@dataclass(frozen=True)
class Tradeoff:
    """Error against epsilon for one query (owner only: uses the true data, spends nothing)."""

    points: list[TradeoffPoint]
    stat: str
    draws: int
    basis: str            # how the expected line is computed from the public preview
    missing: str = ""     # why the expected line is missing at some epsilons ('' if drawn at every one)
    per_value: bool = False   # several released values: each point is the median over them
    values: int = 1       # how many released values have a true value (groups with patients, bars)
    extra: dict[str, Any] = field(default_factory=dict)


def _quantile_in_units(facts: GroupFacts, level: float, ranks: float, col) -> float:
    """The preview's rank error `ranks` stated in the column's unit on one group's true data.

    The release's own point rule (`privacy.quantile.quantile_from_counts`) is applied to the TRUE
    cell counts with every rank offset D(c) moved by +ranks and by -ranks (adding ranks/(1-q)
    patients below all candidates, or ranks/q above them); the answer is the larger distance of
    those two points from the true quantile. At ranks 0 it is the release's rounding to the
    candidate grid. Owner only: it reads the true distribution."""
    from privacy.quantile import quantile_from_counts

    if facts.n == 0 or not math.isfinite(ranks):
        return float("nan")
    cands = np.asarray(col.quantile_candidates, dtype=float)
    counts, truth = facts.cells, facts.quantile
    out = 0.0
    for cell, extra in ((0, ranks / max(1.0 - level, 1e-9)), (-1, ranks / max(level, 1e-9))):
        c = counts.copy()
        c[cell] += extra
        point = quantile_from_counts(c, cands, level, np.inf, col.lower, col.upper)[0]   # no interval clip
        out = max(out, abs(point - truth))
    return out


def _analytic(query: Query, schema, detail: dict, groups: list[GroupFacts] | None, n_values: int) -> np.ndarray:
    """Expected (95%) error of each released value from the preview's public accuracy; the true
    group sizes (and, for a quantile, the true distribution) are used to state it in the
    statistic's unit: owner only."""
    kind = detail.get("kind")
    if kind == "counts":
        return np.full(n_values, float(detail["halfwidth"]))
    if kind == "mean":
        a_s, a_c = float(detail["sum_halfwidth"]), float(detail["count_halfwidth"])
        n = np.array([g.n for g in groups], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > a_c, a_s / (n - a_c), np.inf)      # the preview's own formula at the true n
    if kind == "quantile":
        t = float(detail["rank_threshold"])
        col = schema.column(query.column)
        return np.array([_quantile_in_units(g, float(query.q), t, col) for g in groups])
    return np.full(n_values, np.nan)


def _survival_expected(query: Query, cohort: PreparedCohort, epsilon: float, mechanism: str, delta: float,
                       alpha: float) -> np.ndarray:
    """Expected 95% error of each survival value from the DP noise alone: the delta-method noise
    variance of log S (the release's own formula) on the TRUE counts, times z * S. Owner only."""
    from privacy import survival as sv

    plan = build_plan(query, cohort.schema, float(epsilon), mechanism, delta)
    noise, scale = plan.noise["counts"]
    nvar = sv._noise_variance(noise, scale)
    nb = int(plan.extra["time_bins"])
    per = 2 * nb + 1
    groups = len(plan.labels) // nb
    if getattr(cohort, "engine", None) is not None:      # the same cells, counted by the engine
        from privacy.engine import prepare_input
        counts = np.asarray(prepare_input(plan, cohort)[1][0], dtype=float)
    else:
        counts = np.bincount(plan.make_input(cohort), minlength=groups * per).astype(float)
    z = sv.Z95 if abs(alpha - 0.05) < 1e-12 else sv._z(alpha)
    out = []
    for row in counts.reshape(-1, per):
        s, _, eff, h = sv.kaplan_meier(row[0:2 * nb:2], row[1:2 * nb:2], row[2 * nb])
        var_noise = sv.log_variance(eff, h, nvar) - np.cumsum(h)
        out.append(np.where(eff > 0, z * s * np.sqrt(np.maximum(var_noise, 0.0)), np.nan))
    return np.concatenate(out)


def _basis(query: Query, schema, grouped: bool) -> str:
    """How the expected line is obtained from the public preview, in a few plain words."""
    kind = query.stat
    if kind in ("count", "histogram", "crosstab"):
        return "the ± that OpenDP's accuracy gives for the count noise at its scale"
    unit = (getattr(schema.column(query.column), "unit", "") or "the column's unit") if hasattr(query, "column") else ""
    where = " of each group" if grouped else ""
    if kind == "grouped-mean":
        return "the preview's ± of the noisy sum and count, divided by the true number of patients of each group"
    if kind == "mean":
        return ("the preview's ± of the noisy sum, divided by the true number of patients; the preview assumes a "
                "mean a quarter of the public range away from a bound, so a mean nearer a bound comes out a little "
                "less accurate")
    if kind == "survival":
        return ("the DP noise's part of the release's own band (delta method on the true counts, without the "
                "sampling variation), at each time bin, as percentage points of survival")
    if kind in ("quantile", "grouped-quantile"):
        name = "median" if float(getattr(query, "q", 0.5)) == 0.5 else "quantile"
        return (f"the preview's ± in patients' ranks around the true {name}, stated in {unit} on the true "
                f"values{where}: the release's own rounding rule applied to the true ranks moved that many ranks "
                "either way")
    return ""


def tradeoff(query: Query, cohort: PreparedCohort, epsilons, draws: int = 100, mechanism: str = "laplace",
             delta: float = DEFAULT_DELTA, alpha: float = 0.05, workers: int | None = None,
             on_point=None) -> Tradeoff:
    """Expected 95% error (from `privacy.release.preview`, the public accuracy) and simulated 95th
    percentile of |error| at each epsilon. For several released values (bars, groups) each point
    is the median over the values that have a true value (groups with patients). `on_point(i, n)`
    is called after each epsilon (e.g. a progress bar)."""
    from privacy.release import preview

    points = []
    groups = None
    if query.stat in ("mean", "grouped-mean", "quantile", "grouped-quantile"):
        groups = group_facts(query, cohort)
    missing: list[str] = []
    n_values = 1
    epsilons = [float(e) for e in epsilons]
    for i, eps in enumerate(epsilons):
        pv = preview(query, cohort.schema, float(eps), mechanism, delta, alpha)
        sim = simulate(query, cohort, float(eps), draws, mechanism, delta, alpha, workers,
                       only_groups_with_truth=True)
        truth = np.asarray(sim.truth, dtype=float)
        ok = np.isfinite(truth)
        n_values = int(ok.sum())
        emp = np.full(len(truth), np.nan)
        if ok.any():
            emp[ok] = np.quantile(np.abs(sim.errors[:, ok]), 1 - alpha, axis=0)
        ana = (_survival_expected(query, cohort, eps, mechanism, delta, alpha) if query.stat == "survival"
               else _analytic(query, cohort.schema, pv.detail, groups, len(truth)))
        a_sum = float(np.median(ana[ok])) if ok.any() else float("nan")
        if not math.isfinite(a_sum):
            if pv.detail.get("kind") == "mean" and ok.any():
                reason = ("the count's noise can exceed the number of patients there, so the preview bounds the "
                          "mean by its public range only")
                if reason not in missing:
                    missing.append(reason)
            a_sum = float("nan")
        e_sum = float(np.median(emp[ok])) if ok.any() else float("nan")
        points.append(TradeoffPoint(float(eps), a_sum, e_sum, tuple(float(v) for v in ana),
                                    tuple(float(v) for v in emp)))
        if on_point is not None:
            on_point(i + 1, len(epsilons))
    if n_values == 0:
        missing = ["no patient has a value here, so there is no true value to compare with"]
    grouped = query.stat in ("grouped-mean", "grouped-quantile")
    per_value = query.stat in ("histogram", "crosstab", "survival") or grouped
    return Tradeoff(points, query.stat, int(draws), _basis(query, cohort.schema, grouped), "; ".join(missing),
                    per_value, n_values)


def tradeoff_curve(query: Query, cohort: PreparedCohort, epsilons, draws: int = 100,
                   mechanism: str = "laplace", delta: float = DEFAULT_DELTA) -> list[TradeoffPoint]:
    """Error against epsilon, analytic and empirical (owner only: uses the true data, spends nothing)."""
    return tradeoff(query, cohort, epsilons, draws, mechanism, delta).points


def count_error_by_size(query: Query, schema, epsilon: float, sizes, mechanism: str = "laplace",
                        delta: float = DEFAULT_DELTA, true_mean: float | None = None) -> list[float]:
    """Relative 95% error for hypothetical group sizes n, from the public preview: a count (or each
    bar) relative to n; a quantile's rank error relative to n (a share of the patients); a mean
    relative to `true_mean` (the true mean: owner only; nan without it)."""
    from privacy.release import preview

    pv = preview(query, schema, float(epsilon), mechanism, delta).detail
    out = []
    for n in sizes:
        if pv.get("kind") == "mean":
            a_s, a_c = pv["sum_halfwidth"], pv["count_halfwidth"]
            m = abs(float(true_mean)) if true_mean is not None else float("nan")
            out.append(a_s / (n - a_c) / m if n > a_c and m > 0 else float("nan"))
        else:
            out.append(float(pv.get("halfwidth", float("nan"))) / n)
    return out
