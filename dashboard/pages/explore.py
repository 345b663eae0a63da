"""Explore: pick a statistic and epsilon, see cost and accuracy, then Release (spends budget)."""
from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.context import Context, epsilon_words, page_context
from dashboard.widgets import epsilon_chooser, preview_box, query_builder, questions_left_caption
from privacy.ledger import BudgetExceeded, LedgerError
from privacy.queries import Query, QueryError
from privacy.release import (Release, ReleaseError, free_answer, marginal_cost, questions_left, refusal_for,
                             release)

ctx = page_context()
schema = ctx.schema


def _do_release(query: Query, epsilon: float, ctx: Context) -> None:
    """Button callback: runs before the rerun, so the sidebar budget is current when drawn."""
    st.session_state.pop("ex_error", None)
    try:
        rel = release(query, ctx.cohort, epsilon, ctx.ledger, ctx.analyst, ctx.mechanism)
    except (BudgetExceeded, QueryError, LedgerError, ReleaseError, ValueError) as e:
        detail = getattr(e, "owner_detail", "") if ctx.identity.is_owner else ""
        st.session_state["ex_error"] = str(e) + (f" (Data owner only: {detail})" if detail else "")
        st.session_state.pop("ex_result", None)   # never leave an older answer beside a refusal
        return
    st.session_state["ex_result"] = {"cohort": ctx.cohort_name, "analyst": ctx.analyst, "release": rel.to_dict(),
                                     "asked": _asked(query, epsilon, ctx)}


def _asked(query: Query | None, epsilon: float | None, ctx: Context) -> dict:
    """What the current controls ask (to tell whether a shown result still answers them)."""
    return {"query": query.to_dict() if query is not None else None, "epsilon": epsilon, "mechanism": ctx.mechanism}


def _show_free(query: Query, ctx: Context) -> None:
    """Button callback: the answer derived from a stored release (post-processing, cost 0)."""
    st.session_state.pop("ex_error", None)
    rel = free_answer(query, ctx.schema, ctx.ledger, ctx.analyst, record=True)
    if rel is not None:
        st.session_state["ex_result"] = {"cohort": ctx.cohort_name, "analyst": ctx.analyst, "release": rel.to_dict(),
                                         "asked": {"query": query.to_dict(), "epsilon": None, "mechanism": None,
                                                   "free": True}}


st.title("Explore the cohort")
st.caption(f"{schema.title} · every number below is a differentially private release.")
left, right = st.columns([1, 2], gap="large")
with left:
    query = query_builder(schema, "ex")
    eps = epsilon_chooser(query, schema, ctx.mechanism, "ex")
    ok = query is not None and eps is not None and preview_box(query, schema, eps, ctx.mechanism)
    if eps is not None:
        st.caption(epsilon_words(eps))          # the epsilon chosen here, whatever the mode
    refusal = refusal_for(query, schema, eps, ctx.ledger, ctx.analyst, ctx.mechanism) if ok else None
    data = ctx.budget().data
    if ok and data.accounting == "zcdp":
        st.caption(f"This cohort uses zCDP accounting: this release would add ε "
                   f"{marginal_cost(query, schema, eps, ctx.ledger, ctx.mechanism):.3g} to its total "
                   f"(ε {data.spent:.3g} of {data.total:.3g} spent, at δ {data.delta_total:.0e}).")
    if ok and refusal is None:
        questions_left_caption(questions_left(query, schema, eps, ctx.ledger, ctx.analyst, ctx.mechanism))
    if refusal is not None:
        st.warning(str(refusal).replace("Refused: this release", "This release").replace(" Nothing was spent.", ""))
    free = free_answer(query, schema, ctx.ledger, ctx.analyst) if query is not None else None
    if free is not None:
        st.info(f"**Free answer available:** this question follows from an earlier release "
                f"({free.extra['derived_from_description']}: {free.extra['derived_how']}), at no cost. "
                "You can still spend budget on a fresh release below.", icon="🎁")
        st.button("Show the free answer (ε 0)", key="free", on_click=_show_free, args=(query, ctx))
    st.button("Release", key="release", type="primary", disabled=not ok or refusal is not None,
              on_click=_do_release, args=(query, eps, ctx),
              help="Spends the cost shown above from your budget, then shows the result. "
                   "An identical release is shown again for free.")

with right:
    if "ex_error" in st.session_state:
        st.error(st.session_state["ex_error"])
    res = st.session_state.get("ex_result")
    if res and res["cohort"] == ctx.cohort_name and res["analyst"] == ctx.analyst:
        rel = Release.from_dict(res["release"])
        asked = res.get("asked", {})
        now = _asked(query, eps, ctx)
        stale = asked.get("query") != now["query"] or (
            not asked.get("free") and (asked.get("epsilon") != now["epsilon"] or asked.get("mechanism") != now["mechanism"]))
        if stale:
            st.warning(f"This result answers an earlier question: **{rel.description}** at ε {rel.epsilon:.3g}. "
                       "Your question has changed: press **Release** (or show a free answer) to answer it.")
        else:
            st.markdown(f"**{rel.description}** · ε {rel.epsilon:.3g}")
        if rel.extra.get("derived_from"):
            st.success(f"Derived at no cost (ε 0) from an earlier release: {rel.extra['derived_from_description']} "
                       f"({rel.extra['derived_how']}). Its intervals account for every noisy cell added.")
        elif rel.cached:
            st.success("This exact query was released before: showing the stored result. It cost nothing.")
        else:
            st.success(f"Released. Cost ε {rel.epsilon:.3g}" + (f", δ {rel.delta:.0e}" if rel.delta else "")
                       + f"; remaining budget {rel.remaining:.3g}.")
        st.plotly_chart(charts.release_figure(rel, schema), width="stretch", key="ex_chart")
        if len(rel.values) <= 3:
            for i in range(len(rel.values)):
                st.markdown(f"**{rel.labels[i]}**: {charts.describe_interval(rel, i, schema)}")
        with st.expander("Table and downloads", expanded=len(rel.values) > 3):
            st.dataframe(charts.display_table(rel, schema), hide_index=True, width="stretch")
            st.caption("Downloads keep the raw noisy values (a count can be below 0 after noise) with a note.")
            c1, c2 = st.columns(2)
            c1.download_button("Download CSV", charts.release_csv_bytes(rel, schema), "release.csv", "text/csv",
                               key="ex_csv")
            c2.download_button("Download JSON", charts.release_json_bytes(rel), "release.json",
                               "application/json", key="ex_json")
        noise = ", ".join(f"{k}: {v['distribution']} scale {v['scale']:.3g}" for k, v in rel.noise.items())
        st.caption(f"{rel.description} · mechanism {rel.mechanism} ({noise}) · 95% intervals · {rel.timestamp}")
    else:
        st.info("Choose a statistic and a privacy level, check the expected accuracy, then press **Release**.")
