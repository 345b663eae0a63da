"""`python -m benchmarks.png_export [--rounds N]`: PNG export of the radiology review report.

The figures are the ones the Radiology review page draws: the page is run headless (Streamlit's
AppTest) on the default `radiology` demo cohort with a temporary ledger (a fresh default budget,
nothing written to var/), and its report is released once. Then, in the same run and interleaved
round by round:

* old:      `fig.to_image(...)` per figure, as the export used to do: kaleido launches Chromium
            (and loads plotly.js and MathJax in it) once per figure;
* new cold: `dashboard.report_export.figures_png_zip` with no browser open yet: one Chromium
            session for all figures (the first export of a server process);
* new warm: the same call again: the kept browser renders every figure (later exports, and the
            first one once the page's background prewarm has opened the browser).

Medians over the rounds, old/new ratios, and the target (new cold export under 5 s, issue 10).
Both paths must give one 1100x500 PNG per figure. Informational: exit status 0 whatever the timings.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TARGET_S = 5.0


def radiology_figures(workdir: Path) -> dict:
    """{name: plotly Figure} exactly as the Radiology review page draws them after a release."""
    import plotly.graph_objects as go
    from streamlit.testing.v1 import AppTest

    saved = dict(os.environ)
    for k in ("DP_ROLE", "DP_ANALYST", "DP_DEMO_ROWS"):
        os.environ.pop(k, None)
    os.environ.update(DP_LEDGER=str(workdir / "ledger.sqlite"), DP_UPLOADS=str(workdir / "uploads"))
    logging.disable(logging.WARNING)           # "missing ScriptRunContext" of a bare AppTest
    try:
        at = AppTest.from_file(str(APP), default_timeout=180)
        at.query_params["cohort"] = "radiology"
        at.run()
        at.switch_page("pages/radiology.py").run()
        at.button(key="rad_release").click().run()
    finally:
        logging.disable(logging.NOTSET)
        os.environ.clear()
        os.environ.update(saved)
    if at.exception or at.error:
        raise RuntimeError(f"the radiology report was not released: {at.exception or [e.value for e in at.error]}")
    charts = at.get("plotly_chart")
    return {c.proto.id.split("-rad_", 1)[1]: go.Figure(json.loads(c.proto.spec)) for c in charts}


def old_per_figure_zip(figs: dict) -> bytes:
    """The export before issue 10: one kaleido call, hence one browser launch, per figure."""
    from dashboard.report_export import PNG_HEIGHT, PNG_WIDTH
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, fig in figs.items():
            z.writestr(f"{name}.png", fig.to_image(format="png", width=PNG_WIDTH, height=PNG_HEIGHT))
    return buf.getvalue()


def _check(blob: bytes, figs: dict, what: str) -> None:
    from dashboard.report_export import PNG_HEIGHT, PNG_WIDTH
    z = zipfile.ZipFile(io.BytesIO(blob))
    if z.namelist() != [f"{n}.png" for n in figs]:
        raise RuntimeError(f"{what}: zip holds {z.namelist()}, expected one PNG per figure")
    for n in z.namelist():
        png = z.read(n)
        if png[:8] != b"\x89PNG\r\n\x1a\n" or struct.unpack(">II", png[16:24]) != (PNG_WIDTH, PNG_HEIGHT):
            raise RuntimeError(f"{what}: {n} is not a {PNG_WIDTH}x{PNG_HEIGHT} PNG")


def _timed(fn, *args) -> tuple[float, bytes]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.png_export", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of old / new cold / new warm")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from dashboard import report_export

    path = report_export.chromium_path()
    if path is None:
        print("SKIP: PNG export benchmark: no Chromium for kaleido (apt-get install chromium, or set BROWSER_PATH)")
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="dp-png-bench-") as d:
        t = time.perf_counter()
        figs = radiology_figures(Path(d))
        build_s = time.perf_counter() - t
    print(f"PNG export of the radiology review: {len(figs)} figures ({', '.join(figs)}), "
          f"{report_export.PNG_WIDTH}x{report_export.PNG_HEIGHT}, browser {path}; {os.cpu_count()} CPUs, "
          f"load average {load:.1f} (report released in {build_s:.1f} s, not timed)")
    report_export.close_png_browser()          # the page opened it in the background (prewarm)
    old, cold, warm = [], [], []
    for _ in range(max(1, a.rounds)):
        s, blob = _timed(old_per_figure_zip, figs)
        _check(blob, figs, "old")
        old.append(s)
        report_export.close_png_browser()
        s, blob = _timed(report_export.figures_png_zip, figs)
        _check(blob, figs, "new cold")
        cold.append(s)
        s, blob = _timed(report_export.figures_png_zip, figs)
        _check(blob, figs, "new warm")
        warm.append(s)
    report_export.close_png_browser()
    mo, mc, mw = statistics.median(old), statistics.median(cold), statistics.median(warm)
    print(f"  {'path':44s} {'median':>8s} {'min..max':>13s} {'old/this':>8s}")
    for label, xs, m in (("old: one browser launch per figure", old, mo),
                         ("new cold: one browser session, first export", cold, mc),
                         ("new warm: kept browser, later exports", warm, mw)):
        print(f"  {label:44s} {m:7.2f} s {min(xs):5.2f}..{max(xs):5.2f} s {mo / m:7.1f}x")
    print(f"  medians of {len(old)} interleaved rounds; each export checked: one {report_export.PNG_WIDTH}x"
          f"{report_export.PNG_HEIGHT} PNG per figure")
    for label, m in (("new cold export", mc), ("new warm export", mw)):
        ok = m < TARGET_S
        print(f"{'PASS' if ok else 'FAIL'}: {label} {m:.2f} s {'<' if ok else '>='} {TARGET_S:g} s target "
              f"({m / TARGET_S:.2f} of target; old path {mo:.2f} s)")
    if load > (os.cpu_count() or 1):
        print(f"WARNING: load average {load:.1f} on {os.cpu_count()} CPUs: timings are inflated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
