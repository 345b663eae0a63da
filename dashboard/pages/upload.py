"""Upload a cohort (data owner only): data file + a schema the owner must confirm before analysts see it.

Steps: read the file (specific errors, nothing saved) -> a schema PROPOSAL read off the data, or the
owner's own schema TOML -> the owner edits it (dataset fields + one row per column) -> "Confirm schema
and save" validates, prepares and saves data.parquet + schema.toml (confirmed = true) -> the
validation report. The logic is in dashboard/uploads.py; this page only lays it out.

Privacy: the proposal and every count shown here come from private data. They stay in the owner's
session, are never written unconfirmed, and the page refuses anyone who is not a data owner.
Text from the file (names, values, messages) is shown through md_escape or in tables, never as markup.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from dashboard.context import page_context
from dashboard.uploads import (KINDS, UploadError, cohort_exists, make_draft, md_escape, save_upload,
                               schema_from_table, schema_table)
from data.loaders import LoadError
from data.prepare import DataValidationError
from data.schema import SchemaError

PROPOSAL_WARNING = (
    "**Read from the data: not public until you confirm or edit it.** The categories, bounds, bin edges, "
    "date ranges and row limits below were computed from the private values (a minimum, a rare "
    "category). Only you see this proposal; analysts see nothing until you confirm. Replace values "
    "with what you can declare publicly, for example clinical ranges instead of the observed minimum "
    "and maximum.")
ENCODINGS = {"auto (UTF-8)": None, "latin-1 (ISO-8859-1)": "latin-1", "Windows-1252": "cp1252",
             "UTF-16": "utf-16"}
SEPARATORS = {"auto-detect": None, "comma ,": ",", "semicolon ;": ";", "tab": "\t", "pipe |": "|"}
FORM_KEYS = ("up_editor", "up_overwrite")


def _digest(b: bytes | None) -> str | None:
    return hashlib.sha256(b).hexdigest() if b is not None else None


def _reset_form(draft) -> None:
    """A new file (or options): the form starts again from the new proposal."""
    for k in FORM_KEYS + ("up_saved",):
        st.session_state.pop(k, None)
    s = draft.schema
    if s is not None:
        big = 2**53 - 1                                  # largest integer a number input holds
        st.session_state.update(up_id=s.dataset_id, up_title=s.title, up_unit=s.privacy_unit,
                                up_mrpu=min(int(s.max_rows_per_unit), big), up_max_rows=min(int(s.max_rows), big),
                                up_budget=float(s.default_budget))


ctx = page_context(owner_only=True)
st.title("Upload a cohort (data owner)")
st.caption("Load a table, declare its public schema and save it. Analysts can pick the cohort once you "
           "confirm the schema; they never see the values, this page, or a proposal.")

left, right = st.columns(2)
data_file = left.file_uploader("Data file (CSV, Parquet or Excel .xlsx)", type=["csv", "parquet", "xlsx"],
                               key="up_data")
schema_file = right.file_uploader(
    "Schema file (optional, TOML)", type=["toml"], key="up_schema_file",
    help="A schema you wrote yourself (same layout as data/cohorts/*.toml). It is used instead of a proposal "
         "read from the data; you still review and confirm it below.")
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

saved = st.session_state.get("up_saved")
if saved and saved.get("key") == draft.key:
    verb = "Replaced" if saved["replaced"] else "Saved"
    st.success(f"{verb} the cohort **{md_escape(saved['id'])}** with its confirmed schema. Analysts can now "
               f"choose “{md_escape(saved['id'])} (uploaded)” in the cohort picker.")
    with st.container(border=True):
        st.markdown("**Validation report** (counts from the private data: only you see them)")
        st.markdown("\n".join(f"- {md_escape(line)}" for line in saved["lines"]))

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

if draft.from_data:
    st.warning(PROPOSAL_WARNING, icon="⚠️")
else:
    st.info(f"Schema from your file **{md_escape(schema_file.name if schema_file else '')}**: check it, "
            "then confirm. Nothing in it was read from the data.")
if draft.notes:
    with st.expander("What the proposal guessed, and why" if draft.from_data else "Notes on the schema file"):
        st.markdown("\n".join(f"- {md_escape(n)}" for n in draft.notes))

st.subheader("Dataset")
table = schema_table(draft.schema, draft.frame.columns)
names = table["column"].tolist()
if st.session_state.get("up_unit") not in names:
    st.session_state["up_unit"] = draft.schema.privacy_unit if draft.schema.privacy_unit in names else names[0]
c1, c2, c3 = st.columns(3)
dataset_id = c1.text_input("Dataset id", key="up_id", max_chars=64,
                           help="Letters, digits, '-' or '_'. The folder name and the key of the privacy "
                                "budget ledger.")
title = c2.text_input("Title", key="up_title")
privacy_unit = c3.selectbox("Privacy unit (patient id column)", names, key="up_unit",
                            help="One patient. This column is never analysed or shown.")
c4, c5, c6 = st.columns(3)
max_rows_per_unit = c4.number_input("Max rows per patient", min_value=1, step=1, key="up_mrpu",
                                    help="Rows beyond this per patient are dropped (first rows kept).")
max_rows = c5.number_input("Max rows (public upper bound)", min_value=1, step=1, key="up_max_rows")
budget = c6.number_input("Default budget ε per analyst", step=0.1, key="up_budget",
                         help="Total privacy loss each analyst may spend on this cohort unless you set another.")

st.subheader("Columns")
st.caption("Numeric: public lower and upper bounds (values outside are clamped) and comma-separated bin "
           "edges. Date: start and end as YYYY-MM-DD in lower/upper, and the bin unit (day, week, month, "
           "quarter, year) under bin edges. Categorical: the comma-separated categories; quote a category "
           "that contains a comma. 'leave out' keeps a column out of the schema.")
edited = st.data_editor(
    table, key="up_editor", hide_index=True, num_rows="fixed", disabled=["column"],
    column_config={
        "column": st.column_config.TextColumn("Column"),
        "kind": st.column_config.SelectboxColumn("Kind", options=list(KINDS), required=True),
        "label": st.column_config.TextColumn("Label"),
        "unit": st.column_config.TextColumn("Unit"),
        "categories": st.column_config.TextColumn("Categories", help="Categorical only: comma-separated"),
        "lower": st.column_config.TextColumn("Lower / start", help="Numeric bound, or first date"),
        "upper": st.column_config.TextColumn("Upper / end", help="Numeric bound, or last date"),
        "bin_edges": st.column_config.TextColumn("Bin edges / date unit"),
        "fill_value": st.column_config.TextColumn("Fill value",
                                                  help="Numeric only: public value used for missing entries"),
    })

overwrite = False
if cohort_exists(dataset_id):
    overwrite = st.checkbox(f"Overwrite the existing cohort {md_escape(dataset_id)}", key="up_overwrite")
    st.caption("Overwriting keeps the ledger under this id: budget already spent stays spent, and a question "
               "asked before is answered again with its stored result from the old data. Use a new dataset id "
               "for a different data set.")

if st.button("Confirm schema and save", type="primary", key="up_confirm"):
    try:
        schema = schema_from_table(edited, draft.schema, dataset_id=dataset_id, title=title,
                                   privacy_unit=privacy_unit, max_rows_per_unit=max_rows_per_unit,
                                   max_rows=max_rows, default_budget=budget)
        result = save_upload(draft.frame, schema, overwrite=overwrite)
    except (SchemaError, DataValidationError, UploadError, LoadError) as e:
        st.error(md_escape(f"Not saved: {e}"))
    except OSError as e:
        st.error(md_escape(f"Not saved: the uploads folder could not be written ({e.strerror or e})"))
    else:
        st.session_state["up_saved"] = {"key": draft.key, "id": result.dataset_id, "replaced": result.replaced,
                                        "lines": result.report.lines()}
        st.rerun()          # the sidebar's cohort picker is built before this page: show the new cohort
