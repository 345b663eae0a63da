"""A statistic added through the registry alone (one module: this test) appears in the CLI, the
Explore statistic list and query builder, releases through the ledger and is drawn."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from privacy import statistics
from privacy.queries import QueryError, _Query

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@dataclass(frozen=True)
class AboveMidQuery(_Query):
    """Toy plug-in: number of rows whose value is above the middle of the column's public range."""

    stat: ClassVar[str] = "above-mid"
    column: str = ""

    def _describe(self, lab) -> str:
        return f"Rows above the middle of {lab(self.column)}"

    def validate(self, schema) -> None:
        if schema.column(self.column).kind != "numeric":
            raise QueryError(f"'{self.column}' must be numeric")


def _above_mid_plan(q, schema, epsilon, mechanism, delta):
    from privacy.calibrate import calibrate
    from privacy.measurements import Outcome, Plan, _int_space
    from privacy.opendp_runtime import dp
    from privacy.accuracy import accuracy

    col = schema.column(q.column)
    mid = (col.lower + col.upper) / 2

    def build(scale):
        return _int_space() >> dp.t.then_count(TO=dp.i32) >> dp.m.then_laplace(scale=scale)

    m, (scale,), cost = calibrate([build], [1.0], schema.max_rows_per_unit, epsilon, "laplace", 0.0)

    def make_input(cohort):
        x = cohort.numbers[q.column]
        return np.zeros(int(np.sum(x > mid)), dtype=np.int32)

    def finish(raw, alpha):
        a = accuracy(scale, alpha, "discrete laplace")
        return Outcome([float(raw)], [float(raw) - a], [float(raw) + a], {"halfwidth": a})

    def preview(alpha):
        a = accuracy(scale, alpha, "discrete laplace")
        return {"kind": "counts", "halfwidth": a, "unit": "patients", "words": f"within ±{a:.0f} patients"}

    return Plan(q, schema, epsilon, "laplace", 0.0, m, schema.max_rows_per_unit, cost, ["above the middle"],
                {"counts": ("discrete laplace", scale)}, make_input, finish,
                lambda c: [float(len(make_input(c)))], preview)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_DEMO_ROWS", "3000")
    monkeypatch.delenv("DP_ROLE", raising=False)
    statistics.register_statistic(statistics.Statistic("above-mid", AboveMidQuery, _above_mid_plan,
                                                       "Rows above mid-range", {"column": ("numeric",)}))
    yield
    statistics.unregister_statistic("above-mid")


def test_plugin_in_cli(plugin, tmp_path, capsys):
    from privacy.cli import main
    rc = main(["release", "--cohort", "prostate", "--stat", "above-mid", "--column", "psa", "--epsilon", "0.5",
               "--ledger", str(tmp_path / "cli.sqlite"), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    rel = json.loads(out.out)
    assert rel["query"] == {"stat": "above-mid", "column": "psa", "where": None}
    assert rel["description"] == "Rows above the middle of PSA at diagnosis" and rel["epsilon"] == pytest.approx(0.5)
    rc = main(["release", "--cohort", "prostate", "--stat", "above-mid", "--column", "site", "--epsilon", "0.5",
               "--ledger", str(tmp_path / "cli.sqlite")])
    assert rc != 0 and "'site' must be numeric" in capsys.readouterr().err
    assert "above-mid" in statistics.names()


def test_plugin_in_explore(plugin):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "above-mid" in at.selectbox(key="ex_stat").options or \
        "Rows above mid-range" in at.selectbox(key="ex_stat").options
    at.selectbox(key="ex_stat").select("above-mid").run()
    assert at.selectbox(key="ex_column").options, "its query builder offers the numeric columns"
    at.radio(key="ex_mode").set_value("Strong privacy (ε 0.1)").run()
    at.button(key="release").click().run()
    assert not at.exception, at.exception
    assert any("Released. Cost ε 0.1" in s.value for s in at.success)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"], "drawn by the default chart"


def test_unregistered_plugin_is_gone(plugin):
    statistics.unregister_statistic("above-mid")
    assert "above-mid" not in statistics.names()
    from privacy.queries import make_query
    with pytest.raises(QueryError, match="unknown statistic"):
        make_query("above-mid", column="psa")
    statistics.register_statistic(statistics.Statistic("above-mid", AboveMidQuery, _above_mid_plan, "x"))
