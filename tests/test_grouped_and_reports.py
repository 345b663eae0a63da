"""Parallel composition (grouped quantile: all groups for the price of one) and one-shot reports
(one reservation: all statistics released and charged, or none)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from data.cohorts import load_cohort
from data.prepare import prepare
from privacy.ledger import BudgetExceeded, BudgetLedger
from privacy.measurements import build_plan
from privacy.queries import GroupedQuantileQuery, QuantileQuery, QueryError, Where, make_query
from privacy.release import ReportError, preview, release, release_report, report_refusal
from privacy.reports import radiology_report, with_shares
from tests.conftest import toy_frame, toy_schema


@pytest.fixture(scope="module")
def radiology():
    frame, schema = load_cohort("radiology")
    return prepare(frame, schema)


@pytest.mark.parametrize("eps", [0.05, 0.3, 2.0])
def test_grouped_quantile_costs_one_quantile_with_the_same_intervals(eps):
    schema = toy_schema(max_rows_per_unit=3)
    one = build_plan(QuantileQuery(column="x", where=Where("g", "7")), schema, eps)
    all_ = build_plan(GroupedQuantileQuery(column="x", by="g"), schema, eps)
    d_in = schema.max_rows_per_unit
    assert all_.measurement.map(d_in) == one.measurement.map(d_in) == all_.cost[0]   # OpenDP's map
    assert all_.noise == one.noise                                                     # same noise per cell
    assert all_.expected_error()["rank_threshold"] == one.expected_error()["rank_threshold"]
    assert all_.labels == ["6", "7", "8", "missing", "other"]
    # and the joint measurement really is one over group x candidate cells
    k = len(schema.column("x").quantile_candidates)
    assert len(all_.measurement(np.zeros(10, dtype=np.int32))) == 5 * (k + 1)


def test_grouped_quantile_input_is_the_joint_public_cell():
    cohort = prepare(toy_frame(600), toy_schema())
    plan = build_plan(GroupedQuantileQuery(column="x", by="g", q=0.25), cohort.schema, 1.0)
    cells = plan.make_input(cohort)
    k1 = len(cohort.schema.column("x").quantile_candidates) + 1
    counts = np.bincount(cells, minlength=5 * k1).reshape(5, k1)
    for i, g in enumerate(["6", "7", "8"]):      # each group's block is that group's own quantile cells
        single = build_plan(QuantileQuery(column="x", q=0.25, where=Where("g", g)), cohort.schema, 1.0)
        assert np.array_equal(counts[i], np.bincount(single.make_input(cohort), minlength=k1))
    assert counts[3:].sum() == 0
    truth = plan.truth(cohort)
    x, g = cohort.numbers["x"], cohort.codes["g"]
    assert truth[:3] == pytest.approx([np.quantile(x[g == i], 0.25) for i in range(3)])
    assert all(math.isnan(t) for t in truth[3:])


@pytest.mark.slow
def test_grouped_quantile_coverage_per_group():
    """Every group's interval covers its true median at least 95% of the time (about 97-98% on
    this smooth data). Tolerance: 3 binomial standard deviations at 200 draws."""
    cohort = prepare(toy_frame(900, seed=5), toy_schema())
    plan = build_plan(GroupedQuantileQuery(column="x", by="g"), cohort.schema, 0.5)
    truth = np.array(plan.truth(cohort)[:3])
    draws = 200
    hits = np.zeros(3)
    widths = []
    for _ in range(draws):
        out = plan.run(cohort)
        lo, hi = np.array(out.ci_low[:3]), np.array(out.ci_high[:3])
        hits += (lo <= truth) & (truth <= hi)
        widths.append(hi - lo)
    cover = hits / draws
    assert np.all(cover >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / draws)), cover
    assert np.median(widths) < 10          # and informative: far narrower than the public range 0-10


def test_grouped_quantile_query_validation_and_cli_spelling():
    schema = toy_schema()
    q = make_query("grouped-quantile", column="x", by="g", q=0.9)
    assert q == GroupedQuantileQuery(column="x", by="g", q=0.9) and q.describe(schema) == "90% quantile PSA by Gleason"
    with pytest.raises(QueryError, match="group-by column 'x' is numeric"):
        preview(GroupedQuantileQuery(column="x", by="x"), schema, 0.5)
    with pytest.raises(QueryError, match="strictly between 0 and 1"):
        preview(GroupedQuantileQuery(column="x", by="g", q=1.0), schema, 0.5)
    with pytest.raises(QueryError, match="needs a second column"):
        make_query("grouped-quantile", column="x")


# --------------------------------------------------------------------------------- reports
def test_radiology_report_is_one_reservation_and_repeats_free(radiology, tmp_path):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    items = radiology_report(radiology.schema)
    assert [it.key for it in items] == ["volume", "turnaround_mean", "turnaround_median", "ct_dose", "contrast"]
    rep = release_report("radiology-review", items, 0.5, radiology, lg, "ann")
    assert not rep.cached and rep.epsilon == pytest.approx(0.5) and rep.epsilon <= 0.5 + 1e-9
    reserves = lg.entries(kinds=("reserve",))
    assert len(reserves) == 1 and reserves[0]["epsilon"] == pytest.approx(0.5)      # charged once
    assert set(rep.releases) == {it.key for it in items}
    med = rep.releases["turnaround_median"]
    depts = list(radiology.schema.column("department").categories)
    assert med.labels[:len(depts)] == depts and med.epsilon == pytest.approx(0.1)
    narrow = sum((h - lo) < 84 for lo, h in zip(med.ci_low[:len(depts)], med.ci_high[:len(depts)]))
    print(f"\nradiology report at total epsilon 0.5: {narrow} of {len(depts)} department medians have a 95% "
          f"interval narrower than half the public range (0-168 h)")
    assert narrow >= 3
    again = release_report("radiology-review", items, 0.5, radiology, lg, "bob")       # anyone: free, same values
    assert again.cached and again.releases["volume"].values == rep.releases["volume"].values
    assert len(lg.entries(kinds=("reserve",))) == 1 and lg.state(radiology.schema.dataset_id, "bob").spent == 0
    # each statistic is also a stored release of its own: asked alone, it is free
    alone = release(items[1].query, radiology, items[1].epsilon(0.5), lg, "carl")
    assert alone.cached and alone.values == rep.releases["turnaround_mean"].values
    assert len(lg.releases(radiology.schema.dataset_id)) == 5 and lg.verify() == []
    # other shares are another report
    other = with_shares(items, {"volume": 0.5, "ct_dose": 0})
    assert "ct_dose" not in {it.key for it in other} and math.isclose(sum(it.share for it in other), 1.0)
    assert report_refusal("radiology-review", other, 0.5, radiology.schema, lg, "ann") is None
    assert not release_report("radiology-review", other, 0.5, radiology, lg, "ann").cached


def test_a_report_that_cannot_be_prepared_charges_and_stores_nothing(radiology, tmp_path, monkeypatch):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    items = radiology_report(radiology.schema)
    from privacy.calibrate import DEFAULT_DELTA
    plan = build_plan(items[2].query, radiology.schema, items[2].epsilon(0.5), "laplace", DEFAULT_DELTA)  # cached
    calls = []

    def failing_input(cohort):    # the middle statistic's input fails after the first ones were built
        calls.append(1)
        raise MemoryError("no room")

    monkeypatch.setattr(plan, "make_input", failing_input)
    monkeypatch.setattr(radiology, "_cache", {})     # no aggregates kept from earlier tests
    with pytest.raises(ReportError, match="nothing was spent"):
        release_report("radiology-review", items, 0.5, radiology, lg, "ann")
    assert calls and lg.entries(kinds=("reserve", "result")) == []
    assert lg.state(radiology.schema.dataset_id, "ann").spent == 0


def test_a_report_that_does_not_fit_is_refused_whole(radiology, tmp_path):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.set_dataset_budget(radiology.schema.dataset_id, 0.4)
    items = radiology_report(radiology.schema)
    assert report_refusal("radiology-review", items, 0.5, radiology.schema, lg, "ann").which == "dataset"
    with pytest.raises(BudgetExceeded):
        release_report("radiology-review", items, 0.5, radiology, lg, "ann")
    assert lg.entries(kinds=("reserve", "result")) == [] and len(lg.entries(kinds=("refusal",))) == 1
    with pytest.raises(ValueError, match="at least one statistic"):
        with_shares(items, {it.key: 0 for it in items})
    with pytest.raises(ValueError, match="finite"):
        with_shares(items, {"volume": float("nan")})
