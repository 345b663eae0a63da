"""Radiology review: a ready report for an exam log with one total epsilon split across statistics."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, report_export
from dashboard.context import page_context
from privacy.ledger import BudgetExceeded, LedgerError
from privacy.release import Release, ReleaseError, preview, release
from privacy.reports import radiology_report, rates_from_crosstab
from privacy.queries import QueryError

ctx = page_context()
schema = ctx.schema
st.title("Radiology review")
try:
    items = radiology_report(schema)
except ValueError as e:
    st.info(f"{e}. Choose the **Radiology examinations** cohort in the sidebar.")
    st.stop()

total = st.select_slider("Total ε for the whole report", options=[0.1, 0.2, 0.5, 1.0, 2.0], value=0.5,
                         key="rad_total", help="Chosen once and split across the statistics below.")
rows = []
for it in items:
    p = preview(it.query, schema, it.epsilon(total), ctx.mechanism)
    rows.append({"statistic": it.title, "share": f"{it.share:.0%}", "ε": round(p.epsilon, 4),
                 "expected 95% accuracy": p.words})
st.dataframe(rows, hide_index=True, width="stretch",
             column_config={"expected 95% accuracy": st.column_config.TextColumn(width="large")})
state = ctx.budget()
st.caption(f"Report cost: ε {total:g} in {len(items)} releases · remaining budget {state.remaining:.3g}")


def _run_report(total: float) -> None:
    st.session_state.pop("rad_error", None)
    st_ = ctx.budget()
    if total > st_.remaining + 1e-12:
        st.session_state["rad_error"] = (f"Refused: the report costs ε {total:g} but only {st_.remaining:.3g} "
                                         "remains. Nothing was spent.")
        return
    out = {}
    try:
        for it in items:
            out[it.key] = release(it.query, ctx.cohort, it.epsilon(total), ctx.ledger, ctx.analyst,
                                  ctx.mechanism).to_dict()
    except (BudgetExceeded, LedgerError, ReleaseError, QueryError) as e:
        st.session_state["rad_error"] = f"The report stopped part-way: {e}"
    st.session_state["rad_result"] = {"cohort": ctx.cohort_name, "analyst": ctx.analyst, "total": total,
                                      "releases": out}


st.button("Release report", key="rad_release", type="primary", on_click=_run_report, args=(total,))
if "rad_error" in st.session_state:
    st.error(st.session_state["rad_error"])

res = st.session_state.get("rad_result")
if not (res and res["cohort"] == ctx.cohort_name and res["analyst"] == ctx.analyst and res["releases"]):
    st.stop()
rels = {k: Release.from_dict(v) for k, v in res["releases"].items()}
figs = {}
if "volume" in rels:
    r = rels["volume"]
    months, mods = r.extra["rows"], r.extra["cols"]
    series = {}
    for j, m in enumerate(mods):
        if m in ("missing", "other"):
            continue
        idx = [i * len(mods) + j for i in range(len(months)) if months[i] != "missing"]
        series[m] = ([r.values[k] for k in idx], [r.ci_low[k] for k in idx], [r.ci_high[k] for k in idx])
    figs["volume"] = charts.timeseries_figure([m for m in months if m != "missing"], series,
                                              "Exams per month by modality", "exams",
                                              clip_zero=True)
if "turnaround_mean" in rels:
    figs["turnaround_mean"] = charts.release_figure(rels["turnaround_mean"], schema)
med = [k for k in rels if k.startswith("turnaround_median_")]
if med:
    figs["turnaround_median"] = charts.dot_interval_figure(
        [rels[k].query["where"]["value"] for k in med], [rels[k].values[0] for k in med],
        [rels[k].ci_low[0] for k in med], [rels[k].ci_high[0] for k in med],
        "Median report turnaround by department", "hours")
if "ct_dose" in rels:
    figs["ct_dose"] = charts.release_figure(rels["ct_dose"], schema)
if "contrast" in rels:
    rates = rates_from_crosstab(rels["contrast"])
    rates = {k: v for k, v in rates.items() if k not in ("missing", "other")}
    figs["contrast"] = charts.dot_interval_figure(list(rates), [v[0] for v in rates.values()],
                                                  [v[1] for v in rates.values()], [v[2] for v in rates.values()],
                                                  "Contrast use by modality (share of exams)", "share")
for k, fig in figs.items():
    st.plotly_chart(fig, width="stretch", key=f"rad_{k}")

html = report_export.report_html(figs, title=f"Radiology review — {schema.title}",
                                 note=f"Differentially private report, total ε {res['total']:g}, analyst {ctx.analyst}.")
c1, c2 = st.columns(2)
c1.download_button("Download report (HTML, works offline)", html, "radiology_report.html", "text/html",
                   key="rad_html")
if c2.button("Prepare PNG figures", key="rad_png_prepare"):
    with st.spinner("Rendering PNG figures…"):
        try:
            st.session_state["rad_png"] = report_export.figures_png_zip(figs)
        except Exception as e:  # kaleido needs Chromium
            st.error(f"PNG export is unavailable here: {e}")
if "rad_png" in st.session_state:
    c2.download_button("Download PNG figures (zip)", st.session_state["rad_png"], "radiology_figures.zip",
                       "application/zip", key="rad_png_dl")
