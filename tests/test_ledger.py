"""The budget ledger: refusal charges nothing, repeats are free, rows are append-only, concurrent
processes never overspend, a killed release stays charged, tampering is detected."""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from data.prepare import prepare
from privacy.ledger import BudgetExceeded, BudgetLedger, Reservation
from privacy.queries import CountQuery, HistogramQuery, MeanQuery
from privacy.release import ReleaseError, release
from tests.conftest import toy_frame, toy_schema

ROOT = Path(__file__).resolve().parents[1]
SPAWN = mp.get_context("spawn")


def _kinds(lg: BudgetLedger) -> list[str]:
    return [e["kind"] for e in lg.entries()]


# ------------------------------------------------------------------------------ refusal & repeats
def test_overspend_refused_with_nothing_charged(tmp_path):
    cohort = prepare(toy_frame(300), toy_schema(budget=1.0))
    lg = BudgetLedger(tmp_path / "l.sqlite")
    release(HistogramQuery(column="g"), cohort, 0.6, lg, "ann")
    before = lg.entries()
    with pytest.raises(BudgetExceeded) as ei:
        release(MeanQuery(column="x"), cohort, 0.5, lg, "ann")
    msg = str(ei.value)
    assert "costs epsilon 0.5" in msg and "only 0.4 of 1 remains" in msg and "Nothing was spent" in msg
    assert lg.entries() == before                      # not a single row appended
    assert lg.state("toy", "ann").spent == pytest.approx(0.6)
    # a first-ever release above the default budget: even the default-budget row is rolled back
    with pytest.raises(BudgetExceeded):
        release(CountQuery(), cohort, 1.5, lg, "bea")
    assert lg.entries(analyst="bea") == []
    # exactly the remainder is still allowed
    release(MeanQuery(column="x"), cohort, 0.4, lg, "ann")
    assert lg.state("toy", "ann").remaining == pytest.approx(0.0, abs=1e-9)
    assert lg.verify() == []


def test_cached_repeats_cost_nothing_across_sessions(tmp_path):
    cohort = prepare(toy_frame(300), toy_schema(budget=1.0))
    path = tmp_path / "l.sqlite"
    lg = BudgetLedger(path)
    a = release(HistogramQuery(column="g"), cohort, 0.3, lg, "ann")
    spent = lg.state("toy", "ann").spent
    n_rows = len(lg.entries())
    b = release(HistogramQuery(column="g"), cohort, 0.3, lg, "ann")
    lg.close()
    lg2 = BudgetLedger(path)                             # a new session on the same file
    c = release(HistogramQuery(column="g"), cohort, 0.3, lg2, "ann")
    assert not a.cached and b.cached and c.cached
    assert a.values == b.values == c.values and a.ci_low == c.ci_low
    assert lg2.state("toy", "ann").spent == spent == pytest.approx(0.3)
    assert len(lg2.entries()) == n_rows                  # repeats write nothing
    assert c.remaining == pytest.approx(0.7)
    # a different epsilon, mechanism or analyst is a different release and is charged
    d = release(HistogramQuery(column="g"), cohort, 0.2, lg2, "ann")
    e = release(HistogramQuery(column="g"), cohort, 0.3, lg2, "bob")
    assert not d.cached and not e.cached
    assert lg2.state("toy", "ann").spent == pytest.approx(0.5)
    assert lg2.state("toy", "bob").spent == pytest.approx(0.3)


def test_failed_measurement_stays_charged(tmp_path, monkeypatch):
    import privacy.measurements as M
    cohort = prepare(toy_frame(100), toy_schema(budget=1.0))
    lg = BudgetLedger(tmp_path / "l.sqlite")

    def boom(self, cohort, alpha=0.05):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(M.Plan, "run", boom)
    with pytest.raises(ReleaseError, match="disk on fire"):
        release(CountQuery(), cohort, 0.25, lg, "ann")
    assert _kinds(lg) == ["budget", "reserve", "failure"]
    assert lg.state("toy", "ann").spent == pytest.approx(0.25)
    monkeypatch.undo()
    r = release(CountQuery(), cohort, 0.25, lg, "ann")   # a retry is a new, charged release
    assert not r.cached and lg.state("toy", "ann").spent == pytest.approx(0.5)
    assert lg.verify() == []


# ----------------------------------------------------------------------------------- append-only
def test_rows_cannot_be_updated_or_deleted(tmp_path):
    path = tmp_path / "l.sqlite"
    lg = BudgetLedger(path)
    lg.set_budget("toy", "ann", 1.0)
    lg.reserve(dataset="toy", analyst="ann", release_key="k", epsilon=0.5, delta=0.0, mechanism="laplace", query="q")
    lg.close()
    db = sqlite3.connect(path)
    for sql in ("UPDATE ledger SET epsilon = 0 WHERE kind = 'reserve'", "DELETE FROM ledger WHERE seq = 2",
                "DELETE FROM ledger", "UPDATE ledger SET hash = 'x'"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()
    lg = BudgetLedger(path)
    assert lg.state("toy", "ann").spent == 0.5 and lg.verify() == []


# ------------------------------------------------------------------------- 8 processes, 1 budget
RACE_PROCS, RACE_ATTEMPTS, RACE_BUDGET, RACE_EPS = 8, 12, 1.0, 0.05


def _race_worker(path: str, wid: int, ready, go, out) -> None:
    from data.prepare import prepare
    from privacy.ledger import BudgetExceeded, BudgetLedger
    from privacy.queries import CountQuery, HistogramQuery, MeanQuery
    from privacy.release import release
    from tests.conftest import toy_frame, toy_schema

    cohort = prepare(toy_frame(200), toy_schema(budget=RACE_BUDGET))
    lg = BudgetLedger(path)
    queries = [CountQuery(), HistogramQuery(column="g"), MeanQuery(column="x")]
    res = Counter()
    ready.put(wid)  # imported and set up: wait for the others so the releases really race
    go.wait(600)
    for i in range(RACE_ATTEMPTS):
        if i % 4 == 0:   # the same release in every process: charged once, then served from the ledger
            q, eps = queries[(i // 4) % 3], RACE_EPS
        else:            # a release of its own (distinct epsilon -> distinct key)
            q, eps = queries[i % 3], RACE_EPS + 1e-6 * (wid * RACE_ATTEMPTS + i + 1)
        try:
            r = release(q, cohort, eps, lg, "racer")
            res["cached" if r.cached else "charged"] += 1
        except BudgetExceeded:
            res["refused"] += 1
        except Exception as e:  # anything else is a failure of the test
            res[f"error {type(e).__name__}: {e}"] += 1
    lg.close()
    out.put((wid, dict(res)))


def _get(q, procs, timeout: float):
    """q.get(), but fail at once if a worker died instead of waiting out the timeout."""
    import queue
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead, f"a worker process died (exit codes {dead})"
            assert time.monotonic() < deadline, "workers timed out"


def test_eight_processes_never_overspend(tmp_path):
    path = str(tmp_path / "race.sqlite")
    BudgetLedger(path).close()
    ready, go, out = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue()
    procs = [SPAWN.Process(target=_race_worker, args=(path, w, ready, go, out)) for w in range(RACE_PROCS)]
    for p in procs:
        p.start()
    results = {}
    try:
        for _ in procs:
            _get(ready, procs, 600)
        t0 = time.monotonic()
        go.set()
        for _ in procs:
            wid, res = _get(out, procs, 600)
            results[wid] = res
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    elapsed = time.monotonic() - t0  # the racing part only
    totals = Counter()
    for res in results.values():
        totals.update(res)
    errors = [k for k in totals if k.startswith("error")]
    assert not errors, errors

    lg = BudgetLedger(path)
    rows = lg.entries()
    reserves = [r for r in rows if r["kind"] == "reserve"]
    results_rows = [r for r in rows if r["kind"] == "result"]
    total = lg.state("toy", "racer").total
    spent = sum(r["epsilon"] for r in reserves)
    by_seq = {r["seq"]: r for r in reserves}
    orphans = [r for r in results_rows
               if int(r["actor"]) not in by_seq or by_seq[int(r["actor"])]["release_key"] != r["release_key"]]
    double = [k for k, n in Counter(r["release_key"] for r in reserves).items() if n > 1]
    unfinished = set(by_seq) - {int(r["actor"]) for r in results_rows}
    budget_rows = [r for r in rows if r["kind"] == "budget"]
    print(f"\nrace: {RACE_PROCS} processes x {RACE_ATTEMPTS} attempts = {RACE_PROCS * RACE_ATTEMPTS} releases "
          f"attempted in {elapsed:.1f}s; charged {totals['charged']}, cached {totals['cached']}, "
          f"refused {totals['refused']}; reserved epsilon {spent:.6f} of budget {total}; "
          f"overspend {max(spent - total, 0):.3g}; results without their reserve {len(orphans)}; "
          f"keys charged twice {len(double)}; reserves without result {len(unfinished)}; "
          f"budget rows {len(budget_rows)}; verify problems {len(lg.verify())}")
    assert sum(totals.values()) == RACE_PROCS * RACE_ATTEMPTS
    assert spent <= total + 1e-9                          # never overspent
    assert totals["charged"] == len(reserves)             # each charged release has exactly its reserve row
    assert totals["refused"] > 0 and spent > total - RACE_EPS - 1e-3   # the budget really ran out
    assert not orphans and not unfinished and not double
    assert len(results_rows) == len(reserves)
    assert len(budget_rows) == 1                          # the default budget recorded once, not per process
    assert lg.verify() == []


# --------------------------------------------------------------------------- SIGKILL mid-release
KILL_EPS = 0.4


def _killed_child(path: str, ready: str) -> None:
    import privacy.measurements as M
    from data.prepare import prepare
    from privacy.ledger import BudgetLedger
    from privacy.queries import HistogramQuery
    from privacy.release import release
    from tests.conftest import toy_frame, toy_schema

    def stuck(self, cohort, alpha=0.05):  # runs after the reserve row is committed, before the result
        Path(ready).write_text(str(os.getpid()))
        time.sleep(120)

    M.Plan.run = stuck
    cohort = prepare(toy_frame(200), toy_schema(budget=1.0))
    release(HistogramQuery(column="g"), cohort, KILL_EPS, BudgetLedger(path), "kim")


def _retry_child(path: str, out) -> None:
    import privacy.ledger as L
    from data.prepare import prepare
    from privacy.queries import HistogramQuery
    from privacy.release import release
    from tests.conftest import toy_frame, toy_schema

    L.IN_FLIGHT_WAIT_S = 0.5  # don't wait the default 30 s for the dead process's result
    cohort = prepare(toy_frame(200), toy_schema(budget=1.0))
    t = time.monotonic()
    r = release(HistogramQuery(column="g"), cohort, KILL_EPS, L.BudgetLedger(path), "kim")
    out.put({"cached": r.cached, "values": r.values, "remaining": r.remaining, "seconds": time.monotonic() - t})


def test_sigkill_between_reserve_and_store_leaves_consistent_ledger(tmp_path):
    path, ready = str(tmp_path / "kill.sqlite"), tmp_path / "ready"
    child = SPAWN.Process(target=_killed_child, args=(path, str(ready)))
    child.start()
    deadline = time.monotonic() + 600
    while not ready.exists():
        assert child.is_alive() and time.monotonic() < deadline, "child never reached the measurement"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL

    lg = BudgetLedger(path)
    assert lg.verify() == []
    assert _kinds(lg) == ["budget", "reserve"]          # reserved, never stored
    key = lg.entries()[1]["release_key"]
    assert lg.stored_result(key) is None
    assert lg.state("toy", "kim").spent == pytest.approx(KILL_EPS)   # the reservation counts
    lg.close()

    out = SPAWN.Queue()
    retry = SPAWN.Process(target=_retry_child, args=(path, out))
    retry.start()
    got = _get(out, [retry], 600)
    retry.join(10)
    assert retry.exitcode == 0
    lg = BudgetLedger(path)
    rows = lg.entries()
    print(f"\nkill: child SIGKILLed between reserve and store; ledger rows after kill: budget, reserve; "
          f"verify problems 0; retry in a new process charged again (cached={got['cached']}) after "
          f"{got['seconds']:.2f}s; spent now {lg.state('toy', 'kim').spent:g}; kinds {[r['kind'] for r in rows]}")
    assert not got["cached"] and len(got["values"]) == 5
    assert [r["kind"] for r in rows] == ["budget", "reserve", "reserve", "result"]
    assert rows[3]["actor"] == str(rows[2]["seq"]) and rows[2]["release_key"] == rows[3]["release_key"] == key
    assert lg.state("toy", "kim").spent == pytest.approx(2 * KILL_EPS)
    assert got["remaining"] == pytest.approx(1.0 - 2 * KILL_EPS)
    assert lg.verify() == []


# ------------------------------------------------------------------------------------ tampering
def _populated(path: Path) -> None:
    lg = BudgetLedger(path)
    lg.set_budget("toy", "ann", 1.0)
    for i, eps in enumerate((0.1, 0.2, 0.3)):
        r = lg.reserve(dataset="toy", analyst="ann", release_key=f"k{i}", epsilon=eps, delta=0.0,
                       mechanism="laplace", query=f"q{i}")
        assert isinstance(r, Reservation)
        lg.store_result(r, "toy", "ann", {"values": [i]})
    assert lg.verify() == []
    lg.close()


def _drop_triggers(db: sqlite3.Connection) -> None:
    db.execute("DROP TRIGGER ledger_no_update")
    db.execute("DROP TRIGGER ledger_no_delete")


def _swap(db: sqlite3.Connection, a: int, b: int) -> None:
    cols = [r[1] for r in db.execute("PRAGMA table_info(ledger)") if r[1] != "seq"]
    ra = db.execute(f"SELECT {', '.join(cols)} FROM ledger WHERE seq=?", (a,)).fetchone()
    rb = db.execute(f"SELECT {', '.join(cols)} FROM ledger WHERE seq=?", (b,)).fetchone()
    sets = ", ".join(f"{c}=?" for c in cols)
    db.execute(f"UPDATE ledger SET {sets} WHERE seq=?", (*rb, a))
    db.execute(f"UPDATE ledger SET {sets} WHERE seq=?", (*ra, b))


TAMPER = {
    "edit epsilon": (lambda db: db.execute("UPDATE ledger SET epsilon = 0.0001 WHERE seq = 2"), "row 2: content"),
    "delete a row": (lambda db: db.execute("DELETE FROM ledger WHERE seq = 4"), "row 4: missing"),
    "swap two rows": (lambda db: _swap(db, 2, 4), "row 2: content"),
    "delete the last rows": (lambda db: db.execute("DELETE FROM ledger WHERE seq >= 6"), "missing at the end"),
    "forge a budget row": (lambda db: db.execute(
        "INSERT INTO ledger (ts, kind, dataset, analyst, epsilon, delta, actor, prev_hash, hash) "
        "VALUES ('2030-01-01', 'budget', 'toy', 'ann', 100, 0, 'data owner', 'x', 'y')"), "row 8"),
}


@pytest.mark.parametrize("how", list(TAMPER))
def test_tampering_is_detected(tmp_path, how):
    path = tmp_path / "t.sqlite"
    _populated(path)
    edit, expected = TAMPER[how]
    db = sqlite3.connect(path, isolation_level=None)
    _drop_triggers(db)
    edit(db)
    db.close()

    lg = BudgetLedger(path)
    problems = lg.verify()
    lg.close()
    assert problems and any(expected in p for p in problems), problems

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cp = subprocess.run([sys.executable, "-m", "privacy", "ledger", "--ledger", str(path), "--verify"],
                        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    assert expected in cp.stdout and "Traceback" not in cp.stderr
    assert len(cp.stderr.strip().splitlines()) == 1 and "problem" in cp.stderr
    cj = subprocess.run([sys.executable, "-m", "privacy", "ledger", "--ledger", str(path), "--verify", "--json"],
                        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert cj.returncode == 1
    doc = json.loads(cj.stdout)
    assert doc["ok"] is False and doc["problems"] == problems
