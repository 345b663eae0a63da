"""Reading owner files (data.loaders) and proposing a schema from them (data.propose).

Every bad input is refused with a specific LoadError subclass and message; a proposal is never
confirmed; and arbitrary small tables never crash load -> propose -> prepare (only typed errors).
"""
from __future__ import annotations

import datetime as dt
import math
import mmap
import os
import tomllib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data.loaders as loaders
from data.loaders import (DEFAULT_MAX_BYTES, DelimiterError, EmptyFileError, EncodingError, FileTooLargeError,
                          HeaderError, LoadError, LoadReport, MalformedCSVError, PathNotAllowedError,
                          UnreadableFileError, UnsupportedFormatError, load_table, load_table_with_report)
from data.prepare import DataValidationError, prepare, unavailable_message
from data.propose import NoIdColumnError, add_row_ids, nice_bounds, propose_schema, propose_schema_with_notes
from data.schema import (CategoricalColumn, DateColumn, IdColumn, NumericColumn, SchemaError, schema_from_dict,
                         schema_to_toml)


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ------------------------------------------------------------------------------------ CSV problems
def test_ragged_csv_names_the_line(tmp_path):
    p = write(tmp_path, "ragged.csv", b"id,age,site\n1,50,A\n2,61\n3,70,B\n")
    with pytest.raises(MalformedCSVError, match=r"line 3 has 2 values but the header \(line 1\) has 3 columns"):
        load_table(p)
    p = write(tmp_path, "extra.csv", b"id,age\n1,50\n2,61,\n")
    with pytest.raises(MalformedCSVError, match="line 3 has 3 values.*ends with an extra separator"):
        load_table(p)
    with pytest.raises(MalformedCSVError, match="line 2: a value opens a double quote that is never closed"):
        load_table(b'id,note\n1,"unclosed\n2,x\n', filename="q.csv")
    with pytest.raises(MalformedCSVError, match="double quote opened on an earlier line"):
        load_table(b'id,note,z\n1,"unclosed\n2,x,y\n', filename="q.csv")


def test_semicolon_csv_is_detected_loaded_and_reported(tmp_path):
    p = write(tmp_path, "semi.csv", b"id;psa;site\n1;4,5;A\n2;12;B\n")
    frame, rep = load_table_with_report(p)
    assert list(frame.columns) == ["id", "psa", "site"] and len(frame) == 2
    assert rep.delimiter == ";" and rep.delimiter_detected
    assert "separator semicolon ';' detected" in rep.summary()
    frame, rep = load_table_with_report(b"a\tb\n1\t2\n", filename="t.csv")
    assert rep.delimiter == "\t" and list(frame.columns) == ["a", "b"]
    frame, rep = load_table_with_report(b"a;b\n1;2\n", filename="t.csv", delimiter=";")
    assert not rep.delimiter_detected and "as given" in rep.summary()


def test_wrong_or_undecidable_delimiter_is_refused():
    with pytest.raises(DelimiterError, match="separator comma ',' does not occur in the first line.*semicolon"):
        load_table(b"a;b\n1;2\n", filename="x.csv", delimiter=",")
    with pytest.raises(DelimiterError, match="cannot tell which character separates the columns"):
        load_table(b"a,b;c\n1,2\n3;4\n", filename="x.csv")
    with pytest.raises(DelimiterError, match="one character"):
        load_table(b"a,b\n1,2\n", filename="x.csv", delimiter="::")


def test_non_utf8_names_the_byte_offset_and_suggests_latin1():
    raw = "id,site\n1,Hôpital Nord\n".encode("latin-1")
    with pytest.raises(EncodingError, match=r"not valid UTF-8: byte 0xF4 at offset 11 \(line 2\).*latin-1") as e:
        load_table(raw, filename="l.csv")
    assert isinstance(e.value, LoadError) and isinstance(e.value, ValueError)
    frame, rep = load_table_with_report(raw, filename="l.csv", encoding="latin-1")
    assert frame["site"].tolist() == ["Hôpital Nord"] and rep.encoding == "latin-1"
    with pytest.raises(EncodingError, match="not valid utf-8: byte 0xF4 at offset 11"):
        load_table(raw, filename="l.csv", encoding="utf-8")
    with pytest.raises(EncodingError, match="unknown text encoding 'klingon'"):
        load_table(b"a,b\n1,2\n", filename="l.csv", encoding="klingon")
    # BOMs: UTF-8 BOM stripped from the first name; UTF-16 with BOM read
    assert list(load_table("\ufeffa,b\n1,2\n".encode(), filename="b.csv").columns) == ["a", "b"]
    assert load_table("a,b\n1,2\n".encode("utf-16"), filename="w.csv")["b"].tolist() == [2]


def test_empty_inputs(tmp_path):
    with pytest.raises(EmptyFileError, match=r"empty.csv is empty \(0 bytes\)"):
        load_table(write(tmp_path, "empty.csv", b""))
    with pytest.raises(EmptyFileError, match="no text"):
        load_table(b"\n \n", filename="blank.csv")
    with pytest.raises(EmptyFileError, match="header line but no data rows"):
        load_table(b"a,b\n", filename="h.csv")
    with pytest.raises(EmptyFileError, match="every row is empty"):
        load_table(b"a,b\n,\n,\n", filename="e.csv")


def test_duplicate_and_empty_column_names():
    with pytest.raises(HeaderError, match=r"the column name 'age' appears 2 times \(columns 2, 4\)"):
        load_table(b"id,age,site,age\n1,2,3,4\n", filename="d.csv")
    with pytest.raises(HeaderError, match="'age' appears 2 times"):      # equal once spaces are trimmed
        load_table(b"id,age, age\n1,2,3\n", filename="d.csv")
    with pytest.raises(HeaderError, match="column 2 has no name in the header"):
        load_table(b"id,,site\n1,2,3\n", filename="n.csv")
    # A separator at the end of every line makes an empty nameless column: ignored, with a warning
    frame, rep = load_table_with_report(b"id,age,\n1,2,\n3,4,\n", filename="t.csv")
    assert list(frame.columns) == ["id", "age"]
    assert any("nameless last column" in w for w in rep.warnings)


def test_all_null_column_is_reported_not_refused():
    frame, rep = load_table_with_report(b"id,empty,age\n1,,50\n2,,60\n", filename="n.csv")
    assert rep.all_null_columns == ["empty"]
    assert "Column 'empty' is empty in every row" in rep.lines()
    assert isinstance(rep, LoadReport) and rep.rows == 2 and rep.columns == 3


def test_size_limit_is_checked_before_parsing(tmp_path, monkeypatch):
    bad = "id,site\n1,Hôpital\n".encode("latin-1") * 50            # would be an encoding error if parsed
    p = write(tmp_path, "big.csv", bad)
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("parsed a file over the limit"))
    with pytest.raises(FileTooLargeError, match=r"big.csv is 900 bytes; the limit is 100 bytes"):
        load_table(p, max_bytes=100)
    with pytest.raises(FileTooLargeError, match="limit is 100 bytes"):
        load_table(bad, filename="big.csv", max_bytes=100)
    with open(p, "rb") as fh:
        with pytest.raises(FileTooLargeError):
            load_table(fh, max_bytes=100)
    assert DEFAULT_MAX_BYTES >= 100 * 1024 * 1024


def test_paths_outside_the_allowed_folder_are_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    write(root, "ok.csv", b"a,b\n1,2\n")
    secret = write(tmp_path, "secret.csv", b"a,b\n1,2\n")
    assert load_table("ok.csv", root=root)["b"].tolist() == [2]
    assert len(load_table(root / "sub" / ".." / "ok.csv", root=root)) == 1       # '..' staying inside is fine
    with pytest.raises(PathNotAllowedError, match="'../secret.csv' is outside the allowed data folder"):
        load_table("../secret.csv", root=root)
    with pytest.raises(PathNotAllowedError, match="outside the allowed data folder"):
        load_table(secret, root=root)
    os.symlink(secret, root / "link.csv")
    with pytest.raises(PathNotAllowedError, match="outside the allowed data folder"):
        load_table(root / "link.csv", root=root)
    with pytest.raises(UnreadableFileError, match="data file not found"):
        load_table(root / "nope.csv", root=root)


def test_unsupported_extensions_and_mislabelled_content(tmp_path):
    with pytest.raises(UnsupportedFormatError, match=r"'.json' files are not supported; use .csv, .parquet or .xlsx"):
        load_table(write(tmp_path, "x.json", b"{}"))
    with pytest.raises(UnsupportedFormatError, match="old Excel .xls files are not supported"):
        load_table(b"\xd0\xcf\x11\xe0....", filename="x.xls")
    with pytest.raises(UnsupportedFormatError, match="no extension"):
        load_table(write(tmp_path, "noext", b"a,b\n1,2\n"))
    with pytest.raises(UnsupportedFormatError, match="looks like a Parquet file"):
        load_table(b"PAR1....", filename="x.csv")
    with pytest.raises(UnreadableFileError, match="cannot read y.parquet as Parquet"):
        load_table(b"PAR1garbage", filename="y.parquet")
    with pytest.raises(UnreadableFileError, match="is not an Excel .xlsx file"):
        load_table(b"a,b\n1,2\n", filename="y.xlsx")
    with pytest.raises(UnreadableFileError, match="cannot read y.xlsx as an Excel workbook"):
        load_table(b"PK\x03\x04garbage", filename="y.xlsx")


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": [1, 2, 3, 4],
        "age": [51, 64, 70, 88],
        "psa": [0.37, 4.2, 97.2, np.nan],
        "site": ["A", "B", "<script>alert(1)</script>", "+HYPERLINK(\"x\")"],
        "diagnosed": pd.to_datetime(["2019-03-02", "2020-07-15", None, "2021-01-31"]),
    })


def test_excel_and_parquet_round_trips(tmp_path):
    f = sample_frame()
    f.to_parquet(tmp_path / "c.parquet", index=False)
    f.to_excel(tmp_path / "c.xlsx", index=False)
    for p in (tmp_path / "c.parquet", tmp_path / "c.xlsx"):
        got, rep = load_table_with_report(p)
        assert list(got.columns) == list(f.columns)
        assert got["patient_id"].tolist() == [1, 2, 3, 4]
        np.testing.assert_allclose(got["psa"].to_numpy(dtype=float), f["psa"].to_numpy(), equal_nan=True)
        assert got["site"].tolist() == f["site"].tolist()            # HTML / formulas kept as data
        assert pd.to_datetime(got["diagnosed"]).tolist()[:2] == f["diagnosed"].tolist()[:2]
        assert rep.format == p.suffix.lstrip(".") and rep.rows == 4
    # bytes without a file name are recognised by content
    assert len(load_table((tmp_path / "c.xlsx").read_bytes())) == 4
    assert len(load_table((tmp_path / "c.parquet").read_bytes())) == 4
    # several sheets: the first is read, and that is said
    with pd.ExcelWriter(tmp_path / "two.xlsx") as w:
        f.to_excel(w, sheet_name="cohort", index=False)
        f.to_excel(w, sheet_name="notes", index=False)
    got, rep = load_table_with_report(tmp_path / "two.xlsx")
    assert rep.sheet == "cohort" and any("2 sheets" in w for w in rep.warnings)


def test_load_table_keeps_its_simple_signature(tmp_path):
    p = write(tmp_path, "c.csv", b"a,b\n1,x\n")
    assert isinstance(load_table(p), pd.DataFrame) and isinstance(load_table(str(p)), pd.DataFrame)
    assert issubclass(LoadError, DataValidationError) and issubclass(LoadError, ValueError)


# ------------------------------------------------------------------------------------ with a schema
def _schema(**cols):
    return schema_from_dict({"dataset": {"id": "t", "privacy_unit": "pid", "max_rows": 1000},
                             "columns": {"pid": {"kind": "id"}, **cols}})


def test_schema_naming_missing_columns_is_a_schema_error():
    frame = load_table(b"pid,age\n1,50\n", filename="c.csv")
    schema = _schema(age={"kind": "numeric", "lower": 0, "upper": 120},
                     bmi={"kind": "numeric", "lower": 10, "upper": 60})
    with pytest.raises(SchemaError, match="the schema names columns the table does not have: bmi"):
        prepare(frame, schema)


def test_dates_that_do_not_parse_are_counted_as_coerced():
    frame = load_table(b"pid,seen\n1,2020-01-05\n2,not a date\n3,2020-13-45\n4,\n", filename="d.csv")
    schema = _schema(seen={"kind": "date", "start": "2020-01-01", "end": "2020-12-31"})
    rep = prepare(frame, schema).report
    assert rep.coerced["seen"] == 2 and rep.missing["seen"] == 3
    assert any("unparseable values set to missing: seen 2" in line for line in rep.lines())


# ------------------------------------------------------------------------------------ proposals
def test_nice_bounds_round_outward():
    lo, hi, edges = nice_bounds(0.37, 97.2)
    assert (lo, hi) == (0, 100) and edges == tuple(float(x) for x in range(0, 101, 10))
    lo, hi, edges = nice_bounds(41, 93, integer=True)
    assert (lo, hi) == (40, 95) and 8 <= len(edges) - 1 <= 12
    lo, hi, edges = nice_bounds(0.0213, 0.0987)
    assert lo <= 0.0213 and hi >= 0.0987 and lo == 0.02 and hi == 0.1
    assert all(b > a for a, b in zip(edges, edges[1:]))
    for a, b in [(5, 5), (-1e308, 1e308), (0, 5e-324), (-3.3, -0.01), (1e17, 1e17 + 64)]:
        lo, hi, edges = nice_bounds(a, b)
        assert lo <= a and hi >= b and lo < hi and edges[0] == lo and edges[-1] == hi


def test_propose_schema_guesses_kinds_and_is_unconfirmed():
    f = sample_frame()
    f = pd.concat([f] * 3, ignore_index=True)            # patient ids repeat: 3 rows each
    s, notes = propose_schema_with_notes(f, "trial")
    assert s.confirmed is False
    assert s.privacy_unit == "patient_id" and isinstance(s.column("patient_id"), IdColumn)
    psa = s.column("psa")
    assert isinstance(psa, NumericColumn) and (psa.lower, psa.upper) == (0, 100)
    age = s.column("age")
    assert isinstance(age, NumericColumn) or isinstance(age, CategoricalColumn)
    site = s.column("site")
    assert isinstance(site, CategoricalColumn)
    assert site.categories == tuple(sorted(["A", "B", "<script>alert(1)</script>", "+HYPERLINK(\"x\")"]))
    d = s.column("diagnosed")
    assert isinstance(d, DateColumn) and d.start == dt.date(2019, 1, 1) and d.end == dt.date(2021, 12, 31)
    assert s.max_rows_per_unit == 3 and s.max_rows >= 2 * len(f) and s.max_rows in (100, 200, 500, 1000)
    assert any("Max rows per patient 3" in n for n in notes)
    # the proposal serialises and reloads unchanged (so it can be confirmed and saved as is)
    assert schema_from_dict(tomllib.loads(schema_to_toml(s))) == s
    rep = prepare(f, s).report
    assert rep.rows_out == len(f) and rep.clamped["psa"] == 0


def test_propose_more_cases():
    f = pd.DataFrame({"PatientID": ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"],
                      "grade": [1, 2, 2, 3, 1, 10, 3, 2],              # 4 values that repeat: categorical
                      "flag": [True, False, True, True, False, False, True, True],
                      "seen": ["2024-01-31", "2024-03-02", "2024-02-10", "2024-05-01", "2024-01-02",
                               "2024-02-02", "2024-03-03", "2024-04-04"],
                      "empty": [None] * 8,
                      "note": [f"free text {i}" for i in range(8)],
                      "weight": [70.5, 80.25, 66.0, 91.75, 58.5, 102.0, 77.0, 64.5]})
    s, notes = propose_schema_with_notes(f, "x")
    assert s.privacy_unit == "PatientID"
    assert s.column("grade").categories == ("1", "2", "3", "10")            # numeric order
    assert s.column("flag").categories == ("False", "True")
    seen = s.column("seen")
    assert isinstance(seen, DateColumn) and (seen.start, seen.end) == (dt.date(2024, 1, 1), dt.date(2024, 5, 31))
    assert "empty" not in s.names and any("'empty' is empty in every row" in n for n in notes)
    assert isinstance(s.column("note"), CategoricalColumn)                   # 6 values <= 30
    w = s.column("weight")
    assert w.lower <= 58.5 and w.upper >= 102 and w.lower % 5 == 0 and w.upper % 5 == 0
    # explicit privacy unit and limit win; a missing one is a SchemaError
    s2 = propose_schema(f, "x", privacy_unit="note", max_rows_per_unit=2)
    assert s2.privacy_unit == "note" and s2.max_rows_per_unit == 2 and s2.confirmed is False
    with pytest.raises(SchemaError, match="privacy unit 'nope' is not a column"):
        propose_schema(f, "x", privacy_unit="nope")
    with pytest.raises(SchemaError, match="dataset id"):
        propose_schema(f, "bad id!")
    # no id column: a typed error, and numbering the rows fixes it
    g = f.drop(columns="PatientID")
    with pytest.raises(NoIdColumnError, match="no column looks like a patient identifier"):
        propose_schema(g, "x")
    s3 = propose_schema(add_row_ids(g), "x")
    assert s3.privacy_unit == "row_id" and s3.max_rows_per_unit == 1
    with pytest.raises(DataValidationError) as e:
        propose_schema(f.iloc[:0], "x")
    assert "no rows" in e.value.owner_detail and "no rows" not in str(e.value)   # str() is public


def test_reserved_and_many_text_values():
    f = pd.DataFrame({"pid": range(40), "status": ["missing", "other", "alive", "dead"] * 10,
                      "name": [f"person {i}" for i in range(40)]})
    s, notes = propose_schema_with_notes(f, "x")
    assert s.column("status").categories == ("alive", "dead")
    assert any("reserved bucket" in n for n in notes)
    assert "name" not in s.names and any("40 distinct text values" in n for n in notes)


# ------------------------------------------------------------------------------------ never crash
SPECIAL = ["", " ", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "=1+2", "+cmd|' /C calc'!A0",
           "@SUM(A1)", "-2", "2024-01-31", "31/01/2024", "missing", "other", "NaN", "inf", "-inf", "é", '"', ",",
           ";", "a\nb", "\t", "0x10", "1e400", "[x](javascript:alert(1))", "**b**"]
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
cells = {
    "int": st.one_of(st.none(), st.integers(-10**6, 10**6)),
    "float": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.37, 97.2, 1e308, -1e308, 5e-324])),
    "text": st.one_of(st.none(), text, st.sampled_from(SPECIAL)),
    "date": st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)).map(str),
                      st.sampled_from(["not a date", "2020-02-30", "0001-01-01", "9999-12-31"])),
    "mixed": st.one_of(st.none(), st.integers(-5, 5), st.floats(), text, st.sampled_from(SPECIAL)),
}
names = st.one_of(st.sampled_from(["patient_id", "id", "age", "Site", "when", "x", "<b>h</b>", "=A1", "a,b",
                                   "é", "", " ", "age"]), text)


@st.composite
def frames(draw):
    n = draw(st.integers(1, 12))
    kinds = draw(st.lists(st.sampled_from(list(cells)), min_size=1, max_size=5))
    cols = draw(st.lists(names, min_size=len(kinds), max_size=len(kinds)))
    data = {}
    for i, (k, c) in enumerate(zip(kinds, cols)):
        data[i] = (c, draw(st.lists(cells[k], min_size=n, max_size=n)))
    if draw(st.booleans()):
        data[-1] = ("patient_id", draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)))
    return list(data.values())


def _bytes(cols, fmt: str, sep: str) -> tuple[bytes, str]:
    frame = pd.DataFrame({i: v for i, (_, v) in enumerate(cols)})
    frame.columns = [c for c, _ in cols]
    if fmt == "parquet":
        import io
        frame = frame.map(lambda v: None if v is None else str(v)).astype(object)   # parquet needs one type
        frame.columns = [f"c{i}_{c}" for i, c in enumerate(frame.columns)]
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue(), "f.parquet"
    return frame.to_csv(index=False, sep=sep).encode("utf-8"), "f.csv"


@settings(max_examples=int(os.environ.get("DP_FUZZ_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cols=frames(), fmt=st.sampled_from(["csv", "csv", "parquet"]), sep=st.sampled_from([",", ";", "\t", "|"]))
def test_arbitrary_small_tables_never_crash_load_propose_prepare(cols, fmt, sep):
    data, name = _bytes(cols, fmt, sep)
    try:
        frame, rep = load_table_with_report(data, filename=name)
    except LoadError:
        return
    assert rep.rows == len(frame) > 0 and rep.columns == len(frame.columns)
    try:
        schema, notes = propose_schema_with_notes(frame, "fuzz")
    except NoIdColumnError:
        frame = add_row_ids(frame)
        schema, notes = propose_schema_with_notes(frame, "fuzz")
    except (SchemaError, DataValidationError):
        return
    assert schema.confirmed is False
    assert schema_from_dict(tomllib.loads(schema_to_toml(schema))) == schema
    for c in schema.of_kind("numeric"):
        assert math.isfinite(c.lower) and math.isfinite(c.upper) and c.lower < c.upper
    try:
        cohort = prepare(frame, schema)
    except DataValidationError as e:
        assert "patient id" in e.owner_detail or "max_rows" in e.owner_detail, e.owner_detail
        assert str(e) == unavailable_message("fuzz")          # the public text reveals nothing
        return
    assert cohort.n_rows <= len(frame)


# ------------------------------------------------------------------------------------ large files (pyarrow reader)
def _rows(n: int, newline: bytes = b"\n") -> bytes:
    """n rows of id,note,k with quoted notes, several reader blocks long when n is large."""
    return b"".join(b'%d,"note, %d",%d%s' % (i, i, i % 7, newline) for i in range(n))


def test_problems_deep_in_a_large_file_keep_their_line_and_byte():
    big = b"id,note,k\n" + _rows(300_000)                       # ~7 MB: more than one reader block
    frame = load_table(big, filename="big.csv")
    assert len(frame) == 300_000 and frame["note"].iloc[-1] == "note, 299999"
    with pytest.raises(MalformedCSVError, match=r"line 300002 has 2 values but the header \(line 1\) has 3 columns"):
        load_table(big + b'5,"x"\n' + _rows(1000), filename="big.csv")
    with pytest.raises(MalformedCSVError, match="line 300003 has 4 values.*ends with an extra separator"):
        load_table(big + b"1,a,2\n5,x,1,\n", filename="big.csv")
    with pytest.raises(MalformedCSVError, match="line 300002: a value opens a double quote that is never closed"):
        load_table(big + b'5,x,"open\n6,y,z\n', filename="big.csv")
    with pytest.raises(MalformedCSVError, match="line 300003 has 2 values.*double quote opened on an earlier line"):
        load_table(big + b'5,"open\n6,y,z\n', filename="big.csv")
    offset = len(big) + 2
    with pytest.raises(EncodingError, match=rf"byte 0xFF at offset {offset:,} \(line 300002\)"):
        load_table(big + b"5,\xff,1\n", filename="big.csv")


def test_line_endings_quotes_and_long_values():
    for nl in (b"\r\n", b"\r"):
        f = load_table(b"id,note,k" + nl + _rows(50, nl), filename="w.csv")
        assert len(f) == 50 and f["note"].iloc[3] == "note, 3"
    with pytest.raises(MalformedCSVError, match="line 5 has 2 values"):
        load_table(b"id,note,k\r\n" + _rows(3, b"\r\n") + b"9,x\r\n", filename="w.csv")
    f = load_table(b'id,note\n1,"two\nlines"\n2,"say ""hi"""\n', filename="q.csv")
    assert f["note"].tolist() == ["two\nlines", 'say "hi"']
    long_cell = b"y" * 6_000_000                                # longer than one reader block
    f = load_table(b'id,note\n1,"' + long_cell + b'"\n2,b\n', filename="long.csv")
    assert len(f["note"].iloc[0]) == 6_000_000 and f["note"].iloc[1] == "b"
    f, rep = load_table_with_report(b"\n  \n\nid,x\n1,2\n  \n3,4\n", filename="blank.csv")
    assert f["x"].tolist() == [2, 4] and rep.rows == 2          # lines of spaces are blank lines


def test_values_pyarrow_would_change_are_kept_as_written():
    f = load_table(b"id,x\n12345678901234567890,1\n12345678901234567891,2\n", filename="w.csv")
    assert f["id"].nunique() == 2 and f["id"].dtype == np.uint64    # not two equal floats
    f = load_table(b"id,x\n-12345678901234567890,1\n12345678901234567891,2\n", filename="w.csv")
    assert f["id"].tolist() == ["-12345678901234567890", "12345678901234567891"]
    f = load_table(b"id,x\n0x10,1\n16,2\n", filename="h.csv")
    assert f["id"].tolist() == ["0x10", "16"]                      # not 16 and 16
    f = load_table(b"a,b,c\n1,NA,None\n2,N/A,<NA>\n3,null,x\n", filename="na.csv")
    assert f["b"].isna().all() and f["c"].isna().tolist() == [True, True, False]
    f = load_table(b"a,b,c\n1,True,1\n2,false,0\n", filename="b.csv")
    assert f["b"].tolist() == [True, False] and f["c"].tolist() == [1, 0]
    f = load_table(b"a,d\n1,2024-01-31\n2,\n", filename="d.csv")
    assert pd.api.types.is_datetime64_any_dtype(f["d"]) and f["d"].iloc[0] == pd.Timestamp("2024-01-31")
    f = load_table(b"a;v\n1;4,5\n2;\n3; 7,25 \n", filename="s.csv")
    assert f["v"].tolist()[::2] == [4.5, 7.25] and np.isnan(f["v"].iloc[1])


def test_csv_and_parquet_of_one_cohort_prepare_alike(tmp_path):
    from data.cohorts import cohort_schema, generate_prostate

    frame = generate_prostate(rows=3000, seed=5)
    frame.to_parquet(tmp_path / "c.parquet")
    frame.to_csv(tmp_path / "c.csv", index=False)
    schema = cohort_schema("prostate")
    a = prepare(load_table(tmp_path / "c.parquet"), schema, keep_frame=False)
    b = prepare(load_table(tmp_path / "c.csv"), schema, keep_frame=False)
    assert a.n_rows == b.n_rows == 3000
    for name in a.codes:
        np.testing.assert_array_equal(a.codes[name], b.codes[name], err_msg=name)
    for name in a.days:
        np.testing.assert_array_equal(a.days[name], b.days[name], err_msg=name)
    for name in a.numbers:                                        # float32 in Parquet, text in CSV
        np.testing.assert_allclose(a.numbers[name], b.numbers[name], rtol=1e-6, equal_nan=True, err_msg=name)
    assert a.report.lines() == b.report.lines()
    # text columns with few values are read as categoricals, like the Parquet file's
    csv_frame = load_table(tmp_path / "c.csv")
    assert isinstance(csv_frame["site"].dtype, pd.CategoricalDtype)
    assert sorted(csv_frame["site"].cat.categories) == sorted(frame["site"].cat.categories)


def test_float_and_integer_categories_are_labelled_once_as_before():
    schema = _schema(g={"kind": "categorical", "categories": ["1", "2", "3"]},
                     f={"kind": "categorical", "categories": ["1", "2.5"]},
                     t={"kind": "categorical", "categories": ["a", "b"]},
                     o={"kind": "categorical", "categories": ["1", "1.0", "True"]})
    frame = pd.DataFrame({"pid": range(6), "g": [1, 2, 3, 4, 1, 2],
                          "f": [1.0, 2.5, np.nan, 1.0, 3.0, 2.5],
                          "t": pd.Series(["a", "b", None, "c", "a", "a"], dtype="str"),
                          "o": pd.Series([1, 1.0, True, "x", None, 1], dtype=object)})
    c = prepare(frame, schema)
    assert c.codes["g"].tolist() == [0, 1, 2, 4, 0, 1]             # 4: other (K+1)
    assert c.codes["f"].tolist() == [0, 1, 2, 0, 3, 1]             # NaN: missing (K), 3.0: other
    assert c.codes["t"].tolist() == [0, 1, 2, 3, 0, 0]
    assert c.codes["o"].tolist() == [0, 1, 2, 4, 3, 0]             # object values keep their own text
    assert c.report.missing["f"] == 1 and c.report.other["g"] == 1


def test_dates_outside_the_nanosecond_range_are_not_wrapped():
    frame = pd.DataFrame({"pid": [1, 2, 3],
                          "seen": np.array(["0001-01-01", "2020-06-01", "9999-12-31"], dtype="datetime64[ms]")})
    schema = _schema(seen={"kind": "date", "start": "2020-01-01", "end": "2020-12-31"})
    c = prepare(frame, schema)
    assert c.report.clamped["seen"] == 2 and c.report.coerced["seen"] == 0
    start, end = pd.Timestamp("2020-01-01"), pd.Timestamp("2020-12-31")
    epoch = pd.Timestamp("1970-01-01")
    assert c.days["seen"].tolist() == [(start - epoch).days, (pd.Timestamp("2020-06-01") - epoch).days,
                                       (end - epoch).days]
    text = load_table(b"pid,seen\n1,2020-01-05\n2,not a date\n3,2020-05-01\n3,2020-05-01\n", filename="t.csv")
    assert prepare(text, schema).report.coerced["seen"] == 1


# ------------------------------------------------------------------------------------ size limits are configuration
def test_no_size_limit_unless_asked(tmp_path):
    p = write(tmp_path, "c.csv", b"a,b\n" + b"1,2\n" * 1000)
    assert len(load_table(p)) == 1000                                # default: no limit
    with pytest.raises(FileTooLargeError, match=r"the limit is 1.0 KB.*--max-file-mb.*server.maxUploadSize"):
        load_table(p, max_bytes=1024)
    with pytest.raises(ValueError, match="max_bytes must be a positive integer or None"):
        load_table(p, max_bytes=0)


def test_upload_limit_is_streamlits_max_upload_size(tmp_path, monkeypatch):
    import tomllib as _toml
    from pathlib import Path

    from data.loaders import upload_limit_bytes

    repo = Path(__file__).resolve().parents[1]
    configured = _toml.loads((repo / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    monkeypatch.delenv("STREAMLIT_SERVER_MAX_UPLOAD_SIZE", raising=False)
    monkeypatch.chdir(repo)
    import sys
    monkeypatch.delitem(sys.modules, "streamlit", raising=False)   # read the file, as the CLI does
    assert upload_limit_bytes() == configured * 1024 * 1024
    assert DEFAULT_MAX_BYTES >= 100 * 1024 * 1024
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text("[server]\nmaxUploadSize = 7\n")
    monkeypatch.chdir(tmp_path)
    assert upload_limit_bytes() == 7 * 1024 * 1024
    monkeypatch.setenv("STREAMLIT_SERVER_MAX_UPLOAD_SIZE", "3")     # as `streamlit run` reads it
    assert upload_limit_bytes() == 3 * 1024 * 1024


def test_command_line_file_size_flags(tmp_path, capsys):
    from data.__main__ import main as data_main
    from privacy.cli import main as privacy_main

    p = write(tmp_path, "c.csv", b"pid,age\n" + b"".join(b"%d,%d\n" % (i, 40 + i % 50) for i in range(800)))
    schema = tmp_path / "s.toml"
    schema.write_text(schema_to_toml(_schema(age={"kind": "numeric", "lower": 0, "upper": 120})))
    assert data_main(["load", str(p), "--schema", str(schema)]) == 0
    out = capsys.readouterr().out
    assert "Read 800 rows × 2 columns from c.csv" in out and "800 rows read, 800 kept" in out
    assert data_main(["load", str(p), "--max-file-mb", "0.001"]) == 2
    assert "the limit is 1.0 KB" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_main(["load", str(p), "--max-file-mb", "-1"])
    assert "positive number of megabytes" in capsys.readouterr().err
    args = ["release", "--data", str(p), "--schema", str(schema), "--stat", "count", "--epsilon", "1",
            "--ledger", str(tmp_path / "l.sqlite")]
    assert privacy_main(args + ["--max-file-mb", "0.001"]) == 2
    err = capsys.readouterr().err
    assert "c.csv is" in err and "the limit is 1.0 KB" in err and len(err.strip().splitlines()) == 1
    assert privacy_main(args + ["--max-file-mb", "0"]) == 2
    assert "--max-file-mb: must be a positive number" in capsys.readouterr().err
    assert privacy_main(args) == 0                                   # no flag: no limit


def test_one_patient_however_a_csv_writes_the_id():
    schema = schema_from_dict({"dataset": {"id": "t", "privacy_unit": "pid", "max_rows": 10_000, "max_rows_per_unit": 1},
                               "columns": {"pid": {"kind": "id"}, "x": {"kind": "numeric", "lower": 0, "upper": 10}}})
    numbers = load_table(b'pid,x\n17,1\n17.0,2\n 17 ,3\n"17",4\n18,5\n', filename="ids.csv")
    text = load_table(b'pid,x\n17,1\n17.0,2\n 17 ,3\n"17",4\nP18,5\n', filename="ids.csv")
    many = load_table(b"pid,x\n" + b"".join(b"P%d,1\n" % i for i in range(3000)) + b" P7 ,2\n", filename="ids.csv")
    for frame, kept in ((numbers, 2), (text, 2), (many, 3000)):
        cohort = prepare(frame, schema)
        assert cohort.n_rows == kept and cohort.report.units_truncated == 1, frame["pid"].tolist()[:6]
        assert cohort.numbers["x"][0] == 1.0                       # the first row in file order is kept


# A CSV path of MMAP_MIN_BYTES or more is memory-mapped (no copy of the file): every case gives the
# same table or the same message as the file's bytes.
_MAPPED_CASES = [
    b"id,note,k\n" + b"1,a,2\n" * 50,                                    # fine
    b"a;b;c\n1;2;3\n4;5;6\n",                                            # semicolon detected
    b"\xef\xbb\xbfid,x\n1,2\n",                                          # UTF-8 BOM
    b"id,note,k\n" + b"1,a,2\n" * 50 + b"5,x\n",                          # ragged line, line number
    b"id,note,k\n" + b"1,a,2\n" * 50 + b"5,x,1,\n",                       # extra separator
    b'id,note,k\n1,"a",2\n5,x,"open\n6,y,z\n',                           # unclosed quote
    b'id,note,k\n1,"a",2\n5,"open\n6,y,z\n',                             # quote opened earlier
    b"id,note\n1,caf\xe9\n",                                             # not UTF-8: byte offset, line
    b"id,a,a\n1,2,3\n",                                                  # duplicate header
    b"id,,x\n1,2,3\n",                                                   # empty header
    b"id,x\n",                                                           # header, no rows
    b"  \n \n",                                                          # blank
    b"id\x00,x\n1,2\n",                                                  # NUL
    b"id,x\n0x10,1\n16,2\n",                                             # hex kept as text
    b"a,b\n1,2\n3,4,5\n6,7\n",                                           # ragged in the middle
    b'id,note\n1,"two\nlines"\n2,"say ""hi"""\n',                        # quoted line breaks
]


@pytest.mark.parametrize("content", _MAPPED_CASES)
def test_a_memory_mapped_csv_reads_like_its_bytes(tmp_path, monkeypatch, content):
    monkeypatch.setattr(loaders, "MMAP_MIN_BYTES", 1)
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    try:
        want = load_table_with_report(content, filename="m.csv")
    except LoadError as e:
        with pytest.raises(type(e)) as got:
            load_table_with_report(path)
        assert str(got.value) == str(e)
        return
    frame, report = load_table_with_report(path)
    pd.testing.assert_frame_equal(frame, want[0])
    assert report.lines() == want[1].lines()


def test_a_big_csv_path_is_memory_mapped_not_copied(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_bytes(b"id,x\n" + b"".join(b"%d,%d\n" % (i, i % 5) for i in range(200_000)))
    assert path.stat().st_size >= loaders.MMAP_MIN_BYTES
    seen = []
    real = loaders._read_csv
    monkeypatch.setattr(loaders, "_read_csv", lambda held, *a: (seen.append(type(held[0])), real(held, *a))[1])
    assert len(load_table(path)) == 200_000
    assert seen == [mmap.mmap]
    monkeypatch.setattr(loaders, "MMAP_MIN_BYTES", path.stat().st_size + 1)
    seen.clear()
    assert len(load_table(path)) == 200_000 and seen == [bytes]
