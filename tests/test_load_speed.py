"""Loading and preparing stay at library speed: no pure-Python pass over the rows (issue 14).

No clock is read here (timings are `make bench`'s, benchmarks/cohort_load.py): these tests count
the Python work instead. The CSV loader may run Python's csv module on a small sample and on the
few lines an error names, never on the whole file; preparation labels each distinct value once,
never each row.
"""
from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

import data.loaders as loaders
import data.prepare as prepare_mod
from data.cohorts import cohort_schema, generate_prostate
from data.loaders import MalformedCSVError, load_table
from data.prepare import prepare

ROWS = 60_000
REAL_READER = csv.reader


@pytest.fixture(scope="module")
def cohort_csv() -> bytes:
    return generate_prostate(rows=ROWS, seed=11).to_csv(index=False).encode()


class CountingReader:
    """Stands in for csv.reader and counts the characters it is given."""

    def __init__(self):
        self.chars = 0

    def __call__(self, f, *a, **k):
        if isinstance(f, io.StringIO):
            self.chars += len(f.getvalue())
        else:
            f = list(f)
            self.chars += sum(len(x) for x in f)
        return REAL_READER(f, *a, **k)


def test_csv_rows_are_parsed_by_the_fast_reader_only(cohort_csv, monkeypatch):
    reader = CountingReader()
    monkeypatch.setattr(loaders.csv, "reader", reader)
    frame = load_table(cohort_csv, filename="c.csv")
    assert len(frame) == ROWS
    assert len(cohort_csv) > 8 * loaders._SNIFF_CHARS
    # the delimiter check reads the sample once per candidate separator, nothing else is walked
    assert reader.chars <= (len(loaders.DELIMITERS) + 2) * loaders._SNIFF_CHARS, reader.chars
    # a ragged line at the end is named without walking the file in Python either
    reader.chars = 0
    with pytest.raises(MalformedCSVError, match=rf"line {ROWS + 2} has 2 values"):
        load_table(cohort_csv + b"1,2\n", filename="c.csv")
    assert reader.chars <= (len(loaders.DELIMITERS) + 2) * loaders._SNIFF_CHARS, reader.chars


def test_text_is_not_decoded_whole(cohort_csv, monkeypatch):
    """UTF-8 is checked in chunks (or by an ASCII test): no str of the whole file."""
    seen = []
    real = loaders.codecs.utf_8_decode

    def decode(b, *a):
        seen.append(len(b))
        return real(b, *a)

    monkeypatch.setattr(loaders.codecs, "utf_8_decode", decode)
    monkeypatch.setattr(loaders, "_UTF8_CHUNK", 1 << 20)
    text = cohort_csv.replace(b"Site A", "Sité A".encode())          # not ASCII: decoded in chunks
    frame = load_table(text, filename="c.csv")
    assert "Sité A" in set(frame["site"]) and seen and max(seen) <= 1 << 20


def test_preparation_labels_each_distinct_value_once(cohort_csv, monkeypatch):
    frame = load_table(cohort_csv, filename="c.csv")
    calls = []
    real = prepare_mod._category_str
    monkeypatch.setattr(prepare_mod, "_category_str", lambda v: calls.append(v) or real(v))
    monkeypatch.setattr(pd.Series, "map", lambda *a, **k: pytest.fail("a Python call per row (Series.map)"))
    cohort = prepare(frame, cohort_schema("prostate"), keep_frame=False)
    assert cohort.n_rows == ROWS
    schema = cohort_schema("prostate")
    distinct = sum(frame[c.name].nunique() for c in schema.of_kind("categorical"))
    assert len(calls) <= distinct, (len(calls), distinct)


def test_text_dates_are_parsed_once_per_distinct_text(monkeypatch):
    n = 50_000
    frame = pd.DataFrame({"pid": np.arange(n),
                          "seen": pd.Series(np.array(["2020-01-05", "05/02/2020", "not a date"])[np.arange(n) % 3],
                                            dtype="str")})
    from data.schema import schema_from_dict
    schema = schema_from_dict({"dataset": {"id": "t", "privacy_unit": "pid", "max_rows": n},
                               "columns": {"pid": {"kind": "id"},
                                           "seen": {"kind": "date", "start": "2020-01-01", "end": "2020-12-31"}}})
    sizes = []
    real = pd.to_datetime

    def to_datetime(arg, *a, **k):
        sizes.append(len(arg))
        return real(arg, *a, **k)

    monkeypatch.setattr(prepare_mod.pd, "to_datetime", to_datetime)
    c = prepare(frame, schema)
    assert sizes == [3]
    assert c.report.coerced["seen"] == n // 3 + (1 if n % 3 > 2 else 0)


def test_columns_prepared_on_threads_equal_one_at_a_time(cohort_csv, monkeypatch):
    """Large tables encode their columns on threads: the same codes, numbers, days and owner report
    (in schema order) as one column at a time, here with missing values, other categories and
    values beyond the bounds in every kind of column."""
    frame = load_table(cohort_csv, filename="c.csv")
    rng = np.random.default_rng(3)
    for c in ("site", "psa", "diagnosis_date", "risk_group"):
        frame[c] = frame[c].astype(object)
        frame.loc[rng.random(len(frame)) < 0.05, c] = None
    frame.loc[rng.random(len(frame)) < 0.05, "site"] = "Site Z"
    frame.loc[rng.random(len(frame)) < 0.05, "psa"] = 1e6
    schema = cohort_schema("prostate")
    monkeypatch.setattr(prepare_mod, "PARALLEL_FROM_ROWS", 10**9)
    one = prepare(frame, schema)
    monkeypatch.setattr(prepare_mod, "PARALLEL_FROM_ROWS", 1)
    threaded = prepare(frame, schema)
    for part in ("codes", "numbers", "days", "day_missing"):
        a, b = getattr(one, part), getattr(threaded, part)
        assert list(a) == list(b) and a
        assert all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a), part
    assert one.report == threaded.report and one.report.lines() == threaded.report.lines()
    assert one.report.other["site"] > 0 and one.report.clamped["psa"] > 0 and one.report.missing["diagnosis_date"] > 0
