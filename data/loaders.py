"""Read a private table from a file (.csv, .parquet, .xlsx) into a pandas DataFrame.

Only reading happens here; validation and encoding under the public schema are in `data.prepare`.
Problems (missing file, unknown extension, unreadable content) raise `DataValidationError` with a
one-line message naming the file.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from data.prepare import DataValidationError

SUFFIXES = (".csv", ".parquet", ".xlsx")


def load_table(path: str | Path) -> pd.DataFrame:
    """The table in `path` (.csv, .parquet or .xlsx, chosen by extension)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataValidationError(f"cannot read {p.name}: the file must end in {', '.join(SUFFIXES)}")
    if not p.is_file():
        raise DataValidationError(f"data file not found: {p}")
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix == ".parquet":
            return pd.read_parquet(p)
        return pd.read_excel(p)
    except (ValueError, OSError, ImportError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataValidationError(f"cannot read {p.name}: {first}") from None
