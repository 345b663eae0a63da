"""Compare (data owner only): true vs noisy values of the same query, simulated without spending."""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import charts, survival_chart
from dashboard.context import page_context
from dashboard.widgets import epsilon_chooser, query_builder
from privacy.queries import QueryError
from privacy.simulate import relative_error, simulate, total_variation

ctx = page_context(owner_only=True)
schema = ctx.schema

st.title("True vs private (data owner)")
st.warning("**True values: not private.** This page shows the real cohort values next to simulated private "
           "releases, for the data owner only. Simulations do not spend budget and are never shown to analysts.",
           icon="⚠️")
if getattr(ctx.cohort, "engine", None) is not None:
    st.caption("This cohort's rows stay in its engine: the true values are the statistic computed without noise "
               "from the engine's exact aggregates (the cells, sums and counts a release reads). They are exact "
               "for counts, histograms, crosstabs and survival; a mean is exact to its release's rounding step, "
               "a median or quantile to its public candidate cell.")
left, right = st.columns([1, 2], gap="large")
with left:
    query = query_builder(schema, "cmp")
    eps = epsilon_chooser(query, schema, ctx.mechanism, "cmp")
    draws = st.slider("Simulated releases", 20, 1000, 200, step=20, key="cmp_draws",
                      help="How many independent private releases to simulate on the true data.")
    run = st.button("Simulate (spends nothing)", key="cmp_run", type="primary",
                    disabled=query is None or eps is None)
if run and query is not None and eps is not None:
    try:
        with st.spinner("Simulating private releases…"):
            sim = simulate(query, ctx.cohort, eps, draws, ctx.mechanism)
        st.session_state["cmp_sim"] = {"cohort": ctx.cohort_name, "sim": sim, "query": query, "eps": eps}
    except (QueryError, ValueError) as e:
        st.session_state.pop("cmp_sim", None)
        left.error(str(e))

with right:
    res = st.session_state.get("cmp_sim")
    if res and res["cohort"] == ctx.cohort_name:
        sim, query = res["sim"], res["query"]
        title = f"{query.describe(schema)} at ε {res['eps']:g}"
        if query.stat == "survival":
            fig = survival_chart.compare_figure(sim.labels, sim.truth, sim.values[0], sim.ci_low[0], sim.ci_high[0],
                                                title, schema.column(query.column).unit)
        else:
            fig = charts.compare_figure(sim.labels, sim.truth, sim.values[0], sim.ci_low[0], sim.ci_high[0], title,
                                        value_title=f"Number of {schema.rows_word}" if query.stat in
                                        ("count", "histogram", "crosstab") else "Value")
        st.plotly_chart(fig, width="stretch", key="cmp_chart")
        s = sim.summary()
        c1, c2, c3 = st.columns(3)
        if query.stat in ("histogram", "crosstab"):
            tv = [total_variation(sim.truth, v) for v in sim.values]
            c1.metric("Total variation distance", f"{np.median(tv):.3f}", help="Median over draws; 0 = identical "
                      "distributions, 1 = disjoint.")
        else:
            rel = np.nanmedian([np.nanmean(relative_error(sim.truth, v)) for v in sim.values])
            c1.metric("Median relative error", f"{rel:.2%}")
        c2.metric("Mean absolute error", f"{s['mean_abs_error']:.3g}")
        c3.metric("95% intervals covering the truth", f"{s['coverage']:.1%}")
        err = sim.errors
        st.dataframe({"bucket": sim.labels, "true value (not private)": sim.truth,
                      "one private release": sim.values[0].tolist(), "its error": err[0].tolist(),
                      "mean |error| over draws": np.nanmean(np.abs(err), axis=0).tolist(),
                      "coverage": (np.mean((sim.ci_low <= np.asarray(sim.truth)) &
                                                         (np.asarray(sim.truth) <= sim.ci_high), axis=0)).tolist()},
                     hide_index=True, width="stretch")
        st.plotly_chart(charts.spread_figure(sim, f"Spread of {sim.values.shape[0]} simulated releases"),
                        width="stretch", key="cmp_spread")
    else:
        st.info("Pick a query and press **Simulate** to see true and private values side by side.")
