"""Owner upload page (dashboard/pages/upload.py) and its plain functions (dashboard/uploads.py).

AppTest drives the real st.file_uploader and seeds the st.data_editor edit state through session
state. Round trip: upload -> proposal (marked as read from the data) -> edit a bound, tick the other
columns "I declare this public", type the row limits -> confirm -> schema.toml saved with
confirmed = true -> listed in uploaded_cohorts() and the sidebar picker. The review rules themselves
are tested in tests/test_upload_hardening.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from dashboard.uploads import (UploadDataError, UploadError, check_dataset_id, format_categories, load_uploaded,
                               make_draft, md_escape, parse_categories, save_upload, schema_from_table,
                               schema_table, uploaded_cohorts)
from data.prepare import DataValidationError
from data.propose import propose_schema
from data.schema import NumericColumn, SchemaError, load_schema, schema_to_toml

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGE = str(Path(APP).parent / "pages" / "upload.py")
WARNING = "Read from the data: not public until you review and confirm it"
SAVED = "Schema confirmed and saved"


@pytest.fixture(autouse=True)
def _env(app_env):
    import streamlit as stl
    stl.cache_resource.clear()
    yield


def trial_csv(n: int = 120) -> bytes:
    rng = np.random.default_rng(3)
    lines = ["patient_id;age;psa;site;visit"]
    for i in range(n):
        site = ["Site A", "Site B", "<script>alert(1)</script>", "=HYPERLINK(\"http://x\")"][i % 4]
        lines.append(f"{i // 2};{int(rng.integers(41, 93))};{rng.uniform(0.37, 97.2):.2f}".replace(".", ",")
                     + f";{site};2021-{1 + i % 12:02d}-{1 + i % 28:02d}")
    return ("\n".join(lines) + "\n").encode()


def upload_page(data: bytes, name: str = "trial.csv", schema: tuple[str, bytes] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/upload.py").run()
    assert not at.exception, at.exception
    at.file_uploader(key="up_data").set_value((name, data, "text/csv"))
    if schema is not None:
        at.file_uploader(key="up_schema_file").set_value((schema[0], schema[1], "application/toml"))
    return at.run()


def editor_row(at: AppTest, column: str) -> int:
    table = at.data_editor[0].value
    return int(np.flatnonzero(table["column"].to_numpy() == column)[0])


def edit(at: AppTest, rows: dict, key: str = "up_editor") -> None:
    at.session_state[key] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}


def review(at: AppTest, edits: dict[str, dict] | None = None, tick: bool = True) -> dict:
    """Edit some columns ({name: {field: text}}) and tick "I declare this public" on every other one."""
    table = at.data_editor[0].value
    rows: dict = {}
    for name, change in (edits or {}).items():
        rows[editor_row(at, name)] = dict(change)
    if tick:
        for i, kind in enumerate(table["kind"]):
            if kind not in ("id", "leave out") and i not in rows:
                rows[i] = {"public": True}
    edit(at, rows)
    return rows


def limits(at: AppTest, per_patient: str = "2", total: str = "1000") -> None:
    at.text_input(key="up_mrpu").set_value(per_patient)
    at.text_input(key="up_max_rows").set_value(total)


# ------------------------------------------------------------------------------------ AppTest
def test_owner_uploads_edits_a_bound_confirms_and_the_cohort_appears(tmp_path):
    at = upload_page(trial_csv())
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any(WARNING in w.value for w in at.warning), "the proposal must be marked as read from the data"
    assert any("separator semicolon" in i.value for i in at.info)
    table = at.data_editor[0].value
    psa = editor_row(at, "psa")
    assert table.loc[psa, "kind"] == "numeric" and (table.loc[psa, "lower"], table.loc[psa, "upper"]) == ("0", "100")
    site = editor_row(at, "site")
    assert "<script>alert(1)</script>" in table.loc[site, "categories"]          # data, shown in a table cell
    assert at.text_input(key="up_id").value == "trial"
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir()), "nothing saved yet"
    assert at.button(key="up_confirm").disabled, "nothing reviewed and no row limits typed yet"

    review(at, {"psa": {"upper": "200", "bin_edges": "0, 50, 100, 150, 200"}})   # the owner's public bound
    limits(at, "2", "1000")
    at.number_input(key="up_budget").set_value(2.0)
    at.run()
    assert not at.button(key="up_confirm").disabled, [w.value for w in at.warning]
    at.button(key="up_confirm").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any(SAVED in s.value for s in at.success)
    assert any("120 rows read" in m.value for m in at.markdown), "validation report shown"

    folder = tmp_path / "uploads" / "trial"
    assert (folder / "data.parquet").is_file()
    schema = load_schema(folder / "schema.toml")
    assert schema.confirmed is True and schema.default_budget == 2.0
    col = schema.column("psa")
    assert isinstance(col, NumericColumn) and col.upper == 200 and col.bin_edges == (0, 50, 100, 150, 200)
    assert "<script>alert(1)</script>" in schema.column("site").categories
    assert schema.max_rows_per_unit == 2 and schema.privacy_unit == "patient_id"
    assert uploaded_cohorts() == ["trial"]

    fresh = AppTest.from_file(APP, default_timeout=60).run()          # like a browser refresh
    picker = fresh.sidebar.selectbox(key="cohort")
    assert "upload:trial" in picker.options or "trial (uploaded)" in picker.options
    picker.set_value("upload:trial").run()
    assert not fresh.exception, fresh.exception
    assert load_uploaded("trial").n_rows == 120


def test_errors_are_shown_and_nothing_is_saved(tmp_path):
    at = upload_page(b"id,age,site\n1,50,A\n2,61\n", name="bad.csv")
    assert not at.exception
    assert any("line 3 has 2 values" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.data_editor and not at.button

    # no id column: the owner is told how to go on, and numbering the rows works
    at.file_uploader(key="up_data").set_value(("noid.csv", b"age,site\n50,A\n61,B\n70,A\n", "text/csv")).run()
    assert any("patient identifier" in e.value for e in at.error)
    at.checkbox(key="up_row_ids").check().run()
    assert not at.error and any(WARNING in w.value for w in at.warning)
    assert at.selectbox(key="up_unit").value == "row_id"

    # schema errors: shown as soon as they are typed, Confirm disabled, nothing written
    at.file_uploader(key="up_data").set_value(("t.csv", trial_csv(), "text/csv")).run()
    review(at, {"psa": {"lower": "300"}})
    limits(at)
    at.run()
    assert any("Fix before confirming" in e.value and "bounds reversed" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert at.button(key="up_confirm").disabled
    review(at)
    at.text_input(key="up_id").set_value("bad id!").run()
    assert any("dataset id" in e.value for e in at.error)
    assert at.button(key="up_confirm").disabled
    assert uploaded_cohorts() == []

    # an existing id is refused unless the owner ticks overwrite
    at.text_input(key="up_id").set_value("t").run()
    at.button(key="up_confirm").click().run()
    assert uploaded_cohorts() == ["t"] and any(SAVED in s.value for s in at.success)
    at.file_uploader(key="up_data").set_value(("t2.csv", trial_csv(), "text/csv")).run()     # a new draft
    review(at)
    limits(at)
    at.text_input(key="up_id").set_value("t").run()
    assert any("already exists" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="up_confirm").disabled
    at.checkbox(key="up_overwrite").check().run()
    assert not at.button(key="up_confirm").disabled, [e.value for e in at.error]
    at.button(key="up_confirm").click().run()
    assert any("Schema confirmed and replaced" in s.value for s in at.success), [s.value for s in at.success]


def test_uploaded_schema_toml_is_used_instead_of_a_proposal(tmp_path):
    frame = pd.DataFrame({"pid": [1, 2, 3], "grade": ["1", "2", "3"]})
    declared = ('[dataset]\nid = "declared"\nprivacy_unit = "pid"\nmax_rows = 1000\n\n[columns.pid]\nkind = "id"\n\n'
                '[columns.grade]\nkind = "categorical"\ncategories = ["1", "2", "3", "4", "5"]\n'
                'description = "ISUP grade group"\n').encode()
    at = upload_page(frame.to_csv(index=False).encode(), "g.csv", schema=("declared.toml", declared))
    assert not at.exception, at.exception
    assert not any(WARNING in w.value for w in at.warning)
    assert any("Schema from your file" in i.value for i in at.info)
    assert at.text_input(key="up_id").value == "declared"
    assert at.text_input(key="up_max_rows").value == "1000"       # declared in the owner's file
    assert not at.button(key="up_confirm").disabled, "nothing was read from the data: no review needed"
    at.button(key="up_confirm").click().run()
    assert not at.error, [e.value for e in at.error]
    s = load_schema(tmp_path / "uploads" / "declared" / "schema.toml")
    assert s.confirmed and s.column("grade").categories == ("1", "2", "3", "4", "5")
    assert s.column("grade").description == "ISUP grade group"


def test_analyst_cannot_open_the_upload_page(monkeypatch, tmp_path):
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/upload.py")
    from dashboard.auth import Identity
    from dashboard.context import Context
    from dashboard.services import prepared_cohort
    from privacy.ledger import BudgetLedger
    ctx = Context(Identity("ana", "analyst", "env"), "prostate", prepared_cohort("prostate", 3000),
                  BudgetLedger(tmp_path / "l.sqlite"), "laplace")
    pt = AppTest.from_file(PAGE, default_timeout=60)
    pt.session_state["_ctx"] = ctx
    pt.run()
    assert not pt.exception, pt.exception
    assert any("data owner only" in e.value for e in pt.error)
    assert not pt.file_uploader and not pt.data_editor and not pt.button


# ------------------------------------------------------------------------------------ plain functions
def test_draft_reports_errors_instead_of_raising():
    d = make_draft(b"", "e.csv")
    assert d.error and "empty" in d.error and d.schema is None
    d = make_draft(b"age\n1\n2\n", "x.csv")
    assert d.no_id_column and "patient identifier" in d.error
    d = make_draft(b"pid,x\n1,2\n", "x.csv", schema_bytes=b"not toml [")
    assert d.error.startswith("the schema file is not valid TOML")
    bad = b'[dataset]\nid = "x"\nprivacy_unit = "pid"\n[columns.pid]\nkind = "id"\n[columns.x]\nkind = "numeric"\n'
    for spec in (b'lower = 0\nupper = 1\nbins = 0\n', b'lower = 0\nupper = 1\nbin_edges = ["a", "b"]\n'):
        d = make_draft(b"pid,x\n1,2\n", "x.csv", schema_bytes=bad + spec)
        assert d.error and d.error.startswith("the schema file"), d.error
    d = make_draft(b"pid,x\n1,2\n", "My Cohort (v2).csv")
    assert d.schema.dataset_id == "My_Cohort_v2" and d.schema.confirmed is False and d.from_data


def test_dataset_ids_are_checked(tmp_path):
    for bad in ("", "a b", "../x", "x/y", "é", "a" * 65, ".hidden"):
        with pytest.raises(UploadError, match="letters, digits"):
            check_dataset_id(bad)
    with pytest.raises(UploadError, match="built-in cohort"):
        check_dataset_id("prostate")
    check_dataset_id("my-cohort_2")


def test_only_confirmed_cohorts_are_listed_or_opened(tmp_path):
    frame = pd.DataFrame({"pid": [1, 2, 3], "x": [0.5, 1.5, 2.5]})
    schema = propose_schema(frame, "draft")
    d = tmp_path / "uploads" / "draft"
    d.mkdir(parents=True)
    frame.to_parquet(d / "data.parquet")
    (d / "schema.toml").write_text(schema_to_toml(schema))        # confirmed = false
    assert uploaded_cohorts() == []
    with pytest.raises(ValueError, match="not confirmed"):
        load_uploaded("draft")
    saved = save_upload(frame, schema, overwrite=True)
    assert saved.replaced and load_schema(d / "schema.toml").confirmed and uploaded_cohorts() == ["draft"]
    with pytest.raises(SchemaError, match="names columns the table does not have"):
        save_upload(frame.drop(columns="x"), schema, overwrite=True)
    with pytest.raises(UploadDataError, match="more rows") as e:   # owner's page: the detail
        save_upload(pd.concat([frame] * 100), schema, overwrite=True)
    assert isinstance(e.value.__cause__, DataValidationError) and "more rows" not in str(e.value.__cause__)
    assert len(pd.read_parquet(d / "data.parquet")) == 3          # failed saves changed nothing


def test_markdown_escaping_of_file_text():
    raw = "<img src=x onerror=alert(1)> [a](javascript:alert(1)) :red[x] $x$ **b** `c` # h\nline"
    s = md_escape(raw)
    k, plain = 0, []
    while k < len(s):                       # every markdown-special character comes escaped
        if s[k] == "\\":
            plain.append(s[k + 1])
            k += 2
            continue
        assert s[k] not in "\\`*_{}[]()#+-.!|<>~$:&\n", (s, k)
        plain.append(s[k])
        k += 1
    assert "".join(plain) == raw.replace("\n", " ")


safe_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cats=st.lists(st.one_of(safe_text, st.sampled_from(['a,b', '"q"', ' lead', '=1+2', '<b>x</b>', 'x""y'])),
                     min_size=1, max_size=6, unique=True))
def test_editor_table_round_trips_the_proposal(cats):
    cats = [c for c in cats if c.strip() and c not in ("missing", "other")]
    if not cats:
        return
    assert parse_categories(format_categories(cats)) == tuple(cats)
    frame = pd.DataFrame({"pid": range(2 * len(cats)), "c": cats * 2, "x": np.linspace(0.37, 97.2, 2 * len(cats)),
                          "d": pd.date_range("2020-03-01", periods=2 * len(cats), freq="MS")})
    s = propose_schema(frame, "rt")
    table = schema_table(s, frame.columns)
    back = schema_from_table(table, s, dataset_id=s.dataset_id, title=s.title, privacy_unit=s.privacy_unit,
                             max_rows_per_unit=s.max_rows_per_unit, max_rows=s.max_rows,
                             default_budget=s.default_budget)
    assert back == s
    saved = save_upload(frame, back, overwrite=True)               # categories survive TOML and Parquet
    again = load_schema(saved.path / "schema.toml")
    assert again.confirmed and again.column("c").categories == s.column("c").categories
    assert saved.report.other.get("c", 0) == 0 and saved.report.rows_out == len(frame)
