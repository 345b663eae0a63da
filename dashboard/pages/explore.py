"""Explore: pick a statistic and epsilon, see cost and accuracy, then Release (spends budget)."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, survival_chart
from dashboard.context import Context, epsilon_words, page_context
from dashboard.widgets import (epsilon_chooser, preview_box, query_builder, questions_left_caption,
                               refusal_words)
from privacy.engine import SourceError
from privacy.ledger import BudgetExceeded, LedgerError
from privacy.queries import Query, QueryError, query_from_dict
from privacy.release import (Release, ReleaseError, ReportError, free_answer, marginal_cost, preview,
                             questions_left, refusal_for, release, release_report, report_refusal)
from privacy.reports import ReportItem

ctx = page_context()
schema = ctx.schema


FREE_HEADING = "Free: answered from an earlier release (costs nothing)"
FREE_NOTE = ("Its interval may be wider than a fresh release's: it adds up several noisy values of that "
             "release, and their noise adds up too.")
PAY_LABEL = "Pay for a fresh release instead"
PAY_HELP = ("Shows the privacy level, what a fresh release would cost and the Release button. The free "
            "answer above costs nothing.")
AT_RISK_COLUMNS = 5          # number-at-risk times shown on screen (all of them are in the release)
# A result that no longer answers the controls is greyed (the container keyed "ex_stale").
STALE_CSS = "<style>.st-key-ex_stale {opacity: 0.5; filter: grayscale(1);}</style>"


def _do_release(query: Query, epsilon: float, ctx: Context) -> None:
    """Button callback: runs before the rerun, so the sidebar budget is current when drawn."""
    st.session_state.pop("ex_error", None)
    try:
        rel = release(query, ctx.cohort, epsilon, ctx.ledger, ctx.analyst, ctx.mechanism)
    except (BudgetExceeded, QueryError, LedgerError, ReleaseError, SourceError, ValueError) as e:
        detail = getattr(e, "owner_detail", "") if ctx.identity.is_owner else ""
        text = refusal_words(e, ctx.schema.title, ctx.schema.dataset_id, clicked=True)
        st.session_state["ex_error"] = {"cohort": ctx.cohort_name, "analyst": ctx.analyst,
                                        "asked": _asked(query, epsilon, ctx),
                                        "text": text + (f" (Data owner only: {detail})" if detail else "")}
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


def _widths(table) -> dict:
    """Column widths that keep every header and cell readable (charts.table_column_widths)."""
    return {name: st.column_config.TextColumn(width=px) for name, px in charts.table_column_widths(table).items()}


def _basket_items(basket: list[dict]) -> list[ReportItem]:
    """The saved set of statistics as report items with equal public shares."""
    return [ReportItem(f"s{i}", query_from_dict(q).describe(schema), query_from_dict(q), 1.0 / len(basket))
            for i, q in enumerate(basket)]


def _basket(cohort_name: str) -> list[dict]:
    """The saved set of statistics of this session on this cohort (query specs)."""
    saved = st.session_state.get("ex_basket")
    return saved["queries"] if saved and saved["cohort"] == cohort_name else []


def _add_to_report(query: Query, cohort_name: str) -> None:
    queries = _basket(cohort_name)
    if query.to_dict() not in queries:
        st.session_state["ex_basket"] = {"cohort": cohort_name, "queries": queries + [query.to_dict()]}


def _release_basket(total: float, ctx: Context) -> None:
    """Button callback: the saved set as ONE reservation (all of it released and charged, or none)."""
    st.session_state.pop("ex_basket_error", None)
    items = _basket_items(_basket(ctx.cohort_name))
    try:
        rep = release_report("saved-set", items, total, ctx.cohort, ctx.ledger, ctx.analyst, ctx.mechanism)
    except (BudgetExceeded, LedgerError, ReleaseError, ReportError, QueryError, SourceError) as e:
        detail = getattr(e, "owner_detail", "") if ctx.identity.is_owner else ""
        st.session_state["ex_basket_error"] = str(e) + (f" (Data owner only: {detail})" if detail else "")
        st.session_state.pop("ex_basket_result", None)
        return
    st.session_state["ex_basket_result"] = {"cohort": ctx.cohort_name, "analyst": ctx.analyst, "cached": rep.cached,
                                            "epsilon": rep.epsilon, "remaining": rep.remaining,
                                            "releases": [rep.releases[it.key].to_dict() for it in items]}


def _result_figure(rel: Release, raw: dict, schema):
    """The shown result's chart, built once per result (and schema) in this session: reruns for other
    widgets reuse it instead of rebuilding it (~50-150 ms). Built from the release only (post-processing)."""
    key = (repr(raw), id(schema))
    memo = st.session_state.get("_ex_figure")
    if memo is None or memo[0] != key:
        memo = (key, charts.release_figure(rel, schema))
        st.session_state["_ex_figure"] = memo
    return memo[1]


st.title("Explore the cohort")
st.caption(f"{schema.title} · every number below is a differentially private release.")
left, right = st.columns([1, 2], gap="large")
with left:
    query = query_builder(schema, "ex")
    free = free_answer(query, schema, ctx.ledger, ctx.analyst) if query is not None else None
    if free is not None:
        with st.container(border=True, key="ex_free_box"):
            st.markdown(f"**{FREE_HEADING}**")
            st.caption(f"From {free.extra['derived_from_description']} ({free.extra['derived_how']}). {FREE_NOTE}")
            st.button("Show the free answer", key="free", type="primary", on_click=_show_free, args=(query, ctx))
        st.markdown("**Or pay for a fresh release** (spends budget)")
        # Paying is the analyst's choice here: its controls, cost and any budget warning come after it
        pay = st.toggle(PAY_LABEL, key="ex_pay", help=PAY_HELP)
    else:
        pay = True
    eps = epsilon_chooser(query, schema, ctx.mechanism, "ex") if pay else None
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
    now = _asked(query, eps, ctx)
    error = st.session_state.get("ex_error")
    if error and (error.get("cohort"), error.get("analyst"), error.get("asked")) != (ctx.cohort_name, ctx.analyst, now):
        st.session_state.pop("ex_error", None)   # a refusal of an earlier question says nothing about this one
        error = None
    if refusal is not None and error is None:    # shown once: here, or as the refusal of the click (result area)
        st.warning(refusal_words(refusal, schema.title, schema.dataset_id))
    if pay:
        st.button("Release", key="release", type="primary", disabled=not ok or refusal is not None,
                  on_click=_do_release, args=(query, eps, ctx),
                  help="Spends the cost shown above from your budget, then shows the result. "
                       "An identical release is shown again for free.")
    st.button("Add to my report", key="add_report", disabled=query is None, on_click=_add_to_report, args=(query, ctx.cohort_name),
              help="Collect several statistics and release them together: one charge for all, or none.")
    basket = _basket(ctx.cohort_name)
    if basket:
        with st.expander(f"My report: {len(basket)} statistic{'s' if len(basket) > 1 else ''}, released together",
                         expanded=True):
            items = _basket_items(basket)
            total = st.select_slider("Total ε for the report", options=[0.1, 0.2, 0.5, 1.0, 2.0], value=0.5,
                                     key="ex_basket_total")
            st.dataframe([{"Statistic": it.title, "ε": round(it.epsilon(total), 4),
                           "Expected 95% accuracy": preview(it.query, schema, it.epsilon(total), ctx.mechanism).words}
                          for it in items], hide_index=True, width="stretch", row_height=72,
                         column_config={"Statistic": st.column_config.TextColumn(width="medium"),
                                        "ε": st.column_config.NumberColumn(width="small"),
                                        "Expected 95% accuracy": st.column_config.TextColumn(width="large")})
            why = report_refusal("saved-set", items, total, schema, ctx.ledger, ctx.analyst, ctx.mechanism)
            if why is not None:
                st.warning(refusal_words(why, schema.title, schema.dataset_id).replace("this release", "this report"))
            b1, b2 = st.columns(2)
            b1.button("Release my report", key="basket_release", type="primary", disabled=why is not None,
                      on_click=_release_basket, args=(total, ctx))
            b2.button("Clear", key="basket_clear", on_click=lambda: st.session_state.pop("ex_basket", None))
            if "ex_basket_error" in st.session_state:
                st.error(st.session_state["ex_basket_error"])
            got = st.session_state.get("ex_basket_result")
            if got and got["cohort"] == ctx.cohort_name and got["analyst"] == ctx.analyst:
                st.success(("Stored report shown again: it cost nothing now." if got["cached"] else
                            f"Report released: ε {got['epsilon']:.3g} charged once; you can still spend "
                            f"ε {got['remaining']:.3g}."))
                for k, r in enumerate(got["releases"]):
                    st.plotly_chart(charts.release_figure(Release.from_dict(r), schema), width="stretch",
                                    key=f"ex_basket_chart_{k}")

with right:
    res = st.session_state.get("ex_result")
    if error is not None:                  # the refusal replaces the result area: one message, a next step
        st.error(error["text"])
    elif res and res["cohort"] == ctx.cohort_name and res["analyst"] == ctx.analyst:
        rel = Release.from_dict(res["release"])
        asked = res.get("asked", {})
        # not paying (a free answer is offered, no epsilon chosen): the question alone says whether it is stale
        stale = asked.get("query") != now["query"] or (pay and not asked.get("free") and (
            asked.get("epsilon") != now["epsilon"] or asked.get("mechanism") != now["mechanism"]))
        derived = bool(rel.extra.get("derived_from"))
        cost = "free, from an earlier release" if derived else f"ε {rel.epsilon:.3g}"
        fig = _result_figure(rel, res["release"], schema)
        if stale:
            st.caption(f"**This answers your previous question: {rel.description}** ({cost}). Your question "
                       "has changed: press **Release** (or show the free answer) to answer the new one.")
            with st.container(key="ex_stale"):    # greyed by STALE_CSS
                st.html(STALE_CSS)
                st.plotly_chart(charts.greyed(fig), width="stretch", key="ex_chart")
        else:
            st.markdown(f"**{rel.description}** · {cost}")
            if derived:
                st.success(f"**{FREE_HEADING}:** {rel.extra['derived_from_description']} "
                           f"({rel.extra['derived_how']}). {FREE_NOTE}")
            elif rel.cached:
                st.success("This exact query was released before: showing the stored result. It cost nothing.")
            else:
                st.success(f"Released. Cost ε {rel.epsilon:.3g}" + (f", δ {rel.delta:.0e}" if rel.delta else "")
                           + f"; remaining budget ε {rel.remaining:.3g}.")
            st.plotly_chart(fig, width="stretch", key="ex_chart")
            if rel.query.get("stat") == "survival":
                at_risk = survival_chart.at_risk_table(rel, max_times=AT_RISK_COLUMNS)
                st.dataframe(at_risk, hide_index=True, width="stretch",
                             column_config=_widths(at_risk))
            if len(rel.values) <= 3:
                for i in range(len(rel.values)):
                    st.markdown(f"**{charts.value_name(rel, i, schema)}**: {charts.describe_interval(rel, i, schema)}")
        with st.expander("Table and downloads", expanded=len(rel.values) > 3 and not stale):
            table = charts.display_table(rel, schema)
            st.dataframe(table, hide_index=True, width="stretch", column_config=_widths(table),
                         row_height=charts.table_row_height(table), height=charts.table_height(table))
            if rel.query.get("stat") == "survival":
                st.caption(survival_chart.LANDMARK_NOTE)
            if note := charts.interval_note(rel):
                st.caption(f"Intervals: {note}.")
            if rule := charts.weak_rule_note(rel, schema):
                st.caption(rule)
            st.caption("Downloads keep the raw noisy values (a count can be below 0 after noise) with a note.")
            c1, c2 = st.columns(2)
            c1.download_button("Download CSV", charts.release_csv_bytes(rel, schema), "release.csv", "text/csv",
                               key="ex_csv")
            c2.download_button("Download JSON", charts.release_json_bytes(rel), "release.json",
                               "application/json", key="ex_json")
        noise = ", ".join(f"{k}: {v['distribution']} scale {v['scale']:.3g}" for k, v in rel.noise.items())
        st.caption(f"{rel.description} · mechanism {rel.mechanism} ({noise}) · 95% intervals · {rel.timestamp}")
    elif not pay:
        st.info("This question has a free answer: press **Show the free answer**, or choose to pay for a "
                "fresh release.")
    elif refusal is None:
        st.info("Choose a statistic and a privacy level, check the expected accuracy, then press **Release**.")

@st.cache_resource(show_spinner=False)
def _chart_code_preload() -> str | None:
    """HTML whose script makes the browser load Streamlit's lazily loaded chart and table code
    (its PlotlyChart and DataFrame chunks, ~5 MB of JavaScript) while the page is idle, so the
    first result is drawn as fast as later ones. It starts only once the page's run is over and its
    buttons are drawn (or after 4 s): compiling those chunks earlier held up drawing the Release
    button of a first visit by 0.2-0.4 s. None if the chunks are not where Streamlit 1.x keeps them
    (then the browser loads them on the first chart, as before)."""
    from pathlib import Path
    js = Path(st.__file__).parent / "static" / "static" / "js"
    chunks = [p.name for pat in ("PlotlyChart.*.js", "DataFrame.*.js") for p in sorted(js.glob(pat))[:1]]
    if not chunks:
        return None
    import json
    return ("<script>(() => {if (window.__dpChartCode) return; window.__dpChartCode = true;"
            "const main = [...document.querySelectorAll('script[type=\"module\"][src]')]"
            ".find(s => /\\/static\\/js\\/index\\.[^/]*\\.js$/.test(s.src)); if (!main) return;"
            f"const load = () => {json.dumps(chunks)}.forEach(c => import(new URL(c, main.src).href).catch(() => {{}}));"
            "const idle = () => (window.requestIdleCallback || ((f) => setTimeout(f, 500)))(load, {timeout: 2000});"
            "const t0 = Date.now(); const ready = () => (document.querySelector("
            "'[data-testid=\"stApp\"][data-test-script-state=\"notRunning\"]')"
            " && document.querySelector('[data-testid=\"stButton\"] button')) || Date.now() - t0 > 4000;"
            "const poll = () => ready() ? idle() : setTimeout(poll, 100); poll();})();</script>")


if (_preload := _chart_code_preload()) is not None:
    st.html(_preload, unsafe_allow_javascript=True)
