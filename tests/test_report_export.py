"""Radiology report export: a zip of one valid PNG per figure (one browser session for all), the
HTML report's content, and a clear message instead of a crash when there is no Chromium."""
import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import report_export

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _env(app_env):
    yield
    report_export.close_png_browser()        # never leave a Chromium behind in the worker


def _released_radiology_report() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["cohort"] = "radiology"
    at.run()
    at.switch_page("pages/radiology.py").run()
    at.button(key="rad_release").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


needs_chromium = pytest.mark.skipif(report_export.chromium_path() is None,
                                    reason="no Chromium for kaleido (make test installs Debian's chromium)")


@needs_chromium
def test_png_zip_from_the_page_has_one_valid_png_per_figure():
    at = _released_radiology_report()
    charts = at.get("plotly_chart")
    assert len(charts) >= 5
    at.button(key="rad_png_prepare").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    blob = at.session_state["rad_png"]["zip"]
    z = zipfile.ZipFile(io.BytesIO(blob))
    assert z.testzip() is None
    names = z.namelist()
    assert len(names) == len(charts) and len(set(names)) == len(names)
    # one PNG per chart on the page, named after it (chart key "rad_<name>" -> "<name>.png")
    assert names == [c.proto.id.split("-rad_", 1)[1] + ".png" for c in charts]
    for n in names:
        png = z.read(n)
        assert _png_size(png) == (report_export.PNG_WIDTH, report_export.PNG_HEIGHT), n
        assert 10_000 < len(png) < 3_000_000, (n, len(png))     # a drawn chart, not an empty canvas


@needs_chromium
def test_png_zip_names_and_order_follow_the_figures():
    import plotly.graph_objects as go
    figs = {"b_second": go.Figure(go.Bar(x=["a", "b"], y=[1, 2])),
            "a_first": go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))}
    z = zipfile.ZipFile(io.BytesIO(report_export.figures_png_zip(figs)))
    assert z.namelist() == ["b_second.png", "a_first.png"]
    assert all(_png_size(z.read(n)) == (1100, 500) for n in z.namelist())
    assert report_export._SESSION.is_open          # kept warm for the next export
    again = zipfile.ZipFile(io.BytesIO(report_export.figures_png_zip(figs)))
    assert again.namelist() == z.namelist()
    report_export.close_png_browser()
    assert not report_export._SESSION.is_open


def test_no_chromium_says_so_instead_of_crashing(monkeypatch, tmp_path):
    report_export.close_png_browser()
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    assert report_export.chromium_path() is None
    import plotly.graph_objects as go
    with pytest.raises(report_export.PngExportUnavailable, match="needs a Chromium browser"):
        report_export.figures_png_zip({"a": go.Figure(go.Bar(x=["x"], y=[1]))})
    at = _released_radiology_report()
    at.button(key="rad_png_prepare").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("PNG export is unavailable" in e and "HTML report works without it" in e for e in errors), errors
    assert len(at.get("plotly_chart")) >= 5            # the report itself is still shown


def test_html_report_has_title_date_cohort_table_and_reading_guide():
    at = _released_radiology_report()
    import plotly.graph_objects as go
    figs = {f"f{i}": go.Figure(json.loads(c.proto.spec)) for i, c in enumerate(at.get("plotly_chart"))}
    rows = [{"statistic": "Exams per month by modality", "ε": "0.15",
             "expected 95% accuracy": "each bar within ±20 exams", "ledger reference": "0123456789ab"},
            {"statistic": "Median report turnaround by department", "ε": "0.1",
             "expected 95% accuracy": "within about ±3 hours", "ledger reference": "ba9876543210"}]
    html = report_export.report_html(figs, title="Radiology review — Radiology examinations",
                                     cohort="Radiology examinations (radiology)",
                                     released_at="2026-12-01T09:00:00+00:00", rows=rows,
                                     note="Differentially private report: total ε 0.5.")
    assert "<title>Radiology review — Radiology examinations</title>" in html
    assert "<h1>Radiology review — Radiology examinations</h1>" in html
    assert "Released: 2026-12-01T09:00:00+00:00" in html
    assert "Cohort: Radiology examinations (radiology)" in html
    for col in rows[0]:
        assert f"<th>{col}</th>" in html
    for r in rows:
        for v in r.values():
            assert f"<td>{v}</td>" in html
    import html as html_lib
    assert "How to read this report" in html and html_lib.escape(report_export.READING) in html
    assert html.count("Plotly.newPlot") == len(figs)
    assert html.count("* plotly.js v") == 1                               # plotly.js embedded once
