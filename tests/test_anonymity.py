"""Anonymity-risk report (data/anonymity.py, dashboard/pages/anonymity.py): measures on hand-made tables
with known k, l and t, the published t-closeness examples, a loop-by-loop reference of pyCANON's
definitions on random tables (ties, missing values, several rows per patient), generalisation with
public bins, patients vs rows, the report's exports, the schema declaration, and the owner-only page.

pyCANON itself cannot be installed beside this project (its wheel pins numpy 2.0.2 and pandas 2.3.3).
Its documented example (tests/test_anonymity.py upstream: StudentsMath_Score.csv, QI Teacher, Gender,
Ethnic, Freeredu, wesson; SA Score: k = 1, l = 1, entropy l = 1, t = 0.4165919952210274) is checked by
`test_pycanon_students_example` when PYCANON_STUDENTS_CSV names that file (not shipped here: third-party data).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from data import anonymity as A
from data.schema import SchemaError, schema_from_dict, schema_to_toml

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGE = str(Path(APP).parent / "pages" / "anonymity.py")


# --------------------------------------------------------------------------- hand-made tables
def _three_classes() -> pd.DataFrame:
    """A 4-anonymous table: classes of 4 with diseases {H,H,V,V}, {C,H,V,V}, {C,C,C,C}."""
    return pd.DataFrame({
        "zip": ["130**"] * 4 + ["1485*"] * 4 + ["130**"] * 4,
        "age": ["<30"] * 4 + [">=40"] * 4 + ["3*"] * 4,
        "disease": ["H", "H", "V", "V", "C", "H", "V", "V", "C", "C", "C", "C"],
    })


def test_k_l_t_on_a_table_with_known_answers():
    df = _three_classes()
    qi, sa = ["zip", "age"], ["disease"]
    assert A.k_anonymity(df, qi) == 4
    assert A.l_diversity(df, qi, sa) == 1                       # the all-C class
    assert A.entropy_l_diversity(df, qi, sa) == pytest.approx(1.0)
    # whole table: H 3/12, V 4/12, C 5/12; the all-C class is farthest: (1/4 + 1/3 + 7/12) / 2 = 7/12
    assert A.t_closeness(df, qi, sa) == pytest.approx(7 / 12)
    # without the homogeneous class: l = 2, entropy l = exp(H({C,H,V,V})) = exp(1.5 log 2) = 2^1.5
    two = df.iloc[:8]
    assert A.l_diversity(two, qi, sa) == 2
    assert A.entropy_l_diversity(two, qi, sa) == pytest.approx(2.0)   # {H,H,V,V}: exactly 2
    assert A.entropy_l_int(A.entropy_l_diversity(two, qi, sa)) == 2   # pyCANON's integer part, not 1.999...


def test_entropy_l_is_exp_of_the_smallest_class_entropy():
    df = pd.DataFrame({"q": ["a"] * 3 + ["b"] * 4, "s": ["x", "y", "z", "x", "x", "x", "y"]})
    h_b = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert A.entropy_l_diversity(df, ["q"], ["s"]) == pytest.approx(math.exp(h_b))
    assert A.entropy_l_int(math.exp(h_b)) == 1
    assert A.l_diversity(df, ["q"], ["s"]) == 2


def test_published_t_closeness_examples():
    """Li, Li & Venkatasubramanian (ICDE 2007), salaries 3k..11k: the class {3k, 4k, 5k} is at ordered
    distance 0.375 from the table, {6k, 8k, 11k} at 0.167 (pyCANON's numeric EMD, 1/(m-1) normalised)."""
    sal = [3, 4, 5, 6, 7, 8, 9, 10, 11]
    low = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 6, "salary": sal})
    cl = A.equivalence_classes(low, ["g"])
    per_class = A._ordered_emd(A._sa_counts(cl, A.encode(low["salary"])))
    assert per_class[cl.row_class[0]] == pytest.approx(0.375)           # the class {3k, 4k, 5k}
    assert A.t_closeness(low, ["g"], ["salary"]) == pytest.approx(0.375)
    spread = pd.DataFrame({"g": ["b", "b", "b", "a", "b", "a", "b", "b", "a"], "salary": sal})
    cl = A.equivalence_classes(spread, ["g"])
    per_class = A._ordered_emd(A._sa_counts(cl, A.encode(spread["salary"])))
    assert per_class[cl.row_class[3]] == pytest.approx(1 / 6, abs=1e-9)    # the class {6k, 8k, 11k}
    # the same salaries as categories: equal distance = total variation
    cat = spread.assign(salary=spread.salary.astype(str))
    assert A.t_closeness(cat, ["g"], ["salary"]) == pytest.approx(2 / 3)   # 3 of 9 values, each 1/3 vs 1/9


def test_single_valued_sensitive_attribute_is_at_distance_zero():
    df = pd.DataFrame({"q": ["a", "b"], "s": [1.0, 1.0]})
    assert A.t_closeness(df, ["q"], ["s"]) == 0.0


def test_missing_values_are_a_value_of_their_own():
    df = pd.DataFrame({"age": [60, 60, np.nan, np.nan, np.nan], "s": ["x", None, "x", "y", None]})
    cl = A.equivalence_classes(df, ["age"])
    assert sorted(cl.size.tolist()) == [2, 3]                   # the missing ages form one class of 3
    assert A.k_anonymity(df, ["age"]) == 2
    assert A.l_diversity(df, ["age"], ["s"]) == 2               # {x, missing} and {x, y, missing}
    assert {cl.combination(c)["age"] for c in range(cl.n_classes)} == {"60", "missing"}


def test_ties_and_smallest_classes_are_deterministic():
    schema = _schema()
    df = _frame()
    r1 = A.risk_report(df, schema, ["site", "stage"], ["grade"], smallest=3)
    r2 = A.risk_report(df.sample(frac=1.0, random_state=3).reset_index(drop=True), schema, ["site", "stage"],
                       ["grade"], smallest=3)
    for v in r1["versions"]:
        sizes = [c["patients"] for c in v["smallest_classes"]]
        assert sizes == sorted(sizes) and sizes[0] == v["k"]
    # the measures do not depend on row order
    for key in ("k", "classes", "share_below", "l_distinct", "l_entropy", "t_closeness"):
        assert r1["versions"][1][key] == pytest.approx(r2["versions"][1][key])


# ------------------------------------------------------------------ reference of the definitions
def _ref(df: pd.DataFrame, qi: list[str], s: str, unit: str | None, ordered: bool) -> dict:
    """pyCANON's definitions written out with loops, patients counted once per class and per value.
    A missing value is the string 'missing' (our convention)."""
    d = df.copy()
    for c in qi + [s]:
        d[c] = d[c].map(lambda v: "missing" if pd.isna(v) else v)
    d["_u"] = d[unit] if unit else np.arange(len(d))
    vals = sorted(d[s].unique(), key=lambda v: (v == "missing", v if v != "missing" else 0))
    pairs = {(u, v) for u, v in zip(d["_u"], d[s])}
    p = np.array([sum(1 for _, v in pairs if v == x) for x in vals], dtype=float)
    p /= p.sum()
    out = {"size": [], "l": [], "h": [], "t": []}
    for _, g in d.groupby(qi, dropna=False, sort=False):
        out["size"].append(g["_u"].nunique())
        cv = {(u, v) for u, v in zip(g["_u"], g[s])}
        q = np.array([sum(1 for _, v in cv if v == x) for x in vals], dtype=float)
        q /= q.sum()
        nz = q[q > 0]
        out["l"].append(len(nz))
        out["h"].append(-float(np.sum(nz * np.log(nz))))
        if ordered:
            acc, emd = 0.0, 0.0
            for r in q - p:
                acc += r
                emd += abs(acc)
            out["t"].append(emd / (len(vals) - 1) if len(vals) > 1 else 0.0)
        else:
            out["t"].append(0.5 * float(np.abs(q - p).sum()))
    return out


@st.composite
def _tables(draw):
    n = draw(st.integers(1, 40))
    pid = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    a = draw(st.lists(st.sampled_from(["x", "y", None]), min_size=n, max_size=n))
    b = draw(st.lists(st.sampled_from([1.0, 2.0, np.nan]), min_size=n, max_size=n))
    s = draw(st.lists(st.sampled_from([0.5, 1.5, 2.5, 4.0, np.nan]), min_size=n, max_size=n))
    return pd.DataFrame({"pid": pid, "a": a, "b": b, "s": s})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables(), st.booleans(), st.booleans())
def test_measures_match_the_reference_definitions(df, by_patient, ordered):
    unit = "pid" if by_patient else None
    qi = ["a", "b"]
    ref = _ref(df, qi, "s", unit, ordered)
    cl = A.equivalence_classes(df, qi, unit)
    assert sorted(cl.size.tolist()) == sorted(ref["size"])
    sc = A._sa_counts(cl, A.encode(df["s"], ordered))
    assert int(A._distinct(sc).min()) == min(ref["l"])
    assert float(A._entropy(sc).min()) == pytest.approx(min(ref["h"]), abs=1e-12)
    t = (A._ordered_emd(sc, chunks=3) if ordered else A._equal_distance(sc)).max()
    assert float(t) == pytest.approx(max(ref["t"]), abs=1e-12)


@pytest.mark.skipif(not os.environ.get("PYCANON_STUDENTS_CSV"), reason="pyCANON's example data not provided")
def test_pycanon_students_example():
    df = pd.read_csv(os.environ["PYCANON_STUDENTS_CSV"])
    qi, sa = ["Teacher", "Gender", "Ethnic", "Freeredu", "wesson"], ["Score"]
    assert A.k_anonymity(df, qi) == 1
    assert A.l_diversity(df, qi, sa) == 1
    assert A.entropy_l_int(A.entropy_l_diversity(df, qi, sa)) == 1
    assert A.t_closeness(df, qi, sa) == pytest.approx(0.4165919952210274)


# ------------------------------------------------------------------------------ patients vs rows
def test_classes_count_patients_not_rows():
    df = pd.DataFrame({"pid": [1, 1, 1, 2, 3, 3, 4],
                       "site": ["A", "A", "A", "A", "B", "A", "B"],
                       "s": ["x", "x", "y", "x", "x", "x", "z"]})
    cl = A.equivalence_classes(df, ["site"], unit="pid")
    size = {cl.combination(c)["site"]: int(cl.size[c]) for c in range(cl.n_classes)}
    assert size == {"A": 3, "B": 2}                 # site A: patients 1, 2, 3 (5 rows); B: 3, 4
    rows = {cl.combination(c)["site"]: int(cl.rows[c]) for c in range(cl.n_classes)}
    assert rows == {"A": 5, "B": 2}
    # by rows it would be k = 2 with 7 individuals; by patients there are 4
    assert cl.n_units == 4 and A.k_anonymity(df, ["site"]) == 2
    # patient 3 has rows in both classes: counted in each, and its smallest class is B (2)
    assert sorted(cl.unit_min_size.tolist()) == [2, 2, 3, 3]
    # SA: each patient counts once per value in a class: site A has x from 1, 2, 3 and y from 1
    sc = A._sa_counts(cl, A.encode(df["s"]))
    a = next(c for c in range(cl.n_classes) if cl.combination(c)["site"] == "A")
    assert dict(zip(sc.val[sc.cls == a].tolist(), sc.count[sc.cls == a].tolist())) == {0: 3.0, 1: 1.0}


def test_report_shares_are_shares_of_patients():
    schema = _schema(max_rows_per_unit=5)
    df = pd.DataFrame({"pid": [1] * 5 + [2, 3, 4, 5, 6, 7],
                       "site": ["A"] * 5 + ["A", "B", "B", "B", "B", "B"],
                       "stage": ["T1"] * 11, "grade": ["1"] * 11, "age": [60.0] * 11,
                       "dx": ["2020-01-01"] * 11})
    v = A.risk_report(df, schema, ["site"], [])["versions"][0]
    assert v["patients"] == 7 and v["rows"] == 11
    assert v["k"] == 2                               # site A holds patients 1 and 2 (6 rows)
    assert v["share_below"]["5"] == pytest.approx(2 / 7)   # patients 1, 2; B has 5 patients
    assert v["patients_below"]["11"] == 7
    assert v["average_risk"] == pytest.approx((2 * 0.5 + 5 * 0.2) / 7)
    assert A.smallest_rows(v) == [{"site": "A", "patients": 2, "rows": 6}, {"site": "B", "patients": 5, "rows": 5}]


# ------------------------------------------------------------------------------- generalisation
def _schema(max_rows_per_unit: int = 1, **extra):
    return schema_from_dict({
        "dataset": {"id": "toy", "privacy_unit": "pid", "max_rows_per_unit": max_rows_per_unit,
                    "max_rows": 10**6, "default_budget": 1.0, **extra},
        "columns": {
            "pid": {"kind": "id"},
            "site": {"kind": "categorical", "categories": ["A", "B"]},
            "stage": {"kind": "categorical", "categories": ["T1", "T2", "T3"]},
            "grade": {"kind": "categorical", "categories": ["1", "2", "3"]},
            "age": {"kind": "numeric", "lower": 40, "upper": 95, "bin_edges": [45, 50, 55, 60, 65, 70, 80],
                    "integer": True},
            "dx": {"kind": "date", "start": "2015-01-01", "end": "2024-12-31", "bin_unit": "month"},
        }})


def _frame(n: int = 400, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "pid": np.arange(n),
        "site": rng.choice(["A", "B"], n),
        "stage": rng.choice(["T1", "T2", "T3"], n, p=[0.6, 0.3, 0.1]),
        "grade": rng.choice(["1", "2", "3"], n),
        "age": rng.integers(40, 96, n).astype(float),
        "dx": pd.to_datetime("2015-01-01") + pd.to_timedelta(rng.integers(0, 3650, n), unit="D"),
    })


def test_numeric_generalisation_uses_the_release_bins():
    from privacy.measurements import numeric_bin_codes, numeric_bins
    col = _schema().column("age")
    x = pd.Series([30, 40, 44.9, 45, 49, 50, 79.9, 80, 81, 95, 120, np.nan, "n/a"], dtype=object)
    g = A.generalise_column(x, col)
    edges, labels = numeric_bins(col, None)
    num = np.clip(pd.to_numeric(x, errors="coerce").to_numpy(dtype=float), col.lower, col.upper)
    expected = [labels[c] for c in numeric_bin_codes(num, col, edges)]
    assert list(g.astype(str)) == expected
    assert list(g.astype(str)[:6]) == ["< 45", "< 45", "< 45", "45–50", "45–50", "50–55"]
    assert list(g.astype(str)[7:]) == ["70–80", "> 80", "> 80", "> 80", "missing", "missing"]
    assert list(g.cat.categories) == A.numeric_bin_labels(col)       # value order: below, bins, above, missing


@pytest.mark.parametrize("unit", ["month", "quarter", "year"])
def test_date_generalisation_by_public_unit(unit):
    from privacy.measurements import date_bins
    col = _schema().column("dx")
    s = pd.Series(["2014-06-30", "2015-01-01", "2019-05-17", "2024-12-31", "2031-01-01", None])
    g = A.generalise_column(s, col, unit).astype(str).tolist()
    _, labels = date_bins(col, unit)
    assert set(g) <= set(labels)
    first = {"month": "2015-01", "quarter": "2015-Q1", "year": "2015"}[unit]
    last = {"month": "2024-12", "quarter": "2024-Q4", "year": "2024"}[unit]
    assert g[0] == first and g[1] == first                   # before the public start: clamped into the first
    assert g[3] == last and g[4] == last and g[5] == "missing"
    assert g[2] == {"month": "2019-05", "quarter": "2019-Q2", "year": "2019"}[unit]


def test_categorical_generalisation_other_and_missing():
    col = _schema().column("stage")
    g = A.generalise_column(pd.Series(["T1", "T4", None, 3.0, "T2"]), col).astype(str).tolist()
    assert g == ["T1", "other", "missing", "other", "T2"]


def test_generalisation_raises_k():
    schema = _schema()
    df = pd.DataFrame({"pid": range(6), "site": ["A"] * 6, "stage": ["T1"] * 6, "grade": list("112233"),
                       "age": [61, 62, 63, 64, 66, 68], "dx": ["2020-03-02", "2020-03-05", "2020-03-30",
                                                                "2020-03-31", "2020-03-01", "2020-03-15"]})
    r = A.risk_report(df, schema, ["age", "dx"], ["grade"])
    raw, gen = r["versions"]
    assert raw["k"] == 1 and raw["classes"] == 6 and raw["unique_patients"] == 6
    assert gen["k"] == 2 and gen["classes"] == 2           # 60–65 (4 patients) and 65–70 (2), all 2020-03
    assert gen["max_risk"] == pytest.approx(0.5)
    assert gen["share_below"] == {"5": 1.0, "11": 1.0}
    assert gen["l_distinct"]["grade"] == 1                 # 65–70 holds grade 3 only
    assert {tuple(c["quasi_identifiers"].values()) for c in gen["smallest_classes"]} == \
        {("60–65", "2020-03"), ("65–70", "2020-03")}
    assert A.risk_report(df, schema, ["age", "dx"], ["grade"], date_unit="year")["date_unit"] == "year"


# ------------------------------------------------------------------------------------ the report
def test_report_numeric_sensitive_attribute_on_request_with_progress():
    schema, df = _schema(), _frame()
    r = A.risk_report(df, schema, ["site", "stage"], ["grade", "age"])
    raw, gen = r["versions"]
    assert raw["t_closeness"]["age"] is None and r["raw_numeric_t_closeness"] is False
    assert gen["t_closeness"]["age"] is not None and gen["t_distance"]["age"] == "ordered"
    assert raw["t_distance"]["grade"] == "equal" and raw["t_closeness"]["grade"] > 0
    seen = []
    r2 = A.risk_report(df, schema, ["site", "stage"], ["grade", "age"], numeric_t=True,
                       progress=lambda f, text: seen.append(f))
    assert r2["versions"][0]["t_closeness"]["age"] == pytest.approx(
        A.t_closeness(df, ["site", "stage"], ["age"]))
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    assert any("not computed" in row["Raw table"] for row in A.measure_rows(r))


def test_report_exports_json_and_escaped_html():
    schema = _schema()
    df = _frame(60).assign(site=["<script>alert(1)</script>"] * 60)
    r = A.risk_report(df, schema, ["site", "stage"], ["grade"])
    back = json.loads(A.report_json(r))
    assert back["versions"][0]["k"] == r["versions"][0]["k"] and back["dataset"] == "toy"
    assert back["note"] == A.OWNER_ONLY_NOTE and "never shown to analysts" in back["note"]
    frag = A.report_html_fragment(r)
    assert frag.startswith("<section") and frag.endswith("</section>")
    assert "<script>" not in frag and "&lt;script&gt;" in frag        # raw table shows the value, escaped
    assert "Data owner only" in frag and "k-anonymity" in frag
    assert "Smallest classes" not in A.report_html_fragment(r, include_smallest=False)


def test_declaration_errors():
    schema = _schema()
    with pytest.raises(ValueError, match="at least one quasi-identifier"):
        A.risk_report(_frame(), schema, [], ["grade"])
    with pytest.raises(ValueError, match="both"):
        A.risk_report(_frame(), schema, ["grade"], ["grade"])
    with pytest.raises(ValueError, match="non-id"):
        A.risk_report(_frame(), schema, ["pid"], [])


def test_prostate_demo_report_is_fast_and_uses_the_schema_declaration():
    from data.cohorts import load_cohort
    from data.prepare import prepare
    frame, schema = load_cohort("prostate")
    assert schema.quasi_identifiers == ("age", "site", "diagnosis_date", "clinical_t_stage")
    assert schema.sensitive == ("gleason_score", "status")
    cohort = prepare(frame, schema)
    t0 = time.perf_counter()
    r = A.risk_report(cohort.frame, schema, schema.quasi_identifiers, schema.sensitive)
    assert time.perf_counter() - t0 < 10
    raw, gen = r["versions"]
    assert raw["patients"] == len(frame)
    assert gen["classes"] < raw["classes"] and gen["share_below"]["5"] < raw["share_below"]["5"]
    assert r["date_unit"] == "month" and gen["generalisation"]["diagnosis_date"] == "by month"


# ------------------------------------------------------------------------------------- schema keys
def test_schema_declares_quasi_identifiers_and_sensitive_attributes():
    import tomllib
    s = _schema(quasi_identifiers=["age", "site"], sensitive=["grade"])
    assert s.quasi_identifiers == ("age", "site") and s.sensitive == ("grade",)
    assert schema_from_dict(tomllib.loads(schema_to_toml(s))) == s
    assert _schema().quasi_identifiers == () and "quasi_identifiers" not in schema_to_toml(_schema())
    for bad, msg in (({"quasi_identifiers": ["nope"]}, "not a non-id column"),
                     ({"quasi_identifiers": ["pid"]}, "not a non-id column"),
                     ({"sensitive": "grade"}, "list of column names"),
                     ({"quasi_identifiers": ["age", "age"]}, "twice"),
                     ({"quasi_identifiers": ["grade"], "sensitive": ["grade"]}, "both")):
        with pytest.raises(SchemaError, match=msg):
            _schema(**bad)


# --------------------------------------------------------------------------------------- the page
# the app_env fixture (private ledger, demo cohort, local owner) is in tests/conftest.py


def test_owner_page_shows_the_report_marked_true_data(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/anonymity.py").run()
    assert not at.exception, at.exception
    warn = " ".join(w.value for w in at.warning)
    assert "not private" in warn and "never shown to analysts" in warn
    assert at.multiselect(key="an_qi").value == ["age", "site", "diagnosis_date", "clinical_t_stage"]
    assert at.multiselect(key="an_sa").value == ["gleason_score", "status"]
    tables = at.dataframe
    assert len(tables) >= 3                                        # measures + smallest classes (2 tabs)
    measures = tables[0].value
    assert "k-anonymity (smallest class)" in measures["measure"].tolist()
    assert {"Raw table", "Generalised with public bins"} <= set(measures.columns)
    assert [m.label for m in at.metric][:2] == ["k (generalised)", "Largest risk (generalised)"]
    assert any("single out real patients" in c.value for c in at.caption)
    # a numeric sensitive attribute: raw t-closeness only on request
    at.multiselect(key="an_sa").set_value(["gleason_score", "psa"]).run()
    assert not at.exception, at.exception
    row = lambda: at.dataframe[0].value.set_index("measure").loc["t-closeness: psa"]  # noqa: E731
    assert row()["Raw table"] == "not computed" and "ordered" in row()["Generalised with public bins"]
    at.button(key="an_numeric_t").click().run()
    assert not at.exception, at.exception
    assert "ordered distance" in row()["Raw table"]
    # coarser dates lower the risk; a bad declaration is explained, not an exception
    at.selectbox(key="an_date_unit").select("year").run()
    assert not at.exception
    at.multiselect(key="an_sa").set_value(["site"]).run()
    assert not at.exception and any("both quasi-identifier and sensitive" in i.value for i in at.info)


def test_analyst_cannot_open_the_anonymity_page(app_env, monkeypatch):
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/anonymity.py")              # not registered for analysts
    # run directly with an analyst context: the page refuses on the server and computes nothing
    from dashboard.auth import Identity
    from dashboard.context import Context
    from dashboard.services import prepared_cohort
    from privacy.ledger import BudgetLedger
    ctx = Context(Identity("ana", "analyst", "env"), "prostate", prepared_cohort("prostate", 3000),
                  BudgetLedger(app_env / "l.sqlite"), "laplace")
    pt = AppTest.from_file(PAGE, default_timeout=60)
    pt.session_state["_ctx"] = ctx
    pt.run()
    assert not pt.exception, pt.exception
    assert any("data owner only" in e.value for e in pt.error)
    assert not pt.dataframe and not pt.metric and not pt.multiselect and not pt.get("download_button")
    assert "an_report" not in pt.session_state


def test_forged_owner_context_off_localhost_is_refused(app_env):
    from streamlit import config

    from dashboard.auth import OWNER, Identity
    from dashboard.context import Context
    from dashboard.services import prepared_cohort
    from privacy.ledger import BudgetLedger
    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        ctx = Context(Identity("local owner", OWNER, "local"), "prostate", prepared_cohort("prostate", 3000),
                      BudgetLedger(app_env / "l.sqlite"), "laplace")
        pt = AppTest.from_file(PAGE, default_timeout=60)
        pt.session_state["_ctx"] = ctx
        pt.run()
        assert not pt.exception, pt.exception
        assert any("sign in" in e.value.lower() for e in pt.error)
        assert not pt.dataframe and not pt.metric
    finally:
        config.set_option("server.address", old)
