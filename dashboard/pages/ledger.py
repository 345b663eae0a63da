"""Ledger: the cohort's budget (shared by all analysts), its releases, and for the data owner the
full audit trail, budget and allowance settings. No DP logic: reads and writes the ledger only."""
from __future__ import annotations

import json

import streamlit as st

from dashboard import charts
from dashboard.context import page_context
from privacy.queries import query_from_dict
from privacy.release import Release

ctx = page_context()
schema = ctx.schema
ds = schema.dataset_id
lg = ctx.ledger
owner = ctx.identity.is_owner
me = ctx.budget()
data = me.data

st.title("Privacy budget ledger")
flash = st.session_state.pop("ledger_flash", None)
if flash:
    st.success(flash)


def _question(key: str | None) -> str:
    if not key:
        return ""
    try:
        return query_from_dict(json.loads(key)).describe(schema)
    except Exception:  # an old or foreign row: show it as stored
        return str(key)


def _eps(x: float) -> str:
    return f"{x:.3g}"


# --------------------------------------------------------------------------- the cohort budget
c1, c2, c3, c4 = st.columns(4)
c1.metric("Cohort budget (ε)", _eps(data.total), help="Everything released on this cohort, by all analysts "
          "together, stays within this budget: that is what protects each patient.")
c2.metric("Spent by all analysts", _eps(data.spent))
c3.metric("Left", _eps(data.remaining))
c4.metric("δ spent of budget", f"{data.delta_spent:.2g} of {data.delta_total:.2g}" if data.delta_total else "δ 0",
          help="δ is spent only by Gaussian noise; with a δ budget of 0 only Laplace noise is allowed.")
mode = ("zCDP accounting: each release's cost is kept as ρ, the ρs add up, and the total is shown as ε at "
        f"δ = {data.delta_total:.0e} (OpenDP's conversion), so many releases add up to far less than their ε sum."
        if data.accounting == "zcdp" else
        "Pure accounting: the ε of the releases add up (and their δ, for Gaussian noise).")
allow = ("the whole cohort budget" if data.default_allowance is None else f"ε {data.default_allowance:g}")
st.caption(f"{mode} Analysts without an allowance of their own may spend {allow}. "
           f"You can still spend ε {_eps(me.remaining)} (your allowance: {_eps(me.spent)} of {_eps(me.total)} spent)."
           + (f" Set by {data.set_by}." if data.set_by else ""))
if data.note:
    st.info(f"Note from the data owner: {data.note}")

# ------------------------------------------------------------------ releases (visible to analysts)
entries = lg.entries(dataset=ds)
own_keys = {e["release_key"] for e in entries if e["analyst"] == ctx.analyst and e["kind"] in ("reserve", "served")}
stored = lg.releases(ds)
st.subheader("Releases on this cohort")
st.caption("Every release here is differentially private and free to see again: asking an identical question "
           "shows the stored result and spends nothing.")
if stored:
    table = []
    for r in stored:
        rel = r["release"]
        row = {"released (UTC)": r["ts"][:19].replace("T", " "), "question": rel.get("description", ""),
               "ε": round(float(rel.get("epsilon", 0)), 4), "noise": rel.get("mechanism", ""),
               "yours": "✓" if r["release_key"] in own_keys else ""}
        table.append(row)
    st.dataframe(table, hide_index=True, width="stretch", key="ledger_releases")
    labels = [f"{t['released (UTC)']} · {t['question']} · ε {t['ε']:g}" for t in table]
    pick = st.selectbox("Show a stored release", range(len(stored)), index=len(stored) - 1,
                        format_func=lambda i: labels[i], key="ledger_pick")
    rel = Release.from_dict(stored[pick]["release"], analyst=ctx.analyst, cached=True)
    st.plotly_chart(charts.release_figure(rel, schema), width="stretch", key="ledger_release_chart")
else:
    st.info("Nothing has been released on this cohort yet.")

if not owner:
    mine = [e for e in entries if e["analyst"] == ctx.analyst and e["kind"] == "refusal"]
    if mine:
        st.subheader("Your refused attempts")
        st.dataframe([{"time (UTC)": e["ts"][:19].replace("T", " "), "question": _question(e["query"]),
                       "why": json.loads(e["payload"] or "{}").get("message", "")} for e in mine],
                     hide_index=True, width="stretch", key="ledger_my_refusals")
    st.stop()

# ------------------------------------------------------------------------ owner: the audit trail
st.subheader("Audit trail (data owner)")
st.caption("Who asked what, when, and what it cost; refused attempts and stored releases served to other "
           "analysts cost nothing. Rows are append-only and hash-chained.")
EVENTS = {"dataset": "cohort budget set", "budget": "allowance set", "reserve": "release charged",
          "served": "stored release served", "refusal": "refused", "failure": "failed (still charged)",
          "derived": "answer derived (free)"}
results = {e["release_key"] for e in entries if e["kind"] == "result"}
questions = {e["release_key"]: _question(e["query"]) for e in entries if e["kind"] == "reserve"}
described = {r["release_key"]: r["release"].get("description", "") for r in stored}
trail = []
for e in entries:
    if e["kind"] == "result":
        continue
    payload = json.loads(e["payload"]) if e["payload"] else {}
    if e["kind"] == "dataset":
        what = (f"ε {e['epsilon']:g}, δ {e['delta']:.2g}, {payload.get('accounting', 'pure')} accounting"
                + ("" if payload.get("default_allowance") is None else
                   f", default allowance ε {payload['default_allowance']:g}"))
    elif e["kind"] == "budget":
        what = f"ε {e['epsilon']:g} for {e['analyst']}"
    elif e["kind"] == "refusal":
        what = f"{_question(e['query'])}: {payload.get('which', '')} budget"
    elif e["kind"] == "derived":
        what = (f"{_question(e['query'])}, from “{described.get(e['release_key'], 'an earlier release')}” "
                f"({payload.get('how', '')})")
    else:
        what = questions.get(e["release_key"], "") or _question(e["query"])
    trail.append({"time (UTC)": e["ts"][:19].replace("T", " "), "who": e["actor"] if e["kind"] in ("dataset", "budget")
                  else e["analyst"], "event": EVENTS.get(e["kind"], e["kind"]), "what": what,
                  "ε": f"{e['epsilon']:.4g}" if e["kind"] == "reserve" else "",
                  "δ": f"{e['delta']:.2g}" if e["kind"] == "reserve" and e["delta"] else "",
                  "note": payload.get("note", "") if e["kind"] in ("dataset", "budget") else
                  ("no result stored" if e["kind"] == "reserve" and e["release_key"] not in results else "")})
who_all = sorted({t["who"] for t in trail})
f1, f2 = st.columns(2)
picked = f1.multiselect("Filter by who", who_all, key="ledger_who")
days = sorted({t["time (UTC)"][:10] for t in trail})
span = f2.select_slider("Dates (UTC)", options=days, value=(days[0], days[-1]), key="ledger_days") \
    if len(days) > 1 else (days[0], days[0]) if days else ("", "")
shown = [t for t in trail if (not picked or t["who"] in picked) and span[0] <= t["time (UTC)"][:10] <= span[1]]
st.dataframe(shown, hide_index=True, width="stretch", key="ledger_trail")
st.download_button("Download the audit trail (CSV)", charts.rows_csv_bytes(shown), f"audit-{ds}.csv", "text/csv",
                   key="ledger_csv")
spend_rows = [dict(e, analyst="cohort (all analysts)", kind="budget" if e["kind"] == "dataset" else "reserve")
              for e in entries if e["kind"] in ("reserve", "dataset")]
spend_rows += [e for e in entries if e["kind"] in ("reserve", "budget")]
if spend_rows:
    st.plotly_chart(charts.spend_figure(spend_rows), width="stretch", key="ledger_spend")
    if data.accounting == "zcdp":
        st.caption("The chart adds up each release's own ε: under zCDP accounting the true total (above) is lower.")

analysts = lg.analysts(ds)
if analysts:
    st.dataframe([{"analyst": a.analyst, "allowance ε": a.total, "own allowance": "yes" if a.allowance_set else
                   "default", "spent ε": round(a.spent, 4), "can still spend ε": round(a.remaining, 4)}
                  for a in analysts], hide_index=True, width="stretch", key="ledger_analysts")

def _owner_save(action, confirmation) -> None:
    """Run an owner's ledger change; a bad value is shown, a success confirmed after the rerun."""
    try:
        result = action()
    except ValueError as e:
        st.error(str(e))
    else:
        st.session_state["ledger_flash"] = confirmation(result)
        st.rerun()


st.subheader("Set the cohort budget (data owner)")
with st.form("dataset_budget_form"):
    total = st.number_input("Total budget for all analysts (ε)", min_value=0.0, max_value=100.0,
                            value=float(data.total), step=0.5, key="budget_total")
    delta = st.number_input("δ budget (Gaussian noise; 0 = Laplace only)", min_value=0.0, max_value=1e-3,
                            value=float(data.delta_total), format="%.1e", step=1e-7, key="budget_delta")
    accounting = st.radio("Accounting", ["pure", "zcdp"], index=["pure", "zcdp"].index(data.accounting),
                          horizontal=True, key="budget_accounting",
                          format_func={"pure": "Pure (ε add up)", "zcdp": "zCDP (ρ add up; tighter for many releases)"}.get)
    whole = st.checkbox("Analysts without their own allowance may spend the whole budget",
                        value=data.default_allowance is None, key="budget_default_whole")
    default_allow = st.number_input("…otherwise their allowance (ε; 0 = only invited analysts can spend)",
                                    min_value=0.0, max_value=100.0, value=float(data.default_allowance or 0.0),
                                    step=0.1, key="budget_default_allowance")
    note = st.text_input("Note (recorded in the audit trail, shown to analysts)", key="budget_note")
    if st.form_submit_button("Save budget"):
        _owner_save(lambda: lg.set_dataset_budget(ds, total, delta, accounting, None if whole else default_allow,
                                                  actor=ctx.analyst, note=note),
                    lambda s: f"Cohort budget of {ds} set to ε {s.total:g}, δ {s.delta_total:.2g} "
                              f"({s.accounting} accounting); ε {s.spent:.3g} spent so far.")

st.subheader("Set an analyst's allowance (data owner)")
with st.form("allowance_form"):
    analyst = st.text_input("Analyst", value=ctx.analyst, key="allow_analyst")
    amount = st.number_input("Allowance (ε) within the cohort budget", min_value=0.0, max_value=100.0,
                             value=float(me.total), step=0.5, key="allow_total")
    anote = st.text_input("Note (recorded in the audit trail)", key="allow_note")
    if st.form_submit_button("Save allowance"):
        _owner_save(lambda: lg.set_allowance(ds, analyst.strip(), amount, actor=ctx.analyst, note=anote),
                    lambda a: f"Allowance of {a.analyst} on {ds} set to ε {a.total:g} (spent {a.spent:.3g}).")

problems = lg.verify()
if problems:
    st.error("Ledger integrity check FAILED: " + "; ".join(problems[:5]))
else:
    st.caption("Ledger integrity check: hash chain intact.")
