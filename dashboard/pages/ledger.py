"""Ledger: every release with time, analyst, query, epsilon, mechanism, cached or not; budgets."""
from __future__ import annotations

import json

import streamlit as st

from dashboard import charts
from dashboard.context import page_context

ctx = page_context()
schema = ctx.schema
st.title("Privacy budget ledger")
ds = schema.dataset_id
who = None if ctx.identity.is_owner else ctx.analyst   # analysts see only their own rows
entries = ctx.ledger.entries(dataset=ds, analyst=who)

results = {e["release_key"] for e in entries if e["kind"] == "result"}
rows = []
for e in entries:
    if e["kind"] == "budget":
        rows.append({"time": e["ts"][:19], "analyst": e["analyst"], "event": "budget set",
                     "query": f"total budget set by {e['actor']}", "ε": round(e["epsilon"], 4), "mechanism": "", "status": ""})
    elif e["kind"] == "reserve":
        q = json.loads(e["query"]) if e["query"] else {}
        desc = q.get("stat", "") + " " + " ".join(f"{k}={v}" for k, v in q.items() if k != "stat" and v not in (None, ""))
        rows.append({"time": e["ts"][:19], "analyst": e["analyst"], "event": "release", "query": desc.strip(),
                     "ε": round(e["epsilon"], 4), "mechanism": e["mechanism"],
                     "status": "shown" if e["release_key"] in results else "charged, no result"})
    elif e["kind"] == "failure":
        rows.append({"time": e["ts"][:19], "analyst": e["analyst"], "event": "failed (still charged)", "query": "",
                     "ε": 0.0, "mechanism": "", "status": ""})
st.caption("Cached repeats of an identical query are served from the stored result and add no row of cost.")
st.dataframe(rows, hide_index=True, width="stretch")
if entries:
    st.plotly_chart(charts.spend_figure(entries), width="stretch", key="ledger_spend")

if ctx.identity.is_owner:
    st.subheader("Set or raise a budget (data owner)")
    with st.form("budget_form"):
        analyst = st.text_input("Analyst", value=ctx.analyst, key="budget_analyst")
        total = st.number_input("Total budget (ε)", min_value=0.0, max_value=100.0, value=float(ctx.budget().total),
                                step=0.5, key="budget_total")
        note = st.text_input("Note (recorded in the audit trail)", key="budget_note")
        if st.form_submit_button("Save budget"):
            if not analyst.strip():
                st.error("Name the analyst whose budget you set.")
            else:
                s = ctx.ledger.set_budget(ds, analyst.strip(), total, actor=ctx.analyst, note=note)
                st.success(f"Budget for {analyst} on {ds} set to ε {s.total:g} (spent {s.spent:.3g}).")
                st.rerun()
    problems = ctx.ledger.verify()
    if problems:
        st.error("Ledger integrity check FAILED: " + "; ".join(problems[:5]))
    else:
        st.caption("Ledger integrity check: hash chain intact.")
