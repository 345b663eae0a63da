"""Upload a cohort (data owner only): file + schema proposal the owner must confirm."""
from __future__ import annotations

import streamlit as st

from dashboard.context import page_context

ctx = page_context(owner_only=True)
st.title("Upload a cohort (data owner)")
st.info("Uploading your own cohort file is coming next.")
