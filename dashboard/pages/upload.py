"""Upload a cohort (data owner only): data file + a schema the owner must review and confirm.

Steps: read the file (specific errors, nothing saved) -> a schema PROPOSAL read off the data, or the
owner's own schema TOML -> the owner reviews it: each column with public values is ticked "I
declare this public" or edited; rare categories are not proposed; the row limits are typed (never
read off the data) -> optionally, DP-suggested bounds for a numeric column (spends a small, shown ε
from the cohort's budget in the ledger) -> "Confirm schema and save" (disabled, with the reasons,
until all of that is done) validates, prepares and saves data.parquet + schema.toml (confirmed =
true) -> "Schema confirmed and saved", the validation report, and Edit / Delete. The logic is in
dashboard/uploads.py; this page only lays it out.

Privacy: the proposal and every count shown here come from private data. They stay in the owner's
session, are never written unconfirmed, and the page refuses anyone who is not a data owner.
Text from the file (names, values, messages) is shown through md_escape or in tables, never as markup.
"""
from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from dashboard.context import page_context
from dashboard.uploads import (BOUNDS_HELPER_EPSILON, BOUNDS_HELPER_LEVELS, KINDS, MAX_ROWS_LIMIT,
                               MAX_ROWS_PER_UNIT_LIMIT, UploadError, apply_bounds, bounds_helper, check_dataset_id,
                               cohort_exists, delete_upload, draft_from_saved, make_draft, md_escape,
                               parse_row_limits, review_status, review_table, run_bounds_helper, save_upload,
                               schema_from_table, uploaded_cohorts, with_survival_endpoint)
from data.loaders import LoadError
from data.prepare import DataValidationError
from data.propose import MIN_CATEGORY_COUNT
from data.schema import NumericColumn, SchemaError

PROPOSAL_WARNING = (
    "**Read from the data: not public until you review and confirm it.** The categories, bounds, bin edges "
    "and date ranges below were computed from the private values. Only you see this proposal; analysts "
    "see nothing until you confirm. Bounds are rounded outward and categories seen in fewer than "
    f"{MIN_CATEGORY_COUNT} rows are left out, but check every value: replace it with what you can declare "
    "publicly (for example clinical ranges), then tick “I declare this public” in its row, or edit it.")
ROW_LIMIT_TYPED = "**Row limits: type them yourself; they are public (analysts see them) and never read from this file.**"
ROW_LIMIT_DECLARED = "**Row limits, as you declared them: they are public (analysts see them).**"
ROW_LIMIT_HELP = (
    "- **Max rows per patient**: the most rows one patient may contribute (1 if each patient has one row). "
    "Rows beyond it are **dropped** before any statistic (each patient's first rows are kept), and the noise "
    "of every statistic grows with it. Use what your study design guarantees.\n"
    "- **Max rows**: a public upper bound on the number of rows. A table with more rows is **refused** (the "
    "cohort becomes unavailable). Choose a round number comfortably above the size you expect.")
ENCODINGS = {"auto (UTF-8)": None, "latin-1 (ISO-8859-1)": "latin-1", "Windows-1252": "cp1252",
             "UTF-16": "utf-16"}
SEPARATORS = {"auto-detect": None, "comma ,": ",", "semicolon ;": ";", "tab": "\t", "pipe |": "|"}
PUBLIC_WIDTH = 160                      # px: the tick's column (browser tests click its centre)
FORM_KEYS = ("up_overwrite", "up_base", "up_gen", "up_applied", "up_dp", "up_dp_col", "up_dp_lo", "up_dp_hi",
             "up_dp_eps", "up_dp_error")


def _digest(b: bytes | None) -> str | None:
    return hashlib.sha256(b).hexdigest() if b is not None else None


def _data_key(draft) -> str:
    """Which data a draft holds, across new drafts of the same bytes (other reading options)."""
    return f"saved:{draft.edit_of}" if draft.edit_of is not None else str(draft.key[0] if draft.key else "")


def _editor_key() -> str:
    gen = int(st.session_state.get("up_gen", 0))
    return "up_editor" if gen == 0 else f"up_editor_{gen}"


def _reset_form(draft) -> None:
    """A new file, options or draft: the form starts again from it (ticks, edits and suggestions cleared).
    Row limits are pre-filled only from a schema the owner declared (a TOML file or a saved cohort)."""
    for k in [k for k in st.session_state if str(k).startswith(("up_editor", "up_delete_ok"))]:
        st.session_state.pop(k, None)
    for k in FORM_KEYS + ("up_saved",):
        st.session_state.pop(k, None)
    s = draft.schema
    if s is not None:
        declared = not draft.from_data or draft.edit_of is not None
        st.session_state.update(up_id=s.dataset_id, up_title=s.title, up_unit=s.privacy_unit,
                                up_mrpu=str(int(s.max_rows_per_unit)) if declared else "",
                                up_max_rows=str(int(s.max_rows)) if declared else "",
                                up_budget=float(s.default_budget), up_dp_eps=BOUNDS_HELPER_EPSILON)


def _start_edit(dataset_id: str) -> None:
    try:
        draft = draft_from_saved(dataset_id)
    except (UploadError, SchemaError, LoadError, OSError) as e:
        st.session_state["up_flash_error"] = f"Cannot edit '{dataset_id}': {e}"
        return
    st.session_state["up_draft"] = draft
    st.session_state["up_edit"] = dataset_id
    _reset_form(draft)


def _stop_edit() -> None:
    for k in ("up_edit", "up_draft", "up_saved"):
        st.session_state.pop(k, None)


def _delete(dataset_id: str) -> None:
    try:
        delete_upload(dataset_id)
    except (UploadError, OSError) as e:
        st.session_state["up_flash_error"] = f"Not deleted: {e}"
        return
    st.session_state["up_flash"] = (f"Deleted the cohort {dataset_id}: analysts no longer see it. Its rows in the "
                                    "budget ledger stay (budget spent on this id stays spent).")
    if st.session_state.get("up_edit") == dataset_id:
        _stop_edit()
    draft = st.session_state.get("up_draft")
    if draft is not None:
        _reset_form(draft)
    st.session_state.pop("up_saved", None)


def _flash() -> None:
    msg = st.session_state.pop("up_flash", None)
    if msg:
        st.success(md_escape(msg))
    err = st.session_state.pop("up_flash_error", None)
    if err:
        st.error(md_escape(err))


def _delete_controls(dataset_id: str, where: str) -> None:
    sure = st.checkbox(f"Yes, delete the cohort {md_escape(dataset_id)} (data and schema)", key=f"up_delete_ok_{where}")
    st.button("Delete the cohort", key=f"up_delete_{where}", disabled=not sure, on_click=_delete, args=(dataset_id,),
              help="Removes the saved data and schema. The ledger keeps its rows: budget spent stays spent.")


def _manage_saved() -> None:
    """Without a file: the owner's saved cohorts, to edit or delete."""
    saved = uploaded_cohorts()
    if not saved:
        return
    st.subheader("Your uploaded cohorts")
    pick = st.selectbox("Cohort", saved, key="up_manage_pick")
    c1, c2 = st.columns(2)
    c1.button("Edit its schema", key="up_manage_edit", on_click=_start_edit, args=(pick,))
    with c2:
        _delete_controls(pick, "manage")


def _show_saved(saved: dict) -> None:
    verb = "replaced" if saved["replaced"] else "saved"
    st.success(f"**Schema confirmed and {verb}.** The cohort **{md_escape(saved['id'])}** and its public schema "
               f"are saved; analysts can now choose “{md_escape(saved['id'])} (uploaded)” in the cohort picker.")
    with st.container(border=True):
        st.markdown("**Validation report** (counts from the private data: only you see them)")
        st.markdown("\n".join(f"- {md_escape(line)}" for line in saved["lines"]))
    st.markdown("**Change it**")
    c1, c2 = st.columns(2)
    c1.button("Edit the schema", key="up_edit_saved", on_click=_start_edit, args=(saved["id"],),
              help="Opens the confirmed schema for changes; saving again replaces the cohort.")
    with c2:
        _delete_controls(saved["id"], "saved")


# ------------------------------------------------------------------------------------ page
ctx = page_context(owner_only=True)
st.title("Upload a cohort (data owner)")
st.caption("Load a table, declare its public schema and save it. Analysts can pick the cohort once you "
           "confirm the schema; they never see the values, this page, or a proposal.")
_flash()

editing = st.session_state.get("up_edit")
schema_file = None
if editing is None:
    left, right = st.columns(2)
    data_file = left.file_uploader("Data file (CSV, Parquet or Excel .xlsx)", type=["csv", "parquet", "xlsx"],
                                   key="up_data")
    schema_file = right.file_uploader(
        "Schema file (optional, TOML)", type=["toml"], key="up_schema_file",
        help="A schema you wrote yourself (same layout as data/cohorts/*.toml). It is used instead of a proposal "
             "read from the data; you still check and confirm it below.")
    with st.expander("Reading options"):
        enc_label = st.selectbox("Text encoding (CSV)", list(ENCODINGS), key="up_encoding",
                                 help="Auto reads UTF-8 (with or without BOM) and UTF-16 with a BOM.")
        sep_label = st.selectbox("Column separator (CSV)", list(SEPARATORS), key="up_delimiter")
        number_rows = st.checkbox("Each row is a different patient: add a row-number column as the patient id",
                                  key="up_row_ids",
                                  help="Only for tables with exactly one row per patient and no id column.")

    if data_file is None:
        st.info("Choose a data file to begin. Nothing is saved, and analysts see nothing, until you confirm "
                "a schema.")
        _manage_saved()
        st.stop()

    data = data_file.getvalue()
    schema_bytes = schema_file.getvalue() if schema_file is not None else None
    key = (_digest(data), data_file.name, enc_label, sep_label, _digest(schema_bytes), bool(number_rows))
    draft = st.session_state.get("up_draft")
    if draft is None or draft.key != key:
        with st.spinner("Reading the file…"):
            draft = make_draft(data, data_file.name, encoding=ENCODINGS.get(enc_label),
                               delimiter=SEPARATORS.get(sep_label), schema_bytes=schema_bytes,
                               schema_name=schema_file.name if schema_file is not None else "the schema file",
                               number_rows=bool(number_rows), key=key)
        st.session_state["up_draft"] = draft
        _reset_form(draft)
else:
    draft = st.session_state.get("up_draft")
    if draft is None or draft.edit_of != editing:
        _stop_edit()
        st.rerun()
    st.info(f"Editing the confirmed schema of **{md_escape(editing)}**. Its values are already public; saving "
            "replaces the cohort (its ledger stays).")
    st.button("Stop editing", key="up_stop_edit", on_click=_stop_edit)

saved = st.session_state.get("up_saved")
if saved and saved.get("key") == draft.key:
    _show_saved(saved)
    st.stop()

if draft.error:
    st.error(md_escape(draft.error))
    if draft.no_id_column:
        st.info("If each row is a different patient, tick “Each row is a different patient” under "
                "Reading options; otherwise add a patient id column to the file.")
    st.stop()

rep = draft.load_report
st.info(md_escape(rep.summary()))
for w in rep.warnings:
    st.warning(md_escape(w))
with st.expander("Preview: first 20 rows (private, only you see this)"):
    st.dataframe(draft.frame.head(20), hide_index=True)

if draft.needs_review:
    st.warning(PROPOSAL_WARNING, icon="⚠️")
elif draft.edit_of is None:
    st.info(f"Schema from your file **{md_escape(schema_file.name if schema_file else '')}**: check it, "
            "then confirm. Nothing in it was read from the data.")
if draft.notes:
    with st.expander("What the proposal guessed, and why" if draft.from_data else "Notes on the schema file"):
        st.markdown("\n".join(f"- {md_escape(n)}" for n in draft.notes))

# ------------------------------------------------------------------------------------ dataset fields
st.subheader("Dataset")
proposal = review_table(draft)
names = proposal["column"].tolist()
if st.session_state.get("up_unit") not in names:
    st.session_state["up_unit"] = draft.schema.privacy_unit if draft.schema.privacy_unit in names else names[0]
c1, c2, c3 = st.columns(3)
dataset_id = c1.text_input("Dataset id", key="up_id", max_chars=64,
                           help="Letters, digits, '-' or '_'. The folder name and the key of the privacy "
                                "budget ledger.")
title = c2.text_input("Title", key="up_title")
privacy_unit = c3.selectbox("Privacy unit (patient id column)", names, key="up_unit",
                            help="One patient. This column is never analysed or shown.")
st.markdown((ROW_LIMIT_TYPED if draft.from_data and draft.edit_of is None else ROW_LIMIT_DECLARED) + "\n"
            + ROW_LIMIT_HELP)
c4, c5, c6 = st.columns(3)
mrpu_text = c4.text_input("Max rows per patient (public)", key="up_mrpu", placeholder="type it, e.g. 1",
                          help=f"A whole number from 1 to {MAX_ROWS_PER_UNIT_LIMIT:,}. Rows beyond it per patient "
                               "are dropped (first rows kept).")
max_rows_text = c5.text_input("Max rows (public upper bound)", key="up_max_rows", placeholder="type it, e.g. 100000",
                              help=f"A whole number from 1 to {MAX_ROWS_LIMIT:,}. A table with more rows is refused.")
budget = c6.number_input("Cohort budget ε (all analysts together)", step=0.1, key="up_budget",
                         help="The cohort's total privacy budget in the ledger, shared by every analyst (its initial "
                              "value: change it later on the Ledger page).")
mrpu, max_rows, limit_errors = parse_row_limits(mrpu_text, max_rows_text)
for msg in limit_errors:
    if not msg.startswith("type "):           # an empty field is listed with the Confirm reasons
        st.error(md_escape(msg[:1].upper() + msg[1:]))

overwrite = False
if cohort_exists(dataset_id):
    if draft.edit_of == dataset_id:
        overwrite = True
    else:
        overwrite = st.checkbox(f"Overwrite the existing cohort {md_escape(dataset_id)}", key="up_overwrite")
        st.caption("Overwriting keeps the ledger under this id: budget already spent stays spent, and a question "
                   "asked before is answered again with its stored result from the old data. Use a new dataset "
                   "id for a different data set.")

# ------------------------------------------------------------------------------------ columns
st.subheader("Columns")
st.caption("Numeric: public lower and upper bounds (values outside are clamped) and comma-separated bin "
           "edges. Date: start and end as YYYY-MM-DD in lower/upper, and the bin unit (day, week, month, "
           "quarter, year) under bin edges. Categorical: the comma-separated categories; quote a category "
           "that contains a comma; add a value that was not proposed by typing it. 'leave out' keeps a column "
           "out of the schema." + (" Tick “I declare this public” in each row you checked, or edit its values."
                                   if draft.needs_review else ""))
base = st.session_state.get("up_base")
if not isinstance(base, pd.DataFrame) or list(base["column"]) != names:
    base = proposal
edited = st.data_editor(
    base, key=_editor_key(), hide_index=True, num_rows="fixed", disabled=["column", "note"],
    column_order=(["public"] if draft.needs_review else []) + ["column", "kind", "note", "categories", "lower",
                                                               "upper", "bin_edges", "fill_value", "label", "unit"],
    column_config={
        "public": st.column_config.CheckboxColumn("I declare this public", width=PUBLIC_WIDTH,
                                                  help="Tick when you have checked this column's values and "
                                                       "declare them public. Editing a value also counts."),
        "column": st.column_config.TextColumn("Column"),
        "kind": st.column_config.SelectboxColumn("Kind", options=list(KINDS), required=True),
        "label": st.column_config.TextColumn("Label"),
        "unit": st.column_config.TextColumn("Unit"),
        "categories": st.column_config.TextColumn(
            "Categories", help=f"Categorical only: comma-separated. Values seen in fewer than {MIN_CATEGORY_COUNT} "
                               "rows are not proposed (see the note); type them to add them."),
        "lower": st.column_config.TextColumn("Lower / start", help="Numeric bound, or first date"),
        "upper": st.column_config.TextColumn("Upper / end", help="Numeric bound, or last date"),
        "bin_edges": st.column_config.TextColumn("Bin edges / date unit"),
        "fill_value": st.column_config.TextColumn("Fill value",
                                                  help="Numeric only: public value used for missing entries"),
        "note": st.column_config.TextColumn("Note (only you see this)", width="medium",
                                            help="What the proposal did with this column: rare categories left "
                                                 "out (with their row counts), bounds rounded outward."),
    })
applied = set(st.session_state.get("up_applied", ()))
status = review_status(proposal, edited, privacy_unit, applied) if draft.needs_review else None
rare_cols = [n for n in draft.rare if n in names]
if rare_cols:
    st.caption(md_escape(
        f"Categories seen in fewer than {MIN_CATEGORY_COUNT} rows are not proposed (their rows count as 'other' "
        f"unless you type them in): " + "; ".join(
            f"{n}: {len(draft.rare[n])} value{'s' if len(draft.rare[n]) != 1 else ''}" for n in rare_cols) + "."))

# ------------------------------------------------------------------------------------ DP bounds helper
numeric_rows = [r["column"] for r in edited.to_dict("records")
                if str(r.get("kind")) == "numeric" and r["column"] != privacy_unit
                and r["column"] in {str(c) for c in draft.frame.columns}]
with st.expander("Suggest bounds privately (optional: spends a small ε from this cohort's budget)"):
    st.markdown(
        f"OpenDP estimates the {BOUNDS_HELPER_LEVELS[0]:.0%} and {BOUNDS_HELPER_LEVELS[1]:.0%} percentiles of one "
        "numeric column over a **wide public range you type** (for example clinical limits), and they are rounded "
        "outward. The result is differentially private, so you may declare it public. The ε is charged to this "
        "cohort's budget in the ledger (the budget analysts share) before anything is computed.")
    if not numeric_rows:
        st.caption("No numeric column to suggest bounds for.")
    else:
        h1, h2, h3, h4 = st.columns(4)
        dp_col = h1.selectbox("Column", numeric_rows, key="up_dp_col")
        dp_lo = h2.text_input("Wide public range: from", key="up_dp_lo", placeholder="e.g. 0")
        dp_hi = h3.text_input("to", key="up_dp_hi", placeholder="e.g. 1000")
        dp_eps = h4.number_input("ε to spend", min_value=0.001, max_value=10.0, step=0.01, format="%.3f",
                                 key="up_dp_eps")
        prev = next((c for c in draft.schema.columns if c.name == dp_col), None)
        helper, problem = None, None
        try:
            helper = bounds_helper(draft.frame, dp_col, dp_lo, dp_hi, dp_eps, dataset_id=dataset_id,
                                   privacy_unit=privacy_unit, max_rows_per_unit=mrpu_text, max_rows=max_rows_text,
                                   default_budget=budget, integer=isinstance(prev, NumericColumn) and prev.integer,
                                   overwrite=overwrite)
        except (SchemaError, UploadError, ValueError) as e:
            problem = str(e)
        refusal = None
        if helper is not None:
            lg = ctx.ledger
            data_budget = lg.dataset_state(helper.schema.dataset_id, default_total=budget)
            recorded = helper.schema.dataset_id in lg.datasets()
            st.markdown(
                f"Costs **ε {helper.cost:.3g}** (OpenDP's privacy map at {helper.schema.max_rows_per_unit} row(s) "
                f"per patient, split over the two percentiles). Cohort budget of **{md_escape(helper.schema.dataset_id)}"
                f"**: ε {data_budget.spent:.3g} of {data_budget.total:.3g} spent, **ε {data_budget.remaining:.3g} left**."
                + ("" if recorded else f" The first spend records ε {budget:g} (the budget above) as this cohort's "
                                       "total in the ledger."))
            st.caption(f"Expected accuracy: each percentile within about ±{helper.accuracy_rows():,.0f} positions "
                       "of the sorted rows (95%): useful only when the table has many more rows than that. "
                       "A larger ε gives a sharper suggestion.")
            refusal = helper.refusal(lg, ctx.analyst)
            if refusal is not None:
                st.error(md_escape(str(refusal)))
        elif problem:
            st.info(md_escape("To suggest bounds: " + problem[:1].lower() + problem[1:]))
        clicked = st.button(f"Spend ε {dp_eps:g} and suggest bounds", key="up_dp_run",
                            disabled=helper is None or refusal is not None)
        if clicked and helper is not None and refusal is None:
            from privacy.ledger import LedgerError
            from privacy.queries import QueryError
            from privacy.release import ReleaseError, ReportError
            try:
                with st.spinner("Computing the private percentiles…"):
                    sug = run_bounds_helper(helper, draft.frame, ctx.ledger, ctx.analyst)
            except (SchemaError, UploadError, DataValidationError, QueryError, ReportError) as e:
                st.session_state["up_dp_error"] = f"Nothing was spent: {e}"
            except LedgerError as e:           # includes BudgetExceeded (its text says nothing was spent)
                st.session_state["up_dp_error"] = str(e)
            except ReleaseError as e:
                st.session_state["up_dp_error"] = f"{e} ({e.owner_detail})"
            else:
                st.session_state.pop("up_dp_error", None)
                st.session_state.setdefault("up_dp", {})[sug.column] = sug
                if sug.epsilon_cost > 0:      # this data has spent budget under this id: it must be saved there
                    charged = st.session_state.setdefault("up_dp_charged", {})
                    charged.setdefault(_data_key(draft), set()).add(sug.dataset_id)
        if st.session_state.get("up_dp_error"):
            st.error(md_escape(st.session_state["up_dp_error"]))
        sug = st.session_state.get("up_dp", {}).get(dp_col)
        if sug is not None:
            spent_text = (f"ε {sug.epsilon_spent:.3g} spent" if not sug.cached
                          else f"the same question was answered before (ε {sug.epsilon_cost:.3g} then): nothing "
                               "spent now")
            crossed = (" The noisy percentiles crossed, so the suggestion spans both 95% intervals."
                       if sug.low_quantile >= sug.high_quantile else "")
            message = md_escape(
                f"Suggested bounds for {sug.column}: {sug.lower:g} to {sug.upper:g} (private "
                f"{BOUNDS_HELPER_LEVELS[0]:.0%} percentile ≈ {sug.low_quantile:g}, 95% interval {sug.low_interval[0]:g} "
                f"to {sug.low_interval[1]:g}; {BOUNDS_HELPER_LEVELS[1]:.0%} percentile ≈ {sug.high_quantile:g}, "
                f"95% interval {sug.high_interval[0]:g} to {sug.high_interval[1]:g}; over {sug.wide_lower:g} to "
                f"{sug.wide_upper:g}). {spent_text}; ε {sug.remaining:.3g} of {sug.total:.3g} left on "
                f"{sug.dataset_id}.{crossed}")
            if sug.uncertain:        # shown as a warning, and using it takes a deliberate "anyway"
                st.warning(message + " These percentiles are very uncertain (a 95% interval covers more than "
                           "half of the wide range): the table has too few rows for this ε. Do not rely on the "
                           "suggestion; declare bounds you know, or spend a larger ε.")
            else:
                st.success(message)
            use = f"Use these bounds for {md_escape(sug.column)}" + (" anyway" if sug.uncertain else "")
            if st.button(use, key="up_dp_use"):
                st.session_state["up_base"] = apply_bounds(edited, sug)
                st.session_state["up_gen"] = int(st.session_state.get("up_gen", 0)) + 1
                st.session_state["up_applied"] = sorted(applied | {sug.column})
                st.rerun()

# --------------------------------------------------------------------------- survival endpoint
def _survival_section(schema):
    """Optional: declare a survival endpoint (public: which categories are events, which censored).
    Returns (schema with it, error text or None)."""
    nums = [c.name for c in schema.of_kind("numeric")]
    cats = {c.name: c.categories for c in schema.of_kind("categorical")}
    with st.expander("Survival endpoint (optional)", expanded=bool(schema.survival)):
        if schema.survival:
            e = schema.survival[0]
            st.caption(f"Declared: {md_escape(e.label or e.name)} on '{md_escape(e.time)}' with events "
                       f"{', '.join(map(md_escape, e.events))}.")
        if not nums or not cats:
            st.caption("Needs a numeric time column and a categorical status column.")
            return schema, None
        if not st.toggle("Declare a survival endpoint", key="up_surv_on", value=bool(schema.survival)):
            return schema, None
        c1, c2 = st.columns(2)
        time = c1.selectbox("Time to event or censoring", nums, key="up_surv_time",
                            help="Its public bounds and bin edges become the curve's time bins.")
        event = c2.selectbox("Status column", list(cats), key="up_surv_event")
        events = c1.multiselect("Categories that are the event", cats[event], key="up_surv_events")
        censored = c2.multiselect("Categories that are censored", [v for v in cats[event] if v not in events],
                                  key="up_surv_censored", help="Rows in neither list are left out of the curve.")
        label = st.text_input("Name shown to analysts", value="Overall survival", key="up_surv_label")
        try:
            return with_survival_endpoint(schema, time=time, event=event, events=events, censored=censored,
                                          label=label), None
        except SchemaError as err:
            return schema, str(err)


# ------------------------------------------------------------------------------------ confirm
reasons: list[str] = []
if status is not None and not status.complete:
    reasons.append(status.message())
reasons += [m[:1].upper() + m[1:] for m in limit_errors if m.startswith("type ")]
charged_ids = sorted(st.session_state.get("up_dp_charged", {}).get(_data_key(draft), set()))
if charged_ids and dataset_id not in charged_ids:
    reasons.append(f"The private bounds helper spent budget on this data under the dataset id "
                   f"{' or '.join(repr(i) for i in charged_ids)}: save it under that id, so that the spending counts "
                   "in this cohort's budget.")
schema, schema_error = None, None
try:
    check_dataset_id(dataset_id, overwrite)
    schema = schema_from_table(edited, draft.schema, dataset_id=dataset_id, title=title, privacy_unit=privacy_unit,
                               max_rows_per_unit=mrpu or 1, max_rows=max_rows or 1, default_budget=budget)
except (SchemaError, UploadError) as e:
    schema_error = str(e)
if schema is not None:
    schema, survival_error = _survival_section(schema)
    if survival_error:
        schema_error = survival_error
if schema_error:
    st.error(md_escape(f"Fix before confirming: {schema_error}"))
blocked = bool(reasons) or bool(limit_errors) or schema_error is not None
if reasons:
    st.warning("**Confirm is disabled until:**\n" + "\n".join(f"- {md_escape(r)}" for r in reasons))
elif draft.needs_review and not blocked:
    st.success("Every proposed value is reviewed and the row limits are typed: you can confirm.")

if st.button("Confirm schema and save", type="primary", key="up_confirm", disabled=blocked) and not blocked:
    try:
        result = save_upload(draft.frame, schema, overwrite=overwrite)
    except (SchemaError, DataValidationError, UploadError, LoadError) as e:
        st.error(md_escape(f"Not saved: {e}"))
    except OSError as e:
        st.error(md_escape(f"Not saved: the uploads folder could not be written ({e.strerror or e})"))
    else:
        st.session_state["up_saved"] = {"key": draft.key, "id": result.dataset_id, "replaced": result.replaced,
                                        "lines": result.report.lines()}
        st.rerun()          # the sidebar's cohort picker is built before this page: show the new cohort
