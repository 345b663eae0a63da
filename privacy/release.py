"""Run DP releases: cost -> ledger reserve -> invoke -> store -> Release (one statistic, or a
report charged once); previews, budget hints and free answers derived from stored releases.

Order is the privacy control: the plan's exact cost (OpenDP privacy map) is charged in the
persistent ledger, synced to disk, BEFORE anything is shown. Noise over engine aggregates is
drawn inside the charging transaction (`BudgetLedger.charge`: one commit holds the charge and
the result); OpenDP's row-level measurements run after their charge's own commit
(`BudgetLedger.reserve`). An identical request on the dataset, by anyone, returns the stored
release (no cost, no fresh noise). A measurement that fails after the charge stays charged.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from data.prepare import PreparedCohort
from privacy.calibrate import DEFAULT_DELTA
from privacy.ledger import BudgetLedger, FailedAfterCharge, Reservation
from privacy.engine import EngineUnsupported, SourceError, aggregate_noise, measure, prepare_input
from privacy.measurements import Plan, build_plan
from privacy.queries import (Query, QueryError, legacy_release_key, query_from_dict, release_key,
                             validate_epsilon, validate_mechanism, validate_query)

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
    """The release failed: after its cost was charged (the charge stands), or, when the message
    says nothing was spent, while its input was built. `str(e)` is public; `owner_detail` (the
    underlying error, which may depend on the data) is for the owner."""

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
        """Plain JSON-ready form (non-finite values as None); nested query/noise/extra are deep copies."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        for k in ("query", "noise", "extra"):
            d[k] = copy.deepcopy(d[k])
        for k in ("values", "ci_low", "ci_high"):
            d[k] = [None if (v is None or (isinstance(v, float) and not math.isfinite(v))) else v for v in d[k]]
        d["labels"] = list(d["labels"])
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
        description=plan.description, labels=list(plan.labels),
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
    LedgerError (ledger unusable, nothing charged), SourceError (the cohort's database or files
    cannot be read, nothing charged) or ReleaseError (charged, invocation failed).
    """
    schema = cohort.schema
    ds = schema.dataset_id
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    key, legacy = _keys(ds, plan, ledger)
    prepared = None
    if not any(ledger.stored_result(k) is not None for k in (key, *legacy)):
        # The engine aggregates before anything is charged, so a database that is down or a missing
        # table charges nothing (SourceError); no noise is drawn and nothing is shown yet.
        try:
            prepared = prepare_input(plan, cohort)
        except SourceError:
            raise
        except Exception as e:   # an input that cannot be built: nothing charged
            raise ReleaseError("the release could not be prepared; nothing was spent",
                               owner_detail=f"{type(e).__name__}: {e}") from e
    ask = dict(dataset=ds, analyst=analyst, release_key=key, epsilon=plan.cost[0], delta=plan.cost[1],
               rho=plan.rho, mechanism=plan.mechanism, query=plan.query_key, default_total=schema.default_budget,
               legacy_keys=legacy)

    def compute() -> tuple[dict, None]:
        out = plan.finish(measure(plan, prepared if prepared is not None else prepare_input(plan, cohort)), alpha)
        return _make_release(plan, ds, analyst, key, out.values, out.ci_low, out.ci_high, out.extra,
                             alpha).to_dict(), None

    got = _charged_run(ledger, ask, compute, prepared is None or prepared[0] == "aggregates",
                       "the release failed after its cost was charged; the data owner can see why in the "
                       "ledger's audit trail")
    if isinstance(got, dict):
        return _with_budget(Release.from_dict(got, cached=True, analyst=analyst), ledger, analyst)
    (payload, _), state = got
    return Release.from_dict(payload, remaining=state.remaining, dataset_remaining=state.dataset_remaining)


def _charged_run(ledger: BudgetLedger, ask: dict, compute, one_commit: bool, failed: str):
    """Charge the release `ask` describes and run `compute() -> (payload, parts)` (the measurement
    and its finish) only once the charge is made. `one_commit` (noise over engine aggregates, which
    takes no time): the charge and the result are one synced commit (`BudgetLedger.charge`); else
    (OpenDP's row-level measurement, which may take seconds) the charge commits first on its own
    (`reserve`) and the result after (`store_result`). Returns ((payload, parts), the analyst's
    state after the charge), or the stored payload (dict) of an identical release. A measurement
    that raises stays charged: ReleaseError(`failed`)."""
    done: list = []

    def run(reservation=None):
        done.append(compute())
        return done[-1]

    if one_commit:
        try:
            got = ledger.charge(**ask, compute=run)
        except FailedAfterCharge as e:
            raise ReleaseError(failed, owner_detail=e.detail) from e
        return got if isinstance(got, dict) else (done[-1], got.state)
    got = ledger.reserve(**ask)
    if not isinstance(got, Reservation):
        return got
    try:
        payload, parts = run()
    except Exception as e:  # the charge stays: the measurement may have seen the data
        detail = f"{type(e).__name__}: {e}"
        ledger.record_failure(got, ask["dataset"], ask["analyst"], detail)
        raise ReleaseError(failed, owner_detail=detail) from e
    ledger.store_result(got, ask["dataset"], ask["analyst"], payload, parts)
    return (payload, parts), ledger.state(ask["dataset"], ask["analyst"])


def _keys(ds: str, plan: Plan, ledger: BudgetLedger) -> tuple[str, tuple[str, ...]]:
    """The release's key on the dataset (`ds`, the plan's schema's), and the per-analyst keys older
    ledgers stored it under."""
    return plan.release_key, tuple(legacy_release_key(ds, a, plan.query, plan.epsilon, plan.mechanism, plan.delta)
                      for a in ledger.legacy_analysts(ds))


def refusal_for(query: Query, schema, epsilon: float, ledger: BudgetLedger, analyst: str,
                mechanism: str = "laplace", delta: float = DEFAULT_DELTA):
    """The BudgetExceeded that `release` would raise now, or None (it fits, or it is already
    released on this dataset and so free). Reads the ledger only; for disabling a button."""
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    ds = schema.dataset_id
    key, legacy = _keys(ds, plan, ledger)
    if any(ledger.stored_result(k) is not None for k in (key, *legacy)):
        return None
    return ledger.refusal_for(ds, analyst, plan.cost[0], plan.cost[1], plan.rho, default_total=schema.default_budget)


def marginal_cost(query: Query, schema, epsilon: float, ledger: BudgetLedger, mechanism: str = "laplace",
                  delta: float = DEFAULT_DELTA) -> float:
    """Epsilon this release would add to the dataset's total under its accounting (no data read)."""
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    return ledger.marginal_epsilon(schema.dataset_id, plan.cost[0], plan.rho)


def questions_left(query: Query, schema, epsilon: float, ledger: BudgetLedger, analyst: str,
                   mechanism: str = "laplace", delta: float = DEFAULT_DELTA) -> int:
    """How many more releases like this one `analyst` can afford now (no data read)."""
    epsilon, mechanism, delta = _checked(epsilon, mechanism, delta)
    plan = build_plan(query, schema, epsilon, mechanism, delta)
    return ledger.questions_left(schema.dataset_id, analyst, plan.cost[0], plan.rho, schema.default_budget)


def _with_budget(rel: Release, ledger: BudgetLedger, analyst: str) -> Release:
    """The release as `analyst` sees it, with what they and the dataset have left."""
    st = ledger.state(rel.dataset_id, analyst)
    return dataclasses.replace(rel, remaining=st.remaining, dataset_remaining=st.dataset_remaining)


# --------------------------------------------------------------------------------- free answers
def free_answer(query: Query, schema, ledger: BudgetLedger, analyst: str, alpha: float = ALPHA,
                record: bool = False) -> Release | None:
    """The answer to `query` derived from a release already stored on the dataset (cost 0), or
    None. With `record`, the ledger keeps a 'derived' audit row (shown to the owner)."""
    from privacy.derive import find_derivation
    validate_query(query, schema)
    d = find_derivation(query, schema, ledger.releases(schema.dataset_id))
    if d is None:
        return None
    rel = d.release(query, schema, analyst, alpha)
    if record:
        ledger.record_derived(schema.dataset_id, analyst, d.source_key, query.key(), d.how)
    return rel


# -------------------------------------------------------------------------------------- reports
class ReportError(ValueError):
    """A report could not be prepared (before anything was charged)."""


@dataclass(frozen=True)
class ReportRelease:
    """A multi-statistic report released as one reservation. `epsilon`/`delta` are its whole cost."""

    name: str
    releases: dict[str, Release]
    epsilon: float
    delta: float
    cached: bool
    remaining: float
    dataset_remaining: float


def release_report(name: str, items, total: float, cohort: PreparedCohort, ledger: BudgetLedger, analyst: str,
                   mechanism: str = "laplace", delta: float = DEFAULT_DELTA, alpha: float = ALPHA) -> ReportRelease:
    """Release every statistic of a report, charged ONCE: all of it is released and charged, or nothing.

    Every plan and every input is built before the charge, so a report that cannot be prepared
    (a bad item, an input that fails) charges nothing and stores nothing. The statistics read
    different public encodings of the table, so OpenDP's `make_composition` (one input for all
    parts) does not apply; the report's cost is their OpenDP maps composed sequentially (epsilons
    and deltas add; under zCDP accounting their rhos add). A repeat of the same report (same
    items, shares and total) is served from the ledger at no cost. If a measurement fails after
    the charge (it has read the data), the charge stands and nothing is stored or shown.
    """
    schema = cohort.schema
    ds = schema.dataset_id
    plans = _report_plans(items, total, schema, mechanism, delta)
    try:
        inputs = {k: prepare_input(plan, cohort) for k, plan in plans.items()}
    except Exception as e:   # an input that cannot be built: nothing charged
        raise ReportError(f"the report could not be prepared, nothing was spent ({type(e).__name__})") from e
    keys, rkey = _report_keys(name, ds, plans)
    cost_eps = math.fsum(p.cost[0] for p in plans.values())
    cost_delta = math.fsum(p.cost[1] for p in plans.values())
    cost_rho = math.fsum(p.rho for p in plans.values())
    spec = json.dumps({"report": name, "parts": {k: p.query.to_dict() for k, p in plans.items()},
                       "epsilons": {k: p.cost[0] for k, p in plans.items()}}, sort_keys=True)
    ask = dict(dataset=ds, analyst=analyst, release_key=rkey, epsilon=cost_eps, delta=cost_delta, rho=cost_rho,
               mechanism=mechanism, query=spec, default_total=schema.default_budget)
    summary = {"report": name, "parts": keys, "epsilon": cost_eps, "delta": cost_delta}

    def compute() -> tuple[dict, dict[str, dict]]:
        outs = {k: plan.finish(measure(plan, inputs[k]), alpha) for k, plan in plans.items()}
        return summary, {keys[k]: _make_release(plans[k], ds, analyst, keys[k], o.values, o.ci_low, o.ci_high,
                                                o.extra, alpha).to_dict() for k, o in outs.items()}

    got = _charged_run(ledger, ask, compute, all(kind == "aggregates" for kind, _ in inputs.values()),
                       "the report failed after its cost was charged; nothing was stored or shown")
    if not isinstance(got, dict):
        (_, parts), _ = got
        return _report(name, {k: Release.from_dict(parts[keys[k]]) for k in plans}, cost_eps, cost_delta,
                       False, ledger, ds, analyst)
    stored = {k: ledger.stored_result(key) for k, key in got["parts"].items()}
    rels = {k: Release.from_dict(v, cached=True, analyst=analyst) for k, v in stored.items() if v is not None}
    return _report(name, rels, got["epsilon"], got["delta"], True, ledger, ds, analyst)


def _report_plans(items, total, schema, mechanism, delta) -> dict[str, Plan]:
    """Every statistic's plan at its share of `total` (QueryError/ReportError: nothing charged)."""
    total, mechanism, delta = _checked(total, mechanism, delta)
    plans = {it.key: build_plan(it.query, schema, *_checked(it.epsilon(total), mechanism, delta)) for it in items}
    if not plans:
        raise ReportError("the report has no statistics")
    return plans


def _report_keys(name: str, ds: str, plans: dict[str, Plan]) -> tuple[dict[str, str], str]:
    """Each statistic's release key, and the report's (same name, statistics, epsilons = same report)."""
    keys = {k: release_key(ds, p.query, p.epsilon, p.mechanism, p.delta) for k, p in plans.items()}
    body = json.dumps({"report": name, "dataset": ds, "parts": keys}, sort_keys=True)
    return keys, hashlib.sha256(body.encode()).hexdigest()


def _report(name, rels, eps, dlt, cached, ledger, ds, analyst) -> ReportRelease:
    st = ledger.state(ds, analyst)
    return ReportRelease(name, rels, float(eps), float(dlt), cached, st.remaining, st.dataset_remaining)


def report_refusal(name: str, items, total: float, schema, ledger: BudgetLedger, analyst: str,
                   mechanism: str = "laplace", delta: float = DEFAULT_DELTA):
    """The BudgetExceeded the report would meet now (None if it fits or is already released)."""
    plans = _report_plans(items, total, schema, mechanism, delta)
    ds = schema.dataset_id
    _, rkey = _report_keys(name, ds, plans)
    if ledger.stored_result(rkey) is not None:
        return None
    return ledger.refusal_for(ds, analyst, math.fsum(p.cost[0] for p in plans.values()),
                              math.fsum(p.cost[1] for p in plans.values()), math.fsum(p.rho for p in plans.values()),
                              default_total=schema.default_budget)


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
    """Cost and expected accuracy of a release (public math, no data). It also readies the plan's
    aggregate form (OpenDP's maps checked against the cost, `privacy.engine.aggregate_noise`), so
    the Release that follows only aggregates, draws noise and writes the ledger."""
    plan = build_plan(query, schema, *_checked(epsilon, mechanism, delta))
    try:
        aggregate_noise(plan)
    except EngineUnsupported:
        pass                     # a row-level plan: OpenDP's measurement reads the rows
    return _preview_of(plan, alpha)


def _preview_of(plan: Plan, alpha: float) -> Preview:
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
        return _preview_of(build_plan(query, schema, *_checked(eps, mechanism, delta)), alpha).halfwidth

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
