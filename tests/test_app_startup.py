"""Server start-up warm-up (dashboard/startup.py): `streamlit run dashboard/app.py` serves an st.App
whose lifespan warms the app's imports and the demo cohort before the first visitor; the app's
script still runs the same shell (AppTest covers that in test_app.py)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"


def _py(code: str, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_streamlit_run_finds_the_app_with_its_lifespan():
    """`streamlit run dashboard/app.py` runs app.py's st.App (else no lifespan, no warm-up)."""
    from streamlit.web.server.app_discovery import discover_asgi_app
    found = discover_asgi_app(APP)
    assert found.is_asgi_app and found.app_name == "app"


def test_importing_the_server_module_is_light():
    """Imported as the server (module `app`, as `streamlit run` imports it), app.py defines the App
    and imports neither pandas nor OpenDP nor the cohorts: the server answers at once and the heavy
    work happens in the warm-up thread."""
    got = _py("import sys; sys.path.insert(0, 'dashboard'); import app; "
              "print(type(app.app).__name__, app.startup._STARTED, "
              "sorted(m for m in ('pandas', 'opendp', 'data.cohorts', 'dashboard.shell') if m in sys.modules))")
    assert got == "App False []"


def test_warm_up_imports_the_first_page_and_logs_its_events(tmp_path):
    log = tmp_path / "startup.jsonl"
    got = _py("import sys, json; from dashboard import startup; startup.wait(); startup.start(); startup.wait(60); "
              "print(json.dumps([startup._DONE.is_set(), all(m in sys.modules for m in startup.WARM_MODULES), "
              "'opendp' in sys.modules]))",
              env={"DP_STARTUP_LOG": str(log), "DP_DEMO_ROWS": "2000"})
    assert json.loads(got) == [True, True, True]
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    # the first wait() came before any warm-up (nothing started: it returned at once); the second waited
    assert events[:2] == ["run start", "run warm"] and "warm-up start" in events
    assert events.index("warm-up end") < len(events) - 1 and events[-1] == "run warm"


def test_wait_without_a_server_returns_at_once():
    from dashboard import startup
    if startup._STARTED:                 # another test of this worker started one: nothing to check
        pytest.skip("warm-up already started in this process")
    t = time.perf_counter()
    startup.wait(timeout=30)
    assert time.perf_counter() - t < 0.5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fresh_server_warms_up_before_any_visitor(tmp_path):
    """A fresh `streamlit run` server imports the app and builds the (big) demo cohort on its own,
    with no browser connected: the first visitor finds it done."""
    port, log = _free_port(), tmp_path / "startup.jsonl"
    env = {**{k: v for k, v in os.environ.items() if k not in ("DP_ROLE", "DP_ANALYST")},
           "DP_LEDGER": str(tmp_path / "ledger.sqlite"), "DP_UPLOADS": str(tmp_path / "uploads"),
           "DP_DEMO_ROWS": "100000", "DP_STARTUP_LOG": str(log)}
    with open(tmp_path / "streamlit.log", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, healthy, events = time.monotonic() + 90, False, []
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "streamlit.log").read_text()[-2000:]
            if not healthy:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                        healthy = r.read().decode().strip() == "ok"
                except OSError:
                    pass
            if log.exists():
                events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            names = [e["event"] for e in events]
            if healthy and "warm-up end" in names and "cohort built" in names:
                break
            time.sleep(0.2)
        names = [e["event"] for e in events]
        assert healthy and "warm-up end" in names and "cohort built" in names, names
        assert "run start" not in names          # no visitor: nothing ran the app's script
        built = next(e for e in events if e["event"] == "cohort built")
        assert built["cohort"] == ["prostate", 100000]
        assert "Traceback" not in (tmp_path / "streamlit.log").read_text()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass
