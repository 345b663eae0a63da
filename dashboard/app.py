"""Private statistics dashboard: entry point (`streamlit run dashboard/app.py`).

Run as the app's script (by Streamlit for every session and rerun, or by AppTest), it draws the
shell: the sidebar (cohort, identity, remaining budget, mechanism) and the page navigation
(`dashboard.shell.run`). Owner-only pages are listed only for data owners AND re-check the role
themselves.

Imported as a module, it is the server: `streamlit run` finds the `st.App` below (Streamlit's ASGI
entry point) and serves this same file as the script; its lifespan starts warming the app (imports,
OpenDP, the demo cohort's build) when the server starts, before the first visitor
(`dashboard.startup`). Nothing heavy is imported here, so the server answers at once.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import startup  # noqa: E402

if __name__ == "__main__":          # a run of the app's script
    startup.wait()                  # a warm-up still importing at server start: let it finish first
    from dashboard.shell import run
    try:
        run()
    finally:
        startup.run_event("run end")
else:                               # imported by `streamlit run` (or uvicorn): the server itself
    app = st.App(__file__, lifespan=startup.lifespan)
