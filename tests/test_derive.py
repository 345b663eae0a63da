"""Free answers derived from stored releases: which questions match, the exact law of a sum of
noises, coverage under real OpenDP noise (with power checks), and that nothing is charged."""
from __future__ import annotations

import math

import numpy as np
import pytest

from data.prepare import prepare
from privacy.derive import _pmf, find_derivation, sum_halfwidth
from privacy.ledger import BudgetLedger
from privacy.measurements import build_plan
from privacy.queries import (CountQuery, CrossTabQuery, GroupedMeanQuery, HistogramQuery, MeanQuery, Where)
from privacy.release import Release, free_answer, release
from tests.conftest import toy_frame, toy_schema


@pytest.fixture
def cohort():
    return prepare(toy_frame(600, seed=3), toy_schema(budget=10.0))


# ------------------------------------------------------------------------- the law of a sum
@pytest.mark.parametrize("dist", ["discrete laplace", "discrete gaussian"])
def test_sum_law_matches_direct_convolution(dist):
    scale, m, alpha = 3.0, 4, 0.05
    pmf, out = _pmf(dist, scale)
    assert out < 1e-12 and abs(pmf.sum() + out - 1) < 1e-12
    direct = pmf
    for _ in range(m - 1):
        direct = np.convolve(direct, pmf)
    half = (len(direct) - 1) // 2
    inside = np.array([direct[half - a: half + a + 1].sum() for a in range(60)])
    want = int(np.flatnonzero(1 - inside <= alpha)[0])
    got = sum_halfwidth(dist, scale, m, alpha)
    assert got in (want, want + 1)                      # the same, or one step more conservative
    assert 1 - inside[int(got)] <= alpha


def test_sum_halfwidth_grows_like_the_square_root_of_the_cells():
    one = sum_halfwidth("discrete laplace", 20.0, 1)
    w = [sum_halfwidth("discrete laplace", 20.0, m) for m in (4, 16, 64)]
    assert one < w[0] < w[1] < w[2]
    assert w[2] / w[1] == pytest.approx(2.0, rel=0.05) and w[1] / w[0] == pytest.approx(2.0, rel=0.08)
    assert sum_halfwidth("gaussian", 5.0, 9) == pytest.approx(3 * sum_halfwidth("gaussian", 5.0, 1))


# ----------------------------------------------------------------------------- which questions
def _stored(rel: Release) -> list[dict]:
    return [{"release_key": rel.release_key, "release": rel.to_dict()}]


def test_matches_and_non_matches(cohort, ledger):
    s = cohort.schema
    xt = release(CrossTabQuery(column="g", by="x"), cohort, 1.0, ledger, "ann")
    st = _stored(xt)
    cases = {
        CountQuery(): 30, CountQuery(where=Where("g", "7")): 6, HistogramQuery(column="g"): 6,
        HistogramQuery(column="x"): 5, HistogramQuery(column="x", where=Where("g", "8")): 1,
    }
    for q, cells in cases.items():
        d = find_derivation(q, s, st)
        assert d is not None and max(len(c) for c in d.cells) == cells, q
    for q in (MeanQuery(column="x"), HistogramQuery(column="d"), HistogramQuery(column="x", bin_edges=(0, 5, 10)),
              CountQuery(where=Where("g", "nope")), GroupedMeanQuery(column="x", by="g"),
              HistogramQuery(column="g", where=Where("g", "7"))):
        assert find_derivation(q, s, st) is None, q
    other = toy_schema(budget=10.0)
    import dataclasses
    assert find_derivation(CountQuery(), dataclasses.replace(other, dataset_id="elsewhere"), st) is None
    # the derived values are sums of the raw noisy cells
    d = find_derivation(HistogramQuery(column="g"), s, st)
    vals = d.release(HistogramQuery(column="g"), s, "bob").values
    rows, cols = xt.extra["rows"], xt.extra["cols"]
    assert vals == [sum(xt.values[i * len(cols) + j] for j in range(len(cols))) for i in range(len(rows))]


def test_free_answer_costs_nothing_and_is_audited(cohort, ledger):
    assert free_answer(CountQuery(), cohort.schema, ledger, "bob") is None
    h = release(HistogramQuery(column="g"), cohort, 0.5, ledger, "ann")
    spent = ledger.dataset_state("toy").spent
    f = free_answer(CountQuery(), cohort.schema, ledger, "bob", record=True)
    assert f.epsilon == 0 and f.values == [sum(h.values)] and f.extra["derived_from"] == h.release_key
    assert f.ci_low[0] < f.values[0] < f.ci_high[0]
    assert ledger.dataset_state("toy").spent == spent and ledger.state("toy", "bob").spent == 0
    (row,) = ledger.entries(kinds=("derived",))
    assert row["analyst"] == "bob" and row["release_key"] == h.release_key and row["epsilon"] == 0
    assert ledger.verify() == []


# ----------------------------------------------------------------- coverage under real noise
DRAWS = 2000
SD = math.sqrt(0.95 * 0.05 / DRAWS)


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_derived_intervals_cover_95_percent_and_power(cohort, mechanism):
    """Coverage of derived counts (total, one row, margins, one slice) from a crosstab, each at
    least 95% (4 binomial sd: 8 checks must not flake) and at most 97.5% (+4 sd); an
    interval 50% narrower, or computed for a 20% smaller scale, fails clearly."""
    s = cohort.schema
    plan = build_plan(CrossTabQuery(column="g", by="x"), s, 0.3, mechanism, 1e-6)
    truth = np.array(plan.truth(cohort))
    noise, scale = plan.noise["counts"]
    rows, cols = plan.extra["rows"], plan.extra["cols"]
    targets = {"total": [list(range(len(truth)))],
               "row 7": [[1 * len(cols) + j for j in range(len(cols))]],
               "margin x": [[i * len(cols) + j for i in range(len(rows))] for j in range(len(cols) - 1)],
               "slice g=8": [[2 * len(cols) + j] for j in range(len(cols) - 1)]}
    hits = {k: 0 for k in targets}
    narrow = {k: 0 for k in targets}
    small_scale = {k: 0 for k in targets}
    for _ in range(DRAWS):
        v = np.asarray(plan.measurement(plan.make_input(cohort)), dtype=float)
        for k, groups in targets.items():
            g = groups[_ % len(groups)]
            m = len(g)
            err = abs(v[g].sum() - truth[g].sum())
            a = sum_halfwidth(noise, scale, m)
            hits[k] += err <= a
            narrow[k] += err <= 0.5 * a
            small_scale[k] += err <= sum_halfwidth(noise, 0.8 * scale, m)
    for k in targets:
        cover = hits[k] / DRAWS
        print(f"\nderived {k} ({mechanism}): coverage {cover:.3f}, 50% narrower {narrow[k] / DRAWS:.3f}, "
              f"20% smaller scale {small_scale[k] / DRAWS:.3f}")
        assert 0.95 - 4 * SD <= cover <= 0.975 + 4 * SD, (k, cover)
        assert narrow[k] / DRAWS < 0.95 - 4 * SD, k          # power: a too-narrow interval fails
        assert small_scale[k] / DRAWS < cover - 0.015, k      # power: a wrong scale shows
