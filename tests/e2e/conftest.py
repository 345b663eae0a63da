"""Real-browser fixtures: system Chromium (never `playwright install`) against `streamlit run`.

Patterns from /work/shared/TESTING_GUIDE.md: launch args for Debian's chromium, a server per role on
a free 127.0.0.1 port with a temporary ledger, `wait_for_app_run`, full-page screenshots.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 900}


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's chromium; skip them (with the reason) where it is missing."""
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT, "accept_downloads": True}


# ------------------------------------------------------------------------------------ server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class StreamlitServer:
    def __init__(self, env: dict[str, str], log: Path, unset: tuple[str, ...] = ()):
        self.port = _free_port()
        if _port_taken(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env={**{k: v for k, v in os.environ.items() if k not in unset}, **env},
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)      # the server's own process group only
                self.proc.wait(wait)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def _launch(tmp_path_factory, name: str, unset: tuple[str, ...] = (), **extra_env: str) -> StreamlitServer:
    d = tmp_path_factory.mktemp(name)
    env = {"DP_LEDGER": str(d / "ledger.sqlite"), "DP_DEMO_ROWS": "5000", "DP_UPLOADS": str(d / "uploads"),
           **extra_env}
    return StreamlitServer(env, d / "streamlit.log", unset)


def _serve(tmp_path_factory, name: str, unset: tuple[str, ...] = (), **extra_env: str):
    srv = _launch(tmp_path_factory, name, unset, **extra_env)
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


# One server per role, each with its own temporary ledger, started only by the test that needs it:
# `--dist loadgroup` does not group tests under pytest 9.2 + xdist 3.8 (pytest-xdist#1386), so the
# two browser tests may run on different workers.
@pytest.fixture(scope="module")
def owner_server(tmp_path_factory):
    # DP_ROLE/DP_ANALYST unset and no secrets: the single local data owner ("local owner").
    yield from _serve(tmp_path_factory, "owner", unset=("DP_ROLE", "DP_ANALYST"))


@pytest.fixture(scope="module")
def analyst_server(tmp_path_factory):
    yield from _serve(tmp_path_factory, "analyst", DP_ROLE="analyst", DP_ANALYST="ana")


@pytest.fixture(autouse=True)
def _patient_timeouts(page: Page):
    """First loads fetch large frontend chunks (Plotly, DataFrame); under `pytest -n 2` on a small
    machine they can take several seconds."""
    page.set_default_timeout(30_000)
    expect.set_options(timeout=20_000)
    yield
    expect.set_options(timeout=None)       # back to Playwright's default for anything else


# ----------------------------------------------------------------------------------- helpers
def wait_for_app_run(page: Page, timeout: float = 30_000) -> None:
    """Wait until the rerun triggered by the last interaction has finished."""
    page.wait_for_timeout(250)
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
        state="attached", timeout=timeout)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=timeout)


def full_page_screenshot(page: Page, name: str) -> Path:
    """Streamlit scrolls inside stMain (and the sidebar): grow the viewport to the taller of the
    two, shoot, restore. The mouse is parked first so no hover tooltip covers the page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    old = page.viewport_size or VIEWPORT
    page.mouse.move(old["width"] - 5, 5)
    height = page.evaluate("""() => Math.max(...['stMain', 'stSidebarContent'].map(id =>
        document.querySelector(`[data-testid="${id}"]`)?.scrollHeight || 0))""")
    page.set_viewport_size({"width": old["width"], "height": max(int(height), old["height"])})
    page.wait_for_timeout(400)   # let Plotly relayout to the new size
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(old)
    return path
