"""DP synthetic cohort (OpenDP mbi): cost = OpenDP's map charged once, served from the ledger on
repeat, downloads with a data card, and the page (analyst within an allowance)."""
from __future__ import annotations

import json

import numpy as np
from pathlib import Path

import pytest

pytest.importorskip("mbi")

from streamlit.testing.v1 import AppTest  # noqa: E402

from data.cohorts import load_cohort  # noqa: E402
from data.prepare import prepare  # noqa: E402
from privacy.ledger import BudgetExceeded, BudgetLedger  # noqa: E402
from privacy.measurements import build_plan  # noqa: E402
from privacy.queries import QueryError, SyntheticQuery, query_from_dict, validate_query  # noqa: E402
from privacy.release import release  # noqa: E402
from privacy.stats import synthetic as syn  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("synthetic")]   # JAX compiles once per worker


@pytest.fixture(scope="module")
def cohort():
    frame, schema = load_cohort("prostate", rows=1500)
    return prepare(frame, schema)


def test_spec_validation_and_round_trip(cohort):
    q = SyntheticQuery(columns=("site", "risk_group"), algorithm="mst")
    assert query_from_dict(json.loads(q.key())) == q
    for bad, msg in [(SyntheticQuery(columns=("site",)), "2 to 12"), (SyntheticQuery(columns=("site", "nope")),
                                                                       "nope"),
                     (SyntheticQuery(columns=("site", "age"), algorithm="gan"), "mst")]:
        with pytest.raises(QueryError, match=msg):
            validate_query(bad, cohort.schema)


def test_cost_is_the_opendp_map_charged_once_and_repeats_are_free(cohort, tmp_path):
    q = SyntheticQuery(columns=("site", "risk_group", "age"))
    plan = build_plan(q, cohort.schema, 0.8, "gaussian")
    import opendp.prelude as dp
    rho = plan.measurement.map([dp.polars.Bound(per_group=1)])
    assert plan.cost.rho == pytest.approx(rho) and plan.cost[0] <= 0.8 and plan.cost[1] == pytest.approx(1e-7)
    lg = BudgetLedger(tmp_path / "l.sqlite")
    rel = release(q, cohort, 0.8, lg, "ann", mechanism="gaussian")
    assert lg.state("prostate", "ann").spent == pytest.approx(plan.cost[0])
    frame = syn.synthetic_frame(rel)
    assert list(frame.columns) == ["site", "risk_group", "age"]
    assert abs(len(frame) - 1500) < 300                              # about as many rows as the cohort
    domains = plan.extra["domains"]
    assert all(set(frame[c]) <= set(domains[c]) for c in frame.columns), "values only from public domains"
    again = release(q, cohort, 0.8, lg, "bob", mechanism="gaussian")
    assert again.cached and syn.synthetic_frame(again).equals(frame)
    assert lg.state("prostate", "bob").spent == 0.0
    card = syn.data_card(rel, cohort.schema)
    assert card["statement"].startswith("No row of this table is a real patient") and card["epsilon"] <= 0.8
    lg.set_dataset_budget("prostate", 0.01, actor="test")
    with pytest.raises(BudgetExceeded):
        release(SyntheticQuery(columns=("site", "age")), cohort, 0.8, lg, "ann", mechanism="gaussian")
    lg.close()


def test_page_releases_and_offers_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_DEMO_ROWS", "1500")
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/synthetic.py").run()
    assert not at.exception, at.exception
    at.multiselect(key="syn_cols").set_value(["site", "risk_group"]).run()
    assert any("Cost:" in i.value for i in at.info)
    at.button(key="syn_release").click().run()
    assert not at.exception, at.exception
    assert any("Released. Cost ε" in s.value for s in at.success), [e.value for e in at.error]
    assert any("is a real patient" in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert at.dataframe and list(at.dataframe[0].value.columns) == ["Hospital site", "Risk group (NCCN-style)"]
    assert all("Utility and risk" not in h.value for h in at.subheader)
    assert all(b.key != "syn_utility" for b in at.button), "analysts never see the utility or risk figures"


def test_released_synthetic_cohort_appears_in_the_picker_and_explores_for_free(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_DEMO_ROWS", "1500")
    monkeypatch.delenv("DP_ROLE", raising=False)
    frame, schema = load_cohort("prostate", rows=1500)
    import dataclasses
    cohort = prepare(frame, dataclasses.replace(schema, dataset_id="prostate-rows1500"))
    lg = BudgetLedger(tmp_path / "ledger.sqlite")
    release(SyntheticQuery(columns=("site", "risk_group")), cohort, 0.5, lg, "local owner", mechanism="gaussian")
    spent = lg.dataset_state("prostate-rows1500").spent
    lg.close()
    at = AppTest.from_file(APP, default_timeout=300).run()
    names = [o for o in at.selectbox(key="cohort").options if "DP synthetic" in o]
    assert names, at.selectbox(key="cohort").options
    at = AppTest.from_file(APP, default_timeout=300)
    from privacy.stats.synthetic import synthetic_releases
    lg = BudgetLedger(tmp_path / "ledger.sqlite")
    (rec,) = synthetic_releases(lg)
    lg.close()
    at.query_params["cohort"] = f"synthetic:prostate-rows1500-synthetic-{rec['release_key'][:8]}"
    at.run()
    assert not at.exception, at.exception
    assert any("DP synthetic" in c.value and "no real patient" in c.value for c in at.caption), [c.value for c in at.caption]
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("risk_group").run()
    at.radio(key="ex_mode").set_value("High accuracy (ε 1)").run()
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    lg = BudgetLedger(tmp_path / "ledger.sqlite")
    assert lg.dataset_state("prostate-rows1500").spent == pytest.approx(spent), "the real cohort's budget is untouched"
    lg.close()


def test_utility_side_by_side_tracks_epsilon(cohort, tmp_path):
    """Owner utility: at large epsilon the synthetic 1-way marginals are within a tolerance of the
    truth (cells/(2n) from rounding plus a little noise); at small epsilon they are further off."""
    from privacy.synthetic_utility import summary, utility_report
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.set_dataset_budget("prostate", 100.0, actor="test")
    out = {}
    for eps in (20.0, 0.05):
        rel = release(SyntheticQuery(columns=("site", "risk_group")), cohort, eps, lg, "ann", mechanism="gaussian")
        rows = utility_report(cohort, syn.synthetic_frame(rel), eps, draws=10)
        out[eps] = {m.columns: m for m in rows}
    lg.close()
    n = cohort.n_rows
    for c in (("site",), ("risk_group",)):
        assert out[20.0][c].tvd_synthetic <= 6 / (2 * n) * 10 + 0.02, out[20.0][c]
    mean = {e: np.mean([m.tvd_synthetic for m in rows.values()]) for e, rows in out.items()}
    assert mean[0.05] > mean[20.0], mean
    assert len(out[20.0]) == 3 and any("Answers" in s for s in summary(list(out[20.0].values()), cohort.schema))


def test_owner_sees_utility_side_by_side(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_DEMO_ROWS", "1500")
    monkeypatch.delenv("DP_ROLE", raising=False)
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/synthetic.py").run()
    at.multiselect(key="syn_cols").set_value(["site", "risk_group"]).run()
    at.button(key="syn_release").click().run()
    assert not at.exception, at.exception
    at.button(key="syn_utility").click().run()
    assert not at.exception, at.exception
    assert any("Uses the true data (not private)" in w.value for w in at.warning)
    table = at.dataframe[-1].value
    assert "Marginal" in table.columns and len(table) == 3            # site, risk group, site by risk group
    assert any(m.value.startswith("- Answers") or m.value.startswith("- A direct") or "moderately" in m.value
               for m in at.markdown)
