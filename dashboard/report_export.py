"""Export a report: one self-contained HTML file (Plotly embedded, no CDN) and PNG figures
(kaleido driving one Chromium session for all figures)."""
from __future__ import annotations

import asyncio
import atexit
import html
import io
import os
import threading
import zipfile


READING = ("Every number is a differentially private release: noise was added so that no single patient's "
           "record can be inferred. Each dot or bar is the released value; its line is a 95% interval, which "
           "contains the true value at least 95% of the time. Groups shown as 'not enough patients to "
           "estimate' had an interval covering (nearly) the whole public range, so no value is given.")


def report_html(figs: dict, title: str, note: str = "", rows: list[dict] | None = None,
                released_at: str = "", cohort: str = "") -> str:
    """One self-contained HTML file: title, date, cohort, a table of the statistics (epsilon,
    expected accuracy, ledger reference), how to read the intervals, then the figures."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left;vertical-align:top}th{background:#f4f4f4}</style></head><body>",
             f"<h1>{e(title)}</h1>"]
    facts = [x for x in (f"Cohort: {cohort}" if cohort else "", f"Released: {released_at}" if released_at else "", note)
             if x]
    parts += [f"<p>{e(x)}</p>" for x in facts]
    if rows:
        cols = list(rows[0])
        parts.append("<table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append(f"<h2>How to read this report</h2><p>{e(READING)}</p>")
    first = True
    for fig in figs.values():
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False))
        first = False
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ PNG export
PNG_WIDTH, PNG_HEIGHT = 1100, 500
START_TIMEOUT_S = 60.0        # launching Chromium and loading plotly.js in it
RENDER_TIMEOUT_S = 60.0       # one figure
IDLE_CLOSE_S = 300.0          # the warm browser is closed after this long without an export


class PngExportUnavailable(RuntimeError):
    """PNG export cannot run on this server (no Chromium, or it failed); the message is for the UI."""


def chromium_path() -> str | None:
    """The browser kaleido drives: `BROWSER_PATH` if set (it must be an executable), else what
    choreographer finds (a Chromium/Chrome on PATH such as Debian's /usr/bin/chromium, or a copy
    downloaded by `kaleido_get_chrome`). None when there is none."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    from choreographer.browsers.chromium import Chromium
    return Chromium.find_browser(skip_local=False)


def _no_browser_message() -> str:
    env = os.environ.get("BROWSER_PATH")
    where = f"BROWSER_PATH={env!r} is not an executable" if env else "no Chromium or Chrome was found on this server"
    return (f"PNG export is unavailable: it needs a Chromium browser on the server, and {where}. "
            "Ask the administrator to install it (Debian: apt-get install chromium) or to set BROWSER_PATH. "
            "The HTML report works without it.")


def _fig_dict(fig) -> dict:
    return fig if isinstance(fig, dict) else fig.to_dict()


class _BrowserSession:
    """One headless Chromium (through kaleido) rendering every figure of every PNG export of this
    process, one export at a time. Launching Chromium and loading plotly.js in it is most of the
    cost of an image (~2.5 s, against ~0.2 s per figure once open), so the browser is started on the
    first export and kept until IDLE_CLOSE_S without one (or process exit). A browser that died or
    hung is dropped and the export retried once with a fresh one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido = None
        self._timer: threading.Timer | None = None
        self._warming: threading.Thread | None = None
        atexit.register(self.close)

    # all below with self._lock held, except close()
    def _run(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _start(self, path: str) -> None:
        import kaleido

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="png-export-browser", daemon=True)
        self._thread.start()

        async def open_browser():
            # plotly.js from the plotly package (offline); no MathJax (the figures have no LaTeX,
            # and its default source is a CDN)
            k = kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT_S, mathjax=False, path=path)
            try:
                await k.open()
            except BaseException:
                await k.close()          # never leave a half-started Chromium behind
                raise
            return k

        self._kaleido = self._run(open_browser(), START_TIMEOUT_S)
        # at exit, close the browser BEFORE tempfile's finalizers remove its profile directory
        # (atexit runs handlers last-registered first; those finalizers register when it opens)
        atexit.unregister(self.close)
        atexit.register(self.close)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop, k = self._loop, self._kaleido
        self._loop = self._thread = self._kaleido = None
        if loop is None:
            return
        if k is not None:
            try:
                asyncio.run_coroutine_threadsafe(k.close(), loop).result(15)
            except Exception:  # noqa: BLE001  (a dead or hung browser: choreographer's watchdog kills it)
                pass
        loop.call_soon_threadsafe(loop.stop)

    def _render_all(self, dicts: list[dict], opts: dict) -> list[bytes]:
        async def render():
            return [await self._kaleido.calc_fig(d, opts=dict(opts)) for d in dicts]
        return self._run(render(), START_TIMEOUT_S + RENDER_TIMEOUT_S * len(dicts))

    def render(self, figs: list, opts: dict) -> list[bytes]:
        dicts = [_fig_dict(f) for f in figs]
        with self._lock:
            try:
                for attempt in (0, 1):
                    warm = self._kaleido is not None
                    try:
                        if not warm:
                            path = chromium_path()
                            if path is None:
                                raise PngExportUnavailable(_no_browser_message())
                            self._start(path)
                        return self._render_all(dicts, opts)
                    except PngExportUnavailable:
                        raise
                    except Exception as e:  # noqa: BLE001
                        self._stop()
                        if warm and attempt == 0:
                            continue      # the kept browser had died: once more with a fresh one
                        raise PngExportUnavailable(
                            f"PNG export failed: the browser that draws the figures did not work "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}). "
                            "The HTML report works without it.") from e
            finally:
                self._arm_idle_timer()

    def _arm_idle_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._kaleido is not None:
            timer = threading.Timer(IDLE_CLOSE_S, lambda: self._idle_close(timer))
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _idle_close(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._timer is timer:     # not re-armed by an export meanwhile
                self._stop()

    def prewarm(self) -> None:
        """Start the browser in the background if it is not open, so that a click on export
        finds it ready; does nothing while an export runs, and never raises (an export that then
        finds no browser says why)."""
        if self._kaleido is not None or self._warming is not None:
            return

        def run() -> None:
            try:
                if not self._lock.acquire(blocking=False):
                    return
                try:
                    if self._kaleido is None and (path := chromium_path()) is not None:
                        try:
                            self._start(path)
                        except Exception:  # noqa: BLE001
                            self._stop()
                    self._arm_idle_timer()
                finally:
                    self._lock.release()
            finally:
                self._warming = None

        # not a daemon: an exit during the launch waits for it, then closes the browser cleanly
        self._warming = threading.Thread(target=run, name="png-export-prewarm")
        self._warming.start()

    def close(self) -> None:
        """Close the kept browser (process exit, tests and benchmarks), after a pending prewarm."""
        warming = self._warming
        if warming is not None:
            warming.join(START_TIMEOUT_S)
        with self._lock:
            self._stop()

    @property
    def is_open(self) -> bool:
        return self._kaleido is not None


_SESSION = _BrowserSession()


def render_pngs(figs: list, width: int = PNG_WIDTH, height: int = PNG_HEIGHT) -> list[bytes]:
    """PNG bytes of each figure, all drawn in one browser session (kept warm between exports).
    Raises PngExportUnavailable with a message for the user when there is no working Chromium."""
    import plotly.io as pio
    opts = {"format": "png", "width": width, "height": height, "scale": pio.defaults.default_scale or 1}
    return _SESSION.render(list(figs), opts)


def prewarm_png_browser() -> None:
    """Open the PNG export browser in the background (e.g. when a report that can be exported is
    shown); it closes itself after IDLE_CLOSE_S without an export."""
    _SESSION.prewarm()


def close_png_browser() -> None:
    """Close the browser kept for PNG exports (it closes itself after IDLE_CLOSE_S anyway)."""
    _SESSION.close()


def figures_png_zip(figs: dict) -> bytes:
    """A zip of one PNG per figure ("<name>.png", 1100x500), rendered in one browser session."""
    pngs = render_pngs(list(figs.values()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, png in zip(figs, pngs):
            z.writestr(f"{name}.png", png)
    return buf.getvalue()
