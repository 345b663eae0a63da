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


def sources_dir() -> str:
    """Folder of schema files whose [storage] says where their rows live (`DP_SOURCES`, default var/sources)."""
    return os.environ.get("DP_SOURCES", os.path.join("var", "sources"))


@st.cache_data(show_spinner=False, ttl=60)
def engine_cohorts(folder: str) -> list[tuple[str, str]]:
    """(picker name, title) of each schema in `folder` with a [storage] table (Parquet, a database,
    Spark): public files only, nothing is connected here."""
    from pathlib import Path

    from data.schema import load_schema
    out = []
    for path in sorted(Path(folder).glob("*.toml")) if os.path.isdir(folder) else []:
        try:
            schema = load_schema(path)
        except Exception:          # a broken schema file is the owner's to fix on the CLI
            continue
        kind = dict(schema.storage).get("kind", "memory")
        if kind != "memory":
            out.append((f"engine:{path.stem}", f"{schema.title} ({kind})"))
    return out


def _secrets() -> dict:
    """Secrets for database URLs: Streamlit's secrets (top level), then the environment."""
    try:
        flat = {k: v for k, v in st.secrets.items() if isinstance(v, str)}
    except Exception:              # no secrets.toml
        flat = {}
    return {**os.environ, **flat}


@st.cache_resource(show_spinner="Connecting to the cohort's engine…", max_entries=8, ttl=600)
def engine_cohort(name: str, folder: str):
    """The cohort `engine:<stem>` whose rows live where its schema's [storage] says (aggregated
    there; `privacy.engine.sources`). Raises SourceError (public message) if it cannot be reached."""
    from data.schema import load_schema
    from privacy.engine.sources import open_cohort
    return open_cohort(load_schema(os.path.join(folder, name.removeprefix("engine:") + ".toml")), secrets=_secrets())


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
