"""Anonymity risk (data owner only): how identifiable the true table is before any record-level extract.

k-anonymity, l-diversity (distinct and entropy), t-closeness, small-class shares and the smallest
classes, on the raw table and on a version generalised with the schema's public bins
(`data/anonymity.py`). Every figure comes from the true data: nothing here is private or charged, and
the page refuses analysts on the server (`page_context(owner_only=True)`).
"""
from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from dashboard.context import page_context
from data import anonymity as A
from data.schema import DateColumn, NumericColumn

ctx = page_context(owner_only=True)
schema, cohort = ctx.schema, ctx.cohort

st.title("Anonymity risk of the table (data owner)")
st.warning("**True data: not private.** " + A.OWNER_ONLY_NOTE + " It measures the risk of sharing record-level "
           "rows (pseudonymised or generalised); the dashboard's releases to analysts are differentially "
           "private and need none of this.", icon="⚠️")

on_engine = getattr(cohort, "engine", None) is not None
frame = getattr(cohort, "frame", None)
if frame is None and not on_engine:
    st.info("This cohort was prepared without its table, so its anonymity cannot be measured here.")
    st.stop()
if on_engine:
    where = getattr(getattr(cohort, "source", None), "kind_name", "its engine")
    st.caption(f"This cohort's rows stay in {where}: the report reads the "
               "patient id and the declared columns of the rows kept by the per-patient bound into this owner "
               "session only, and nothing else.")

columns = [c.name for c in schema.columns if c.kind != "id"]


def _label(name: str) -> str:
    return f"{schema.label(name)} ({name})" if schema.label(name) != name else name


left, right = st.columns([1, 2], gap="large")
with left:
    qi = st.multiselect("Quasi-identifiers", columns, default=[c for c in schema.quasi_identifiers if c in columns],
                        key="an_qi", format_func=_label,
                        help="What an outsider may already know about a patient (age, site, dates, stage...). "
                             "Patients sharing all these values form an equivalence class. The default is the "
                             "schema's `quasi_identifiers`.")
    sa = st.multiselect("Sensitive attributes", columns, default=[c for c in schema.sensitive if c in columns],
                        key="an_sa", format_func=_label,
                        help="What must not be learnt about a patient (grade, vital status...). The default is "
                             "the schema's `sensitive`.")
    kinds = {c: schema.column(c) for c in qi + sa if c in columns}
    date_unit = None
    if any(isinstance(c, DateColumn) for c in kinds.values()):
        default_unit = next(c.bin_unit for c in kinds.values() if isinstance(c, DateColumn))
        units = list(A.DATE_UNITS)
        date_unit = st.selectbox("Dates in the generalised table", units,
                                 index=units.index(default_unit) if default_unit in units else 0,
                                 key="an_date_unit", format_func=lambda u: f"by {u}")
    smallest = int(st.number_input("Smallest classes to list", min_value=1, max_value=100, value=10, step=1,
                                   key="an_smallest"))
    ordered_sa = [s for s in sa if isinstance(kinds.get(s), (NumericColumn, DateColumn))]
    numeric_t = False
    if ordered_sa:
        numeric_t = st.button("Compute t-closeness on raw values", key="an_numeric_t",
                              help=f"{', '.join(ordered_sa)}: numbers and dates have many distinct values, so "
                                   "their t-closeness on the raw table runs only on request. The generalised "
                                   "table's (over the public bins) is always shown.")

error = None
try:
    A.check_declaration(schema, qi, sa)
except ValueError as e:
    error = str(e)

key = (ctx.cohort_name, schema.dataset_id, cohort.n_rows, tuple(qi), tuple(sa), date_unit, smallest)
saved = st.session_state.get("an_report")
if error is None and (saved is None or saved["key"] != key or (numeric_t and not saved["numeric_t"])):
    if on_engine:
        from privacy.engine import OwnerRowsTooMany, SourceError
        try:
            with st.spinner("Reading the declared columns from the engine…"):
                frame = cohort.owner_frame(qi + sa)
        except (OwnerRowsTooMany, SourceError) as e:
            right.error(f"{e} {getattr(e, 'owner_detail', '')}".strip())
            st.stop()
    if numeric_t:
        bar = right.progress(0.0, text="Computing t-closeness on raw values…")
        report = A.risk_report(frame, schema, qi, sa, date_unit=date_unit, numeric_t=True, smallest=smallest,
                               progress=lambda f, text: bar.progress(min(max(f, 0.0), 1.0), text=text))
        bar.empty()
    else:
        with st.spinner("Measuring the true table…"):
            report = A.risk_report(frame, schema, qi, sa, date_unit=date_unit, smallest=smallest)
    saved = {"key": key, "report": report, "numeric_t": numeric_t}
    st.session_state["an_report"] = saved

with right:
    if error is not None:
        st.info(f"Cannot measure this declaration: {error}.")
        st.stop()
    report = saved["report"]
    raw, gen = report["versions"]
    st.caption(f"Privacy unit: one patient ({report['privacy_unit']}); classes count patients, not rows: "
               f"{raw['patients']:,} patients in {raw['rows']:,} rows"
               + (f" (the table as prepared for releases: at most {schema.max_rows_per_unit} rows per patient)."
                  if schema.max_rows_per_unit > 1 else "."))
    # two metrics a row: four in the right-hand column cut their labels ("Largest risk (gen…") at 1400x900
    row1, row2 = st.columns(2), st.columns(2)
    c1, c2, c3, c4 = *row1, *row2
    c1.metric("k (generalised)", f"{gen['k']:,}", help=f"Raw table: {raw['k']:,}. {A.DEFINITIONS['k']}")
    c2.metric("Largest risk (generalised)", f"{gen['max_risk']:.2g}",
              help=f"Raw table: {raw['max_risk']:.2g}. {A.DEFINITIONS['max_risk']}")
    for col, t in zip((c3, c4), report["thresholds"]):
        col.metric(f"In classes < {t} (generalised)", f"{gen['share_below'][str(t)]:.1%}",
                   help=f"Raw table: {raw['share_below'][str(t)]:.1%}. {A.DEFINITIONS['share_below']}")
    st.dataframe(pd.DataFrame(A.measure_rows(report)), hide_index=True, width="stretch")
    words = gen.get("generalisation", {})
    if words:
        st.caption("Generalised with public metadata only: " +
                   "; ".join(f"{_label(c)} {w}" for c, w in words.items()) + ".")
    if report.get("raw_numeric_t_closeness") is False:
        st.caption("t-closeness of numeric or date sensitive attributes on the raw table: not computed "
                   "(press *Compute t-closeness on raw values*).")
    st.subheader("Smallest equivalence classes")
    st.caption("**Data owner only:** these quasi-identifier combinations single out real patients.")
    tabs = st.tabs([gen["label"], raw["label"]])
    for tab, v in zip(tabs, (gen, raw)):
        tab.dataframe(pd.DataFrame(A.smallest_rows(v, report["sensitive"])), hide_index=True, width="stretch")
    with st.expander("Definitions"):
        for text in report["definitions"].values():
            st.markdown(f"- {text}")
        st.markdown("- Missing values count as a value of their own; measures follow pyCANON's definitions "
                    "(see `data/anonymity.py`).")
    d1, d2 = st.columns(2)
    d1.download_button("Download report (JSON)", A.report_json(report).encode("utf-8"),
                       file_name=f"anonymity-{schema.dataset_id}.json", mime="application/json", key="an_json")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Anonymity risk: "
            f"{html.escape(schema.title)}</title></head><body>{A.report_html_fragment(report)}</body></html>")
    d2.download_button("Download report (HTML)", page.encode("utf-8"), file_name=f"anonymity-{schema.dataset_id}.html",
                       mime="text/html", key="an_html")
