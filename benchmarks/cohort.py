"""Benchmark data: the prostate generator if it is importable, else a seeded synthetic frame.

Either way the schema is public metadata built without looking at the rows, and every query
kind is mapped to concrete columns (`QuerySet`).
"""
from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from data.schema import Schema, schema_from_dict
from privacy.queries import (CountQuery, CrossTabQuery, GroupedMeanQuery, HistogramQuery, MeanQuery,
                             Query, QuantileQuery)

KINDS = ("count", "cat-hist", "num-hist20", "mean", "quantile", "grouped-mean", "crosstab")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Source:
    name: str                                   # "prostate" or "synthetic"
    schema: Schema
    generate: Callable[[int, int], pd.DataFrame]  # (rows, seed) -> frame
    queries: dict[str, Query]
    columns: dict[str, str]                     # role -> column name (for the NumPy baselines)


def _queries(cat: str, cat2: str, num: str, lower: float, upper: float) -> dict[str, Query]:
    edges20 = tuple(float(x) for x in np.linspace(lower, upper, 21))
    return {
        "count": CountQuery(),
        "cat-hist": HistogramQuery(column=cat),
        "num-hist20": HistogramQuery(column=num, bin_edges=edges20),
        "mean": MeanQuery(column=num),
        "quantile": QuantileQuery(column=num, q=0.5),
        "grouped-mean": GroupedMeanQuery(column=num, by=cat),
        "crosstab": CrossTabQuery(column=cat, by=cat2),
    }


# ----------------------------------------------------------------------------- synthetic
SYNTH_SCHEMA = {
    "dataset": {"id": "bench", "title": "Benchmark cohort (synthetic)", "privacy_unit": "pid",
                "max_rows_per_unit": 1, "max_rows": 10**8, "default_budget": 1.0},
    "columns": {
        "pid": {"kind": "id"},
        "grade": {"kind": "categorical", "categories": ["1", "2", "3", "4", "5"], "label": "Grade"},
        "site": {"kind": "categorical", "categories": ["A", "B", "C", "D"], "label": "Site"},
        "psa": {"kind": "numeric", "lower": 0, "upper": 100, "bins": 10, "label": "PSA", "unit": "ng/mL"},
        "diagnosed": {"kind": "date", "start": "2015-01-01", "end": "2024-12-31"},
    },
}


def synthetic_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    """Seeded frame: 5-category grade (~1% missing), 4-category site, log-normal PSA, a date."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(np.array(["1", "2", "3", "4", "5"], dtype=object), rows, p=[.35, .3, .15, .1, .1])
    grade[rng.random(rows) < 0.01] = None
    site = rng.choice(np.array(["A", "B", "C", "D"], dtype=object), rows, p=[.4, .3, .2, .1])
    psa = np.round(np.exp(rng.normal(np.log(7), 0.6, rows)), 2)
    days = rng.integers(0, 3653, rows)
    return pd.DataFrame({
        "pid": np.arange(rows, dtype=np.int64),
        "grade": pd.Categorical(grade, categories=["1", "2", "3", "4", "5"]),
        "site": pd.Categorical(site, categories=["A", "B", "C", "D"]),
        "psa": psa,
        "diagnosed": np.datetime64("2015-01-01") + days.astype("timedelta64[D]"),
    })


def synthetic_source() -> Source:
    schema = schema_from_dict(SYNTH_SCHEMA)
    return Source("synthetic", schema, synthetic_frame, _queries("grade", "site", "psa", 0.0, 100.0),
                  {"cat": "grade", "cat2": "site", "num": "psa"})


# ------------------------------------------------------------------------------ prostate
def _find_prostate_generator():
    """`data.cohorts.generate_prostate` (as the brief names it) or `data.cohorts.prostate.generate_prostate`."""
    for mod, attr in (("data.cohorts", "generate_prostate"), ("data.cohorts.prostate", "generate_prostate")):
        try:
            fn = getattr(importlib.import_module(mod), attr, None)
        except ImportError:
            fn = None
        if callable(fn):
            return fn, f"{mod}.{attr}"
    return None, None


def prostate_source() -> Source | None:
    gen, where = _find_prostate_generator()
    toml = ROOT / "data" / "cohorts" / "prostate.toml"
    if gen is None or not toml.exists():
        return None
    d = tomllib.loads(toml.read_text(encoding="utf-8"))
    # 10^7 rows is the schema's declared public bound; the benchmark never needs more.
    schema = schema_from_dict(d)
    cat, cat2, num = "isup_grade_group", "site", "psa"
    col = schema.column(num)
    return Source(f"prostate ({where})", schema, lambda rows, seed: gen(rows, seed=seed),
                  _queries(cat, cat2, num, col.lower, col.upper), {"cat": cat, "cat2": cat2, "num": num})


def pick_source(force_synthetic: bool = False) -> Source:
    if not force_synthetic:
        try:
            src = prostate_source()
        except Exception as e:  # a half-written generator must not break the benchmark
            print(f"note: prostate generator unusable ({type(e).__name__}: {e}); using synthetic data")
            src = None
        if src is not None:
            return src
    return synthetic_source()
