"""Cached heavy objects for the app: OpenDP warm-up, prepared cohorts, per-session ledger.

No DP logic here: everything privacy-relevant is in `privacy/`.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from data.cohorts import cohort_schema, list_cohorts, load_cohort
from data.prepare import PreparedCohort, prepare
from data.schema import Schema
from privacy.ledger import BudgetLedger

DEMO_COHORT = "prostate"
# One background thread builds synthetic cohorts (generate + prepare: ~1 s at 10^6 rows) while the
# first page is drawn; nothing on that page needs the rows, only the public schema.
_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cohort-build")


class LazyCohort(PreparedCohort):
    """A `PreparedCohort` whose public schema is there at once and whose private rows are built in a
    background thread; any use of the rows (a release, a simulation, an owner view) waits for the
    build and gets its result, errors included. Everything else behaves as the built cohort."""

    def __new__(cls, schema: Schema, build=None, **fields):
        if fields:                     # dataclasses.replace(lazy, ...): a plain cohort with those fields
            return PreparedCohort(schema=schema, **fields)
        return super().__new__(cls)

    def __init__(self, schema: Schema, build):          # noqa: D107 (no dataclass __init__: nothing built yet)
        self.schema = schema
        self._future: Future = _BUILDER.submit(build)

    def built(self) -> PreparedCohort:
        return self._future.result()

    @property
    def ready(self) -> bool:
        return self._future.done()

    n_rows = property(lambda self: self.built().n_rows)
    codes = property(lambda self: self.built().codes)
    numbers = property(lambda self: self.built().numbers)
    days = property(lambda self: self.built().days)
    day_missing = property(lambda self: self.built().day_missing)
    report = property(lambda self: self.built().report)
    frame = property(lambda self: self.built().frame)
    _cache = property(lambda self: self.built()._cache)

    def mask(self, column: str, value: str):
        return self.built().mask(column, value)

    def __repr__(self) -> str:
        return f"LazyCohort({self.schema.dataset_id!r}, built={self.ready})"


@st.cache_resource(show_spinner="Loading the privacy engine…")
def warm_up() -> bool:
    """Import OpenDP and build/invoke one tiny plan so the first real release is fast."""
    from privacy.measurements import build_plan  # noqa: F401  (imports OpenDP)
    return True


@st.cache_resource(show_spinner="Preparing the cohort…", max_entries=4)
def prepared_cohort(name: str, rows: int | None = None) -> PreparedCohort:
    """The cohort `name`, built once per process (cached across sessions).

    A synthetic cohort of a non-default size is another data set: its dataset id says so (same
    convention as the CLI's --rows), so releases and budgets never mix sizes. Synthetic cohorts
    come back at once as a `LazyCohort` (schema now, rows from a background thread: the first page
    is drawn while they are generated); a size above the schema's max_rows is refused here, before
    any thread starts. Real cohorts (small, and their loading may fail) are built on the spot."""
    synthetic = next((c.synthetic for c in list_cohorts() if c.name == name), False)
    if not synthetic:
        frame, schema = load_cohort(name, rows=rows) if rows else load_cohort(name)
        return prepare(frame, schema)
    schema = cohort_schema(name)
    if rows:
        if rows > schema.max_rows:
            load_cohort(name, rows=rows)                  # raises its ValueError naming max_rows
        schema = dataclasses.replace(schema, dataset_id=f"{schema.dataset_id}-rows{rows}")
    return LazyCohort(schema, lambda: prepare(load_cohort(name, rows=rows or None)[0], schema))


@st.cache_data(show_spinner=False)
def available_cohorts() -> list[tuple[str, str]]:
    return [(c.name, c.title) for c in list_cohorts() if c.available]


def session_ledger(path: str) -> BudgetLedger:
    """One SQLite connection per browser session (connections are not shared across threads)."""
    key = f"_ledger::{path}"
    lg = st.session_state.get(key)
    if lg is None:
        lg = BudgetLedger(path)
        st.session_state[key] = lg
    return lg


def demo_rows() -> int | None:
    v = os.environ.get("DP_DEMO_ROWS")
    return int(v) if v else None


def synthetic_choices(ledger: BudgetLedger) -> list[tuple[str, str, dict]]:
    """(picker name, title, ledger record) of every released DP synthetic cohort; [] without mbi."""
    try:
        from privacy.stats.synthetic import synthetic_cohort_id, synthetic_releases
    except ImportError:
        return []
    return [(f"synthetic:{synthetic_cohort_id(r['dataset'], r['release_key'])}",
             f"{r['release'].get('description', 'synthetic cohort')} (synthetic)", r)
            for r in synthetic_releases(ledger)]


@st.cache_resource(show_spinner="Preparing the synthetic cohort…", max_entries=4)
def synthetic_prepared(name: str, _record: dict, _source_schema=None) -> PreparedCohort:
    """A released synthetic table as a cohort (post-processing of a stored release)."""
    from privacy.stats.synthetic import synthetic_cohort
    return synthetic_cohort(_record, _source_schema)
