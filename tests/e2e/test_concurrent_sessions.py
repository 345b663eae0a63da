"""Several browser sessions and several processes release against ONE ledger and one budget at once:
the sum of charges never exceeds the budget and every result shown in a browser has its charge."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from .conftest import _serve, wait_for_app_run
from .test_journey import build_query

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
DATASET, BUDGET = "prostate-rows5000", 1.0
COLUMNS = ["ISUP grade group", "Gleason score", "Clinical T stage", "PI-RADS score", "Hospital site"]

HAMMER = r"""
import dataclasses, sys
from data.cohorts import load_cohort
from data.prepare import prepare
from privacy.ledger import BudgetLedger, BudgetExceeded, LedgerError
from privacy.queries import HistogramQuery
from privacy.release import release
frame, schema = load_cohort("prostate", rows=5000)
cohort = prepare(frame, dataclasses.replace(schema, dataset_id="prostate-rows5000"))
lg = BudgetLedger(sys.argv[1])
import os, time
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):   # start together with the browser clicks
    time.sleep(0.01)
ok = refused = 0
for i in range(4):   # at most 4 x 4 x 0.0265 = 0.42 of the 1.0: one browser release (0.25) always fits
    try:
        release(HistogramQuery(column="age"), cohort, 0.01 + 0.0005 * (int(sys.argv[2]) * 10 + i), lg, "local owner")
        ok += 1
    except (BudgetExceeded, LedgerError):
        refused += 1
print(ok, refused)
"""


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    yield from _serve(tmp_path_factory, "shared", unset=("DP_ROLE", "DP_ANALYST"))


def test_sessions_and_processes_never_overspend(browser: Browser, shared_server, tmp_path):
    ledger = shared_server.env["DP_LEDGER"]
    from privacy.ledger import BudgetLedger
    BudgetLedger(ledger).set_dataset_budget(DATASET, BUDGET, actor="test")   # all analysts together

    pages = []
    for col in COLUMNS:                      # one browser session per query, each asks for eps 0.25
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        p = ctx.new_page()
        p.set_default_timeout(30_000)
        p.goto(shared_server.url)
        wait_for_app_run(p)
        build_query(p, "Distribution (histogram)", col, "Balanced (ε 0.25)")
        pages.append(p)
    root = Path(__file__).resolve().parents[2]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, ledger, str(k), str(go)], cwd=root, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(4)]
    for pr in procs:
        assert pr.stdout.readline().strip() == "ready"
    go.touch()
    for p in pages:                          # fire all Release clicks before waiting for any rerun
        p.get_by_role("button", name="Release").click(no_wait_after=True)
    for p in pages:
        wait_for_app_run(p)
    proc_ok = 0
    for pr in procs:
        out, err = pr.communicate(timeout=120)
        assert pr.returncode == 0, err
        proc_ok += int(out.split()[-2])

    shown = sum(p.get_by_text("Released. Cost ε 0.25").count() for p in pages)
    refused = sum(p.get_by_test_id("stAlertContentError").filter(has_text="Refused").count() for p in pages)
    assert shown + refused == len(pages)
    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT kind, epsilon, release_key, query FROM ledger WHERE dataset=?",
                      (DATASET,)).fetchall()
    charged = sum(e for k, e, _, _ in rows if k == "reserve")
    assert charged <= BUDGET + 1e-9, f"overspent: {charged} > {BUDGET}"
    reserve_keys = {key for k, _, key, _ in rows if k == "reserve"}
    results = [(key, json.loads(q) if q else {}) for k, _, key, q in rows if k == "result"]
    assert all(key in reserve_keys for key, _ in results), "a result without its charge"
    browser_results = [key for k, e, key, q in rows if k == "reserve" and abs(e - 0.25) < 1e-6]
    assert shown == len(browser_results) >= 1, (shown, len(browser_results))
    assert refused >= 1, "the demand (5 x 0.25 in browsers) exceeds the whole budget, so some are refused"
    assert proc_ok == sum(1 for k, e, _, _ in rows if k == "reserve" and e < 0.1)
    from privacy.ledger import BudgetLedger as L
    assert L(ledger).verify() == []
    print(f"\nconcurrency: {len(pages)} browser sessions + 4 processes x 4 releases; shown {shown}, "
          f"refused {refused}, process releases {proc_ok}, charged {charged:.3f} of {BUDGET}")
