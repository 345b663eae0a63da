"""Issue 13 in the app: a cohort whose rows live in Parquet files (DuckDB) is picked, explored and
released like any other; the owner's pages work on it (Compare, Trade-off from exact aggregates, the
anonymity report from the bounded rows read into the owner's session), and a source that is gone is
'unavailable' without detail for analysts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture
def engine_env(app_env, monkeypatch):
    from data.cohorts import load_cohort
    frame, _ = load_cohort("prostate", rows=2000, seed=3)
    data = app_env / "exams"
    data.mkdir()
    frame.to_parquet(data / "part-0.parquet")
    sources = app_env / "sources"
    sources.mkdir()
    text = Path("data/cohorts/prostate.toml").read_text()
    text = text.replace('id = "prostate"', 'id = "prostate-warehouse"', 1)
    (sources / "warehouse.toml").write_text(text + f'\n[storage]\nkind = "parquet"\npath = "{data}"\n')
    monkeypatch.setenv("DP_SOURCES", str(sources))
    import streamlit
    streamlit.cache_resource.clear()
    yield data


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["cohort"] = "engine:warehouse"
    return at.run()


def test_engine_cohort_releases_in_the_app(engine_env):
    at = _app()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="cohort").value == "engine:warehouse"
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("gleason_score").run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    assert any("Released" in s.value for s in at.success), [s.value for s in at.success]
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["data"]
    import os

    from privacy.ledger import BudgetLedger
    lg = BudgetLedger(os.environ["DP_LEDGER"])
    rows = [e for e in lg.entries() if e["kind"] == "reserve"]      # one charge, on the engine cohort's dataset
    assert len(rows) == 1 and "prostate-warehouse" in json.dumps(rows[0])
    lg.close()
    at.switch_page("pages/synthetic.py").run()        # public cells from the engine: offered as in memory
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    assert at.button(key="syn_release") and any(i.startswith("**Cost:**") for i in infos), infos
    assert not any("rows stay" in i for i in infos), infos


def test_engine_cohort_whose_files_are_gone_is_unavailable(engine_env, monkeypatch):
    for f in engine_env.glob("*.parquet"):
        f.unlink()
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = _app()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("is unavailable. Please ask the data owner" in e for e in errors), errors
    shown = " ".join(errors + [w.value for w in at.warning])
    assert str(engine_env) not in shown and "IO Error" not in shown and "nothing was spent" not in shown


def test_files_gone_after_opening_refuse_the_release_without_charge(engine_env):
    at = _app()
    at.selectbox(key="ex_stat").select("histogram").run()
    at.selectbox(key="ex_column").select("gleason_score").run()
    at.radio(key="ex_mode").set_value("Balanced (ε 0.25)").run()
    for f in engine_env.glob("*.parquet"):            # the files go away while the page is open
        f.unlink()
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error)
    assert "could not be read; nothing was spent" in shown, shown
    import os

    from privacy.ledger import BudgetLedger
    lg = BudgetLedger(os.environ["DP_LEDGER"])
    assert not [e for e in lg.entries() if e["kind"] == "reserve"]
    lg.close()


def _owner_page_run(page: str, prefix: str, stat: str, column: str) -> AppTest:
    """The owner's page on the engine cohort: it says where its true values come from; one run of it."""
    at = _app()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, at.exception
    assert any("exact aggregates" in c.value for c in at.caption), [c.value for c in at.caption]
    at.selectbox(key=f"{prefix}_stat").select(stat).run()
    at.selectbox(key=f"{prefix}_column").select(column).run()
    at.slider(key=f"{prefix}_draws").set_value(20).run()
    at.button(key=f"{prefix}_run").click().run()
    assert not at.exception, at.exception
    return at


def test_owner_compares_true_and_private_on_an_engine_cohort(engine_env):
    """Compare on a cohort whose rows stay in Parquet: the true values come from the engine's exact
    aggregates (said on the page), the chart shows them next to simulated releases, nothing is charged."""
    import os

    import numpy as np
    import pandas as pd

    from privacy.ledger import BudgetLedger
    at = _owner_page_run("compare.py", "cmp", "histogram", "gleason_score")
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any("not private" in str(t.get("name", "")).lower() for t in fig["data"])
    table = at.dataframe[0].value
    truth = pd.read_parquet(engine_env / "part-0.parquet")["gleason_score"].value_counts()
    shown = dict(zip(table["bucket"], table["true value (not private)"]))
    assert all(np.isclose(shown[str(k)], v) for k, v in truth.items() if str(k) in shown) and len(shown) >= 3
    lg = BudgetLedger(os.environ["DP_LEDGER"])
    assert not [e for e in lg.entries() if e["kind"] == "reserve"]     # simulations spend nothing
    lg.close()


def test_owner_trade_off_on_an_engine_cohort(engine_env):
    at = _owner_page_run("tradeoff.py", "tr", "mean", "psa")
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert figs and all(f["data"] for f in figs)
    assert any("true mean of this cohort" in c.value for c in at.caption), [c.value for c in at.caption]


def test_owner_anonymity_report_on_an_engine_cohort(engine_env):
    """The anonymity report reads the declared columns of the bounded rows out of the engine into the
    owner's session (said on the page) and shows the same k as the report of the file's rows."""
    import pandas as pd

    from data import anonymity as A
    from data.cohorts import cohort_schema
    at = _app()
    at.switch_page("pages/anonymity.py").run()
    assert not at.exception, at.exception
    assert any("rows stay in Parquet files:" in c.value for c in at.caption), [c.value for c in at.caption]
    schema = cohort_schema("prostate")
    rows = pd.read_parquet(engine_env / "part-0.parquet")
    want = A.risk_report(rows, schema, list(schema.quasi_identifiers), list(schema.sensitive))
    shown = {m.label: m.value for m in at.metric}
    assert shown["k (generalised)"] == f"{want['versions'][1]['k']:,}", shown
    assert at.dataframe and at.download_button(key="an_json")
