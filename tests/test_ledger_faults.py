"""Ledger faults: locked beyond the timeout, disk full: a clear LedgerError and nothing charged."""
import sqlite3

import pytest

from privacy.ledger import BudgetLedger, LedgerError
from privacy.queries import HistogramQuery
from privacy.release import release


def test_database_locked_beyond_timeout_refuses_without_charge(toy_cohort, tmp_path):
    path = tmp_path / "l.sqlite"
    lg = BudgetLedger(path, timeout=0.3)
    lg.ensure_budget("toy", "ann", 5.0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerError, match="busy|locked"):
            release(HistogramQuery(column="g"), toy_cohort, 0.5, lg, "ann")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert lg.state("toy", "ann").spent == 0.0
    assert lg.verify() == []


def test_disk_full_refuses_without_charge(toy_cohort, tmp_path):
    path = tmp_path / "l.sqlite"
    lg = BudgetLedger(path)
    lg.ensure_budget("toy", "ann", 5.0)
    pages = lg._db.execute("PRAGMA page_count").fetchone()[0]
    lg._db.execute(f"PRAGMA max_page_count={pages}")     # the next page allocation fails: "disk is full"
    big = HistogramQuery(column="x", bin_edges=tuple(float(i) / 100 for i in range(0, 1001)))
    with pytest.raises(LedgerError):
        for i in range(50):  # reservations are small; results of 1000 bins need new pages
            release(big, toy_cohort, 0.01 + i * 1e-3, lg, "ann")
    fresh = BudgetLedger(path)
    st = fresh.state("toy", "ann")
    # every charge that exists has either a stored result or is a reservation that stays charged
    rows = fresh.entries("toy", "ann")
    reserves = [r for r in rows if r["kind"] == "reserve"]
    assert st.spent == pytest.approx(sum(r["epsilon"] for r in reserves))
    assert fresh.verify() == []
