"""Trade-off (data owner only): error against epsilon, expected and simulated, and against cohort size."""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from dashboard import tradeoff_charts as tc
from dashboard.context import page_context
from dashboard.widgets import PRESETS, query_builder
from privacy.queries import QueryError
from privacy.simulate import count_error_by_size, tradeoff, true_mean

ctx = page_context(owner_only=True)
schema = ctx.schema
# the grid of the chart always holds the Explore presets, so their dots sit on the dashed lines
EPS = sorted({0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, *PRESETS.values()})
SIZES = [100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]


def _unit(query) -> str:
    if query.stat in tc.COUNT_STATS:
        return schema.rows_word
    if query.stat == "survival":
        return "share surviving"
    return getattr(schema.column(query.column), "unit", "") or ""


st.title("Privacy-utility trade-off (data owner)")
st.warning("**Uses the true data (not private)** to simulate errors; for the data owner only. Spends nothing.",
           icon="⚠️")
if getattr(ctx.cohort, "engine", None) is not None:
    st.caption("This cohort's rows stay in its engine: the true data here are the engine's exact aggregates (the "
               "cells, sums and counts a release reads); a true median or quantile is known to its public "
               "candidate cell.")
left, right = st.columns([1, 2], gap="large")
with left:
    query = query_builder(schema, "tr", stats=("histogram", "count", "mean", "quantile", "grouped-mean",
                                               "grouped-quantile", "crosstab", "survival"))
    draws = st.slider("Simulated releases per ε", 20, 500, 60, step=20, key="tr_draws",
                      help=f"Each simulated release runs the release's own OpenDP measurement on the true data, "
                           f"at each of the {len(EPS)} values of ε on the chart.")
    run = st.button("Compute trade-off", key="tr_run", type="primary", disabled=query is None)
if run and query is not None:
    try:
        t0 = time.perf_counter()
        bar = left.progress(0.0, text=f"Simulating {draws:,} releases at each of {len(EPS)} values of ε…")
        res = tradeoff(query, ctx.cohort, EPS, draws, ctx.mechanism,
                       on_point=lambda i, n: bar.progress(i / n, text=f"Simulated ε {EPS[i - 1]:g} ({i} of {n})"))
        bar.empty()
        st.session_state["tr_res"] = {"cohort": ctx.cohort_name, "res": res, "query": query,
                                      "seconds": time.perf_counter() - t0}
    except (QueryError, ValueError) as e:
        st.session_state.pop("tr_res", None)
        left.error(str(e))

with right:
    saved = st.session_state.get("tr_res")
    if saved and saved["cohort"] == ctx.cohort_name:
        res, query = saved["res"], saved["query"]
        pts = res.points
        eps = [p.epsilon for p in pts]
        analytic = [p.analytic for p in pts]
        fig = tc.tradeoff_figure(eps, analytic, [p.empirical for p in pts], PRESETS,
                                 y_title=tc.tradeoff_y_title(query.stat, _unit(query), per_value=res.per_value),
                                 title=f"Accuracy against privacy budget: {query.describe(schema)}", log_y=True)
        st.plotly_chart(fig, width="stretch", key="tr_chart")
        st.caption(tc.tradeoff_caption(eps, analytic, draws=res.draws, basis=res.basis, missing=res.missing,
                                       presets=PRESETS, stat=query.stat,
                                       zeros=tc.has_zero(analytic) or tc.has_zero([p.empirical for p in pts]))
                   + f" Computed in {saved['seconds']:.1f} s.")
        presets = list(PRESETS.values())
        eps_now = st.select_slider("ε for the cohort-size view", options=EPS, value=presets[len(presets) // 2],
                                   key="tr_size_eps")
        mean_now = true_mean(query, ctx.cohort) if query.stat in ("mean", "grouped-mean") else None
        rel = count_error_by_size(query, schema, eps_now, SIZES, ctx.mechanism, true_mean=mean_now)
        if np.isfinite(rel).any():
            st.plotly_chart(tc.size_figure(SIZES, rel, f"How the relative error shrinks with cohort size (ε {eps_now:g})",
                                           y_title=tc.size_y_title(query.stat, true_mean=mean_now,
                                                                   unit=_unit(query))),
                            width="stretch", key="tr_size")
            if mean_now is not None:
                st.caption("Relative to the true mean of this cohort (not private), assumed the same for every size.")
    else:
        st.info("Pick a query and press **Compute trade-off**.")
