"""Server start-up: warm the app before its first visitor.

`streamlit run dashboard/app.py` finds the `st.App` that app.py defines when it is imported as a
module (Streamlit's ASGI entry point, 1.67+) and serves app.py itself as the script of every session.
That App's `lifespan` (below) starts one background thread when the server starts: it imports the
modules the sidebar and the Explore page need (pandas, the cohort generators, the privacy library
and OpenDP, Plotly) and, through `dashboard.services`, starts building the demo cohort. None of this
reads a visitor's input, shows anything, or spends budget: it is what the first page's run would do
first, started earlier (while the visitor's browser is still loading Streamlit's JavaScript), so the
first visitor of a fresh server waits about as long as the next ones.

The first script run calls `wait()` before its own imports: it goes on when the warm-up is over
(never two threads importing the same modules at once). Without a server (AppTest, bare imports)
nothing was started and `wait()` returns at once. A failed warm-up is logged and changes nothing:
the page's own imports then raise the same error where they always did.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time

_LOG = logging.getLogger(__name__)
_DONE = threading.Event()
_STARTED = False
# What the first page (sidebar + Explore) imports, heaviest first; dashboard.services also starts
# the demo cohort's build (services.prebuild) on import.
WARM_MODULES = ("dashboard.services", "dashboard.widgets", "dashboard.uploads", "dashboard.charts",
                "dashboard.survival_chart", "privacy.measurements", "privacy.release", "privacy.reports",
                "privacy.engine", "dashboard.shell")
timings: dict[str, float] = {}      # module -> seconds (for the log and the cold-start benchmark)


def warm() -> None:
    """Import WARM_MODULES (in this thread), then mark the warm-up done."""
    import importlib

    t0 = time.perf_counter()
    try:
        for name in WARM_MODULES:
            t = time.perf_counter()
            importlib.import_module(name)
            timings[name] = time.perf_counter() - t
    except Exception:              # noqa: BLE001 - the page's own import reports it to the visitor
        _LOG.exception("start-up warm-up failed (the first page will import on its own)")
    finally:
        timings["total"] = time.perf_counter() - t0
        _DONE.set()


def start() -> None:
    """Start the warm-up thread (once per process)."""
    global _STARTED
    if not _STARTED:
        _STARTED = True
        threading.Thread(target=warm, name="dashboard-warm-up", daemon=True).start()


def wait(timeout: float = 120.0) -> None:
    """Block until a started warm-up is over (at once if none was started)."""
    if _STARTED:
        _DONE.wait(timeout)


@contextlib.asynccontextmanager
async def lifespan(_app):
    """`st.App` lifespan: start the warm-up and serve at once (the health check does not wait)."""
    start()
    yield
