"""Synthetic cohort: a DP synthetic table of chosen columns (OpenDP mbi), charged like any release.

The data owner, or an analyst within an allowance, releases it; an identical request is served from
the ledger. Downloads (CSV, Parquet) carry a data card. No row of the table is a real patient.
"""
from __future__ import annotations

import io
import json

import streamlit as st

from dashboard.context import page_context
from dashboard.widgets import EPS_GRID
from privacy.ledger import BudgetExceeded, LedgerError
from privacy.queries import QueryError, SyntheticQuery
from privacy.release import ReleaseError, marginal_cost, preview, release, refusal_for

ctx = page_context()
schema = ctx.schema


def _owner_utility(rel, frame) -> None:
    """Data owner only: the synthetic table against the TRUE data, and its anonymity measures."""
    st.divider()
    st.subheader("Utility and risk (data owner only)")
    st.warning("**Uses the true data (not private):** for the data owner only; spends nothing.", icon="⚠️")
    if not st.button("Compare with the true data", key="syn_utility"):
        return
    from data.anonymity import k_anonymity
    from privacy.synthetic_utility import summary, utility_report
    with st.spinner("Comparing every 1-way and 2-way marginal…"):
        rows = utility_report(ctx.cohort, frame, rel.epsilon)
    for line in summary(rows, schema):
        st.markdown(f"- {line}")
    st.dataframe([{"Marginal": " by ".join(schema.label(c) for c in m.columns),
                   "Synthetic vs true (TVD)": f"{m.tvd_synthetic:.3f}",
                   f"Direct DP release at ε {rel.epsilon:.3g} vs true (TVD, median)": f"{m.tvd_direct:.3f}",
                   "Answers it": m.verdict} for m in rows], hide_index=True, width="stretch")
    k = k_anonymity(frame, list(frame.columns))
    st.caption(f"Anonymity measures on the synthetic table: k-anonymity {k} over its columns. Its rows are not "
               "patients, so an equivalence class of the synthetic table is not a class of real people.")

st.title("Synthetic cohort")
st.caption(f"{schema.title} · a table to play with, made from differentially private margins: no row is a real "
           "patient, and what you do with it afterwards costs nothing.")

try:
    from privacy.stats import synthetic as syn       # needs the optional extra opendp[mbi] (JAX)
except ImportError as e:                              # pragma: no cover - depends on the machine
    st.error(f"Synthetic cohorts need OpenDP's optional mbi support (pip install \"opendp[mbi]\"): {e}")
    st.stop()

choices = [c.name for c in schema.of_kind("categorical", "numeric", "date")]
left, right = st.columns([1, 2], gap="large")
with left:
    cols = st.multiselect("Columns", choices, default=choices[:3], key="syn_cols",
                          format_func=lambda n: schema.label(n),
                          help="Categorical columns keep their categories; numeric and date columns become their "
                               "public bins. 2 to 12 columns.")
    algo = st.radio("Method", ["mst", "aim"], key="syn_algo", horizontal=True,
                    format_func=lambda a: {"mst": "MST (fast)", "aim": "AIM (better, slower)"}[a],
                    help="MST keeps all one-way and a tree of two-way margins; AIM chooses margins adaptively.")
    eps = st.select_slider("ε", options=EPS_GRID, value=1.0, key="syn_eps",
                           help="The cost of the whole table, charged once (Gaussian noise, given as ε at δ).")
    query = None
    try:
        query = SyntheticQuery(columns=tuple(cols), algorithm=algo)
        p = preview(query, schema, eps, "gaussian")
        st.info(f"**Cost:** ε {p.epsilon:.3g}, δ {p.delta:.0e}  \n**What you get:** {p.words}", icon="ℹ️")
    except (QueryError, ValueError) as e:
        query = None
        st.error(str(e))
    refusal = None
    if query is not None:
        try:
            if marginal_cost(query, schema, eps, ctx.ledger, "gaussian") > 0:
                refusal = refusal_for(query, schema, eps, ctx.ledger, ctx.analyst, "gaussian")
        except (QueryError, LedgerError) as e:
            refusal = str(e)
    if refusal:
        st.warning(refusal)
    go = st.button("Release synthetic cohort", type="primary", key="syn_release",
                   disabled=query is None or bool(refusal))

if go and query is not None:
    try:
        with st.spinner("Measuring noisy margins and fitting the model (can take a minute)…"):
            rel = release(query, ctx.cohort, eps, ctx.ledger, ctx.analyst, mechanism="gaussian")
        st.session_state["syn_result"] = {"cohort": ctx.cohort_name, "release": rel}
    except (QueryError, BudgetExceeded, LedgerError, ReleaseError) as e:
        st.session_state.pop("syn_result", None)
        left.error(str(e))

with right:
    res = st.session_state.get("syn_result")
    if res and res["cohort"] == ctx.cohort_name:
        rel = res["release"]
        frame = syn.synthetic_frame(rel)
        card = syn.data_card(rel, schema)
        if rel.cached:
            st.success("This synthetic cohort was released before: showing the stored table. It cost nothing.")
        else:
            st.success(f"Released. Cost ε {rel.epsilon:.3g}, δ {rel.delta:.0e}; remaining budget ε {rel.remaining:.3g}.")
        st.markdown(f"**Synthetic** · {len(frame):,} synthetic {schema.rows_word} · {card['method']} · {syn.CARD_SENTENCE}")
        shown = {c: schema.label(c) if c in schema.names else c for c in frame.columns}
        if len(set(shown.values())) < len(shown):    # two columns with one label: keep the names
            shown = {c: c for c in frame.columns}
        st.dataframe(frame.head(200).rename(columns=shown), hide_index=True, width="stretch")  # downloads: raw names
        c1, c2, c3 = st.columns(3)
        c1.download_button("Download CSV", frame.to_csv(index=False).encode(), "synthetic_cohort.csv", "text/csv",
                           key="syn_csv")
        buf = io.BytesIO()
        try:
            frame.to_parquet(buf, index=False)
            c2.download_button("Download Parquet", buf.getvalue(), "synthetic_cohort.parquet",
                               "application/octet-stream", key="syn_parquet")
        except (ImportError, ValueError) as e:    # pragma: no cover - pyarrow is a core dependency
            c2.caption(f"Parquet unavailable: {e}")
        c3.download_button("Data card (JSON)", json.dumps(card, indent=2, default=str).encode(),
                           "synthetic_cohort_card.json", "application/json", key="syn_card")
        with st.expander("Data card"):
            st.json(card)
        if ctx.identity.is_owner:
            _owner_utility(rel, frame)
    else:
        st.info("Choose the columns, the method and ε, then press **Release synthetic cohort**.")
