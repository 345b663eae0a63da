"""Radiology review: a ready report for an exam log with one total epsilon split across statistics."""
from __future__ import annotations

import math

import streamlit as st

from dashboard import charts, report_export
from dashboard.context import page_context
from dashboard.widgets import refusal_words
from privacy.engine import SourceError
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
rows, accuracy = [], []
for it in items:
    p = preview(it.query, schema, it.epsilon(total), ctx.mechanism)
    rows.append({"statistic": it.title, "share": f"{it.share:.0%}", "ε": round(p.epsilon, 4)})
    accuracy.append(f"- **{it.title}** (ε {p.epsilon:.3g}): {p.words}")
# the accuracy sentences are long: a wrapped list beside a narrow table, never a cut-off table cell
t1, t2 = st.columns([1, 1], gap="medium")
t1.dataframe(rows, hide_index=True, width="stretch",      # widths in pixels: fits half the page at 1400x900
             column_config={"statistic": st.column_config.TextColumn(width=250),
                            "share": st.column_config.TextColumn(width=55),
                            "ε": st.column_config.NumberColumn(width=65)})
t2.markdown("**Expected 95% accuracy**\n" + "\n".join(accuracy))
state = ctx.budget()
st.caption(f"The report is one release: ε {total:g} for all {len(items)} statistics, charged once (all or nothing). "
           f"You can still spend ε {state.remaining:.3g}. Per-department medians are one measurement: the "
           "departments are disjoint, so all of them cost what one would.")
refusal = report_refusal(REPORT, items, total, schema, ctx.ledger, ctx.analyst, ctx.mechanism)
if refusal is not None:
    st.warning(refusal_words(refusal, schema.title, schema.dataset_id).replace("this release", "this report"))


def _run_report(total: float, items) -> None:
    st.session_state.pop("rad_error", None)
    st.session_state.pop("rad_result", None)     # never an older report beside a refusal
    try:
        rep = release_report(REPORT, items, total, ctx.cohort, ctx.ledger, ctx.analyst, ctx.mechanism)
    except (BudgetExceeded, LedgerError, ReleaseError, ReportError, QueryError, SourceError) as e:
        detail = getattr(e, "owner_detail", "") if ctx.identity.is_owner else ""
        text = refusal_words(e, schema.title, schema.dataset_id, clicked=isinstance(e, BudgetExceeded))
        st.session_state["rad_error"] = text + (f" (Data owner only: {detail})" if detail else "")
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


def changes_beyond_noise(lo, hi) -> int:
    """How many consecutive months' 95% intervals do not overlap (post-processing of the release):
    0 means every month-to-month change is within the noise."""
    return sum(1 for i in range(1, len(lo)) if lo[i] > hi[i - 1] or hi[i] < lo[i - 1])


figs = {}
notes: dict[str, str] = {}
if "volume" in rels:
    r = rels["volume"]
    months, mods = r.extra["rows"], r.extra["cols"]
    series, totals, flat, moving = {}, {}, [], []
    for j, m in enumerate(mods):
        if m in ("missing", "other"):
            continue
        idx = [i * len(mods) + j for i in range(len(months)) if months[i] != "missing"]
        series[m] = ([r.values[k] for k in idx], [r.ci_low[k] for k in idx], [r.ci_high[k] for k in idx])
        totals[m] = sum(r.values[k] for k in idx)                 # released (noisy) totals: post-processing
        beyond = changes_beyond_noise(series[m][1], series[m][2])
        (moving if beyond else flat).append(f"{m} ({beyond} of {len(idx) - 1})" if beyond else m)
    by_size = sorted(series, key=lambda m: -totals[m])
    chosen = st.multiselect("Modalities shown", by_size, default=by_size[:3], key="rad_modalities",
                            help="The three with the most exams (by the released counts) by default: six lines "
                                 "with their bands overlap into a tangle.")
    figs["volume"] = charts.timeseries_figure([m for m in months if m != "missing"],
                                              {m: series[m] for m in chosen or by_size[:1]},
                                              "Exams per month by modality", "Exams per month",
                                              x_title="Month of exam", clip_zero=True)
    half = r.extra.get("halfwidth") or (r.ci_high[0] - r.values[0] if r.values else float("nan"))
    if flat and not moving:
        notes["volume"] = (f"**Every month-to-month change is within the noise** (each monthly count is ±"
                           f"{math.ceil(half):,} {schema.rows_word}; each month's 95% interval overlaps the next "
                           "for every modality): read these lines as flat, their ups and downs are noise, not trends.")
    elif flat:
        notes["volume"] = (f"Each monthly count is ±{math.ceil(half):,} {schema.rows_word}. Month-to-month changes "
                           f"within the noise for {', '.join(flat)}: read those lines as flat. Changes beyond the "
                           f"noise (consecutive months' intervals apart) for {', '.join(moving)}.")
    else:
        notes["volume"] = (f"Each monthly count is ±{math.ceil(half):,} {schema.rows_word}; changes beyond the noise "
                           f"(consecutive months' intervals apart) for {', '.join(moving)}.")
if "turnaround_mean" in rels:
    r = rels["turnaround_mean"]
    figs["turnaround_mean"] = charts.release_figure(r, schema)
    clamped = [str(lab) for lab, b in zip(r.labels, charts.on_bound(r, schema)) if b]
    main_x = list(figs["turnaround_mean"].data[0].x) if figs["turnaround_mean"].data else []
    if main_x and all(v is None or not math.isfinite(float(v)) for v in main_x):
        col = schema.column(r.query["column"])       # no value anywhere: the public range, not a sliver of it
        figs["turnaround_mean"].update_xaxes(range=[col.lower, col.upper])
    if clamped:
        col = schema.column(r.query["column"])
        notes["turnaround_mean"] = (f"{', '.join(clamped).capitalize()}: not enough {schema.rows_word} to estimate a "
                                    f"mean: the noisy mean fell outside the public range {col.lower:g}–{col.upper:g}"
                                    f"{' ' + col.unit if col.unit else ''}, so the estimate sits on its bound; only "
                                    "its 95% interval (grey) is shown.")
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
    if k in notes:
        (st.warning if k == "volume" and notes[k].startswith("**Every") else st.caption)(notes[k])

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
