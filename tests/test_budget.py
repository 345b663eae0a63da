"""One budget per patient: the dataset budget binds all analysts together, allowances within it,
identical questions shared, delta limited, zCDP totals equal OpenDP's composition, old ledgers
keep their spent budget."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from data.prepare import prepare
from privacy.ledger import BudgetExceeded, BudgetLedger
from privacy.measurements import build_plan
from privacy.opendp_runtime import dp
from privacy.queries import CountQuery, HistogramQuery, MeanQuery, Where
from privacy.release import release
from tests.conftest import toy_frame, toy_schema

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_V1 = ROOT / "tests" / "fixtures" / "ledger_v1.sql"


@pytest.fixture
def cohort():
    return prepare(toy_frame(300), toy_schema(budget=1.0))


def test_fifty_analysts_asking_the_same_count_get_one_release_charged_once(cohort, ledger):
    """The issue's attack: 50 names asking the same count each got fresh noise to average away."""
    got = [release(CountQuery(), cohort, 0.05, ledger, f"analyst{i}") for i in range(50)]
    assert len({tuple(r.values) for r in got}) == 1            # one noisy answer, never fresh noise
    assert not got[0].cached and all(r.cached for r in got[1:])
    assert ledger.dataset_state("toy").spent == pytest.approx(0.05)
    assert [r["kind"] for r in ledger.entries()].count("reserve") == 1
    served = ledger.entries(kinds=("served",))
    assert sorted(r["analyst"] for r in served) == sorted(f"analyst{i}" for i in range(1, 50))   # audit: who asked
    assert all(r.analyst == f"analyst{i}" for i, r in enumerate(got))   # nobody sees who asked first
    assert ledger.verify() == []


def test_dataset_budget_binds_every_name(cohort, ledger):
    for i in range(20):   # 20 distinct questions at 0.05 by 20 names: the whole dataset budget
        release(CountQuery(), cohort, 0.05 - 1e-6 * i, ledger, f"analyst{i}")
    with pytest.raises(BudgetExceeded) as ei:
        release(CountQuery(), cohort, 0.02, ledger, "a-new-name")
    assert ei.value.which == "dataset" and "for all analysts together" in str(ei.value)
    assert ledger.dataset_state("toy").spent <= 1.0 + 1e-9
    assert release(CountQuery(), cohort, 0.05, ledger, "a-new-name").cached   # what exists is still shared


def test_allowances_and_invited_only(cohort, ledger):
    ledger.set_dataset_budget("toy", 2.0, default_allowance=0.0, actor="dpo")
    with pytest.raises(BudgetExceeded) as ei:
        release(CountQuery(), cohort, 0.1, ledger, "stranger")
    assert ei.value.which == "allowance" and "the data owner to raise your allowance" in str(ei.value)
    assert ledger.state("toy", "stranger").remaining == 0
    ledger.set_allowance("toy", "invited", 0.5, actor="dpo", note="study 12")
    r = release(CountQuery(), cohort, 0.3, ledger, "invited")
    assert r.remaining == pytest.approx(0.2) and r.dataset_remaining == pytest.approx(1.7)
    with pytest.raises(BudgetExceeded) as ei:
        release(MeanQuery(column="x"), cohort, 0.3, ledger, "invited")
    assert ei.value.which == "allowance" and "only ε 0.2 of your allowance (0.5)" in str(ei.value)
    assert release(CountQuery(), cohort, 0.3, ledger, "stranger").cached      # released already: free to see
    # an allowance above what the dataset has left is capped by the dataset
    ledger.set_allowance("toy", "big", 10.0)
    assert ledger.state("toy", "big").remaining == pytest.approx(1.7)
    refusals = ledger.entries(kinds=("refusal",))
    assert [(r["analyst"], json.loads(r["payload"])["which"]) for r in refusals] == [
        ("stranger", "allowance"), ("invited", "allowance")]
    assert all(r["epsilon"] == 0 for r in refusals) and ledger.verify() == []


def test_delta_is_a_budget(cohort, ledger):
    ledger.set_dataset_budget("toy", 5.0, delta=3e-7)
    for i in range(3):
        release(CountQuery(), cohort, 0.1 + 0.01 * i, ledger, "ann", mechanism="gaussian", delta=1e-7)
    st = ledger.dataset_state("toy")
    assert st.delta_spent == pytest.approx(3e-7) and st.delta_remaining == pytest.approx(0, abs=1e-15)
    with pytest.raises(BudgetExceeded) as ei:
        release(CountQuery(), cohort, 0.2, ledger, "bob", mechanism="gaussian", delta=1e-7)
    assert ei.value.which == "delta" and "Use Laplace noise" in str(ei.value)
    release(CountQuery(), cohort, 0.2, ledger, "bob")                      # Laplace needs no delta
    ledger.set_dataset_budget("toy", delta=0.0)
    with pytest.raises(BudgetExceeded, match="δ budget 0"):
        release(HistogramQuery(column="g"), cohort, 0.2, ledger, "bob", mechanism="gaussian", delta=1e-8)


def test_budget_settings_are_validated(ledger):
    for bad in (-1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError):
            ledger.set_dataset_budget("toy", bad)
    with pytest.raises(ValueError, match="delta budget above 0"):
        ledger.set_dataset_budget("toy", 1.0, delta=0.0, accounting="zcdp")
    with pytest.raises(ValueError, match="accounting"):
        ledger.set_dataset_budget("toy", 1.0, accounting="renyi")
    with pytest.raises(ValueError, match="below 1"):
        ledger.set_dataset_budget("toy", 1.0, delta=1.0)
    with pytest.raises(ValueError, match="name the analyst"):
        ledger.set_allowance("toy", " ", 1.0)
    assert ledger.entries() == []


# ---------------------------------------------------------------------------------------- zCDP
def _zcdp(plan):
    """The plan's measurement under zCDP, built here from the plan's own measurement."""
    return dp.c.make_pureDP_to_zCDP(plan.measurement) if plan.mechanism == "laplace" else plan.cost.zcdp


def test_zcdp_total_equals_opendp_composition(cohort, ledger):
    delta = 1e-6
    ledger.set_dataset_budget("toy", 50.0, delta=delta, accounting="zcdp")
    asked = []
    for i in range(12):
        q = [CountQuery(), HistogramQuery(column="g"), CountQuery(where=Where("g", "7"))][i % 3]
        mech = "gaussian" if i % 2 else "laplace"
        eps = 0.05 + 0.02 * i
        release(q, cohort, eps, ledger, f"a{i % 4}", mechanism=mech, delta=1e-7)
        asked.append(build_plan(q, cohort.schema, eps, mech, 1e-7 if mech == "gaussian" else 0.0))
    composed = dp.c.make_composition([_zcdp(p) for p in asked])          # OpenDP's own composition
    rho = composed.map(cohort.schema.max_rows_per_unit)
    eps_total = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(composed), delta=delta).map(1)[0]
    st = ledger.dataset_state("toy")
    assert st.rho_spent == pytest.approx(rho, rel=1e-9)
    assert st.spent == pytest.approx(eps_total, rel=1e-9)
    # an analyst's spent is their own releases composed the same way
    mine = [p for i, p in enumerate(asked) if i % 4 == 1]
    own = dp.c.make_composition([_zcdp(p) for p in mine])
    own_eps = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(own), delta=delta).map(1)[0]
    assert ledger.state("toy", "a1").spent == pytest.approx(own_eps, rel=1e-9)
    # refusal: once the composed total would pass the budget
    ledger.set_dataset_budget("toy", total=st.spent + 0.01)
    with pytest.raises(BudgetExceeded) as ei:
        release(MeanQuery(column="x"), cohort, 0.5, ledger, "a1", mechanism="gaussian", delta=1e-7)
    assert ei.value.which == "dataset" and "zCDP" in str(ei.value)


def test_fifty_gaussian_releases_pure_vs_zcdp(cohort, tmp_path):
    """Closing-note figure: 50 Gaussian releases of epsilon 0.1 (delta 1e-7 each)."""
    totals = {}
    for mode, delta_budget in (("pure", 1e-5), ("zcdp", 1e-5)):
        lg = BudgetLedger(tmp_path / f"{mode}.sqlite")
        lg.set_dataset_budget("toy", 100.0, delta=delta_budget, accounting=mode)
        for i in range(50):
            release(CountQuery(), cohort, 0.1 * (1 - 1e-6 * i), lg, "ann", mechanism="gaussian", delta=1e-7)
        totals[mode] = lg.dataset_state("toy")
        lg.close()
    p, z = totals["pure"], totals["zcdp"]
    print(f"\n50 Gaussian releases of epsilon 0.1: pure (basic composition) epsilon {p.spent:.3f}, delta "
          f"{p.delta_spent:.1e}; zCDP epsilon {z.spent:.3f} at delta {z.delta_total:.0e} (rho {z.rho_spent:.4f})")
    assert p.spent == pytest.approx(5.0, rel=1e-3) and p.delta_spent == pytest.approx(5e-6)
    assert z.spent < p.spent / 2


# ---------------------------------------------------------------------------------- old ledgers
def _old_ledger(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(FIXTURE_V1.read_text())
    db.close()


def test_old_ledger_opens_verifies_and_keeps_spent_budget(tmp_path, cohort):
    path = tmp_path / "old.sqlite"
    _old_ledger(path)
    old_rows = sqlite3.connect(path).execute("SELECT * FROM ledger ORDER BY seq").fetchall()
    lg = BudgetLedger(path)
    assert lg.verify() == []
    assert sqlite3.connect(path).execute("SELECT * FROM ledger ORDER BY seq").fetchall() == old_rows  # verbatim
    ann, bob = lg.state("toy", "ann"), lg.state("toy", "bob")
    assert (ann.total, ann.spent, ann.allowance_set) == (0.8, pytest.approx(0.3), True)   # old budgets = allowances
    assert (bob.total, bob.spent, bob.delta_spent) == (1.0, pytest.approx(0.2), pytest.approx(1e-7))
    # the dataset budget starts at the schema default and already holds everything spent on it
    r = release(HistogramQuery(column="g"), cohort, 0.3, lg, "ann")     # stored by the old ledger
    assert r.cached and r.values == [101.0, 58.0, 41.0, 1.0, -2.0]
    assert release(HistogramQuery(column="g"), cohort, 0.3, lg, "carl").cached   # shared with others too
    st = lg.dataset_state("toy")
    assert st.total == 1.0 and st.spent == pytest.approx(0.5) and st.delta_spent == pytest.approx(1e-7)
    with pytest.raises(BudgetExceeded) as ei:
        release(MeanQuery(column="x"), cohort, 0.6, lg, "carl")
    assert ei.value.which == "dataset"
    release(MeanQuery(column="x"), cohort, 0.4, lg, "carl")
    assert lg.verify() == []
    lg.set_dataset_budget("toy", accounting="zcdp", delta=1e-6)          # old rows convert (OpenDP) for zCDP
    assert lg.dataset_state("toy").rho_spent > 0
    lg.close()
    again = BudgetLedger(path)                                             # the migration ran once
    assert again.verify() == [] and again.row_count() == len(old_rows) + 6
    again.close()
    cp = subprocess.run([sys.executable, "-m", "privacy", "ledger", "--ledger", str(path), "--verify"],
                        capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                        timeout=300)
    assert cp.returncode == 0 and "hash chain intact" in cp.stdout, cp.stderr


def test_old_ledger_tampering_still_detected_after_migration(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_ledger(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER ledger_no_update")
    db.execute("UPDATE ledger SET epsilon = 0.01 WHERE seq = 2")     # an old reserve made cheaper
    db.close()
    lg = BudgetLedger(path)
    assert any("row 2: content" in p for p in lg.verify())
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # and the triggers are back
        lg._db.execute("DELETE FROM ledger WHERE seq = 1")
    lg.close()


def test_marginal_cost_under_each_accounting(cohort, ledger):
    from privacy.release import marginal_cost
    q = HistogramQuery(column="g")
    assert marginal_cost(q, cohort.schema, 0.3, ledger) == pytest.approx(0.3)           # pure: its epsilon
    ledger.set_dataset_budget("toy", 20.0, delta=1e-6, accounting="zcdp")
    first = marginal_cost(q, cohort.schema, 0.3, ledger, "gaussian", 1e-7)
    release(q, cohort, 0.3, ledger, "ann", mechanism="gaussian", delta=1e-7)
    assert ledger.dataset_state("toy").spent == pytest.approx(first, rel=1e-9)
    second = marginal_cost(CountQuery(), cohort.schema, 0.3, ledger, "gaussian", 1e-7)
    assert 0 < second < first                         # under zCDP each further release adds less


def test_questions_left_under_each_accounting(cohort, ledger):
    from privacy.release import questions_left
    q = CountQuery()
    assert questions_left(q, cohort.schema, 0.1, ledger, "ann") == 10          # 1.0 / 0.1
    release(q, cohort, 0.3, ledger, "ann")
    assert questions_left(q, cohort.schema, 0.1, ledger, "ann") == 7
    ledger.set_allowance("toy", "ann", 0.5)
    assert questions_left(q, cohort.schema, 0.1, ledger, "ann") == 2          # the allowance binds
    ledger.set_dataset_budget("toy", 3.0, delta=1e-6, accounting="zcdp")
    n = questions_left(q, cohort.schema, 0.5, ledger, "bob", "gaussian", 1e-7)
    for i in range(n):      # exactly n more fit; the next one is refused
        release(q, cohort, 0.5 * (1 - 1e-6 * i), ledger, "bob", mechanism="gaussian", delta=1e-7)
    with pytest.raises(BudgetExceeded):
        release(q, cohort, 0.5 * (1 - 1e-6 * n), ledger, "bob", mechanism="gaussian", delta=1e-7)
    assert n > (3.0 - 0.3) / 0.5 * 2        # zCDP: far more Gaussian questions than epsilon sums would allow
