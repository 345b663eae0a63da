"""No private fact escapes through errors or refusals (issue 8).

A table that breaks its schema (more rows than `max_rows`, rows without a patient id, no rows)
makes the cohort unavailable. The reason is itself a private fact, so:
- `prepare` raises a DataValidationError whose `str()` is one public sentence, the same whatever
  went wrong, and whose `owner_detail` has the counts;
- the sidebar shows analysts only that the cohort is unavailable and whom to ask, and shows the
  data owner the detail marked "Data owner only".
The app tests open a bad cohort in the two ways the sidebar can: an uploaded cohort on disk (the
real load path), and a built-in cohort whose loader is patched at module level.

Also here: patient ids are normalised before rows per patient are bounded.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from streamlit.testing.v1 import AppTest

from data.prepare import DataValidationError, normalise_unit_ids, prepare, unavailable_message
from data.propose import propose_schema
from data.schema import schema_from_dict, schema_to_toml

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
NAME = "trial"          # the same cohort name in every case: analysts' pages must not differ by case


def trial_schema(max_rows: int = 4000, max_rows_per_unit: int = 1, dataset: str = NAME):
    return schema_from_dict({
        "dataset": {"id": dataset, "privacy_unit": "pid", "max_rows_per_unit": max_rows_per_unit,
                    "max_rows": max_rows, "default_budget": 1.0},
        "columns": {"pid": {"kind": "id"},
                    "x": {"kind": "numeric", "lower": 0, "upper": 10, "bins": 5}}})


def _frame(ids) -> pd.DataFrame:
    ids = pd.Series(list(ids), dtype=object)
    return pd.DataFrame({"pid": ids, "x": np.linspace(0, 10, len(ids))})


# Each bad table, with the numbers that are private facts about it (what must never reach an analyst).
def too_many_rows():                       # 4,871 rows > max_rows 4,000
    return pd.DataFrame({"pid": np.arange(4871), "x": np.linspace(0, 10, 4871)}), {4871, 871}


def missing_ids():                         # 613 rows, 37 without an id: 29 missing, 8 empty or blank text
    ids: list = [f"P{i}" for i in range(613)]
    for k, i in enumerate(range(5, 5 + 16 * 37, 16)):
        ids[i] = None if k < 29 else ("" if k % 2 else "   ")
    assert sum(v is None or not str(v).strip() for v in ids) == 37
    return _frame(ids), {37, 613, 576, 29, 8}


def empty_table():
    return _frame([]), set()


CASES = {"max_rows": too_many_rows, "missing_ids": missing_ids, "empty": empty_table}
OWNER_DETAIL = {"max_rows": "4,871", "missing_ids": "37 rows have no patient id", "empty": "no rows"}


# ------------------------------------------------------------------------------------ prepare()
@pytest.mark.parametrize("case", CASES)
def test_prepare_error_is_public_and_detail_is_for_the_owner(case):
    frame, private = CASES[case]()
    with pytest.raises(DataValidationError) as e:
        prepare(frame, trial_schema())
    err = e.value
    assert isinstance(err, ValueError)                       # the CLI maps ValueError to exit 2
    assert str(err) == err.public == unavailable_message(NAME)   # one text for every case
    assert "ask the data owner" in str(err)
    assert not _private_numbers_in(str(err), private)
    assert OWNER_DETAIL[case] in err.owner_detail, err.owner_detail


def test_public_message_names_no_count():
    assert not re.search(r"\d", unavailable_message(NAME))


# ------------------------------------------------------------------------------------ the app
@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.delenv("DP_DEMO_ROWS", raising=False)
    monkeypatch.delenv("DP_ROLE", raising=False)
    monkeypatch.delenv("DP_ANALYST", raising=False)
    import streamlit as stl
    stl.cache_data.clear()
    stl.cache_resource.clear()
    yield
    stl.cache_resource.clear()          # never leave a patched cohort in the cache for other tests


def _as(role: str, monkeypatch) -> None:
    if role == "analyst":
        monkeypatch.setenv("DP_ROLE", "analyst")
        monkeypatch.setenv("DP_ANALYST", "ana")


def _open_uploaded(frame: pd.DataFrame, tmp_path: Path) -> AppTest:
    """A confirmed uploaded cohort whose stored table breaks its schema, chosen in the sidebar."""
    d = tmp_path / "uploads" / NAME
    d.mkdir(parents=True)
    frame.to_parquet(d / "data.parquet", index=False)
    (d / "schema.toml").write_text(schema_to_toml(replace(trial_schema(), confirmed=True)), encoding="utf-8")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["cohort"] = f"upload:{NAME}"
    return at.run()


def _open_builtin(frame: pd.DataFrame, monkeypatch) -> AppTest:
    """The default built-in cohort, its loader patched to return the bad table."""
    import dashboard.services as services
    monkeypatch.setattr(services, "load_cohort", lambda name, rows=None, seed=None: (frame.copy(), trial_schema()))
    return AppTest.from_file(APP, default_timeout=60).run()


def _open(route: str, frame, tmp_path, monkeypatch) -> AppTest:
    return _open_uploaded(frame, tmp_path) if route == "upload" else _open_builtin(frame, monkeypatch)


_SKIP_FIELDS = {"id", "form_id"}        # widget ids are hashes, not text anyone reads


def _proto_text(msg, out: list[str]) -> None:
    for field, value in msg.ListFields():
        if field.name in _SKIP_FIELDS:
            continue
        scalar = hasattr(value, "ListFields") or isinstance(value, (str, bytes, int, float))
        for v in ([value] if scalar else value):              # repeated fields are containers
            if hasattr(v, "ListFields"):
                _proto_text(v, out)
            elif isinstance(v, bool):
                continue
            elif isinstance(v, bytes):
                continue                  # Arrow tables: none expected on a page that stopped
            else:
                out.append(str(v))


def everything_shown(at: AppTest) -> str:
    """Text of every element in the app (main area and sidebar): alerts, markdown, captions, metrics,
    widget labels, options and help, chart specs... taken from the element protos."""
    out: list[str] = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            _proto_text(proto, out)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def _private_numbers_in(text: str, private: set[int]) -> list[str]:
    found = []
    for tok in re.findall(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?(?![\w])", text):
        try:
            v = float(tok.replace(",", ""))
        except ValueError:
            continue
        if v in private:
            found.append(tok)
    return found


@pytest.mark.parametrize("route", ["upload", "builtin"])
def test_analyst_sees_no_private_fact_of_a_bad_cohort(route, tmp_path, monkeypatch):
    _as("analyst", monkeypatch)
    shown = {}
    for case, make in CASES.items():
        frame, private = make()
        sub = tmp_path / case
        sub.mkdir()
        monkeypatch.setenv("DP_UPLOADS", str(sub / "uploads"))
        monkeypatch.setenv("DP_LEDGER", str(sub / "ledger.sqlite"))
        import streamlit as stl
        stl.cache_resource.clear()
        at = _open(route, frame, sub, monkeypatch)
        assert not at.exception, at.exception
        blob = everything_shown(at)
        assert not _private_numbers_in(blob, private), (case, _private_numbers_in(blob, private))
        for word in ("owner only", "rows have no patient id", "more rows", "no rows", "max_rows", "empty"):
            assert word not in blob.lower(), (case, word)
        errors = [e.value for e in at.error]
        assert any("unavailable" in e and "ask the data owner" in e for e in errors), errors
        assert all(e in blob for e in errors)                # the walk above saw the alerts too
        assert not at.sidebar.metric and not at.get("plotly_chart")   # nothing released or budgeted
        shown[case] = blob
    # Nothing the analyst sees depends on which private fact made the cohort unavailable.
    assert shown["max_rows"] == shown["missing_ids"] == shown["empty"]


@pytest.mark.parametrize("route", ["upload", "builtin"])
@pytest.mark.parametrize("case", ["max_rows", "missing_ids"])
def test_owner_sees_the_detail_marked_owner_only(route, case, tmp_path, monkeypatch):
    frame, _ = CASES[case]()
    at = _open(route, frame, tmp_path, monkeypatch)
    assert not at.exception, at.exception
    marked = [w.value for w in at.warning if "Data owner only" in w.value]
    assert marked, [w.value for w in at.warning] + [e.value for e in at.error]
    assert OWNER_DETAIL[case] in marked[0].replace("\\", ""), marked[0]
    assert any("Cannot open cohort" in e.value for e in at.error)


def test_owner_sees_why_an_empty_cohort_is_unavailable(tmp_path, monkeypatch):
    at = _open_builtin(empty_table()[0], monkeypatch)
    marked = [w.value for w in at.warning if "Data owner only" in w.value]
    assert marked and "no rows" in marked[0], [w.value for w in at.warning]


# ------------------------------------------------------------------------------------ patient ids
def test_one_patient_however_the_id_is_written():
    frame = _frame([17, "17", " 17 ", 17.0, "17.0", "\t17\u00a0", 18])
    cohort = prepare(frame, trial_schema(max_rows_per_unit=1))
    assert cohort.n_rows == 2                                   # the first row of 17, and 18
    assert cohort.report.rows_truncated == 5 and cohort.report.units_truncated == 1
    assert list(cohort.frame["pid"]) == ["17", "18"]           # owner views see the canonical id
    assert cohort.numbers["x"][0] == 0.0                       # the first row in file order is kept


def test_ids_are_normalised_for_every_column_type():
    n = normalise_unit_ids
    assert list(n(pd.Series([17.0, 18.0, 17.0]))) == [17, 18, 17]            # float column -> integers
    assert n(pd.Series([17.0, np.nan, np.inf])).isna().tolist() == [False, True, True]
    assert n(pd.Series([0.0, -0.0])).nunique() == 1
    assert list(n(pd.Series(["17", " 17 ", "17.00"], dtype="string"))) == ["17"] * 3
    assert list(n(pd.Series(pd.Categorical([17, " 17", "18"])))) == ["17", "17", "18"]
    assert n(pd.Series(pd.Categorical(["a", None]))).isna().tolist() == [False, True]
    assert n(pd.Series([1, None], dtype="Int64")).isna().tolist() == [False, True]
    ints = pd.Series(np.arange(5))
    assert n(ints) is ints                                     # already canonical: no copy, no strings
    # kept apart: leading zeros, case, inner spaces, non-integral numbers
    assert n(pd.Series(["007", "7", "a1", "A1", "1 7", 17.5, 17], dtype=object)).nunique() == 7
    assert n(pd.Series(["", "  ", None, np.nan], dtype=object)).isna().all()


def test_blank_text_ids_are_missing_and_refused():
    with pytest.raises(DataValidationError) as e:
        prepare(_frame(["1", "2", "  "]), trial_schema())
    assert "1 rows have no patient id" in e.value.owner_detail and "1 rows" not in str(e.value)


def test_float_ids_of_a_csv_column_with_a_blank_are_integers():
    frame = pd.DataFrame({"pid": [3.0, 3.0, 4.0], "x": [1.0, 2.0, 3.0]})
    cohort = prepare(frame, trial_schema(max_rows_per_unit=1))
    assert cohort.n_rows == 2 and list(cohort.frame["pid"]) == [3, 4]
    assert pd.api.types.is_integer_dtype(cohort.frame["pid"])  # 3.0 is shown to the owner as 3


def test_proposal_counts_rows_per_patient_on_normalised_ids():
    frame = pd.DataFrame({"patient_id": pd.Series([1, "1", " 1 ", 2.0, "3"] * 8, dtype=object),
                          "x": np.arange(40.0)})
    s = propose_schema(frame, "p", privacy_unit="patient_id")
    assert s.max_rows_per_unit == 24                            # 1, "1" and " 1 " are one patient


FORMS = (lambda i: i, lambda i: float(i), lambda i: str(i), lambda i: f"  {i}\t", lambda i: f"{i}.0",
         lambda i: np.int64(i), lambda i: np.float32(i))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=hst.lists(hst.integers(-5, 25), min_size=1, max_size=80), k=hst.integers(1, 3), data=hst.data())
def test_representation_never_changes_who_is_one_patient(ids, k, data):
    """However each id is written, prepare keeps exactly the first k rows of each patient."""
    forms = data.draw(hst.lists(hst.sampled_from(range(len(FORMS))), min_size=len(ids), max_size=len(ids)))
    frame = pd.DataFrame({"pid": pd.Series([FORMS[f](i) for f, i in zip(forms, ids)], dtype=object),
                          "x": np.arange(len(ids), dtype=float) % 10})
    cohort = prepare(frame, trial_schema(max_rows_per_unit=k, max_rows=10**6))
    seen: Counter = Counter()
    expected_rows = []
    for pos, i in enumerate(ids):
        seen[i] += 1
        if seen[i] <= k:
            expected_rows.append(pos)
    assert cohort.n_rows == len(expected_rows)
    assert list(cohort.numbers["x"]) == [float(p % 10) for p in expected_rows]
    assert cohort.report.units_truncated == sum(1 for c in Counter(ids).values() if c > k)
    assert list(cohort.frame["pid"]) == [str(ids[p]) for p in expected_rows]
