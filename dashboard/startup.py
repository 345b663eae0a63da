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
import json
import logging
import os
import threading
import time

_LOG = logging.getLogger(__name__)
_DONE = threading.Event()
_STARTED = False
# What the first page (sidebar + Explore) imports, heaviest first; dashboard.services also starts
# the demo cohort's build (services.prebuild) on import.
# streamlit.emojis: st.set_page_config's emoji check compiles its big pattern on first use (~0.06 s).
WARM_MODULES = ("dashboard.services", "dashboard.widgets", "dashboard.uploads", "dashboard.charts",
                "dashboard.survival_chart", "privacy.measurements", "privacy.release", "privacy.reports",
                "privacy.engine", "dashboard.shell", "streamlit.emojis")
timings: dict[str, float] = {}      # module -> seconds
# DP_STARTUP_LOG=path: append one JSON line per start-up event (wall-clock time.time()): the warm-up's
# start and end, the demo cohort built, each of the first runs' start, warm-up wait and end. For the
# cold-start benchmark's server/browser split (benchmarks.browser_latency); nothing else reads it.
_LOG_PATH = os.environ.get("DP_STARTUP_LOG")
_RUNS_LOGGED = 3


def event(name: str, **extra) -> None:
    """Record a start-up event in DP_STARTUP_LOG (no-op without it)."""
    if _LOG_PATH:
        try:
            with open(_LOG_PATH, "a") as f:
                f.write(json.dumps({"event": name, "t": time.time(), **extra}) + "\n")
        except OSError:
            pass


def run_event(name: str) -> None:
    """`event` for the first few script runs of the process (then nothing, so reruns cost nothing)."""
    global _RUNS_LOGGED
    if _LOG_PATH and _RUNS_LOGGED > 0:
        if name == "run end":
            _RUNS_LOGGED -= 1
        event(name)


def warm() -> None:
    """Import WARM_MODULES (in this thread), then mark the warm-up done."""
    import importlib

    t0 = time.perf_counter()
    event("warm-up start")
    try:
        for name in WARM_MODULES:
            t = time.perf_counter()
            importlib.import_module(name)
            timings[name] = time.perf_counter() - t
        _streamlit_first_element_check()
        if _LOG_PATH:
            from dashboard import services
            for key, built in list(services._PREBUILT.items()):
                built.add_done_callback(lambda _f, key=key: event("cohort built", cohort=list(key)))
    except Exception:              # noqa: BLE001 - the page's own import reports it to the visitor
        _LOG.exception("start-up warm-up failed (the first page will import on its own)")
    finally:
        timings["total"] = time.perf_counter() - t0
        event("warm-up end", seconds=timings)
        _DONE.set()


def _streamlit_first_element_check() -> None:
    """Streamlit checks once per process, on the first element drawn, whether it runs in a REPL (to
    print a usage warning; none is printed under a server). The check walks the whole call stack with
    `inspect.stack()`, 0.05-0.15 s from a script run's deep stack: run it here, from a shallow one.
    A Streamlit without this private helper is left alone."""
    try:
        from streamlit import delta_generator
        check = getattr(delta_generator, "_maybe_print_use_warning", None)
        if callable(check):
            check()
    except Exception:              # noqa: BLE001 - purely an optimisation
        pass


def start() -> None:
    """Start the warm-up thread (once per process)."""
    global _STARTED
    if not _STARTED:
        _STARTED = True
        threading.Thread(target=warm, name="dashboard-warm-up", daemon=True).start()


def wait(timeout: float = 120.0) -> None:
    """Block until a started warm-up is over (at once if none was started)."""
    run_event("run start")
    if _STARTED:
        _DONE.wait(timeout)
    run_event("run warm")


@contextlib.asynccontextmanager
async def lifespan(_app):
    """`st.App` lifespan: start the warm-up and serve at once (the health check does not wait)."""
    start()
    yield
