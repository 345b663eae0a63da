"""Cached heavy objects for the app: OpenDP warm-up, prepared cohorts, per-session ledger.

No DP logic here: everything privacy-relevant is in `privacy/`.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st

from data.cohorts import list_cohorts, load_cohort
from data.prepare import PreparedCohort, prepare
from privacy.ledger import BudgetLedger

DEMO_COHORT = "prostate"
# A big demo cohort (DP_DEMO_ROWS >= PREBUILD_MIN_ROWS) starts building in a background thread as soon
# as this module is imported, i.e. early in the first page's run: generate + prepare (~1 s at 10^6
# rows) then overlap the app's remaining imports and sidebar set-up instead of following them.
# `prepared_cohort` still returns the built cohort (or raises its error) before any page is drawn.
PREBUILD_MIN_ROWS = 100_000
_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cohort-build")
_PREBUILT: dict[tuple[str, int | None], Future] = {}


@st.cache_resource(show_spinner="Loading the privacy engine…")
def warm_up() -> bool:
    """Import OpenDP and build/invoke one tiny plan so the first real release is fast."""
    from privacy.measurements import build_plan  # noqa: F401  (imports OpenDP)
    return True


def _build(name: str, rows: int | None) -> PreparedCohort:
    """A synthetic cohort of a non-default size is another data set: its dataset id says so
    (same convention as the CLI's --rows), so releases and budgets never mix sizes."""
    if rows:
        frame, schema = load_cohort(name, rows=rows)
        schema = dataclasses.replace(schema, dataset_id=f"{schema.dataset_id}-rows{rows}")
    else:
        frame, schema = load_cohort(name)
    return prepare(frame, schema)


def prebuild(name: str, rows: int | None) -> None:
    """Start building a big cohort in the background (once); `prepared_cohort` collects it."""
    key = (name, rows or None)
    if (rows or 0) >= PREBUILD_MIN_ROWS and key not in _PREBUILT:
        _PREBUILT[key] = _BUILDER.submit(_build, name, rows or None)


@st.cache_resource(show_spinner="Preparing the cohort…", max_entries=4)
def prepared_cohort(name: str, rows: int | None = None) -> PreparedCohort:
    """The cohort `name` (of `rows` rows for a synthetic one), built once per process. Errors
    (e.g. a table that breaks its schema) are raised here, before any page is drawn."""
    started = _PREBUILT.pop((name, rows or None), None)
    return started.result() if started is not None else _build(name, rows)


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


try:                                   # the first page's cohort, while the app finishes importing
    prebuild(DEMO_COHORT, demo_rows())
except ValueError:                     # a bad DP_DEMO_ROWS: the sidebar reports it, as before
    pass
