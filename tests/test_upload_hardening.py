"""Upload hardening (issue 10): nothing read off the private data becomes public without the owner.

- Confirm stays disabled, naming the columns, until every proposed public value is reviewed (a
  per-column "I declare this public" tick or an edit) and both row limits are typed.
- Categories seen in fewer than MIN_CATEGORY_COUNT rows are not proposed; the note says so (with
  the count) and typing the value adds it.
- max_rows_per_unit / max_rows are empty text fields with guidance, never pre-filled from the data.
- Numeric bounds are rounded outward.
- The DP bounds helper charges the ledger exactly OpenDP's privacy map, before it runs, and refuses
  (spending nothing) when the budget is short.
- After saving: "confirmed and saved", with Edit and Delete.
- Bad input gets a specific message; nothing crashes; no budget is spent.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.uploads import (BOUNDS_HELPER_EPSILON, bounds_helper, make_draft, parse_row_limit, review_status,
                               review_table, run_bounds_helper, uploaded_cohorts)
from data.propose import MIN_CATEGORY_COUNT, propose, round_outward
from data.schema import SchemaError, load_schema
from privacy.ledger import BudgetExceeded, BudgetLedger
from tests.test_upload_app import APP, _env, editor_row, edit, limits, review, trial_csv, upload_page  # noqa: F401

SAVED = "Schema confirmed and saved"


def ledger(tmp_path) -> BudgetLedger:
    return BudgetLedger(tmp_path / "ledger.sqlite")


def reserved(tmp_path, dataset: str) -> list[dict]:
    lg = ledger(tmp_path)
    try:
        return [e for e in lg.entries(dataset) if e["kind"] == "reserve"]
    finally:
        lg.close()


def warnings(at: AppTest) -> str:
    """The list of reasons why Confirm is disabled ('' when it is enabled)."""
    return "\n".join(w.value for w in at.warning if "Confirm is disabled until" in w.value).replace("\\", "")


def rare_csv(n: int = 200) -> bytes:
    """Sites A/B common; 'Site C' in 3 rows and 'Tiny' in 1 row (fewer than MIN_CATEGORY_COUNT)."""
    rng = np.random.default_rng(5)
    lines = ["patient_id,age,psa,site"]
    for i in range(n):
        site = "Site C" if i in (5, 50, 150) else ("Tiny" if i == 77 else ("Site A" if i % 2 else "Site B"))
        lines.append(f"{i},{int(rng.integers(41, 93))},{rng.uniform(3.7, 97.2):.2f},{site}")
    return ("\n".join(lines) + "\n").encode()


# ------------------------------------------------------------------------------------ review
def test_confirm_stays_disabled_until_every_proposed_value_is_reviewed(tmp_path):
    at = upload_page(trial_csv())
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.data_editor[0].value
    assert "public" in table.columns and not table["public"].any(), "no column starts as reviewed"
    limits(at, "2", "1000")
    at.run()
    button = at.button(key="up_confirm")
    assert button.disabled
    w = warnings(at)
    assert "Confirm is disabled until" in w and "4 of 4 columns are not reviewed" in w
    for name in ("age", "psa", "site", "visit"):
        assert f"'{name}'" in w
    assert "patient\\_id" not in w and "'patient_id'" not in w, "the id column has no public values to review"

    # an edit of a value counts as a review; the other columns are still named
    edit(at, {editor_row(at, "psa"): {"upper": "150"}})
    at.run()
    w = warnings(at)
    assert at.button(key="up_confirm").disabled and "3 of 4 columns" in w and "'psa'" not in w
    # a label alone is not a public value read from the data: not a review
    edit(at, {editor_row(at, "psa"): {"upper": "150"}, editor_row(at, "age"): {"label": "Age"}})
    at.run()
    assert "'age'" in warnings(at)
    # ticks for the rest; the page says it can be confirmed
    review(at, {"psa": {"upper": "150"}})
    at.run()
    assert not at.button(key="up_confirm").disabled, warnings(at)
    assert any("Every proposed value is reviewed" in s.value for s in at.success)
    # un-ticking one column disables Confirm again
    rows = review(at, {"psa": {"upper": "150"}})
    rows[editor_row(at, "visit")] = {"public": False}
    edit(at, rows)
    at.run()
    assert at.button(key="up_confirm").disabled and "'visit'" in warnings(at)
    # "leave out" needs no review: nothing of it becomes public
    rows[editor_row(at, "visit")] = {"kind": "leave out"}
    edit(at, rows)
    at.run()
    assert not at.button(key="up_confirm").disabled
    at.button(key="up_confirm").click().run()
    assert any(SAVED in s.value for s in at.success), [e.value for e in at.error]
    schema = load_schema(tmp_path / "uploads" / "trial" / "schema.toml")
    assert schema.column("psa").upper == 150 and "visit" not in schema.names


def test_disabled_buttons_cannot_be_clicked(tmp_path):
    from streamlit.testing.v1.errors import AppTestError
    at = upload_page(trial_csv())
    with pytest.raises(AppTestError, match="disabled"):        # as in a browser
        at.button(key="up_confirm").click()
    assert uploaded_cohorts() == []


def test_review_status_rules():
    draft = make_draft(trial_csv(), "trial.csv")
    proposal = review_table(draft)
    st = review_status(proposal, proposal, "patient_id")
    assert st.needs_review == ("age", "psa", "site", "visit") and st.unreviewed == st.needs_review
    assert not st.complete and "tick “I declare this public”" in st.message()
    edited = proposal.copy()
    edited.loc[edited["column"] == "site", "categories"] = "Site A, Site B"      # an edit
    edited.loc[edited["column"] == "age", "public"] = True                       # a tick
    edited.loc[edited["column"] == "visit", "kind"] = "leave out"                # nothing public
    st = review_status(proposal, edited, "patient_id", applied={"psa"})          # DP bounds applied
    assert st.complete and st.needs_review == ("age", "psa", "site")
    # the privacy unit never needs review, whatever its proposed kind
    assert "age" not in review_status(proposal, proposal, "age").needs_review


def test_a_schema_file_or_a_saved_schema_needs_no_review():
    frame = pd.DataFrame({"pid": [1, 2, 3], "grade": ["1", "2", "3"]})
    toml = (b'[dataset]\nid = "declared"\nprivacy_unit = "pid"\nmax_rows = 1000\n\n[columns.pid]\nkind = "id"\n\n'
            b'[columns.grade]\nkind = "categorical"\ncategories = ["1", "2", "3", "4"]\n')
    draft = make_draft(frame.to_csv(index=False).encode(), "g.csv", schema_bytes=toml)
    assert not draft.needs_review and not draft.from_data


# ------------------------------------------------------------------------------------ rare categories
def test_rare_categories_are_not_proposed_and_can_be_typed_in(tmp_path):
    at = upload_page(rare_csv(), "rare.csv")
    assert not at.exception and not at.error
    table = at.data_editor[0].value
    row = editor_row(at, "site")
    cats = table.loc[row, "categories"]
    assert "Site A" in cats and "Site B" in cats
    assert "Site C" not in cats and "Tiny" not in cats, "values seen in fewer than 10 rows are not proposed"
    note = table.loc[row, "note"]
    assert f"fewer than {MIN_CATEGORY_COUNT} rows" in note and "'Site C' (3 rows)" in note and "'Tiny' (1 row)" in note
    assert "type a value" in note
    assert any("site: 2 values" in c.value.replace("\\", "") for c in at.caption), [c.value for c in at.caption]
    # the owner types one in (an edit: the column counts as reviewed) and saves
    review(at, {"site": {"categories": "Site A, Site B, Site C"}})
    limits(at, "1", "1000")
    at.run()
    at.button(key="up_confirm").click().run()
    assert any(SAVED in s.value for s in at.success), [e.value for e in at.error]
    schema = load_schema(tmp_path / "uploads" / "rare" / "schema.toml")
    assert schema.column("site").categories == ("Site A", "Site B", "Site C")


def test_rare_threshold_in_the_proposal():
    rng = np.random.default_rng(0)
    f = pd.DataFrame({"pid": range(300),
                      "g": rng.choice([6, 7, 8, 9, 10], 300, p=[0.4, 0.3, 0.25, 0.04, 0.01]),
                      "few": [1, 2, 3] * 100, "flag": [True] * 295 + [False] * 5})
    counts = pd.Series(f["g"]).value_counts()
    p = propose(f, "x")
    assert MIN_CATEGORY_COUNT == 10
    expected = tuple(str(v) for v in sorted(counts.index) if counts[v] >= MIN_CATEGORY_COUNT)
    assert p.schema.column("g").categories == expected and len(expected) < 5
    assert dict(p.rare["g"]) == {str(v): int(counts[v]) for v in counts.index if counts[v] < MIN_CATEGORY_COUNT}
    assert p.schema.column("flag").categories == ("True",) and p.rare["flag"] == [("False", 5)]
    assert p.schema.column("few").categories == ("1", "2", "3") and "few" not in p.rare
    # integers whose every value is rare: a numeric column with rounded bounds, not rare categories
    small = pd.DataFrame({"pid": range(12), "grade": [1, 2, 2, 3, 1, 5, 3, 2, 4, 4, 5, 1]})
    q = propose(small, "s")
    g = q.schema.column("grade")
    assert g.kind == "numeric" and g.lower <= 1 and g.upper >= 5
    assert "numeric instead of categories" in "; ".join(q.column_notes["grade"])


# ------------------------------------------------------------------------------------ row limits
def test_row_limits_are_typed_never_prefilled(tmp_path):
    at = upload_page(trial_csv())
    assert at.text_input(key="up_mrpu").value == "" and at.text_input(key="up_max_rows").value == ""
    text = "\n".join(m.value for m in at.markdown)
    assert "never read from this file" in text and "they are public" in text
    assert "**dropped**" in text and "**refused**" in text
    draft = make_draft(trial_csv(), "trial.csv")
    assert not any("Max rows per patient" in n for n in draft.notes), "no row limit read off the data"
    review(at)
    at.run()
    w = warnings(at)
    assert at.button(key="up_confirm").disabled
    assert "Type max rows per patient" in w and "Type max rows (" in w
    for typed, message in (("2.5", "no decimals"), ("0", "at least 1"), ("-3", "at least 1"), ("two", "whole number"),
                           ("1e400", "whole number"), ("200000", "at most 100,000")):
        limits(at, typed, "1000")
        at.run()
        assert not at.exception
        assert any("Max rows per patient" in e.value and message in e.value for e in at.error), \
            (typed, [e.value for e in at.error])
        assert at.button(key="up_confirm").disabled
    limits(at, "2", "10,000")
    at.run()
    assert not at.error and not at.button(key="up_confirm").disabled
    limits(at, "2", "50")               # fewer than the 120 rows: the table is refused on save
    at.run()
    at.button(key="up_confirm").click().run()
    assert any("Not saved" in e.value and "more rows" in e.value for e in at.error), [e.value for e in at.error]
    assert uploaded_cohorts() == []


def test_parse_row_limit_messages():
    assert parse_row_limit(" 12 ", "x") == 12 and parse_row_limit("10,000", "x") == 10_000
    assert parse_row_limit("3.0", "x") == 3
    for bad, msg in (("", "type x"), ("1.5", "no decimals"), ("1,5", "no decimals"), ("abc", "whole number like 5"),
                     ("nan", "whole number like 5"), ("0", "at least 1"), ("1,000.5", "whole number like 5")):
        with pytest.raises(SchemaError, match=msg):
            parse_row_limit(bad, "x")
    with pytest.raises(SchemaError, match="at most 10"):
        parse_row_limit("11", "x", limit=10)


# ------------------------------------------------------------------------------------ rounding
def test_bounds_are_rounded_outward():
    assert round_outward(3.7, 97.2)[:2] == (0.0, 100.0)
    assert round_outward(41, 92, integer=True)[:2] == (40.0, 100.0)
    assert round_outward(1013.2, 1087.9)[:2] == (1010.0, 1090.0)
    assert round_outward(-5.2, 3.1)[:2] == (-6.0, 4.0)
    rng = np.random.default_rng(2)
    for _ in range(300):
        a, b = sorted(rng.uniform(-1e4, 1e4, 2) * 10.0 ** rng.integers(-6, 6))
        lo, hi, edges = round_outward(a, b)
        assert lo <= a and hi >= b and lo < hi and edges[0] == lo and edges[-1] == hi
        assert all(y > x for x, y in zip(edges, edges[1:]))
        step = 10.0 ** math.floor(math.log10(b - a))
        assert abs(lo / step - round(lo / step)) < 1e-6 and abs(hi / step - round(hi / step)) < 1e-6
    for a, b in ((-9.999999999999347e307, 1.0), (-1.7e308, 1.7e308), (0.0, 1e-320), (5.0, 5.0), (1e300, 1.7e308)):
        lo, hi, edges = round_outward(a, b)
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= a and hi >= b and lo < hi
    draft = make_draft(trial_csv(), "trial.csv")
    age, psa = draft.schema.column("age"), draft.schema.column("psa")
    assert (psa.lower, psa.upper) == (0, 100)
    assert age.lower % 10 == 0 and age.upper % 10 == 0 and age.lower <= 41 and age.upper >= 92


# ------------------------------------------------------------------------------------ DP bounds helper
def helper_page(tmp_path, lo: str = "0", hi: str = "1000", eps: float | None = None) -> AppTest:
    at = upload_page(trial_csv())
    limits(at, "2", "1000")
    at.run()
    at.selectbox(key="up_dp_col").select("psa")
    at.text_input(key="up_dp_lo").set_value(lo)
    at.text_input(key="up_dp_hi").set_value(hi)
    if eps is not None:
        at.number_input(key="up_dp_eps").set_value(eps)
    return at.run()


def _suggestion(low_q: float, high_q: float, low_ci, high_ci):
    from dashboard.uploads import BoundsSuggestion
    return BoundsSuggestion("psa", 0.0, 1000.0, (0.0, 500.0, 1000.0), low_q, high_q, low_ci, high_ci, 0.05, 0.05,
                            False, "trial", 1.0, 0.05, 0.95, 0.0, 1000.0)


def test_dp_helper_shows_an_uncertain_or_crossed_suggestion_as_a_warning(tmp_path):
    """A suggestion whose percentiles are too noisy to use is a warning, not a success, says when the
    noisy percentiles crossed, and using it takes a button that says "anyway". (The suggestion is
    put in the session directly: this checks the display, not the measurement.)"""
    at = helper_page(tmp_path)
    at.session_state["up_dp"] = {"psa": _suggestion(1000.0, 60.0, (0.0, 1000.0), (0.0, 1000.0))}
    at.run()
    assert not at.exception
    assert not [s.value for s in at.success if "Suggested bounds" in s.value]
    shown = " ".join(w.value for w in at.warning)
    assert "Suggested bounds for psa" in shown and "very uncertain" in shown and "percentiles crossed" in shown
    assert at.button(key="up_dp_use").label == "Use these bounds for psa anyway"

    at.session_state["up_dp"] = {"psa": _suggestion(2.0, 60.0, (1.0, 4.0), (50.0, 70.0))}   # a usable one
    at.run()
    assert any("Suggested bounds for psa" in s.value for s in at.success)
    assert not [w.value for w in at.warning if "very uncertain" in w.value or "crossed" in w.value]
    assert at.button(key="up_dp_use").label == "Use these bounds for psa"


def test_dp_helper_charges_the_ledger_exactly_the_opendp_cost(tmp_path):
    at = helper_page(tmp_path)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.number_input(key="up_dp_eps").value == BOUNDS_HELPER_EPSILON == 0.05
    assert any("Costs **ε 0.05**" in m.value and "ε 1 left" in m.value for m in at.markdown)
    assert reserved(tmp_path, "trial") == [], "showing the cost spends nothing"
    at.button(key="up_dp_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = " ".join(s.value for s in [*at.success, *at.warning])   # a warning when the noise is wide
    assert "Suggested bounds for psa" in shown and "ε 0\\.05 spent" in shown and "ε 0\\.95 of 1 left" in shown

    # the ledger holds one reservation whose cost is exactly the sum of OpenDP's privacy maps
    draft = make_draft(trial_csv(), "trial.csv")
    helper = bounds_helper(draft.frame, "psa", "0", "1000", 0.05, dataset_id="trial", privacy_unit="patient_id",
                           max_rows_per_unit="2", max_rows="1000", default_budget=1.0)
    maps = [float(p.measurement.map(2)) for p in helper.plans()]
    rows = reserved(tmp_path, "trial")
    assert len(rows) == 1 and rows[0]["epsilon"] == math.fsum(maps) == helper.cost
    assert 0.049 < helper.cost <= 0.05
    lg = ledger(tmp_path)
    assert lg.dataset_state("trial").spent == math.fsum(maps)
    stored = lg.releases("trial")
    lg.close()
    assert {r["release"]["query"]["q"] for r in stored} == {0.02, 0.98}
    assert all("bounds helper, public range 0 to 1000" in r["release"]["query"]["column"] for r in stored)

    # using the suggestion fills the row and counts as its review
    sug = at.session_state["up_dp"]["psa"]
    assert 0 <= sug.lower < sug.upper <= 1000
    at.button(key="up_dp_use").click().run()
    table = at.data_editor[0].value
    row = editor_row(at, "psa")
    assert float(table.loc[row, "lower"]) == sug.lower and float(table.loc[row, "upper"]) == sug.upper
    assert "'psa'" not in warnings(at) and "3 of 4 columns" in warnings(at)

    # asking the same question again is served from the ledger: nothing more is spent
    at.button(key="up_dp_run").click().run()
    assert "nothing spent now" in " ".join(s.value for s in [*at.success, *at.warning])
    assert len(reserved(tmp_path, "trial")) == 1


def test_data_charged_by_the_helper_must_be_saved_under_that_id(tmp_path):
    at = helper_page(tmp_path)
    at.button(key="up_dp_run").click().run()
    assert len(reserved(tmp_path, "trial")) == 1
    review(at)
    at.text_input(key="up_id").set_value("elsewhere").run()
    assert at.button(key="up_confirm").disabled
    assert "spent budget on this data under the dataset id 'trial'" in warnings(at)
    at.text_input(key="up_id").set_value("trial").run()
    assert not at.button(key="up_confirm").disabled, warnings(at)


def test_dp_helper_refuses_when_the_budget_is_short_and_spends_nothing(tmp_path):
    lg = ledger(tmp_path)
    lg.set_dataset_budget("trial", total=0.01, default_total=1.0)
    lg.close()
    at = helper_page(tmp_path)
    assert not at.exception
    assert any("Refused" in e.value and "Nothing was spent" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="up_dp_run").disabled
    assert reserved(tmp_path, "trial") == []

    # the budget drops between the check and the click: the ledger refuses in its transaction
    draft = make_draft(trial_csv(), "trial.csv")
    helper = bounds_helper(draft.frame, "psa", "0", "1000", 0.05, dataset_id="trial", privacy_unit="patient_id",
                           max_rows_per_unit="2", max_rows="1000", default_budget=1.0)
    lg = ledger(tmp_path)
    try:
        assert helper.refusal(lg, "local owner") is not None
        with pytest.raises(BudgetExceeded, match="Nothing was spent"):
            run_bounds_helper(helper, draft.frame, lg, "local owner")
        assert lg.dataset_state("trial").spent == 0.0
        assert [e["kind"] for e in lg.entries("trial") if e["kind"] in ("reserve", "refusal")] == ["refusal"]
    finally:
        lg.close()


@pytest.mark.parametrize("lo, hi, eps, message", [
    ("100", "0", None, "lower end must be below its upper end"),
    ("5", "5", None, "lower end must be below its upper end"),
    ("zero", "100", None, "must be a number like 12.5, got 'zero'"),
    ("0", "inf", None, "must be finite"),
    ("", "100", None, "lower end is required"),
])
def test_dp_helper_bad_input_gets_a_message_and_spends_nothing(tmp_path, lo, hi, eps, message):
    at = helper_page(tmp_path, lo, hi, eps)
    assert not at.exception
    assert any(message in i.value.replace("\\", "") for i in at.info), [i.value for i in at.info]
    assert at.button(key="up_dp_run").disabled
    assert reserved(tmp_path, "trial") == []


def test_dp_helper_needs_the_row_limits_and_a_usable_dataset_id(tmp_path):
    at = upload_page(trial_csv())
    at.text_input(key="up_dp_lo").set_value("0")
    at.text_input(key="up_dp_hi").set_value("1000").run()
    assert any("max rows per patient" in i.value for i in at.info), [i.value for i in at.info]
    assert at.button(key="up_dp_run").disabled
    limits(at, "2", "1000")
    at.text_input(key="up_id").set_value("prostate").run()       # a built-in cohort's budget: refused
    assert any("built\\-in cohort" in i.value for i in at.info), [i.value for i in at.info]
    assert at.button(key="up_dp_run").disabled
    assert reserved(tmp_path, "prostate") == []
    draft = make_draft(trial_csv(), "trial.csv")
    with pytest.raises(SchemaError, match="not the patient id"):
        bounds_helper(draft.frame, "patient_id", 0, 10, 0.05, dataset_id="trial", privacy_unit="patient_id",
                      max_rows_per_unit=1, max_rows=1000, default_budget=1.0)
    with pytest.raises(SchemaError, match="ε for the bounds helper"):
        bounds_helper(draft.frame, "psa", 0, 10, 0.0, dataset_id="trial", privacy_unit="patient_id",
                      max_rows_per_unit=1, max_rows=1000, default_budget=1.0)


def test_dp_helper_data_that_does_not_fit_spends_nothing(tmp_path):
    at = helper_page(tmp_path)
    limits(at, "2", "50")                       # 120 rows > max rows: refused before any spending
    at.run()
    at.button(key="up_dp_run").click().run()
    assert not at.exception
    assert any("Nothing was spent" in e.value and "more rows" in e.value for e in at.error), [e.value for e in at.error]
    assert reserved(tmp_path, "trial") == []


# ------------------------------------------------------------------------------------ after saving
def save_trial(at: AppTest) -> None:
    review(at)
    limits(at, "2", "1000")
    at.run()
    at.button(key="up_confirm").click().run()
    assert any(SAVED in s.value for s in at.success), [e.value for e in at.error]


def test_after_saving_the_page_says_confirmed_and_offers_edit_and_delete(tmp_path):
    at = upload_page(trial_csv())
    save_trial(at)
    page_text = " ".join(e.value for e in (*at.markdown, *at.warning, *at.info, *at.success))
    assert "not public until" not in page_text, "no proposal warning after saving"
    assert not at.data_editor, "the review form is replaced by the confirmation"
    assert at.button(key="up_edit_saved") and at.button(key="up_delete_saved").disabled

    # edit: the confirmed schema comes back (its values are public: no review, row limits kept)
    at.button(key="up_edit_saved").click().run()
    assert not at.exception, at.exception
    assert any("Editing the confirmed schema of **trial**" in i.value for i in at.info)
    assert at.text_input(key="up_mrpu").value == "2" and at.text_input(key="up_max_rows").value == "1000"
    assert not at.button(key="up_confirm").disabled
    edit(at, {editor_row(at, "psa"): {"upper": "250", "bin_edges": "0, 125, 250"}})
    at.run()
    at.button(key="up_confirm").click().run()
    assert any("Schema confirmed and replaced" in s.value for s in at.success), [e.value for e in at.error]
    assert load_schema(tmp_path / "uploads" / "trial" / "schema.toml").column("psa").upper == 250

    # delete: needs its tick; the cohort disappears; the ledger is untouched
    at.checkbox(key="up_delete_ok_saved").check().run()
    at.button(key="up_delete_saved").click().run()
    assert not at.exception, at.exception
    assert uploaded_cohorts() == [] and not (tmp_path / "uploads" / "trial").exists()
    assert any("Deleted the cohort trial" in s.value for s in at.success)


def test_saved_cohorts_can_be_edited_or_deleted_without_a_file(tmp_path):
    at = upload_page(trial_csv())
    save_trial(at)
    fresh = AppTest.from_file(APP, default_timeout=60).run()
    fresh.switch_page("pages/upload.py").run()
    assert not fresh.exception
    assert fresh.selectbox(key="up_manage_pick").value == "trial"
    fresh.button(key="up_manage_edit").click().run()
    assert not fresh.exception, fresh.exception
    assert any("Editing the confirmed schema" in i.value for i in fresh.info)
    fresh.button(key="up_stop_edit").click().run()
    assert fresh.file_uploader(key="up_data") is not None
    fresh.checkbox(key="up_delete_ok_manage").check().run()
    fresh.button(key="up_delete_manage").click().run()
    assert uploaded_cohorts() == []


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("change, message", [
    ({"psa": {"lower": "abc"}}, "column 'psa': lower bound must be a number like 12.5, got 'abc'"),
    ({"psa": {"lower": "100", "upper": "10"}}, "bounds reversed"),
    ({"psa": {"lower": "50", "upper": "50"}}, "bounds reversed or empty"),
    ({"psa": {"bin_edges": "0, x, 100"}}, "bin edge must be a number"),
    ({"psa": {"fill_value": "500"}}, "fill value 500 outside the bounds"),
    ({"visit": {"lower": "2021-13-01"}}, "start date (lower) must be a date like 2024-01-31"),
    ({"site": {"categories": '"Site A, Site B'}}, "never closed"),
    ({"site": {"categories": "Site A, missing"}}, "reserved bucket names"),
    ({"age": {"kind": "categorical", "categories": ""}}, "list its categories"),
])
def test_malformed_review_values_get_a_specific_message(tmp_path, change, message):
    at = upload_page(trial_csv())
    review(at, change)
    limits(at)
    at.run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("Fix before confirming" in e and message in e for e in errors), errors
    assert at.button(key="up_confirm").disabled
    assert uploaded_cohorts() == [] and reserved(tmp_path, "trial") == []


def test_hostile_column_names_are_shown_literally_and_never_crash(tmp_path):
    names = ["patient_id", "<script>alert(1)</script>", "=cmd|' /C calc'!A0", 'a,b "q"', "[x](javascript:alert(1))",
             "$x$ **b**", "missing", ":red[x]"]
    rng = np.random.default_rng(0)
    n = 60
    cols: dict = {names[0]: np.arange(n)}
    for i, name in enumerate(names[1:]):
        cols[name] = rng.choice(["A", "B"], n) if i % 2 else rng.uniform(0, 50, n).round(2)
    at = upload_page(pd.DataFrame(cols).to_csv(index=False).encode(), "hostile.csv")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.data_editor[0].value["column"].tolist() == names
    w = "\n".join(x.value for x in at.warning)
    assert "<script>" not in w and "\\<script\\>" in w, "names in messages are escaped"
    assert "[x](javascript" not in w
    # the DP helper on a hostile name works and names it literally in the ledger
    limits(at, "1", "1000")
    at.run()
    at.selectbox(key="up_dp_col").select("<script>alert(1)</script>")
    at.text_input(key="up_dp_lo").set_value("0")
    at.text_input(key="up_dp_hi").set_value("100").run()
    at.button(key="up_dp_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    review(at)
    at.run()
    at.button(key="up_confirm").click().run()
    assert any(SAVED in s.value for s in at.success), [e.value for e in at.error]
    schema = load_schema(tmp_path / "uploads" / "hostile" / "schema.toml")
    assert set(schema.names) == set(names), "every name survives TOML and Parquet literally"


def test_a_column_name_with_a_line_break_is_refused_with_a_message(tmp_path):
    at = upload_page(b'patient_id,"bad\nname"\n1,2\n2,3\n', "nl.csv")
    assert not at.exception
    assert any("line break" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.data_editor
