"""Survival curves: schema endpoints, cost = OpenDP's map (parallel groups, two rows per patient),
agreement with an exact Kaplan-Meier at large epsilon, band coverage under real noise (slow)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from data.prepare import prepare
from data.schema import SchemaError, load_schema, schema_from_dict
from privacy.measurements import build_plan
from privacy.queries import QueryError, make_query, validate_query
from privacy.release import release

EDGES = list(range(0, 121, 6))
Z = 5.0


def schema(rows_per_patient: int = 1, survival: dict | None = None):
    return schema_from_dict({
        "dataset": {"id": "surv", "privacy_unit": "pid", "max_rows_per_unit": rows_per_patient, "max_rows": 10**6,
                    "default_budget": 5.0},
        "columns": {"pid": {"kind": "id"},
                    "t": {"kind": "numeric", "lower": 0, "upper": 120, "bin_edges": EDGES, "unit": "months"},
                    "st": {"kind": "categorical", "categories": ["dead", "alive", "lost"]},
                    "g": {"kind": "categorical", "categories": ["a", "b"]}},
        "survival": survival or {"os": {"time": "t", "event": "st", "events": ["dead"], "censored": ["alive"]}}})


def frame(n: int, seed: int, lam: float = 1 / 60, cens: float = 1 / 100) -> pd.DataFrame:
    """Exponential event times (rate lam), independent exponential censoring, follow-up to 120."""
    rng = np.random.default_rng(seed)
    ev, ce = rng.exponential(1 / lam, n), rng.exponential(1 / cens, n)
    t = np.minimum(np.minimum(ev, ce), 120.0)
    st = np.where(ev <= np.minimum(ce, 120.0), "dead", "alive")
    return pd.DataFrame({"pid": np.arange(n), "t": t, "st": st, "g": np.where(np.arange(n) % 3 == 0, "b", "a")})


def exact_km(t: np.ndarray, dead: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Reference Kaplan-Meier on exact times (product over distinct event times <= each point)."""
    out = []
    for x in at:
        s = 1.0
        for u in np.unique(t[dead & (t <= x)]):
            n = np.sum(t >= u)
            s *= 1.0 - np.sum(dead & (t == u)) / n
        out.append(s)
    return np.array(out)


def test_schema_endpoints_load_validate_and_round_trip():
    s = load_schema("data/cohorts/prostate.toml")
    assert [e.name for e in s.survival] == ["overall", "cancer_specific"]
    assert s.endpoint(time="followup_months").name == "overall"
    assert load_schema("data/cohorts/colon.toml").endpoint("death").where == ("etype", "2")
    for bad, msg in [({"time": "st", "event": "st", "events": ["dead"]}, "must be a numeric"),
                     ({"time": "t", "event": "st", "events": ["gone"]}, "not categories"),
                     ({"time": "t", "event": "st", "events": ["dead"], "censored": ["dead"]}, "none of them also"),
                     ({"time": "t", "event": "st", "events": ["dead"], "bin_edges": [5, 10]}, "time bins"),
                     ({"time": "t", "event": "st", "events": ["dead"], "colour": 1}, "unknown key")]:
        with pytest.raises(SchemaError, match=msg):
            schema(survival={"x": bad})
    with pytest.raises(QueryError, match="no survival endpoint"):
        validate_query(make_query("survival", column="t", endpoint="nope"), schema())
    with pytest.raises(QueryError, match="other than the event column"):
        validate_query(make_query("survival", column="t", by="st"), schema())


@pytest.mark.parametrize("rows_per_patient", [1, 2])
def test_cost_is_one_count_over_the_joint_cells(rows_per_patient):
    sch = schema(rows_per_patient)
    one = build_plan(make_query("survival", column="t"), sch, 0.5)
    grouped = build_plan(make_query("survival", column="t", by="g"), sch, 0.5)
    for plan in (one, grouped):
        assert plan.d_in == rows_per_patient
        assert plan.cost[0] == pytest.approx(plan.measurement.map(rows_per_patient)) and plan.cost[0] <= 0.5
    assert grouped.noise == one.noise                      # all groups for the price of one
    assert len(grouped.labels) == 4 * (len(EDGES) - 1)     # a, b, missing, other x bins


def test_large_epsilon_matches_exact_kaplan_meier_within_the_band():
    f = frame(3000, seed=1)
    coh = prepare(f, schema())
    plan = build_plan(make_query("survival", column="t"), coh.schema, 50.0)
    out = plan.run(coh)
    ends = np.array(EDGES[1:], dtype=float)
    km = exact_km(f["t"].to_numpy(), f["st"].to_numpy() == "dead", ends)
    v, lo, hi = map(np.asarray, (out.values, out.ci_low, out.ci_high))
    assert np.all(np.abs(v - km) <= (hi - lo) / 2), np.c_[v, km, lo, hi]
    assert np.all(np.abs(v - km) < 0.01)                  # the life-table rule keeps binning bias small
    assert plan.truth(coh) == pytest.approx(v.tolist(), abs=2e-3)
    g = out.extra["groups"][0]
    assert g["at_risk"][0] == 3000 and all(a >= b for a, b in zip(g["at_risk"], g["at_risk"][1:]))
    assert set(g["landmarks"]) == {"1-year", "3-year", "5-year", "10-year"}
    assert g["median"] == pytest.approx(42.0, abs=6.0)    # exp(-t/60) = 0.5 at 41.6 months


def test_rows_outside_the_event_definition_and_two_rows_per_patient(tmp_path):
    f = frame(400, seed=2)
    f.loc[f.index[:50], "st"] = "lost"                   # neither event nor censored: left out
    coh = prepare(f, schema())
    plan = build_plan(make_query("survival", column="t"), coh.schema, 1.0)
    assert len(plan.make_input(coh)) == 350
    from privacy.ledger import BudgetLedger
    lg = BudgetLedger(tmp_path / "l.sqlite")
    rel = release(make_query("survival", column="t", by="g"), coh, 0.5, lg, "ann")
    assert lg.state("surv", "ann").spent == pytest.approx(0.5)
    again = release(make_query("survival", column="t", by="g"), coh, 0.5, lg, "bob")
    assert again.cached and again.values == rel.values
    assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in zip(rel.ci_low, rel.ci_high))
    lg.close()


@pytest.mark.slow
def test_band_covers_the_population_curve():
    """Pointwise coverage of exp(-t/60) at every bin end over 400 independent cohorts at epsilon 1
    (n = 2,000): each bin >= 95% up to Z binomial sd, pooled within [0.94, 0.98]; a band 30%
    narrower fails (power)."""
    sch = schema()
    plan = build_plan(make_query("survival", column="t"), sch, 1.0)
    pop = np.exp(-np.array(EDGES[1:], dtype=float) / 60)
    hits, narrow = [], []
    for rep in range(400):
        out = plan.run(prepare(frame(2000, seed=100 + rep), sch))
        v, lo, hi = map(np.asarray, (out.values, out.ci_low, out.ci_high))
        hits.append((lo <= pop) & (pop <= hi))
        narrow.append((v - 0.7 * (v - lo) <= pop) & (pop <= v + 0.7 * (hi - v)))
    h = np.asarray(hits)
    tol = Z * math.sqrt(0.95 * 0.05 / len(h))
    assert h.mean(axis=0).min() >= 0.95 - tol, h.mean(axis=0)
    assert 0.94 <= h.mean() <= 0.98, h.mean()
    assert np.asarray(narrow).mean() < 0.94, np.asarray(narrow).mean()


def test_cli_survival_by_group(tmp_path, capsys):
    from privacy.cli import main
    led = str(tmp_path / "l.sqlite")
    rc = main(["release", "--cohort", "prostate", "--stat", "survival", "--column", "followup_months", "--by",
               "risk_group", "--endpoint", "cancer_specific", "--epsilon", "0.3", "--ledger", led, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    import json
    rel = json.loads(out.out)
    assert rel["query"]["stat"] == "survival" and rel["epsilon"] == pytest.approx(0.3)
    assert rel["description"] == "Prostate-cancer-specific survival by risk group (NCCN-style)"
    assert len(rel["extra"]["groups"]) == 6 and "at_risk" in rel["extra"]["groups"][0]
    rc = main(["release", "--cohort", "prostate", "--stat", "mean", "--column", "psa", "--endpoint", "x",
               "--epsilon", "0.3", "--ledger", led])
    assert rc != 0 and "--endpoint applies only to --stat survival" in capsys.readouterr().err


def test_colon_two_rows_per_patient_costs_the_map_at_two():
    """survival/colon: a recurrence row and a death row per patient; each endpoint uses one of
    them (a public row restriction) but the cost is still OpenDP's map at d_in = 2."""
    sch = load_schema("data/cohorts/colon.toml")
    assert sch.max_rows_per_unit == 2
    for name in ("death", "recurrence"):
        plan = build_plan(make_query("survival", column="time", endpoint=name, by="rx"), sch, 0.4)
        assert plan.d_in == 2 and plan.cost[0] == pytest.approx(plan.measurement.map(2)) and plan.cost[0] <= 0.4
        assert plan.cost[0] > plan.measurement.map(1)         # the bound is two rows, not one
