"""Reusable Streamlit controls: the query builder and the epsilon chooser (no DP logic)."""
from __future__ import annotations

import streamlit as st

from dashboard.figures.common import rows_noun
from data.schema import Schema
from privacy import statistics
from privacy.queries import Query, QueryError, make_query
from privacy.release import epsilon_for_error, preview
from privacy.words import DEFAULT_TARGETS, reference_size, target_halfwidth, target_kind

EPS_GRID = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0]
# A scripted 20-question clinician session (benchmarks/clinician_session.py) costs 2.0 at Balanced,
# the demo cohorts' default budget (8 paid releases, 12 free); it did not fit at the former 0.5.
PRESETS = {"Strong privacy (ε 0.1)": 0.1, "Balanced (ε 0.25)": 0.25, "High accuracy (ε 1)": 1.0}
# The sidebar is a little wider than Streamlit's 300 px, so that a cohort's name fits in the picker
# (a selectbox shows its value in a one-line <input>, which cannot wrap); a name longer than
# PICKER_CHARS is also written in full under the picker (`cohort_name_caption`).
SIDEBAR_CSS = "<style>section[data-testid='stSidebar'] {width: 360px !important;}</style>"
PICKER_CHARS = 36


def cohort_name_caption(title: str) -> str | None:
    """The cohort's full name, for under the picker, when the picker cannot show all of it."""
    from dashboard.uploads import md_escape
    return f"**{md_escape(title)}**" if len(title) > PICKER_CHARS else None


HELP_EPS = ("ε (epsilon) is the privacy cost of this release. Smaller ε = stronger privacy and more noise. "
            "Costs add up against your budget.")


def _label(schema: Schema, name: str) -> str:
    c = schema.column(name)
    return f"{c.label or c.name}" + (f" ({c.unit})" if getattr(c, "unit", "") else "")


def query_builder(schema: Schema, prefix: str, stats: tuple[str, ...] | None = None) -> Query | None:
    """Controls for one statistic (from the registry of statistics, `privacy.statistics`); returns
    the query spec, or None with a message if incomplete."""
    if stats is None:
        stats = statistics.names()
    cats = [c.name for c in schema.of_kind("categorical")]
    nums = [c.name for c in schema.of_kind("numeric")]
    binnable = [c.name for c in schema.of_kind("categorical", "numeric", "date")]
    if not schema.survival:
        stats = tuple(x for x in stats if x != "survival")
    stat = st.selectbox("Statistic", stats, format_func=statistics.label, key=f"{prefix}_stat",
                        help="What to compute. Every result is a differentially private release.")
    column = by = endpoint = None
    q = None
    fmt = lambda n: _label(schema, n)  # noqa: E731
    if stat == "histogram":
        column = st.selectbox("Column", binnable, format_func=fmt, key=f"{prefix}_column")
    elif stat in ("mean", "quantile"):
        column = st.selectbox("Column", nums, format_func=fmt, key=f"{prefix}_column")
        if stat == "quantile":
            q = st.select_slider("Quantile", options=[0.1, 0.25, 0.5, 0.75, 0.9], value=0.5, key=f"{prefix}_q",
                                 format_func=lambda v: "median" if v == 0.5 else f"{v:.0%}")
    elif stat in ("grouped-mean", "grouped-quantile"):
        column = st.selectbox("Mean of" if stat == "grouped-mean" else "Quantile of", nums, format_func=fmt,
                              key=f"{prefix}_column")
        by = st.selectbox("By group", cats, format_func=fmt, key=f"{prefix}_by",
                          help="The groups are disjoint: all of them together cost what one group would.")
        if stat == "grouped-quantile":
            q = st.select_slider("Quantile", options=[0.1, 0.25, 0.5, 0.75, 0.9], value=0.5, key=f"{prefix}_q",
                                 format_func=lambda v: "median" if v == 0.5 else f"{v:.0%}")
    elif stat == "survival":
        names = [e.name for e in schema.survival]
        endpoint = st.selectbox("Endpoint", names, key=f"{prefix}_endpoint",
                                format_func=lambda n: schema.endpoint(n).label or n,
                                help="The data owner's public definition of which status is an event.")
        column = schema.endpoint(endpoint).time
        event_col = schema.endpoint(endpoint).event
        choices = ["", *[c for c in cats if c != event_col]]
        by = st.selectbox("Compare by", choices, key=f"{prefix}_by",
                          format_func=lambda n: "(no comparison)" if not n else fmt(n),
                          help="One curve per group; the groups are disjoint, so all cost what one would.") or None
    elif stat == "crosstab":
        column = st.selectbox("Rows", binnable, format_func=fmt, key=f"{prefix}_column")
        rest = [c for c in binnable if c != column]
        by = st.selectbox("Columns", rest, format_func=fmt, key=f"{prefix}_by")
    elif stat != "count":          # a plug-in statistic: one control per input it declares
        picked = {}
        for name, kinds in statistics.statistic(stat).inputs.items():
            options = [c.name for c in schema.of_kind(*kinds) if c.name not in picked.values()]
            picked[name] = st.selectbox(name.replace("_", " ").capitalize(), options, format_func=fmt,
                                        key=f"{prefix}_{name}")
        column, by = picked.get("column"), picked.get("by")
    where = None
    if st.toggle("Restrict to one group", key=f"{prefix}_restrict",
                 help="Only patients in one public category of another column, e.g. stage T3a."):
        wc = st.selectbox("Restrict column", cats, format_func=fmt, key=f"{prefix}_where_col")
        values = list(schema.column(wc).categories)
        wv = st.selectbox("Restrict to", values, key=f"{prefix}_where_val")
        where = f"{wc}={wv}"
    try:
        return make_query(stat, column=column, by=by, where=where, q=q, endpoint=endpoint)
    except QueryError as e:
        st.error(str(e))
        return None


def epsilon_chooser(query: Query | None, schema: Schema, mechanism: str, prefix: str) -> float | None:
    """Presets, a log-scale slider, or 'target accuracy' that solves for epsilon (no data touched)."""
    mode = st.radio("Privacy level", ["Target accuracy", *PRESETS, "Custom"], key=f"{prefix}_mode",
                    horizontal=True, index=0,
                    help=HELP_EPS + " Recommended: choose the accuracy you need (e.g. each count within ±10 "
                                    "patients) and the smallest ε that gives it is used.")
    if mode in PRESETS:
        return PRESETS[mode]
    if mode == "Custom":
        return st.select_slider("ε (log scale)", options=EPS_GRID, value=0.5, key=f"{prefix}_eps", help=HELP_EPS)
    if query is None:
        return None
    rows, ref = rows_noun(schema), reference_size(schema)
    kind = target_kind(query.stat)
    if kind == "counts":
        label = f"Each count within ± how many {rows}?"
    elif kind == "mean":
        unit = schema.column(query.column).unit
        label = f"Mean within ±{' (' + unit + ')' if unit else ''}, for a group of {ref:,} {rows}"
    else:
        label = f"Within ± how many percentiles, for a group of {ref:,} {rows}?"
    target = st.number_input(label, min_value=0.0001, value=DEFAULT_TARGETS[kind], key=f"{prefix}_target")
    try:
        eps = epsilon_for_error(query, schema, target_halfwidth(query.stat, float(target), schema), mechanism)
    except (ValueError, QueryError) as e:
        st.error(f"Cannot reach that accuracy: {e}")
        return None
    st.caption(f"Needs ε = {eps:.3g}")
    return eps


def questions_left_caption(n: int | None) -> None:
    """How many more questions like this one the budget allows (from the ledger's accounting)."""
    if n is None:
        return
    if n == 0:
        st.caption("Your remaining budget does not allow another question like this one.")
    else:
        st.caption(f"Your remaining budget allows about {n:,} more question{'s' if n != 1 else ''} like this one "
                   "(identical or derived questions are free).")


def preview_box(query: Query, schema: Schema, epsilon: float, mechanism: str) -> bool:
    """Show the cost and expected 95% error before spending. Returns False if the query is invalid."""
    try:
        p = preview(query, schema, epsilon, mechanism)
    except (QueryError, ValueError) as e:
        st.error(str(e))
        return False
    cost = f"ε {p.epsilon:.3g}" + (f", δ {p.delta:.0e}" if p.delta else "")
    words = p.words or "accuracy depends on the data"
    st.info(f"**Cost:** {cost}  \n**Expected accuracy (95%):** {words}", icon="ℹ️")
    return True


def budget_panel(slot, ledger, schema, analyst: str) -> None:
    """The sidebar's budget: remaining ε (metric), the cohort's spending and the allowance, as the
    ledger says now. Drawn into `slot` (an st.empty), so drawing it again replaces it."""
    state = ledger.ensure_budget(schema.dataset_id, analyst, schema.default_budget)
    data = state.data
    with slot.container():
        st.metric("Remaining budget (ε)", f"{state.remaining:.3g}",
                  help="Privacy budget (ε) you can still spend on this cohort: the smaller of what is left of "
                       "your allowance and of the cohort's budget, which all analysts share. Each new release "
                       "spends part of it; a question anyone already asked is shown again for free.")
        frac = min(data.spent / data.total, 1.0) if data.total > 0 else 1.0
        st.progress(frac, text=f"cohort budget: ε {data.spent:.3g} of {data.total:.3g} spent by all analysts")
        lines = [f"Your allowance: ε {state.spent:.3g} of {state.total:.3g} spent."]
        if data.delta_total > 0:
            lines.append(f"δ (Gaussian noise): {data.delta_spent:.2g} of {data.delta_total:.2g} spent, "
                         f"{data.delta_remaining:.2g} left.")
        else:
            lines.append("δ budget 0: Laplace noise only.")
        if data.accounting == "zcdp":
            lines.append(f"zCDP accounting: totals are ε at δ = {data.delta_total:.0e}.")
        st.caption(" ".join(lines))


def privacy_unit_words(schema: Schema) -> str:
    """'Privacy unit: one patient (at most 2 records each)', in the schema's own noun, never 'row(s)'."""
    n, noun = schema.max_rows_per_unit, rows_noun(schema)
    if noun == "patients":
        return "Privacy unit: one patient (one record each)."
    one = noun[:-1] if noun.endswith("s") else noun
    return f"Privacy unit: one patient (at most {n:,} {one if n == 1 else noun} each)."


def refusal_words(refusal, title: str, dataset_id: str = "", clicked: bool = False) -> str:
    """A refusal (privacy.ledger.BudgetExceeded, or any release error) in plain words, with the
    cohort's display name (never its internal id) and a next step. `clicked`: Release was
    pressed and refused ('Refused: ... Nothing was spent.'); else the page says why it is off."""
    from dashboard.uploads import md_escape
    name = md_escape(title)
    which = getattr(refusal, "which", None)
    if which is None:                                  # another error: its text, without internal ids
        text = str(refusal)
        if dataset_id:
            text = text.replace(f"'{dataset_id}'", name).replace(dataset_id, name)
        return text

    def fmt(x: float) -> str:
        return f"{x:.3g}" if x >= 1e-3 or x == 0 else f"{x:.2g}"

    cost, left, total = float(refusal.cost), float(refusal.remaining), float(refusal.total)
    if which == "delta":
        text = (f"this release uses Gaussian noise with δ {cost:.2g}, but {name} has only δ {left:.2g} of its "
                f"δ budget ({total:.2g}) left. Next step: choose Laplace noise in the sidebar, or ask the data "
                "owner for more δ budget.")
    else:
        whose = (f"the budget of {name} (ε {fmt(total)}, shared by all analysts)" if which == "dataset"
                 else f"your allowance on {name} (ε {fmt(total)})")
        if getattr(refusal, "accounting", "pure") == "zcdp":
            text = (f"this release would add ε {fmt(cost)} to what has been spent, but only ε {fmt(left)} is left "
                    f"of {whose} (zCDP accounting). ")
        else:
            text = f"this release costs ε {fmt(cost)}, but only ε {fmt(left)} is left of {whose}. "
        text += (f"Next step: lower ε to {fmt(left)} or less, or ask the data owner for more budget."
                 if left > 0 else "Next step: ask the data owner for more budget.")
    return ("Refused: " + text + " Nothing was spent.") if clicked else ("Not enough budget: " + text)
