"""Trade-off (data owner only): error against epsilon, analytic and simulated, and against cohort size."""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import charts
from dashboard.context import page_context
from dashboard.widgets import query_builder
from privacy.queries import QueryError
from privacy.simulate import count_error_by_size, tradeoff_curve

ctx = page_context(owner_only=True)
schema = ctx.schema
EPS = [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]
TIERS = (0.05, 0.25, 1.0)

st.title("Privacy-utility trade-off (data owner)")
st.warning("**Uses the true data (not private)** to simulate errors; for the data owner only. Spends nothing.",
           icon="⚠️")
left, right = st.columns([1, 2], gap="large")
with left:
    query = query_builder(schema, "tr", stats=("histogram", "count", "mean", "quantile", "grouped-mean", "grouped-quantile", "crosstab"))
    draws = st.slider("Simulated releases per ε", 20, 500, 60, step=20, key="tr_draws")
    run = st.button("Compute trade-off", key="tr_run", type="primary", disabled=query is None)
if run and query is not None:
    try:
        with st.spinner("Simulating at each ε…"):
            pts = tradeoff_curve(query, ctx.cohort, EPS, draws, ctx.mechanism)
        st.session_state["tr_res"] = {"cohort": ctx.cohort_name, "pts": pts, "query": query}
    except (QueryError, ValueError) as e:
        left.error(str(e))

with right:
    res = st.session_state.get("tr_res")
    if res and res["cohort"] == ctx.cohort_name:
        pts, query = res["pts"], res["query"]
        unit = "patients" if query.stat in ("count", "histogram", "crosstab") else (
            getattr(schema.column(query.column), "unit", "") if hasattr(query, "column") else "")
        fig = charts.tradeoff_figure([p.epsilon for p in pts], [p.analytic for p in pts],
                                     [p.empirical for p in pts], TIERS, y_title=f"95% error ({unit})".replace(" ()", ""))
        st.plotly_chart(fig, width="stretch", key="tr_chart")
        st.caption("Line: OpenDP's analytic 95% error. Dots: 95th percentile of the error over simulated releases "
                   "on the true data. Dashed lines: DP Creator's privacy tiers.")
        sizes = [100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
        eps_now = st.select_slider("ε for the cohort-size view", options=EPS, value=0.5, key="tr_size_eps")
        rel = count_error_by_size(query, schema, eps_now, sizes, ctx.mechanism)
        if np.isfinite(rel).any():
            st.plotly_chart(charts.size_figure(sizes, rel, f"How the relative error shrinks with cohort size (ε {eps_now:g})"),
                            width="stretch", key="tr_size")
    else:
        st.info("Pick a query and press **Compute trade-off**.")
