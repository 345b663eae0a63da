"""Radiology review page (issue 10): accuracy words never cut off, monthly lines flagged when their
changes are within the noise, a mean clamped to a public bound shown as 'not enough exams to
estimate' with its interval, never as '0 h'. Deterministic: the stored report is released once,
then chosen values are replaced (as a stored release would read) before the page draws it."""
from __future__ import annotations

import base64
import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def _page(app_env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["cohort"] = "radiology"
    at.run()
    at.switch_page("pages/radiology.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """One real report release (its dicts), made once for the module."""
    import os
    tmp = tmp_path_factory.mktemp("rad")
    env = {"DP_LEDGER": str(tmp / "ledger.sqlite"), "DP_DEMO_ROWS": "3000", "DP_UPLOADS": str(tmp / "uploads")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from tests.test_report_export import _released_radiology_report
        return copy.deepcopy(_released_radiology_report().session_state["rad_result"])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _show(app_env, result) -> AppTest:
    at = _page(app_env)
    at.session_state["rad_result"] = result
    at.run()
    assert not at.exception, at.exception
    return at


def _values(x) -> list[float]:
    """A trace's numbers as Plotly's JSON gives them: a list (None for a gap) or a typed array."""
    if isinstance(x, dict):
        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"])).astype(float).tolist()
    return [float("nan") if v is None else float(v) for v in x]


def _figs(at):
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_accuracy_words_are_a_wrapped_list_not_a_cut_table_cell(app_env):
    at = _page(app_env)
    table = at.dataframe[0].value
    assert list(table.columns) == ["statistic", "share", "ε"]
    text = " ".join(m.value for m in at.markdown)
    assert "Expected 95% accuracy" in text
    for stat in table["statistic"]:
        assert f"**{stat}** (ε" in text
    assert "each cell within ±" in text and "hours" in text


def test_mean_clamped_to_a_bound_has_no_value_only_its_interval(app_env, released):
    res = copy.deepcopy(released)
    r = res["releases"]["turnaround_mean"]
    i = r["labels"].index("emergency")
    r["values"][i], r["ci_low"][i], r["ci_high"][i] = 0.0, 0.0, 14.56        # the noisy mean fell below 0
    j = r["labels"].index("outpatient")
    r["values"][j], r["ci_low"][j], r["ci_high"][j] = 41.5, 29.9, 53.0        # a real value stays
    for k in (i, j):                                  # both groups' noisy counts well above their ±
        r["extra"]["noisy_counts"][k] = 10 * float(r["extra"]["count_halfwidth"]) + 100
    at = _show(app_env, res)
    fig = next(f for f in _figs(at).values() if "turnaround" in json.dumps(f["layout"].get("title", "")).lower()
               and "mean" in json.dumps(f["layout"].get("title", "")).lower())
    main = fig["data"][0]
    ys = list(main["y"])
    xs = _values(main["x"])
    assert not math.isfinite(xs[ys.index("emergency")]) and main["text"][ys.index("emergency")] == ""
    assert math.isfinite(xs[ys.index("outpatient")])
    assert main["text"][ys.index("outpatient")] not in ("", None)
    grey = [t for t in fig["data"][1:] if list(t.get("y", [])) == ["emergency", "emergency"]]
    assert grey and "not enough exams to estimate (95% interval 0 to 14.6 hours)" in grey[0]["text"][1]
    assert "0" not in list(main["text"])                         # never a bare "0" for the clamped mean
    cap = [c.value for c in at.caption if "to estimate a mean" in c.value]
    assert len(cap) == 1 and "emergency" in cap[0].split(":")[0].lower() and "0–168 hours" in cap[0]


def test_monthly_changes_within_noise_are_flagged(app_env, released):
    res = copy.deepcopy(released)
    r = res["releases"]["volume"]
    n = len(r["values"])
    r["values"] = [100.0] * n
    r["ci_low"] = [0.0] * n
    r["ci_high"] = [250.0] * n               # every interval overlaps every other: no change beyond noise
    at = _show(app_env, res)
    warn = " ".join(w.value for w in at.warning)
    assert "Every month-to-month change is within the noise" in warn and "not trends" in warn
    mods = r["extra"]["cols"]
    months = r["extra"]["rows"]
    k = mods.index("CT")
    for m in range(0, len(months) - 1, 2):  # CT jumps between disjoint intervals every month
        if months[m] == "missing":
            continue
        r["values"][m * len(mods) + k], r["ci_low"][m * len(mods) + k], r["ci_high"][m * len(mods) + k] = 900, 800, 1000
    at = _show(app_env, res)
    assert not any("Every month-to-month" in w.value for w in at.warning)
    cap = " ".join(c.value for c in at.caption)
    assert "Changes beyond the noise" in cap and "CT (" in cap and "within the noise for" in cap
    vol = [f for f in _figs(at).values() if "Exams per month" in json.dumps(f["layout"].get("title", ""))][0]
    names = [t.get("name") for t in vol["data"] if t.get("mode") == "lines+markers"]
    assert len(names) == 3                                         # the three largest by released counts
    assert vol["layout"]["yaxis"]["title"]["text"] == "Exams per month"
    assert vol["layout"]["xaxis"]["title"]["text"] == "Month of exam"
    at.multiselect(key="rad_modalities").set_value(["MG"]).run()
    vol = [f for f in _figs(at).values() if "Exams per month" in json.dumps(f["layout"].get("title", ""))][0]
    assert [t.get("name") for t in vol["data"] if t.get("mode") == "lines+markers"] == ["MG"]
