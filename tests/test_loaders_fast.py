"""The loader's shortcuts give the frame the plain conversion gives (issue 14).

`data.loaders` reads Parquet with pyarrow and the file's pandas metadata instead of going through
`pandas.read_parquet`, and concatenates each dictionary column's chunks before pyarrow converts the
table to pandas. These tests pin that the frames (values, dtypes, categories and their order,
column names, attributes) and the LoadReport's notes are the ones the plain conversion gives, on
varied files: many CSV blocks whose dictionaries differ, Parquet files with several row groups,
stored indexes, extension dtypes, time zones, empty columns and rows.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data.loaders as loaders
from data.loaders import load_table_with_report


def _plain(monkeypatch):
    """Make the loader convert dictionary columns chunk by chunk (pyarrow's own unification)."""
    monkeypatch.setattr(loaders, "_one_dictionary_chunk", lambda table, pool=None: table)


CHUNKS: list[int] = []


def _both(monkeypatch, data: bytes, filename: str, **kw):
    real = loaders._one_dictionary_chunk

    def counting(table, pool=None):
        CHUNKS.append(max([c.num_chunks for c in table.columns], default=0))
        return real(table, pool)

    with monkeypatch.context() as m:
        m.setattr(loaders, "_one_dictionary_chunk", counting)
        fast = load_table_with_report(data, filename=filename, **kw)
    with monkeypatch.context() as m:
        _plain(m)
        plain = load_table_with_report(data, filename=filename, **kw)
    return fast, plain


def _same(a, b):
    (fa, ra), (fb, rb) = a, b
    pd.testing.assert_frame_equal(fa, fb, check_exact=True, check_categorical=True)
    for c in fa.columns:
        if isinstance(fa[c].dtype, pd.CategoricalDtype):
            assert list(fa[c].cat.categories) == list(fb[c].cat.categories), c
            assert fa[c].cat.codes.dtype == fb[c].cat.codes.dtype, c
    assert fa.attrs == fb.attrs
    assert ra.lines() == rb.lines()


def _csv_blocks(n: int, seed: int) -> bytes:
    """Categories that first appear in late blocks, missing values, a date, floats and ints."""
    rng = np.random.default_rng(seed)
    late = np.where(np.arange(n) > n // 2, rng.integers(0, 40, n), rng.integers(0, 5, n))
    frame = pd.DataFrame({
        "pid": np.arange(n),
        "grp": pd.Series([f"g{v}" for v in late]).where(rng.random(n) > 0.05),
        "site": rng.choice(["Site A", "Site B", "Zürich", "Ålesund"], n),
        "seen": pd.Series(pd.date_range("2020-01-01", periods=400).strftime("%Y-%m-%d"))
                  .iloc[rng.integers(0, 400, n)].to_numpy(),
        "x": np.round(rng.normal(size=n), 3),
        "k": rng.integers(-5, 5, n),
    })
    frame.loc[n - 1, "grp"] = "only-at-the-end"
    return frame.to_csv(index=False).encode()


@pytest.mark.parametrize("block", [1 << 10, 1 << 14, loaders.CSV_BLOCK_BYTES])
@pytest.mark.parametrize("sep", [",", ";"])
def test_csv_dictionary_columns_in_one_chunk_read_alike(monkeypatch, block, sep):
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", block)
    data = _csv_blocks(3000, seed=block % 97)
    if sep == ";":
        data = data.replace(b",", b";").replace(b".", b",")          # decimal commas too
    CHUNKS.clear()
    a, b = _both(monkeypatch, data, "c.csv")
    _same(a, b)
    assert CHUNKS and (CHUNKS[-1] > 5 if block < 1 << 16 else CHUNKS[-1] >= 1)   # many blocks read
    frame = a[0]
    assert isinstance(frame["grp"].dtype, pd.CategoricalDtype)
    assert list(frame["grp"].cat.categories)[-1] == "only-at-the-end"   # first appearance order
    assert frame["seen"].dtype.kind == "M"


def _parquet(frame: pd.DataFrame, **kw) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.to_parquet(buf, **kw)
    return buf.getvalue()


def _reference_parquet(data: bytes, name: str = "p.parquet"):
    """The frame as pandas.read_parquet reads it, then the loader's common checks."""
    frame = pd.read_parquet(io.BytesIO(data))
    frame.columns = [loaders._name_str(c, i) for i, c in enumerate(frame.columns)]
    frame = frame.reset_index(drop=True)
    report = loaders.LoadReport(source=name, format="parquet", size_bytes=len(data))
    return loaders._finish(frame, name, report), report


def _parquet_cases():
    n = 5000
    rng = np.random.default_rng(3)
    cat = pd.Categorical(rng.choice(["low", "mid", "high", None], n), categories=["high", "mid", "low"])
    base = pd.DataFrame({
        "pid": np.arange(n, dtype=np.int32),
        "risk": cat,
        "grp": pd.Series(np.where(np.arange(n) < n // 2, "a", np.array([f"g{i % 30}" for i in range(n)])),
                         dtype="category"),
        "when": pd.date_range("2020-01-01", periods=n, freq="h"),
        "tz": pd.date_range("2020-01-01", periods=n, freq="h", tz="Europe/Paris"),
        "n": pd.array(np.where(rng.random(n) > 0.1, rng.integers(0, 9, n), None), dtype="Int64"),
        "b": pd.array(rng.random(n) > 0.5, dtype="boolean"),
        "x": np.where(rng.random(n) > 0.1, rng.normal(size=n), np.nan),
        "s": pd.Series(rng.choice(["u", "v", None], n), dtype="str"),
        "empty": np.full(n, np.nan),
    })
    yield "row groups", _parquet(base, row_group_size=700)
    yield "one group", _parquet(base)
    yield "stored index", _parquet(base.set_index("pid"))
    yield "range index", _parquet(base.iloc[10:], index=True)
    attrs = base.copy()
    attrs.attrs = {"origin": "registry export"}
    yield "attrs", _parquet(attrs)
    yield "empty rows", _parquet(pd.DataFrame({"a": [1.0, np.nan, 2.0], "b": pd.Series(["x", None, "y"], dtype="category")}))
    yield "no pandas metadata", _parquet(base, schema=None, row_group_size=999)


@pytest.mark.parametrize("case,data", list(_parquet_cases()), ids=[c for c, _ in _parquet_cases()])
def test_parquet_reads_as_pandas_read_parquet(case, data):
    frame, report = load_table_with_report(data, filename="p.parquet")
    want, want_report = _reference_parquet(data)
    pd.testing.assert_frame_equal(frame, want, check_exact=True, check_categorical=True)
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.CategoricalDtype):
            assert list(frame[c].cat.categories) == list(want[c].cat.categories), c
    assert frame.attrs == want.attrs
    assert report.lines() == want_report.lines()


def test_parquet_path_is_memory_mapped_and_reads_alike(tmp_path, monkeypatch):
    data = dict(_parquet_cases())["row groups"]
    big = pd.read_parquet(io.BytesIO(data))
    big = pd.concat([big] * 30, ignore_index=True)
    path = tmp_path / "big.parquet"
    path.write_bytes(_parquet(big, row_group_size=20_000))
    assert path.stat().st_size >= loaders.MMAP_MIN_BYTES
    seen = []
    real = loaders._read_parquet
    monkeypatch.setattr(loaders, "_read_parquet", lambda d, *a: (seen.append(type(d)), real(d, *a))[1])
    frame, report = load_table_with_report(path)
    import mmap
    assert seen == [mmap.mmap]
    want, want_report = _reference_parquet(path.read_bytes(), "big.parquet")
    pd.testing.assert_frame_equal(frame, want, check_exact=True)
    assert report.lines() == want_report.lines()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.lists(st.sampled_from(["a", "b", "c", "dé", "", "NA", "x y"]), min_size=1, max_size=60),
                       min_size=2, max_size=8),
       block=st.sampled_from([64, 256, 4096]))
def test_csv_categories_any_chunking(monkeypatch, values, block):
    """Text columns read in many small blocks, values first seen in any block: the same frame."""
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", block)
    rows = [f"{i},{v}" for i, chunk in enumerate(values) for v in chunk]
    data = ("id,v\n" + "\n".join(rows) + "\n").encode()
    try:
        a, b = _both(monkeypatch, data, "h.csv")
    except loaders.LoadError as e:                      # e.g. every value missing: same error both ways
        with monkeypatch.context() as m:
            _plain(m)
            with pytest.raises(type(e), match=None) as got:
                load_table_with_report(data, filename="h.csv")
        assert str(got.value) == str(e)
        return
    _same(a, b)


def test_mapped_file_checks_search_from_the_start(tmp_path):
    """mmap.find starts at the map's current position, not at 0: the NUL and hexadecimal checks
    pass 0, so a mapped file read (moved) by someone else is still checked whole."""
    path = tmp_path / "m.csv"
    path.write_bytes(b"id,x\n0x10,1\n16,2\n" + b"9,9\n" * 1000)
    mapped = loaders._map_file(path)
    mapped.seek(0, 2)                                   # at the end
    assert loaders._has_hex_prefix(mapped)
    nul = tmp_path / "n.csv"
    nul.write_bytes(b"id,x\n1,\x002\n" + b"9,9\n" * 1000)
    mapped = loaders._map_file(nul)
    mapped.seek(0, 2)
    with pytest.raises(loaders.EncodingError, match="NUL"):
        loaders._utf8(mapped, "n.csv", None, loaders.LoadReport(source="n.csv"))
