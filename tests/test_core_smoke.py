"""Core behaviour: anchors, cost from the privacy map, budget refusal, cached repeats."""
import math

import numpy as np
import pandas as pd
import pytest

from data.prepare import prepare
from data.schema import schema_from_dict
from privacy.ledger import BudgetExceeded
from privacy.queries import HistogramQuery, MeanQuery, CountQuery
from privacy.release import preview, release


def test_dp_wizard_anchor_100_rows_5_bins_epsilon_1():
    """DP Wizard's doctest: 100 rows, bounds 0-10, 5 bins, epsilon 1 -> about +/-3.37 per bin."""
    sch = schema_from_dict({"dataset": {"id": "w", "privacy_unit": "id", "max_rows_per_unit": 1, "max_rows": 100,
                                        "default_budget": 1.0},
                            "columns": {"id": {"kind": "id"},
                                        "v": {"kind": "numeric", "lower": 0, "upper": 10, "bins": 5}}})
    p = preview(HistogramQuery(column="v"), sch, 1.0)
    assert p.halfwidth == pytest.approx(3.37, abs=0.01)
    assert p.epsilon == pytest.approx(1.0, rel=1e-6) and p.epsilon <= 1.0


def test_cost_scales_with_rows_per_patient():
    from tests.conftest import toy_schema
    one = preview(HistogramQuery(column="g"), toy_schema(1), 0.5)
    three = preview(HistogramQuery(column="g"), toy_schema(3), 0.5)
    assert one.epsilon == pytest.approx(0.5) and three.epsilon == pytest.approx(0.5)
    # same epsilon, three times the sensitivity -> three times the noise
    assert three.detail["halfwidth"] == pytest.approx(3 * one.detail["halfwidth"], rel=0.05)


def test_overspend_refused_and_nothing_charged(toy_cohort, ledger):
    release(HistogramQuery(column="g"), toy_cohort, 4.0, ledger, "ann")
    before = ledger.state("toy", "ann").spent
    with pytest.raises(BudgetExceeded, match="costs ε 2"):
        release(MeanQuery(column="x"), toy_cohort, 2.0, ledger, "ann")
    assert ledger.state("toy", "ann").spent == before


def test_identical_query_returns_stored_release(toy_cohort, ledger):
    a = release(HistogramQuery(column="g"), toy_cohort, 0.3, ledger, "ann")
    b = release(HistogramQuery(column="g"), toy_cohort, 0.3, ledger, "ann")
    assert not a.cached and b.cached
    assert a.values == b.values
    assert ledger.state("toy", "ann").spent == pytest.approx(0.3)
    assert ledger.verify() == []


def test_invocation_leaves_cached_inputs_unchanged(toy_cohort):
    """Cached encoded inputs are reused across releases: OpenDP must not modify them."""
    from privacy.measurements import build_plan
    for q in (MeanQuery(column="x"), HistogramQuery(column="g"), CountQuery()):
        plan = build_plan(q, toy_cohort.schema, 1.0)
        data = plan.make_input(toy_cohort)
        before = data.copy()
        plan.measurement(data)
        np.testing.assert_array_equal(before, plan.make_input(toy_cohort))


def test_count_is_one_noisy_value_with_the_count_interval(toy_cohort, ledger):
    r = release(CountQuery(), toy_cohort, 1.0, ledger, "ann")
    assert len(r.values) == 1 and r.ci_low[0] < r.values[0] < r.ci_high[0]
    assert r.ci_high[0] - r.values[0] == pytest.approx(3.3756, abs=1e-3)   # discrete Laplace scale 1
    assert abs(r.values[0] - 1000) < 40   # 1000 rows; scale 1 noise beyond 40 has probability < 1e-17
