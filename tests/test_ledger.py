"""The budget ledger: refusal charges nothing, repeats are free, rows are append-only, concurrent
processes never overspend, a release killed after its charge's commit stays charged (one killed
inside its one-commit transaction charges and shows nothing), tampering is detected."""
from __future__ import annotations

import json
import math
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
    assert ei.value.which == "dataset"
    assert "costs ε 0.5" in msg and "only ε 0.4 of the dataset budget (1)" in msg and "Nothing was spent" in msg
    assert "Choose ε 0.4 or less" in msg and "ask the data owner" in msg
    after = lg.entries()
    assert after[:len(before)] == before and [e["kind"] for e in after[len(before):]] == ["refusal"]
    assert after[-1]["epsilon"] == 0 and json.loads(after[-1]["payload"])["which"] == "dataset"
    assert lg.state("toy", "ann").spent == pytest.approx(0.6)
    # another analyst gets no fresh budget: the dataset's is shared
    with pytest.raises(BudgetExceeded) as ei:
        release(CountQuery(), cohort, 0.5, lg, "bea")
    assert ei.value.which == "dataset"
    assert [e["kind"] for e in lg.entries(analyst="bea")] == ["refusal"]
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
    # another analyst asking the same question gets the stored release, free, and the audit says so
    e = release(HistogramQuery(column="g"), cohort, 0.3, lg2, "bob")
    assert e.cached and e.values == a.values and e.analyst == "bob"
    assert lg2.state("toy", "bob").spent == 0.0
    assert [r["kind"] for r in lg2.entries(analyst="bob")] == ["served"]
    release(HistogramQuery(column="g"), cohort, 0.3, lg2, "bob")          # served once is recorded once
    assert [r["kind"] for r in lg2.entries(analyst="bob")] == ["served"]
    # a different epsilon is a different release and is charged
    d = release(HistogramQuery(column="g"), cohort, 0.2, lg2, "ann")
    assert not d.cached
    assert lg2.state("toy", "ann").spent == pytest.approx(0.5)
    assert lg2.dataset_state("toy").spent == pytest.approx(0.5)


def test_failed_measurement_stays_charged(tmp_path, monkeypatch):
    import privacy.release as R
    cohort = prepare(toy_frame(100), toy_schema(budget=1.0))
    lg = BudgetLedger(tmp_path / "l.sqlite")

    def boom(plan, prepared):      # the OpenDP invocation, after the reservation
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(R, "measure", boom)
    with pytest.raises(ReleaseError, match="failed after its cost was charged") as ei:
        release(CountQuery(), cohort, 0.25, lg, "ann")
    assert "disk on fire" not in str(ei.value)             # the measurement's own words may depend on the data
    assert ei.value.owner_detail == "RuntimeError: disk on fire"
    assert _kinds(lg) == ["dataset", "reserve", "failure"]
    assert json.loads(lg.entries()[-1]["payload"]) == {"error": "RuntimeError: disk on fire"}   # owner's audit
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
    lg.reserve(dataset="toy", analyst="ann", release_key="k", epsilon=0.5, delta=0.0, mechanism="laplace", query="q",
               default_total=1.0)
    lg.close()
    db = sqlite3.connect(path)
    for sql in ("UPDATE ledger SET epsilon = 0 WHERE kind = 'reserve'", "DELETE FROM ledger WHERE seq = 2",
                "DELETE FROM ledger", "UPDATE ledger SET hash = 'x'"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()
    lg = BudgetLedger(path)
    assert lg.state("toy", "ann").spent == 0.5 and lg.verify() == []


# ----------------------------------------------------------- analysts racing on one dataset budget
RACE_ATTEMPTS, RACE_BUDGET, RACE_ALLOWANCE, RACE_EPS = 12, 1.0, 0.3, 0.05


def _worker(spec: dict) -> subprocess.Popen:
    """A racing process: `python -m tests.race_worker`, so it cannot inherit a test's __main__."""
    return subprocess.Popen([sys.executable, "-m", "tests.race_worker", json.dumps(spec)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline().strip()
    if line != "ready":
        _, err = proc.communicate(timeout=60)
        pytest.fail(f"worker did not start: {line!r} {err[-2000:]}")


@pytest.mark.parametrize("analysts", [2, 8])
def test_analysts_racing_never_exceed_dataset_budget_or_allowances(tmp_path, analysts):
    path = str(tmp_path / "race.sqlite")
    lg = BudgetLedger(path)
    lg.set_dataset_budget("toy", RACE_BUDGET, actor="test owner")
    for w in range(analysts):
        lg.set_allowance("toy", f"racer{w}", RACE_ALLOWANCE, actor="test owner")
    lg.close()
    go = tmp_path / "go"
    procs = [_worker({"ledger": path, "go": str(go), "analyst": f"racer{w}", "wid": w, "attempts": RACE_ATTEMPTS,
                      "eps": RACE_EPS, "budget": RACE_BUDGET}) for w in range(analysts)]
    try:
        for p in procs:
            _ready(p)
        t0 = time.monotonic()
        go.touch()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err[-2000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    elapsed = time.monotonic() - t0
    totals = Counter()
    for o in outs:
        totals.update(o["outcomes"])
    errors = [k for k in totals if k.startswith("error")]
    assert not errors, errors

    lg = BudgetLedger(path)
    rows = lg.entries()
    reserves = [r for r in rows if r["kind"] == "reserve"]
    results_rows = [r for r in rows if r["kind"] == "result"]
    spent = sum(r["epsilon"] for r in reserves)
    per_analyst = Counter()
    for r in reserves:
        per_analyst[r["analyst"]] += r["epsilon"]
    by_seq = {r["seq"]: r for r in reserves}
    orphans = [r for r in results_rows
               if int(r["actor"]) not in by_seq or by_seq[int(r["actor"])]["release_key"] != r["release_key"]]
    double = [k for k, n in Counter(r["release_key"] for r in reserves).items() if n > 1]
    unfinished = set(by_seq) - {int(r["actor"]) for r in results_rows}
    refusals = [r for r in rows if r["kind"] == "refusal"]
    # identical questions by different analysts: one value, charged once
    shared: dict[str, list] = {}
    askers = Counter()
    for o in outs:
        for key, vals in o["shared"].items():
            assert shared.setdefault(key, vals) == vals, "an identical release got fresh noise"
            askers[key] += 1
    overspend = max(spent - RACE_BUDGET, 0)
    print(f"\nrace: {analysts} analysts (processes) x {RACE_ATTEMPTS} attempts = {analysts * RACE_ATTEMPTS} releases "
          f"in {elapsed:.1f}s; charged {totals['charged']}, cached {totals['cached']}, refused (dataset) "
          f"{totals['refused dataset']}, refused (allowance) {totals['refused allowance']}; dataset spent "
          f"{spent:.6f} of {RACE_BUDGET}; overspend {overspend:.3g}; max analyst spent "
          f"{max(per_analyst.values()):.6f} of allowance {RACE_ALLOWANCE}; shared questions {len(shared)} (one value "
          f"each); keys charged twice {len(double)}; verify problems {len(lg.verify())}")
    assert sum(totals.values()) == analysts * RACE_ATTEMPTS
    assert spent <= RACE_BUDGET + 1e-9                                 # the dataset never overspent
    assert all(v <= RACE_ALLOWANCE + 1e-9 for v in per_analyst.values())  # nor any allowance
    assert totals["charged"] == len(reserves)
    assert len(refusals) == totals["refused dataset"] + totals["refused allowance"]
    assert lg.dataset_state("toy").spent == pytest.approx(spent)
    if analysts * RACE_ALLOWANCE > RACE_BUDGET:   # the dataset budget binds and really ran out
        assert totals["refused dataset"] > 0 and spent > RACE_BUDGET - RACE_EPS - 1e-3
    else:                                          # the allowances bind
        assert totals["refused allowance"] > 0 and totals["refused dataset"] == 0
        assert all(v > RACE_ALLOWANCE - RACE_EPS - 1e-3 for v in per_analyst.values())
    assert max(askers.values()) == analysts       # the first shared question reached every analyst
    assert all(len(v) for v in shared.values())
    assert not orphans and not unfinished and not double
    assert len(results_rows) == len(reserves)
    assert lg.verify() == []


# --------------------------------------------------------------------------- SIGKILL mid-release
KILL_EPS = 0.4


def _killed_mid_measurement(tmp_path, path_kind: str) -> tuple[str, BudgetLedger]:
    path, ready = str(tmp_path / "kill.sqlite"), tmp_path / "ready"
    child = _worker({"mode": "kill", "ledger": path, "ready_file": str(ready), "analyst": "kim", "eps": KILL_EPS,
                     "path": path_kind})
    deadline = time.monotonic() + 600
    while not ready.exists():
        assert child.poll() is None and time.monotonic() < deadline, "child never reached the measurement"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL
    lg = BudgetLedger(path)
    assert lg.verify() == []
    return path, lg


def _retry(path: str) -> tuple[dict, BudgetLedger]:
    retry = _worker({"mode": "retry", "ledger": path, "analyst": "kim", "eps": KILL_EPS})
    out, err = retry.communicate(timeout=600)
    assert retry.returncode == 0, err[-2000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert not got["cached"] and len(got["values"]) == 5
    return got, BudgetLedger(path)


def test_sigkill_between_reserve_and_store_leaves_consistent_ledger(tmp_path):
    """Row-level path: the charge is committed before the measurement, so it stays."""
    path, lg = _killed_mid_measurement(tmp_path, "rows")
    assert _kinds(lg) == ["dataset", "reserve"]          # reserved, never stored
    key = lg.entries()[1]["release_key"]
    assert lg.stored_result(key) is None
    assert lg.state("toy", "kim").spent == pytest.approx(KILL_EPS)   # the reservation counts
    lg.close()

    got, lg = _retry(path)
    rows = lg.entries()
    print(f"\nkill: child SIGKILLed between reserve and store; ledger rows after kill: dataset, reserve; "
          f"verify problems 0; retry in a new process charged again (cached={got['cached']}) after "
          f"{got['seconds']:.2f}s; spent now {lg.state('toy', 'kim').spent:g}; kinds {[r['kind'] for r in rows]}")
    assert [r["kind"] for r in rows] == ["dataset", "reserve", "reserve", "result"]
    assert rows[3]["actor"] == str(rows[2]["seq"]) and rows[2]["release_key"] == rows[3]["release_key"] == key
    assert lg.state("toy", "kim").spent == pytest.approx(2 * KILL_EPS)
    assert got["remaining"] == pytest.approx(1.0 - 2 * KILL_EPS)
    assert lg.verify() == []


def test_sigkill_inside_a_one_commit_release_charges_and_shows_nothing(tmp_path):
    """Engine-aggregate path: the charge and the result are one transaction, killed while the
    measurement holds the write lock. Nothing was shown, so nothing is charged; the lock dies with
    the process, and the next session's release is charged once and stored."""
    path, lg = _killed_mid_measurement(tmp_path, "aggregates")
    assert _kinds(lg) == [] and lg.state("toy", "kim", default_total=1.0).spent == 0.0
    lg.close()

    got, lg = _retry(path)
    rows = lg.entries()
    assert [r["kind"] for r in rows] == ["dataset", "reserve", "result"]
    assert rows[2]["actor"] == str(rows[1]["seq"])
    assert lg.state("toy", "kim").spent == pytest.approx(KILL_EPS)
    assert got["remaining"] == pytest.approx(1.0 - KILL_EPS)
    assert got["seconds"] < 5          # no in-flight reservation to wait for
    assert lg.verify() == []


# ------------------------------------------------------------------------------------ tampering
def _populated(path: Path) -> None:
    lg = BudgetLedger(path)
    lg.set_budget("toy", "ann", 1.0)
    for i, eps in enumerate((0.1, 0.2, 0.3)):
        r = lg.reserve(dataset="toy", analyst="ann", release_key=f"k{i}", epsilon=eps, delta=0.0,
                       mechanism="laplace", query=f"q{i}", default_total=1.0)
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
        "VALUES ('2030-01-01', 'budget', 'toy', 'ann', 100, 0, 'data owner', 'x', 'y')"), "row 9"),
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
