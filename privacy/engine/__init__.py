"""Engines: where a plan's sufficient statistics are computed (memory, Parquet, SQL databases).

Privacy facts: for a release an engine computes only public-cell aggregates (counts of public
cells, an integer sum and a count) after the per-patient bound and the same public row-wise maps as
the in-memory path; the noise and its input distance always come from OpenDP
(`privacy.engine.noise`). The charge is the plan's cost, OpenDP's map of the row-level measurement.
A synthetic cohort's row-level input is rebuilt from such counts (`privacy.stats.synthetic`). The
only rows an engine hands out are the bounded rows of declared columns for an owner-only view
(`owner_rows`, the anonymity report), never to a release or an analyst.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from privacy.engine.noise import AggregateNoise, EngineUnsupported, aggregate_noise, n_cells


class SourceError(RuntimeError):
    """A cohort's source (database, Parquet files, Spark table) cannot be read. Raised before any
    charge. `str(e)` is public (no data, no credentials); `owner_detail` is for the data owner."""

    def __init__(self, message: str, owner_detail: str = ""):
        super().__init__(message)
        self.owner_detail = owner_detail


class OwnerRowsTooMany(RuntimeError):
    """An owner-only view (the anonymity report) would read more of an engine's rows into the app
    than `limit`. Its message names only the public limit."""


def check_owner_rows(n: int, limit: int) -> None:
    if n > limit:
        raise OwnerRowsTooMany(f"this view reads the table's rows into the app, and this cohort has more than "
                               f"{limit:,} rows after the per-patient bound (the limit is DP_OWNER_ROWS_LIMIT)")


__all__ = ["SourceError", "OwnerRowsTooMany", "check_owner_rows", "AggregateNoise", "EngineUnsupported",
           "aggregate_noise", "n_cells", "numpy_aggregates",
           "invoke", "measure", "prepare_input", "aggregates_of_input", "ROW_LEVEL"]

ROW_LEVEL = "opendp-rows"      # engine name of OpenDP's own row-level path (the reference)


def numpy_aggregates(plan, cohort) -> list:
    """In-memory engine: the plan's aggregates from the prepared (already per-patient bounded)
    columns, with the same public row-wise maps as the row-level input (`plan.make_input`).

    Aggregates do not depend on epsilon or the mechanism, so they are kept with the cohort per
    query (a few cells each): a second question of the same shape aggregates nothing again."""
    form = aggregate_noise(plan)
    key = ("aggregates", plan.query, form.kind)
    if key not in cohort._cache:
        cohort._cache[key] = _numpy_aggregates(plan, cohort, form)
    return cohort._cache[key]


def _numpy_aggregates(plan, cohort, form) -> list:
    return aggregates_of_input(form, plan.make_input(cohort))


def aggregates_of_input(form: AggregateNoise, x) -> list:
    """The aggregates of a plan's row-level input `x` (`plan.make_input`), in `form`'s layout:
    cell counts by `bincount`, the mean's integer sum and count, or the grouped mean's vectors
    (its input is its aggregates already)."""
    if form.kind == "grouped_sum_count":
        return list(x)
    if form.kind == "sum_count":
        # The mean's input is already within OpenDP's clamp (-H, H): values clamped to the public
        # bounds, centred and scaled by H / half-range (`privacy.stats.mean._quantised`), so the
        # clamp is the identity here (tests/test_engine.py checks the sum against OpenDP's own).
        return [int(x.sum(dtype=np.int64)), len(x)]
    part = form.parts[0]
    if part.size is None:                     # a count: one cell
        return [len(x)]
    c = np.asarray(x)
    if len(c) and (c.min() < 0 or c.max() >= part.size):   # OpenDP leaves out codes outside the cells
        c = c[(c >= 0) & (c < part.size)]
    return [np.bincount(c, minlength=part.size)]


def prepare_input(plan, cohort, engine: str | None = None) -> tuple[str, Any]:
    """What the plan's measurement will read, computed before any charge: ("aggregates", list) from
    an engine, or ("rows", input) for OpenDP's row-level measurement. Releases nothing.

    In-memory cohorts use the NumPy engine where the plan has an aggregate form, else the row-level
    input; `engine=ROW_LEVEL` forces the latter. A cohort whose rows live in Parquet files, a
    database or Spark (`privacy.engine.sources.open_cohort`) aggregates in its own engine; a plan
    without an aggregate form then builds its row-level input from the engine's public-cell counts
    (a synthetic cohort's bucket combinations), or raises EngineUnsupported."""
    source = getattr(cohort, "engine", None)
    if source is not None:
        try:
            form = aggregate_noise(plan)
        except EngineUnsupported:       # OpenDP measures rows the plan rebuilds from engine cells (synthetic)
            return "rows", plan.make_input(cohort)
        return "aggregates", source.aggregates(plan, form)
    if engine != ROW_LEVEL:
        try:
            aggregate_noise(plan)
        except EngineUnsupported:
            pass
        else:
            return "aggregates", numpy_aggregates(plan, cohort)
    return "rows", plan.make_input(cohort)


def measure(plan, prepared: tuple[str, Any]) -> Any:
    """Invoke OpenDP once on a prepared input; output in the row-level measurement's format.
    Spends budget: call through `privacy.release`, after the ledger's reservation."""
    kind, value = prepared
    if kind == "aggregates":
        return aggregate_noise(plan).release(value)
    return plan.measurement(value)


def invoke(plan, cohort, engine: str | None = None) -> Any:
    """`measure(plan, prepare_input(plan, cohort, engine))`. Spends budget."""
    return measure(plan, prepare_input(plan, cohort, engine))
