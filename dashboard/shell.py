"""The app's shell, drawn on every run of `dashboard/app.py`: the sidebar (cohort, identity, remaining
budget, mechanism) and the page navigation. Owner-only pages are listed only for data owners AND
re-check the role themselves.
"""
from __future__ import annotations

import streamlit as st

from dashboard.auth import current_identity, ledger_path
from dashboard.context import Context, set_context
from dashboard.services import (DEMO_COHORT, available_cohorts, demo_rows, engine_cohort, engine_cohorts,
                                prepared_cohort, sources_dir,
                                session_ledger, synthetic_choices, synthetic_prepared, warm_up)
from dashboard.uploads import uploaded_cohorts, load_uploaded
from dashboard.widgets import SIDEBAR_CSS, budget_panel, cohort_name_caption, privacy_unit_words


def run() -> None:
    """One run of the app's script (app.py calls it on every rerun)."""
    st.set_page_config(page_title="Private cohort statistics", page_icon="🔒", layout="wide")
    st.html(SIDEBAR_CSS)   # a sidebar wide enough for the cohort's name in the picker

    identity = current_identity()
    if identity is None:
        st.title("Private cohort statistics")
        st.write("Sign in to explore cohort statistics. Every number you see is differentially private.")
        if st.button("Sign in", key="login", type="primary"):
            st.login()
        st.stop()

    warm_up()

    with st.sidebar:
        st.markdown("### 🔒 Private cohort statistics")
        builtin = available_cohorts()
        uploads = uploaded_cohorts()
        try:
            synthetic = synthetic_choices(session_ledger(ledger_path()))   # released DP synthetic tables
        except Exception:                                                  # the ledger's own error comes below
            synthetic = []
        engines = engine_cohorts(sources_dir())                          # rows in Parquet files, a database, Spark
        names = ([n for n, _ in builtin] + [f"upload:{u}" for u in uploads] + [n for n, _, _ in synthetic]
                 + [n for n, _ in engines])
        titles = (dict(builtin) | {f"upload:{u}": f"{u} (uploaded)" for u in uploads}
                  | {n: t for n, t, _ in synthetic} | dict(engines))
        choice = st.session_state.get("cohort")
        if choice not in names:                            # the session's first run, or its cohort is gone
            wanted = st.query_params.get("cohort", DEMO_COHORT)   # a link may name the cohort: ?cohort=radiology
            choice = wanted if wanted in names else (DEMO_COHORT if DEMO_COHORT in names else names[0])
        # Set on every run: a page change drops the link's ?cohort= and would reset the picker to its
        # first option; the choice lives in the session.
        st.session_state["cohort"] = choice
        cohort_name = st.selectbox("Cohort", names, format_func=lambda n: titles.get(n, n), key="cohort",
                                   help="The table you are exploring. Its public schema (categories, bounds) is fixed "
                                        "by the data owner.")
        if (full := cohort_name_caption(titles.get(cohort_name, cohort_name))) is not None:
            st.caption(full)                                 # the picker's one line cannot show all of it
        try:
            if cohort_name.startswith("synthetic:"):
                record = next(r for n, _, r in synthetic if n == cohort_name)
                cohort = synthetic_prepared(cohort_name, record)
            elif cohort_name.startswith("upload:"):
                cohort = load_uploaded(cohort_name.removeprefix("upload:"))
            elif cohort_name.startswith("engine:"):
                cohort = engine_cohort(cohort_name, sources_dir())
            else:
                cohort = prepared_cohort(cohort_name, demo_rows())
        except Exception as e:  # a broken cohort must not take the app down, nor tell analysts why:
            from dashboard.uploads import md_escape
            shown = md_escape(titles.get(cohort_name, cohort_name))  # the reason may be a private count
            if identity.is_owner:
                st.error(f"Cannot open cohort '{shown}'.")
                detail = getattr(e, "owner_detail", None) or str(e) or type(e).__name__
                st.warning(f"**Data owner only** (analysts see only that the cohort is unavailable): "
                           f"{md_escape(detail)}")
            else:
                st.error(f"Cohort '{shown}' is unavailable. Please ask the data owner.")
            st.stop()
        if cohort_name.startswith("synthetic:"):
            st.info("**Synthetic cohort:** no row is a real patient. It was released once, with its cost, from "
                    "the real cohort; exploring it spends nothing of that cohort's budget.", icon="🧪")
        role_text = "data owner" if identity.is_owner else "analyst"
        st.markdown(f"**Working as:** {identity.name} ({role_text})")
        if identity.mode == "local":
            st.caption("No sign-in configured: running as the single local data owner on demo data.")
        try:
            ledger = session_ledger(ledger_path())
            state = ledger.ensure_budget(cohort.schema.dataset_id, identity.name, cohort.schema.default_budget)
        except Exception as e:
            st.error("The budget ledger is unavailable, so nothing can be released. "
                     + (f"Data owner only: {e}" if identity.is_owner else "Please ask the data owner."))
            st.stop()
        budget_slot = st.empty()          # filled now, and again after the page ran (it may have released)
        budget_panel(budget_slot, ledger, cohort.schema, identity.name)
        mechanism = st.selectbox("Noise", ["laplace", "gaussian"], key="mechanism",
                                 format_func=lambda m: {"laplace": "Laplace (pure ε-DP)",
                                                        "gaussian": "Gaussian ((ε, δ)-DP, δ = 1e-7)"}[m],
                                 help="Laplace gives pure ε-differential privacy. Gaussian adds a tiny failure "
                                      "probability δ and is better when many values are released together.")
        st.caption(privacy_unit_words(cohort.schema))

    set_context(Context(identity, cohort_name, cohort, ledger, mechanism))

    pages = [st.Page("pages/explore.py", title="Explore", default=True),
             st.Page("pages/radiology.py", title="Radiology review"),
             st.Page("pages/synthetic.py", title="Synthetic cohort"),
             st.Page("pages/ledger.py", title="Ledger")]
    if identity.is_owner:
        pages[1:1] = [st.Page("pages/compare.py", title="Compare (owner)"),
                      st.Page("pages/tradeoff.py", title="Trade-off (owner)"),
                      st.Page("pages/upload.py", title="Upload cohort (owner)"),
                      st.Page("pages/anonymity.py", title="Anonymity risk (owner)")]
    try:
        st.navigation(pages).run()
    finally:
        # A page may release inline (the synthetic cohort, ...) after the sidebar was drawn: show the
        # ledger as it is now. After st.stop() nothing more can be drawn, which is harmless here.
        try:
            budget_panel(budget_slot, ledger, cohort.schema, identity.name)
        except Exception:  # noqa: BLE001 - a stopped or failed run keeps the panel drawn above
            pass
