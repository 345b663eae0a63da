"""Radiology review: a ready report for an exam log with one total epsilon split across statistics."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, report_export
from dashboard.context import page_context
from privacy.ledger import BudgetExceeded, LedgerError
from privacy.release import Release, ReleaseError, ReportError, preview, release_report, report_refusal
from privacy.reports import radiology_report, rates_from_crosstab, with_shares
from privacy.queries import QueryError

ctx = page_context()
schema = ctx.schema
st.title("Radiology review")
REPORT = "radiology-review"
try:
    base_items = radiology_report(schema)
except ValueError as e:
    st.info(f"{e}. Choose the **Radiology examinations** cohort in the sidebar.")
    st.stop()

total = st.select_slider("Total ε for the whole report", options=[0.1, 0.2, 0.5, 1.0, 2.0], value=0.5,
                         key="rad_total", help="Chosen once and split across the statistics below.")
with st.expander("Split of the report's ε (editable shares)", expanded=False):
    st.caption("Shares are public and normalised to add up to 100%; the expected accuracy below follows them. "
               "A share of 0 leaves a statistic out.")
    cols = st.columns(len(base_items))
    shares = {it.key: cols[i].number_input(it.title, min_value=0.0, max_value=100.0, value=round(it.share * 100, 1),
                                           step=5.0, key=f"rad_share_{it.key}")
              for i, it in enumerate(base_items)}
try:
    items = with_shares(base_items, shares)
except ValueError as e:
    st.error(f"Cannot split the report: {e}.")
    st.stop()
rows = []
for it in items:
    p = preview(it.query, schema, it.epsilon(total), ctx.mechanism)
    rows.append({"statistic": it.title, "share": f"{it.share:.0%}", "ε": round(p.epsilon, 4),
                 "expected 95% accuracy": p.words})
st.dataframe(rows, hide_index=True, width="stretch",
             column_config={"expected 95% accuracy": st.column_config.TextColumn(width="large")})
state = ctx.budget()
st.caption(f"The report is one release: ε {total:g} for all {len(items)} statistics, charged once (all or nothing). "
           f"You can still spend ε {state.remaining:.3g}. Per-department medians are one measurement: the "
           "departments are disjoint, so all of them cost what one would.")
refusal = report_refusal(REPORT, items, total, schema, ctx.ledger, ctx.analyst, ctx.mechanism)
if refusal is not None:
    st.warning(str(refusal).replace("Refused: this release", "This report").replace(" Nothing was spent.", ""))


def _run_report(total: float, items) -> None:
    st.session_state.pop("rad_error", None)
    st.session_state.pop("rad_result", None)     # never an older report beside a refusal
    try:
        rep = release_report(REPORT, items, total, ctx.cohort, ctx.ledger, ctx.analyst, ctx.mechanism)
    except (BudgetExceeded, LedgerError, ReleaseError, ReportError, QueryError) as e:
        detail = getattr(e, "owner_detail", "") if ctx.identity.is_owner else ""
        st.session_state["rad_error"] = str(e) + (f" (Data owner only: {detail})" if detail else "")
        return
    st.session_state["rad_result"] = {"cohort": ctx.cohort_name, "analyst": ctx.analyst, "total": total,
                                      "cached": rep.cached, "epsilon": rep.epsilon, "remaining": rep.remaining,
                                      "releases": {k: r.to_dict() for k, r in rep.releases.items()}}


st.button("Release report", key="rad_release", type="primary", on_click=_run_report, args=(total, items),
          disabled=refusal is not None)
if "rad_error" in st.session_state:
    st.error(st.session_state["rad_error"])

res = st.session_state.get("rad_result")
if not (res and res["cohort"] == ctx.cohort_name and res["analyst"] == ctx.analyst and res["releases"]):
    st.stop()
if res["cached"]:
    st.success(f"This exact report was released before: showing the stored result. It cost nothing now "
               f"(ε {res['epsilon']:.3g} when first released).")
else:
    st.success(f"Report released: ε {res['epsilon']:.3g} charged once for all its statistics; you can still "
               f"spend ε {res['remaining']:.3g}.")
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
if "turnaround_median" in rels:
    r = rels["turnaround_median"]
    shown = [i for i, lab in enumerate(r.labels) if lab not in ("missing", "other")]
    figs["turnaround_median"] = charts.dot_interval_figure(
        [r.labels[i] for i in shown], [r.values[i] for i in shown], [r.ci_low[i] for i in shown],
        [r.ci_high[i] for i in shown], "Median report turnaround by department",
        "Median report turnaround (hours)", who=schema.rows_word,
        public_range=(schema.column("turnaround_hours").lower, schema.column("turnaround_hours").upper))
if "ct_dose" in rels:
    figs["ct_dose"] = charts.release_figure(rels["ct_dose"], schema)
if "contrast" in rels:
    rates = rates_from_crosstab(rels["contrast"])
    rates = {k: v for k, v in rates.items() if k not in ("missing", "other")}
    figs["contrast"] = charts.dot_interval_figure(list(rates), [v[0] for v in rates.values()],
                                                  [v[1] for v in rates.values()], [v[2] for v in rates.values()],
                                                  "Contrast use by modality (share of exams)",
                                                  f"Share of {schema.rows_word} with contrast",
                                                  public_range=(0.0, 1.0), who=schema.rows_word, percent=True)
for k, fig in figs.items():
    st.plotly_chart(fig, width="stretch", key=f"rad_{k}")

lines = [{"statistic": it.title, "ε": f"{rels[it.key].epsilon:.3g}",
          "expected 95% accuracy": preview(it.query, schema, rels[it.key].epsilon, ctx.mechanism).words,
          "ledger reference": rels[it.key].release_key[:12]} for it in items if it.key in rels]
html = report_export.report_html(
    figs, title=f"Radiology review — {schema.title}", cohort=f"{schema.title} ({schema.dataset_id})",
    released_at=min(r.timestamp for r in rels.values()), rows=lines,
    note=f"Differentially private report: total ε {res['epsilon']:.3g}, charged once for all statistics; "
         f"exported by {ctx.analyst}.")
c1, c2 = st.columns(2)
c1.download_button("Download report (HTML, works offline)", html, "radiology_report.html", "text/html",
                   key="rad_html")
png_key = sorted(r.release_key for r in rels.values())     # PNGs of THIS report only, never an older one
report_export.prewarm_png_browser()    # in the background: "Prepare PNG figures" then finds Chromium ready
if c2.button("Prepare PNG figures", key="rad_png_prepare"):
    st.session_state.pop("rad_png", None)
    with st.spinner("Rendering PNG figures…"):
        try:
            st.session_state["rad_png"] = {"key": png_key, "zip": report_export.figures_png_zip(figs)}
        except report_export.PngExportUnavailable as e:     # no Chromium on the server, or it failed
            st.session_state["rad_png"] = {"key": png_key, "error": str(e)}
png = st.session_state.get("rad_png")
if png and png["key"] == png_key:
    if "error" in png:
        c2.error(png["error"])
    else:
        c2.download_button("Download PNG figures (zip)", png["zip"], "radiology_figures.zip",
                           "application/zip", key="rad_png_dl")
