"""Run one differentially private release: cost -> ledger reserve -> invoke -> store -> Release.

Order is the privacy control: the plan's exact cost (OpenDP privacy map) is reserved in the
persistent ledger in one transaction BEFORE the measurement runs. An identical request returns
the stored release (no cost, no fresh noise). A failure after the charge stays charged.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from data.prepare import PreparedCohort
from privacy.calibrate import DEFAULT_DELTA
from privacy.ledger import BudgetLedger, Reservation
from privacy.measurements import Plan, build_plan
from privacy.queries import (Query, QueryError, legacy_release_key, query_from_dict, release_key,
                             validate_epsilon, validate_mechanism)

ALPHA = 0.05
MAX_DELTA = 1e-5  # Gaussian releases: delta must be tiny; delta 1 would be no privacy at all


def _checked(epsilon: Any, mechanism: Any, delta: Any) -> tuple[float, str, float]:
    """Validate epsilon, mechanism and delta BEFORE build_plan (whose cache needs hashable
    arguments): bad values raise QueryError, never TypeError or an OpenDP error."""
    epsilon = validate_epsilon(epsilon)
    mechanism = validate_mechanism(mechanism)
    if mechanism != "gaussian":
        return epsilon, mechanism, DEFAULT_DELTA  # ignored: Laplace plans cost delta 0
    try:
        d = float(delta)
    except (TypeError, ValueError):
        raise QueryError(f"delta must be a number, got {delta!r}") from None
    if not 0.0 < d <= MAX_DELTA:  # also false for NaN
        raise QueryError(f"delta must be above 0 and at most {MAX_DELTA:g} for Gaussian releases, got {delta!r}")
    return epsilon, mechanism, d


class ReleaseError(RuntimeError):
    """The measurement failed after its cost was charged (the charge stands). `str(e)` is public;
    `owner_detail` (the measurement's own error, which may depend on the data) is for the owner."""

    def __init__(self, message: str, owner_detail: str = ""):
        super().__init__(message)
        self.owner_detail = owner_detail


@dataclass(frozen=True)
class Release:
    """One DP release with its metadata. Every number in `values`/`ci_*` is OpenDP output
    (or post-processing of it); `epsilon`/`delta` are the exact charged cost."""

    dataset_id: str
    analyst: str
    query: dict[str, Any]
    description: str
    labels: list[str]
    values: list[float]
    ci_low: list[float]
    ci_high: list[float]
    alpha: float
    epsilon: float
    delta: float
    mechanism: str
    noise: dict[str, Any]
    scale: float
    timestamp: str
    release_key: str
    cached: bool = False
    remaining: float | None = None
    dataset_remaining: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("values", "ci_low", "ci_high"):
            d[k] = [None if (v is None or (isinstance(v, float) and not math.isfinite(v))) else v for v in d[k]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], **override) -> "Release":
        d = dict(d, **override)
        for k in ("values", "ci_low", "ci_high"):
            d[k] = [float("nan") if v is None else float(v) for v in d[k]]
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def query_spec(self) -> Query:
        return query_from_dict(self.query)


def _make_release(plan: Plan, cohort_id: str, analyst: str, key: str, values, lo, hi, extra, alpha) -> Release:
    main_scale = next(iter(plan.noise.values()))[1]
    return Release(
        dataset_id=cohort_id, analyst=analyst, query=plan.query.to_dict(),
        description=plan.query.describe(plan.schema), labels=list(plan.labels),
        values=[float(v) for v in values], ci_low=[float(v) for v in lo], ci_high=[float(v) for v in hi],
        alpha=alpha, epsilon=plan.cost[0], delta=plan.cost[1], mechanism=plan.mechanism,
        noise={k: {"distribution": d, "scale": s} for k, (d, s) in plan.noise.items()},
        scale=float(main_scale), timestamp=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        release_key=key, extra=dict(plan.extra, **extra))


def release(query: Query, cohort: PreparedCohort, epsilon: float, ledger: BudgetLedger, analyst: str,
            mechanism: str = "laplace", delta: float = DEFAULT_DELTA, alpha: float = ALPHA) -> Release:
    """Release `query` on `cohort` at `epsilon`, charged to the dataset's budget and `analyst`'s
    allowance in `ledger` before it runs. An identical release on the dataset (by anyone) is
    returned from the ledger at no cost.

    Raises QueryError (bad spec/epsilon, nothing charged), BudgetExceeded (nothing charged),
    LedgerError (ledger unusable, nothing charged) or ReleaseError (charged, invocation failed).
    """
    schema = cohort.schema
    ds = schema.dataset_id
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    key = release_key(ds, query, plan.epsilon, plan.mechanism, plan.delta)
    got = ledger.reserve(dataset=ds, analyst=analyst, release_key=key, epsilon=plan.cost[0],
                         delta=plan.cost[1], rho=plan.rho, mechanism=plan.mechanism, query=query.key(),
                         default_total=schema.default_budget,
                         legacy_keys=tuple(legacy_release_key(ds, a, query, plan.epsilon, plan.mechanism, plan.delta)
                                           for a in ledger.legacy_analysts(ds)))
    if not isinstance(got, Reservation):
        return _with_budget(Release.from_dict(got, cached=True, analyst=analyst), ledger, analyst)
    try:
        out = plan.run(cohort, alpha)
    except Exception as e:  # the charge stays: the measurement may have seen the data
        detail = f"{type(e).__name__}: {e}"
        ledger.record_failure(got, ds, analyst, detail)
        raise ReleaseError("the release failed after its cost was charged; the data owner can see why in "
                           "the ledger's audit trail", owner_detail=detail) from e
    rel = _make_release(plan, ds, analyst, key, out.values, out.ci_low, out.ci_high, out.extra, alpha)
    ledger.store_result(got, ds, analyst, rel.to_dict())
    return _with_budget(Release.from_dict(rel.to_dict()), ledger, analyst)


def refusal_for(query: Query, schema, epsilon: float, ledger: BudgetLedger, analyst: str,
                mechanism: str = "laplace", delta: float = DEFAULT_DELTA):
    """The BudgetExceeded that `release` would raise now, or None (it fits, or it is already
    released on this dataset and so free). Reads the ledger only; for disabling a button."""
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    ds = schema.dataset_id
    keys = [release_key(ds, query, plan.epsilon, plan.mechanism, plan.delta)] + [
        legacy_release_key(ds, a, query, plan.epsilon, plan.mechanism, plan.delta) for a in ledger.legacy_analysts(ds)]
    if any(ledger.stored_result(k) is not None for k in keys):
        return None
    return ledger.refusal_for(ds, analyst, plan.cost[0], plan.cost[1], plan.rho, default_total=schema.default_budget)


def marginal_cost(query: Query, schema, epsilon: float, ledger: BudgetLedger, mechanism: str = "laplace",
                  delta: float = DEFAULT_DELTA) -> float:
    """Epsilon this release would add to the dataset's total under its accounting (no data read)."""
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    return ledger.marginal_epsilon(schema.dataset_id, plan.cost[0], plan.rho)


def _with_budget(rel: Release, ledger: BudgetLedger, analyst: str) -> Release:
    """The release as `analyst` sees it, with what they and the dataset have left."""
    st = ledger.state(rel.dataset_id, analyst)
    return dataclasses.replace(rel, remaining=st.remaining, dataset_remaining=st.dataset_remaining)


# ------------------------------------------------------------------------------------- preview
@dataclass(frozen=True)
class Preview:
    """Cost and expected accuracy of a query before spending. Touches no data."""

    epsilon: float
    delta: float
    mechanism: str
    halfwidth: float
    words: str
    detail: dict[str, Any]


def preview(query: Query, schema, epsilon: float, mechanism: str = "laplace", delta: float = DEFAULT_DELTA,
            alpha: float = ALPHA) -> Preview:
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    e = plan.expected_error(alpha)
    return Preview(plan.cost[0], plan.cost[1], plan.mechanism, float(e.get("halfwidth", float("nan"))),
                   e.get("words", ""), e)


def epsilon_for_error(query: Query, schema, target_halfwidth: float, mechanism: str = "laplace",
                      delta: float = DEFAULT_DELTA, alpha: float = ALPHA,
                      eps_range: tuple[float, float] = (1e-3, 100.0)) -> float:
    """Smallest epsilon whose expected (1-alpha) half-width is <= target (bisection on OpenDP
    accuracy). Raises ValueError if even the largest epsilon cannot reach the target."""
    if not (isinstance(target_halfwidth, (int, float)) and math.isfinite(target_halfwidth) and target_halfwidth > 0):
        raise ValueError(f"target error must be a positive number, got {target_halfwidth!r}")

    def err(eps: float) -> float:
        return preview(query, schema, eps, mechanism, delta, alpha).halfwidth

    lo, hi = eps_range
    if not err(hi) <= target_halfwidth:
        raise ValueError(f"no epsilon up to {hi:g} gives an error within ±{target_halfwidth:g}")
    if err(lo) <= target_halfwidth:
        return lo
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        if err(mid) <= target_halfwidth:
            hi = mid
        else:
            lo = mid
        if hi / lo < 1.001:
            break
    return float(f"{hi:.4g}") if err(float(f"{hi:.4g}")) <= target_halfwidth else hi
