"""The file-by-file per-patient bound check of a Parquet snapshot (privacy.engine.file_bound):
it equals the true most-rows-per-patient whenever it answers, answers whenever the files hold
disjoint id ranges, and leaves overlapping files to the engine's GROUP BY (which then bounds a
patient whose rows are split across two files)."""
import dataclasses

import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

from data.prepare import prepare
from privacy.engine import aggregate_noise, numpy_aggregates
from privacy.engine.file_bound import most_rows_per_unit
from privacy.engine.sources import file_snapshot, open_cohort
from privacy.measurements import build_plan
from privacy.queries import CountQuery, HistogramQuery
from tests.test_engine_sql import _bounded_schema


def _write(tmp_path, parts, as_text: bool):
    d = tmp_path / "files"
    d.mkdir(exist_ok=True)
    for f in d.glob("*.parquet"):
        f.unlink()
    for i, ids in enumerate(parts):
        col = pd.array([None if v is None else (f"p{v:04d}" if as_text else v) for v in ids],
                       dtype="string" if as_text else "Int64")
        pd.DataFrame({"pid": col, "g": ["a"] * len(ids), "x": [1.0] * len(ids)}).to_parquet(d / f"part-{i:03d}.parquet")
    return file_snapshot(str(d))()


def _truth(parts) -> int:
    ids = pd.Series([v for p in parts for v in p], dtype="object")
    return int(ids.value_counts(dropna=False).max()) if len(ids) else 0


ids_ = st.lists(st.one_of(st.integers(0, 40), st.none()), max_size=25)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(ids_, min_size=1, max_size=4), as_text=st.booleans(), sort=st.booleans())
def test_answer_is_the_true_most_rows_or_none_for_overlapping_files(tmp_path_factory, parts, as_text, sort):
    tmp_path = tmp_path_factory.mktemp("fb")
    if sort:
        parts = [sorted(p, key=lambda v: (v is None, v)) for p in parts]
    got = most_rows_per_unit(_write(tmp_path, parts, as_text), "pid")
    key = (lambda x: f"p{x:04d}") if as_text else (lambda x: x)
    spans = sorted((min(v), max(v)) for v in ([key(x) for x in p if x is not None] for p in parts) if v)
    disjoint = all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    if disjoint:
        assert got == _truth(parts)
    else:
        assert got is None


def test_disjoint_batches_of_patients_are_checked_file_by_file(tmp_path):
    parts = [list(range(0, 100)), list(range(100, 200)) + [150, 150], list(range(200, 300))[::-1]]
    assert most_rows_per_unit(_write(tmp_path, parts, False), "pid") == 3
    assert most_rows_per_unit(_write(tmp_path, [list(range(10)), [None, None, 50]], False), "pid") == 2
    assert most_rows_per_unit(_write(tmp_path, [[1, 2, 3], [3, 4]], False), "pid") is None


def test_a_patient_split_across_overlapping_files_is_bounded(tmp_path):
    """Patient 5 has one row in each of two files whose id ranges overlap: the file check cannot
    answer, the engine's GROUP BY finds 2 rows > k = 1, and the window counts patient 5 once."""
    parts = [[1, 5, 9], [2, 5, 8]]
    snap = _write(tmp_path, parts, False)
    assert most_rows_per_unit(snap, "pid") is None
    schema = _bounded_schema(1, {"kind": "parquet", "path": str(tmp_path / "files")})
    eng = open_cohort(schema)
    plan = build_plan(CountQuery(), schema, 1.0)
    assert int(np.atleast_1d(eng.engine.aggregates(plan, aggregate_noise(plan))[0])[0]) == 5
    assert "row_number" in eng.engine.statement_sql(plan)
    # Disjoint files within the bound: no window, the same counts as in memory.
    _write(tmp_path, [[1, 2, 3], [7, 8]], False)
    plan = build_plan(HistogramQuery(column="g"), schema, 1.0)
    assert "row_number" not in eng.engine.statement_sql(plan)
    frame = pd.DataFrame({"pid": [1, 2, 3, 7, 8], "g": ["a"] * 5, "x": [1.0] * 5})
    mem = prepare(frame, dataclasses.replace(schema, storage=()))
    assert list(eng.engine.aggregates(plan, aggregate_noise(plan))[0]) == list(numpy_aggregates(plan, mem)[0])
