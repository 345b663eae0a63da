"""Downloads: a release as CSV (spreadsheet-safe: formula-like text cells neutralised) or strict
JSON, and plain rows (e.g. the audit trail) as CSV.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from dashboard.figures.tables import release_table
from data.schema import Schema

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.release import Release


_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _neutralise(s: str) -> str:
    """Stop spreadsheets from running a text cell as a formula (leading ', OWASP CSV injection)."""
    return "'" + s if s.lstrip(" ").startswith(_FORMULA_PREFIXES) else s


def _csv_cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x)) if math.isfinite(x) else ""
    if isinstance(x, (dict, list, tuple)):
        x = json.dumps(_jsonable(x), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _neutralise(str(x))


def _metadata(release: "Release") -> dict[str, Any]:
    return {
        "dataset": release.dataset_id, "analyst": release.analyst, "statistic": release.query.get("stat"),
        "description": release.description, "query": release.query, "epsilon": float(release.epsilon),
        "delta": float(release.delta), "mechanism": release.mechanism, "noise": release.noise,
        "noise_scale": float(release.scale), "interval_level": round(1 - float(release.alpha), 10),
        "released_at": release.timestamp, "release_key": release.release_key,
    }


def release_csv_bytes(release: "Release", schema: Schema | None = None) -> bytes:
    """CSV (UTF-8 with BOM so spreadsheets read the labels right): the `release_table` columns,
    then the release metadata repeated as columns on every row. Text cells that a spreadsheet
    would run as a formula get a leading apostrophe; numbers stay numbers."""
    df = release_table(release, schema)
    meta = _metadata(release)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([_csv_cell(c) for c in list(df.columns) + list(meta)])
    for rec in df.itertuples(index=False):
        w.writerow([_csv_cell(x) for x in rec] + [_csv_cell(x) for x in meta.values()])
    return buf.getvalue().encode("utf-8-sig")


def rows_csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """CSV of plain rows (e.g. the ledger's audit trail), with the same cell safety as releases."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    cols = list(rows[0]) if rows else []
    w.writerow([_csv_cell(c) for c in cols])
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in cols])
    return buf.getvalue().encode("utf-8-sig")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (dt.date, dt.datetime)):
        return x.isoformat()
    return x


def release_json_bytes(release: "Release") -> bytes:
    """`release.to_dict()` as strict, pretty-printed UTF-8 JSON (non-finite numbers -> null);
    reads back with `Release.from_dict(json.loads(...))`."""
    return (json.dumps(_jsonable(release.to_dict()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
            ).encode("utf-8")
