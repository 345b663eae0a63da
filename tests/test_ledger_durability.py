"""Ledger durability order: a reservation commits without waiting for the disk, the result (or
failure) commit that precedes anything shown waits for it; a reservation survives a crash of the
process that made it; a served repeat is a synced commit."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from privacy.ledger import BudgetLedger
from privacy.queries import HistogramQuery
from privacy.release import release

ROOT = Path(__file__).resolve().parents[1]


def _commits(lg: BudgetLedger, run) -> list[tuple[str, list[str]]]:
    """(synchronous level in force, statements) of each transaction `run()` commits on `lg`."""
    seen: list[str] = []
    lg._db.set_trace_callback(seen.append)
    try:
        run()
    finally:
        lg._db.set_trace_callback(None)
    level, out, cur = "FULL", [], None
    for s in seen:
        up = s.strip().upper()
        if up.startswith("PRAGMA SYNCHRONOUS="):
            level = up.split("=", 1)[1]
        elif up.startswith("BEGIN"):
            cur = []
        elif up == "COMMIT" and cur is not None:
            out.append((level, cur))
            cur = None
        elif cur is not None:
            cur.append(up)
    return out


def _kinds(stmts: list[str]) -> set[str]:
    """The kinds of the ledger rows a transaction appended (the trace shows bound values)."""
    return {k for s in stmts if s.startswith("INSERT INTO LEDGER")
            for k in ("RESERVE", "RESULT", "SERVED", "FAILURE", "DATASET") if f"'{k}'" in s}


def test_result_commit_is_synced_and_reservation_is_not(toy_cohort, tmp_path):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.ensure_budget("toy", "ann", 5.0)
    q = HistogramQuery(column="g")
    commits = _commits(lg, lambda: release(q, toy_cohort, 0.5, lg, "ann"))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("NORMAL", {"RESERVE"}), ("FULL", {"RESULT"})]
    assert lg._db.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL again for every other write
    # A repeat by another analyst is served from the stored result in a synced commit.
    commits = _commits(lg, lambda: release(q, toy_cohort, 0.5, lg, "bob"))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("FULL", {"SERVED"})]


def test_failed_measurement_is_recorded_in_a_synced_commit(toy_cohort, tmp_path, monkeypatch):
    import privacy.release as rel_mod
    from privacy.release import ReleaseError

    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.ensure_budget("toy", "ann", 5.0)

    def broken(plan, prepared):
        raise RuntimeError("boom")

    monkeypatch.setattr(rel_mod, "measure", broken)

    def run():
        try:
            release(HistogramQuery(column="g"), toy_cohort, 0.5, lg, "ann")
        except ReleaseError:
            pass

    commits = _commits(lg, run)
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("NORMAL", {"RESERVE"}), ("FULL", {"FAILURE"})]
    assert lg.state("toy", "ann").spent == 0.5


def test_reservation_survives_a_crash_before_its_result(tmp_path):
    """The process reserves, then dies without closing the ledger or storing a result: the charge
    is in the file for every later session."""
    path = tmp_path / "l.sqlite"
    code = textwrap.dedent(f"""
        import os
        from privacy.ledger import BudgetLedger
        lg = BudgetLedger({str(path)!r})
        lg.ensure_budget("toy", "ann", 5.0)
        r = lg.reserve(dataset="toy", analyst="ann", release_key="k1", epsilon=0.75, delta=0.0,
                       mechanism="laplace", query="q")
        print(r.seq, flush=True)
        os._exit(3)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    lg = BudgetLedger(path)
    assert lg.state("toy", "ann").spent == 0.75
    rows = lg.entries("toy", kinds=("reserve",))
    assert [r["release_key"] for r in rows] == ["k1"] and json.loads(rows[0]["payload"])["rho"] > 0
    assert lg.verify() == []
