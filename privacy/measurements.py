"""Query spec + public schema + epsilon -> a calibrated OpenDP measurement (a `Plan`).

Privacy facts, for every plan:
- Input metric: symmetric distance on rows. One patient contributes at most
  `schema.max_rows_per_unit` rows (enforced in `data.prepare`), so the cost is the privacy map
  at d_in = max_rows_per_unit. The cost is read from OpenDP, never computed by hand.
- Everything used to shape the computation (categories, bin edges, bounds, candidates, the
  restriction category) is public schema metadata. Row-wise maps done in NumPy before the
  measurement (category codes, public bin ids, centring by the public mid-range, the public
  restriction filter) are 1-stable: they never increase how many rows one patient changes.
- Plans hold no data. They are cached per (query, schema, epsilon, mechanism, delta).

This module is the shared core (`Plan`, `Outcome`, input and noise helpers, `build_plan`,
`register`); each statistic's plan builder lives in its own module under `privacy/stats/`
(counts, mean, quantile, survival), imported at the bottom so that it registers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from data.prepare import PreparedCohort
from data.schema import Schema
from privacy.calibrate import DEFAULT_DELTA
from privacy.opendp_runtime import dp
from privacy.queries import Query, release_key, validate_epsilon, validate_mechanism, validate_query


def _int_space():
    return dp.vector_domain(dp.atom_domain(T=dp.i32)), dp.symmetric_distance()


def _float_space():
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


@dataclass(frozen=True)
class Outcome:
    """Post-processed output of one invocation (what becomes a Release's numbers)."""

    values: list[float]
    ci_low: list[float]
    ci_high: list[float]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """A calibrated measurement for one query; holds no private data.

    `cost` is OpenDP's privacy map at d_in = max rows per patient: (epsilon, delta), a
    `calibrate.Cost` that also carries the zCDP form (`cost.rho`, `cost.zcdp`).
    `noise` names each noisy part ("counts", "sum", "count", ...) with its distribution and scale.
    `cells`: for a count over public cells 0..cells-1 (`then_count_by_categories`), how many (what
    an engine aggregates, `privacy.engine`); None for other measurements.
    """

    query: Query
    schema: Schema
    epsilon: float
    mechanism: str
    delta: float
    measurement: Any
    d_in: int
    cost: tuple[float, float]
    labels: list[str]
    noise: dict[str, tuple[str, float]]
    make_input: Callable[[PreparedCohort], Any]
    finish: Callable[[Any, float], Outcome]
    truth_fn: Callable[[PreparedCohort], list[float]]
    preview_fn: Callable[[float], dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)
    cells: int | None = None

    def run(self, cohort: PreparedCohort, alpha: float = 0.05, engine: str | None = None) -> Outcome:
        """Invoke the measurement once on the private cohort. Spends budget: call via release().

        Where the statistic has an aggregate form, an engine computes its public-cell aggregates
        and OpenDP noises them (`privacy.engine.invoke`); `engine="opendp-rows"` forces OpenDP's
        row-level measurement. Same cost, same noise law."""
        from privacy.engine import invoke
        return self.finish(invoke(self, cohort, engine), alpha)

    def truth(self, cohort: PreparedCohort) -> list[float]:
        """Non-private values of the same statistic. Data-owner views only."""
        return self.truth_fn(cohort)

    def expected_error(self, alpha: float = 0.05) -> dict[str, Any]:
        """Expected (1-alpha) error of each released value; from OpenDP accuracy, no data touched."""
        return self.preview_fn(alpha)

    @property
    def rho(self) -> float:
        """zCDP cost (OpenDP's map of the zCDP form at d_in), for zCDP accounting."""
        return self.cost.rho

    @functools.cached_property
    def release_key(self) -> str:
        """The release's identity on the plan's dataset (`privacy.queries.release_key`)."""
        return release_key(self.schema.dataset_id, self.query, self.epsilon, self.mechanism, self.delta)

    @functools.cached_property
    def description(self) -> str:
        return self.query.describe(self.schema)

    @functools.cached_property
    def query_key(self) -> str:
        return self.query.key()

    @property
    def mechanism_name(self) -> str:
        return ", ".join(f"{k}: {d} (scale {s:.4g})" for k, (d, s) in self.noise.items())


# ------------------------------------------------------------------------------- input helpers
def _rows(cohort: PreparedCohort, query: Query) -> np.ndarray | None:
    return cohort.mask(query.where.column, query.where.value) if query.where else None


def _sel(arr: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return arr[mask] if mask is not None else arr


def _noise_of(mechanism: str, discrete: bool) -> str:
    return ("discrete " if discrete else "") + ("laplace" if mechanism == "laplace" else "gaussian")


def _then_noise(mechanism: str, scale: float):
    return dp.m.then_laplace(scale=scale) if mechanism == "laplace" else dp.m.then_gaussian(scale=scale)


def _count_metric(mechanism: str):
    return dp.L1Distance[dp.i32] if mechanism == "laplace" else dp.L2Distance[dp.i32]


def _int64_space():
    return dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.symmetric_distance()


# ------------------------------------------------------------------------------------ builder
_BUILDERS: dict[type, Callable] = {}   # query type -> plan builder; each statistic's module registers its own


def register(query_type: type, builder: Callable) -> None:
    _BUILDERS[query_type] = builder
    _build_plan.cache_clear()


def unregister(query_type: type) -> None:
    _BUILDERS.pop(query_type, None)
    _build_plan.cache_clear()


def build_plan(query: Query, schema: Schema, epsilon: float, mechanism: str = "laplace",
               delta: float = DEFAULT_DELTA) -> Plan:
    """Validate and calibrate. Raises QueryError for bad specs/epsilon. Touches no data.
    Plans are cached per (query, schema, epsilon, mechanism, delta), however the call names them."""
    return _build_plan(query, schema, epsilon, mechanism, delta)


@functools.lru_cache(maxsize=512)
def _build_plan(query: Query, schema: Schema, epsilon: float, mechanism: str, delta: float) -> Plan:
    validate_query(query, schema)
    epsilon = validate_epsilon(epsilon)
    validate_mechanism(mechanism)
    if mechanism == "laplace":
        delta = 0.0
    return _BUILDERS[type(query)](query, schema, epsilon, mechanism, delta)


# The statistics, one module each under privacy/stats/; importing them registers their plan builders.
from privacy.stats import counts as _counts  # noqa: E402,F401  (CountQuery, HistogramQuery, CrossTabQuery)
from privacy.stats import mean as _mean  # noqa: E402,F401  (MeanQuery, GroupedMeanQuery)
from privacy.stats import quantile as _quantile  # noqa: E402,F401  (QuantileQuery, GroupedQuantileQuery)
from privacy.stats import survival as _survival  # noqa: E402,F401  (SurvivalQuery)
from privacy.stats import synthetic as _synthetic  # noqa: E402,F401  (SyntheticQuery; mbi imported only when used)

# Names that lived here before the statistics moved to privacy/stats/ (still imported from here).
from privacy.stats.counts import (_axis, _count_plan, _counts_plan, _crosstab_plan, _hist_labels,  # noqa: E402,F401
                                  _histogram_codes, _histogram_plan, date_bins, numeric_bin_codes, numeric_bins)
from privacy.stats.mean import (SUM_RESOLUTION_STEPS, _centred, _grouped_mean_plan, _mean_parts,  # noqa: E402,F401
                                _mean_plan, _mean_preview, _quantised)
