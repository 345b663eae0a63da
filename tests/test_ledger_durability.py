"""Ledger durability order. Noise over engine aggregates: the charge and its result (or failure)
are one synced commit. OpenDP's row-level path: the reservation commits without waiting for the
disk, the result (or failure) commit that precedes anything shown waits for it, and a reservation
survives a crash of the process that made it. A served repeat is a synced commit."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from privacy.engine import ROW_LEVEL, prepare_input
from privacy.ledger import BudgetLedger
from privacy.queries import CountQuery, HistogramQuery, MeanQuery
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


@pytest.fixture
def row_level(monkeypatch):
    """Force OpenDP's row-level measurement (the path whose charge commits before it runs)."""
    import privacy.release as rel_mod
    monkeypatch.setattr(rel_mod, "prepare_input", lambda plan, cohort: prepare_input(plan, cohort, ROW_LEVEL))


def _broken_measurement(monkeypatch):
    import privacy.release as rel_mod

    def broken(plan, prepared):
        raise RuntimeError("boom")
    monkeypatch.setattr(rel_mod, "measure", broken)


def _failing_release(cohort, lg):
    from privacy.release import ReleaseError
    with pytest.raises(ReleaseError, match="after its cost was charged") as e:
        release(HistogramQuery(column="g"), cohort, 0.5, lg, "ann")
    assert "RuntimeError: boom" in e.value.owner_detail


def test_engine_release_is_one_synced_commit(toy_cohort, tmp_path):
    """Noise over engine aggregates: the charge and its result are appended in ONE transaction,
    committed with synchronous=FULL before the release is returned."""
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.ensure_budget("toy", "ann", 5.0)
    q = HistogramQuery(column="g")
    commits = _commits(lg, lambda: release(q, toy_cohort, 0.5, lg, "ann"))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("FULL", {"RESERVE", "RESULT"})]
    reserve, result = lg.entries("toy", kinds=("reserve", "result"))
    assert result["actor"] == str(reserve["seq"]) and result["release_key"] == reserve["release_key"]
    # A repeat by another analyst is served from the stored result in a synced commit.
    commits = _commits(lg, lambda: release(q, toy_cohort, 0.5, lg, "bob"))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("FULL", {"SERVED"})]


def test_row_level_charge_commits_first_and_its_result_is_synced(toy_cohort, tmp_path, row_level):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.ensure_budget("toy", "ann", 5.0)
    q = HistogramQuery(column="g")
    commits = _commits(lg, lambda: release(q, toy_cohort, 0.5, lg, "ann"))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("NORMAL", {"RESERVE"}), ("FULL", {"RESULT"})]
    assert lg._db.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL again for every other write
    commits = _commits(lg, lambda: release(q, toy_cohort, 0.5, lg, "bob"))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("FULL", {"SERVED"})]


def test_failed_engine_measurement_is_charged_in_one_synced_commit(toy_cohort, tmp_path, monkeypatch):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.ensure_budget("toy", "ann", 5.0)
    _broken_measurement(monkeypatch)
    commits = _commits(lg, lambda: _failing_release(toy_cohort, lg))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("FULL", {"RESERVE", "FAILURE"})]
    assert lg.state("toy", "ann").spent == 0.5
    assert lg.stored_result(lg.entries("toy", kinds=("reserve",))[0]["release_key"]) is None


def test_failed_row_level_measurement_is_recorded_in_a_synced_commit(toy_cohort, tmp_path, monkeypatch, row_level):
    lg = BudgetLedger(tmp_path / "l.sqlite")
    lg.ensure_budget("toy", "ann", 5.0)
    _broken_measurement(monkeypatch)
    commits = _commits(lg, lambda: _failing_release(toy_cohort, lg))
    assert [(lvl, _kinds(st)) for lvl, st in commits] == [("NORMAL", {"RESERVE"}), ("FULL", {"FAILURE"})]
    assert lg.state("toy", "ann").spent == 0.5


def test_one_commit_release_returns_the_state_it_would_read(toy_cohort, tmp_path):
    """The budget state returned with a one-commit release (computed in the transaction, not
    re-read) equals what the ledger says afterwards, under both accountings."""
    for accounting, delta in (("pure", None), ("zcdp", 1e-6)):
        lg = BudgetLedger(tmp_path / f"{accounting}.sqlite")
        lg.set_dataset_budget("toy", 20.0, delta=delta, accounting=accounting, default_allowance=12.0, actor="owner")
        lg.set_allowance("toy", "ann", 8.0, actor="owner")
        for i, q in enumerate((HistogramQuery(column="g"), CountQuery(), MeanQuery(column="x"))):
            rel = release(q, toy_cohort, 0.3 + 0.1 * i, lg, "ann" if i != 1 else "bob")
            st = lg.state("toy", rel.analyst)
            assert rel.remaining == pytest.approx(st.remaining, rel=1e-12, abs=1e-12)
            assert rel.dataset_remaining == pytest.approx(st.dataset_remaining, rel=1e-12, abs=1e-12)
        assert 0 < lg.dataset_state("toy").remaining < 20.0 and lg.verify() == []


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


@pytest.fixture(scope="module")
def radiology():
    from data.cohorts import load_cohort
    from data.prepare import prepare
    frame, schema = load_cohort("radiology", rows=1500, seed=5)
    return prepare(frame, schema)


@pytest.mark.parametrize("path", ["aggregates", "rows"])
def test_report_commits(radiology, tmp_path, monkeypatch, path):
    """A report: one synced commit of its charge and all its results on the engine-aggregate path;
    its charge first, then its results synced, on OpenDP's row-level path; a failed measurement
    stays charged on both."""
    from privacy.release import ReleaseError, release_report
    from privacy.reports import radiology_report
    if path == "rows":
        import privacy.release as rel_mod
        monkeypatch.setattr(rel_mod, "prepare_input", lambda plan, cohort: prepare_input(plan, cohort, ROW_LEVEL))
    lg = BudgetLedger(tmp_path / "l.sqlite")
    items = radiology_report(radiology.schema)
    lg.ensure_budget(radiology.schema.dataset_id, "ann", 5.0)
    commits = _commits(lg, lambda: release_report("radiology-review", items, 0.5, radiology, lg, "ann"))
    expect = ([("FULL", {"RESERVE", "RESULT"})] if path == "aggregates"
              else [("NORMAL", {"RESERVE"}), ("FULL", {"RESULT"})])
    assert [(lvl, _kinds(st)) for lvl, st in commits] == expect
    assert len(lg.entries(kinds=("result",))) == len(items) + 1 and lg.verify() == []
    _broken_measurement(monkeypatch)
    with pytest.raises(ReleaseError, match="after its cost was charged"):
        release_report("radiology-review", items, 0.25, radiology, lg, "ann")
    assert lg.state(radiology.schema.dataset_id, "ann").spent == pytest.approx(0.75)
    assert [e["kind"] for e in lg.entries()][-2:] == ["reserve", "failure"]
