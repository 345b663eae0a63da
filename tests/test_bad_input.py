"""Bad input is refused with a specific message and costs nothing (property tests + named cases)."""
from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.prepare import prepare
from data.schema import SchemaError, schema_from_dict
from privacy.ledger import BudgetLedger
from privacy.queries import (CountQuery, CrossTabQuery, HistogramQuery, MeanQuery, QuantileQuery, QueryError,
                             Where, make_query, validate_query)
from privacy.release import preview, release
from tests.conftest import toy_frame, toy_schema

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
QUERIES = [CountQuery(), HistogramQuery(column="g"), MeanQuery(column="x"), QuantileQuery(column="x", q=0.25),
           HistogramQuery(column="d", date_unit="quarter")]

weird_numbers = st.sampled_from([0, 0.0, -0.0, -1, -1e-9, float("nan"), float("inf"), float("-inf"), 1e9, 1e308,
                                 1e-9, 5e-324, 1e-3, 0.000999, 100, 100.000001, 2**63, -2**63, True, False])
weird_epsilons = st.one_of(
    weird_numbers,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-3, 0.05, 0.5, 1, 7.5, 100]),               # valid ones too: they must release
    st.integers(min_value=-10**20, max_value=10**20),
    st.text(max_size=12),
    st.sampled_from(["0.5", " 2 ", "1e-3", "nan", "inf", "-1", "", "0x10", "½", "1_0", "ε"]),
    st.none(),
    st.lists(st.floats(), max_size=2),                             # unhashable: must not reach the plan cache
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@pytest.fixture(scope="module")
def cohort():
    return prepare(toy_frame(200), toy_schema(budget=1.0))


# -------------------------------------------------------------------------------- epsilon
@SETTINGS
@given(eps=weird_epsilons, qi=st.integers(0, len(QUERIES) - 1),
       mechanism=st.sampled_from(["laplace", "gaussian"]))
def test_any_epsilon_releases_or_raises_query_error_and_never_charges_on_error(tmp_path, cohort, eps, qi, mechanism):
    lg = BudgetLedger(tmp_path / "eps.sqlite")
    try:
        analyst = f"a{len(lg.budgets())}"
        lg.set_dataset_budget("toy", 1e6, delta=0.5)        # budget is not what this test is about
        lg.set_budget("toy", analyst, 1e6)
        before = lg.entries()
        try:
            r = release(QUERIES[qi], cohort, eps, lg, analyst, mechanism=mechanism)
        except QueryError as e:
            assert str(e).startswith(("epsilon", "mechanism")), e
            assert lg.entries() == before                     # nothing charged, nothing written
        else:
            e = float(eps)
            assert math.isfinite(e) and 1e-3 <= e <= 100
            assert 0 < r.epsilon <= e * (1 + 1e-9)
            if r.cached:   # an earlier example asked the same question: shared, free, audited
                assert lg.state("toy", analyst).spent == 0
                assert [x["kind"] for x in lg.entries()[len(before):]] == ["served"]
            else:
                assert lg.state("toy", analyst).spent == pytest.approx(r.epsilon)
                assert [x["kind"] for x in lg.entries()[len(before):]] == ["reserve", "result"]
    finally:
        lg.close()


@SETTINGS
@given(eps=weird_epsilons, delta=st.one_of(weird_numbers, st.floats(), st.text(max_size=4), st.none()))
def test_preview_epsilon_and_delta_raise_only_query_error(eps, delta):
    """Preview touches no ledger, but bad epsilon/delta must still be QueryError, not TypeError or an
    OpenDP error (delta 1 would be no privacy at all)."""
    try:
        p = preview(CountQuery(), toy_schema(), eps, "gaussian", delta)
    except QueryError as e:
        assert str(e).startswith(("epsilon", "delta")), e
    else:
        d = float(delta)
        assert 0 < d <= 1e-5 and p.delta == pytest.approx(d, rel=1e-6)


# ---------------------------------------------------------------------------------- schema
def _schema_dict(name: str, spec: dict) -> dict:
    return {"dataset": {"id": "t", "privacy_unit": "pid", "max_rows": 1000, "default_budget": 1.0},
            "columns": {"pid": {"kind": "id"}, name: spec}}


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n != "pid")
bound = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                  st.sampled_from([0, 1, 10, -1e308, 1e308, float("nan"), float("inf")]))


def _expected_numeric_problem(lo, hi, edges) -> bool:
    vals = [lo, hi] + list(edges)
    if not all(math.isfinite(float(v)) for v in vals):
        return True
    lo, hi, e = float(lo), float(hi), [float(v) for v in edges]
    return not (lo < hi and len(e) >= 2 and all(b > a for a, b in zip(e, e[1:])) and e[0] >= lo and e[-1] <= hi)


@SETTINGS
@given(name=names, lo=bound, hi=bound, edges=st.one_of(st.none(), st.lists(bound, max_size=6)),
       bins=st.integers(1, 40))
def test_numeric_bounds_and_edges_validate_or_name_the_column(name, lo, hi, edges, bins):
    spec = {"kind": "numeric", "lower": lo, "upper": hi}
    if edges is None:
        spec["bins"] = bins
    else:
        spec["bin_edges"] = edges
    try:
        s = schema_from_dict(_schema_dict(name, spec))
    except SchemaError as e:
        assert f"column '{name}'" in str(e), str(e)
        if edges is not None:
            assert _expected_numeric_problem(lo, hi, edges), f"valid column refused: {e}"
    else:
        c = s.column(name)
        assert math.isfinite(c.lower) and math.isfinite(c.upper) and c.lower < c.upper
        assert len(c.bin_edges) >= 2 and all(math.isfinite(v) for v in c.bin_edges)
        assert all(b > a for a, b in zip(c.bin_edges, c.bin_edges[1:]))
        assert c.lower <= c.bin_edges[0] and c.bin_edges[-1] <= c.upper
        if edges is not None:
            assert not _expected_numeric_problem(lo, hi, edges)


category = st.one_of(st.text(max_size=6), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from(["missing", "other", "7", 7, 7.0, ""]))


@SETTINGS
@given(name=names, cats=st.lists(category, max_size=6))
def test_category_lists_validate_or_name_the_column(name, cats):
    as_str = [str(int(c)) if isinstance(c, float) and c.is_integer() else str(c) for c in cats]
    bad = not as_str or len(set(as_str)) != len(as_str) or any(c in ("missing", "other") for c in as_str)
    try:
        s = schema_from_dict(_schema_dict(name, {"kind": "categorical", "categories": cats}))
    except SchemaError as e:
        assert f"column '{name}'" in str(e), str(e)
        assert bad, f"valid category list refused: {e}"
    else:
        assert not bad, f"invalid category list accepted: {cats!r}"
        assert s.column(name).bucket_labels == tuple(as_str) + ("missing", "other")


@pytest.mark.parametrize("spec", [{"bins": 0}, {"bin_edges": ["a", 5]}, {"bin_edges": 5}, {"bins": "ten"},
                                  {"candidates": ["a"]}], ids=["bins0", "edge-text", "edges-int", "bins-text",
                                                               "candidate-text"])
def test_schema_malformed_numeric_fields_raise_schema_error(spec):
    with pytest.raises(SchemaError, match="column 'x'"):
        schema_from_dict(_schema_dict("x", {"kind": "numeric", "lower": 0, "upper": 10, **spec}))


# ------------------------------------------------------------------------- specific messages
def test_specific_messages(tmp_path, cohort):
    sch = toy_schema()
    with pytest.raises(QueryError, match=r"^unknown column 'psa'; known columns: g, x, d$"):
        validate_query(MeanQuery(column="psa"), sch)
    with pytest.raises(SchemaError, match=r"column 'x': bounds reversed or empty \(lower 10.0 >= upper 0.0\)"):
        schema_from_dict(_schema_dict("x", {"kind": "numeric", "lower": 10, "upper": 0, "bin_edges": [0, 10]}))
    with pytest.raises(SchemaError, match=r"column 'g': empty category list"):
        schema_from_dict(_schema_dict("g", {"kind": "categorical", "categories": []}))
    with pytest.raises(SchemaError, match=r"column 'x': bin edges outside the bounds \[0, 10\] \(edges run -5 to 10\)"):
        schema_from_dict(_schema_dict("x", {"kind": "numeric", "lower": 0, "upper": 10, "bin_edges": [-5, 0, 10]}))
    with pytest.raises(QueryError, match=r"bin edges outside the public bounds \[0, 10\] of 'x'"):
        validate_query(make_query("histogram", column="x", bin_edges=[0, 5, 11]), sch)
    with pytest.raises(QueryError, match=r"'9' is not a category of 'g' \(one of: 6, 7, 8, missing, other\)"):
        validate_query(make_query("count", where="g=9"), sch)
    with pytest.raises(QueryError, match=r"unknown column 'grade'"):
        validate_query(CountQuery(where=Where("grade", "7")), sch)
    # none of these reach the ledger
    lg = BudgetLedger(tmp_path / "l.sqlite")
    for q in (MeanQuery(column="psa"), CountQuery(where=Where("g", "9")), HistogramQuery(column="x", bin_edges=(0, 11)),
              QuantileQuery(column="x", q=1.0), CrossTabQuery(column="g", by="g")):
        with pytest.raises(QueryError):
            release(q, cohort, 0.5, lg, "ann")
    assert lg.entries() == []
