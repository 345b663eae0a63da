"""Per-run context shared by the pages (built by app.py), and the server-side page guards."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from dashboard.auth import Identity, current_identity

if TYPE_CHECKING:                 # annotations only: this module imports neither pandas nor SQLite code
    from data.prepare import PreparedCohort
    from data.schema import Schema
    from privacy.ledger import BudgetLedger


@dataclass
class Context:
    identity: Identity
    cohort_name: str
    cohort: PreparedCohort
    ledger: BudgetLedger
    mechanism: str

    @property
    def schema(self) -> Schema:
        return self.cohort.schema

    @property
    def analyst(self) -> str:
        return self.identity.name

    def budget(self):
        return self.ledger.ensure_budget(self.schema.dataset_id, self.analyst, self.schema.default_budget)


def set_context(ctx: Context) -> None:
    st.session_state["_ctx"] = ctx


def page_context(owner_only: bool = False) -> Context:
    """Every page calls this first: re-checks the identity and role on the server side."""
    ident = current_identity()
    ctx = st.session_state.get("_ctx")
    if ident is None or ctx is None or ctx.identity != ident:
        st.error("Please sign in to use this page.")
        st.stop()
    if owner_only and not ident.is_owner:
        st.error("This page is for the data owner only: it shows true, non-private values.")
        st.stop()
    return ctx


def epsilon_words(eps: float) -> str:
    """Plain-language meaning of epsilon for clinicians."""
    return (f"ε = {eps:g}: whatever is released, the chance of any result changes by at most "
            f"×{math.exp(eps):.2f} whether or not any one patient is in the data.")
