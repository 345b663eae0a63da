"""`python -m privacy`: subprocess runs for the contract (exit status, JSON, one-line errors), plus
in-process runs of `privacy.cli.main` for the many bad-input paths (cheaper than a process each)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.schema import schema_to_toml
from privacy.cli import main
from privacy.ledger import BudgetLedger
from tests.conftest import toy_frame, toy_schema

LABELS = ["6", "7", "8", "missing", "other"]


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    (d / "toy.toml").write_text(schema_to_toml(toy_schema(budget=5.0)))
    toy_frame(400).to_csv(d / "toy.csv", index=False)
    return d / "toy.csv", d / "toy.toml"


def run(*args, cwd, env=None, timeout=600):
    e = dict(os.environ)
    e.pop("DP_LEDGER", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "privacy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=timeout)


def one_line_error(cp) -> str:
    assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    return lines[0]


def src(toy_files):
    return ["--data", toy_files[0], "--schema", toy_files[1]]


def ledger_rows(path) -> list[dict]:
    if not Path(path).exists():
        return []
    lg = BudgetLedger(path)
    try:
        return lg.entries()
    finally:
        lg.close()


# ------------------------------------------------------------------------------------ subprocess
def test_help_is_quick_and_imports_no_opendp(tmp_path):
    t = time.monotonic()
    cp = run("--help", cwd=tmp_path)
    assert cp.returncode == 0 and "release" in cp.stdout and "ledger" in cp.stdout
    assert time.monotonic() - t < 30  # generous: CI machines are busy; it takes ~0.1 s idle
    probe = ("import sys; from privacy.cli import main; rc = main(['release', '--help']); "
             "print(rc, 'opendp' in sys.modules, 'pandas' in sys.modules)")
    cp = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert cp.stdout.strip().splitlines()[-1] == "0 False False"
    assert run(cwd=tmp_path).returncode == 2   # no subcommand


def test_release_json_then_cached_repeat(tmp_path, toy_files):
    led = tmp_path / "l.sqlite"
    args = ["release", *src(toy_files), "--stat", "histogram", "--column", "g", "--epsilon", "0.5",
            "--analyst", "ann", "--ledger", led, "--json"]
    cp = run(*args, cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    r = json.loads(cp.stdout)
    for k in ("labels", "values", "ci_low", "ci_high", "epsilon", "delta", "mechanism", "scale", "cached",
              "remaining", "query", "description"):
        assert k in r, k
    assert r["labels"] == LABELS and len(r["values"]) == len(r["ci_low"]) == len(r["ci_high"]) == 5
    assert all(lo <= v <= hi for v, lo, hi in zip(r["values"], r["ci_low"], r["ci_high"]))
    assert r["epsilon"] == pytest.approx(0.5) and r["epsilon"] <= 0.5 and r["delta"] == 0
    assert r["mechanism"] == "laplace" and r["scale"] > 0 and r["cached"] is False
    assert r["remaining"] == pytest.approx(4.5) and r["dataset_remaining"] == pytest.approx(4.5)
    assert r["total"] == 5.0 and r["spent"] == pytest.approx(0.5) and r["accounting"] == "pure"
    assert r["query"] == {"stat": "histogram", "column": "g", "where": None, "bin_edges": None, "date_unit": None}
    assert r["description"] == "Distribution of Gleason"
    # the true counts are 400 rows split ~50/30/20: the noisy ones are near them
    assert sum(r["values"][:3]) == pytest.approx(400, abs=40)
    rows_after_first = ledger_rows(led)
    assert [e["kind"] for e in rows_after_first] == ["dataset", "reserve", "result"]

    cp2 = run(*args, cwd=tmp_path)
    assert cp2.returncode == 0, cp2.stderr
    r2 = json.loads(cp2.stdout)
    assert r2["cached"] is True and r2["values"] == r["values"] and r2["ci_low"] == r["ci_low"]
    assert r2["remaining"] == pytest.approx(4.5)
    assert ledger_rows(led) == rows_after_first          # the repeat wrote nothing

    cp3 = run("ledger", "--ledger", led, "--json", cwd=tmp_path)
    assert cp3.returncode == 0
    doc = json.loads(cp3.stdout)
    assert doc["budgets"] == [{"dataset": "toy", "analyst": "ann", "allowance": 5.0, "allowance_set": False,
                               "spent": pytest.approx(0.5), "remaining": pytest.approx(4.5), "delta_spent": 0.0}]
    (ds,) = doc["datasets"]
    assert {k: ds[k] for k in ("dataset", "total", "remaining", "delta_total", "delta_spent", "accounting")} == {
        "dataset": "toy", "total": 5.0, "remaining": pytest.approx(4.5), "delta_total": 1e-6, "delta_spent": 0.0,
        "accounting": "pure"}
    assert ds["spent"] == pytest.approx(0.5) and [dict(a, dataset="toy") for a in ds["analysts"]] == doc["budgets"]
    assert [e["kind"] for e in doc["entries"]] == ["dataset", "reserve", "result"]
    assert doc["entries"][2]["payload"]["values"] == r["values"]

    cp4 = run("ledger", "--ledger", led, "--verify", cwd=tmp_path)
    assert cp4.returncode == 0 and "intact" in cp4.stdout and cp4.stderr == ""


def test_over_budget_exit_2_names_cost_and_remaining(tmp_path, toy_files):
    led = tmp_path / "l.sqlite"
    cp = run("ledger", "--ledger", led, "--set-budget", "0.3", "--dataset", "toy", "--analyst", "ann",
             "--actor", "owner", cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    before = ledger_rows(led)
    assert [(e["kind"], e["epsilon"], e["actor"]) for e in before] == [("budget", 0.3, "owner")]
    cp = run("release", *src(toy_files), "--stat", "mean", "--column", "x", "--epsilon", "0.5", "--analyst", "ann",
             "--ledger", led, cwd=tmp_path)
    line = one_line_error(cp)
    assert cp.returncode == 2
    assert "costs ε 0.5" in line and "only ε 0.3 of your allowance (0.3)" in line and "Nothing was spent" in line
    assert cp.stdout == ""
    after = ledger_rows(led)       # the refusal is audited; nothing is charged
    assert after[:1] == before and [e["kind"] for e in after[1:]] == ["refusal"]
    assert sum(e["epsilon"] for e in after if e["kind"] == "reserve") == 0


BAD_EPSILON = {"0": "epsilon must be positive, got 0", "-1": "epsilon must be positive, got -1",
               "nan": "epsilon must be a number, got NaN", "inf": "epsilon must be finite",
               "1e9": "epsilon 1e+09 is outside the allowed range 0.001 to 100"}


@pytest.mark.parametrize("eps", list(BAD_EPSILON))
def test_bad_epsilon_exit_2(tmp_path, toy_files, eps):
    led = tmp_path / "l.sqlite"
    cp = run("release", *src(toy_files), "--stat", "count", "--epsilon", eps, "--analyst", "ann",
             "--ledger", led, cwd=tmp_path)
    assert BAD_EPSILON[eps] in one_line_error(cp)
    assert not led.exists()                              # nothing charged, not even a ledger file


def test_unknown_column_exit_2(tmp_path, toy_files):
    led = tmp_path / "l.sqlite"
    cp = run("release", *src(toy_files), "--stat", "mean", "--column", "psa", "--epsilon", "0.5",
             "--ledger", led, cwd=tmp_path)
    assert "unknown column 'psa'; known columns: g, x, d" in one_line_error(cp)
    assert not led.exists()


def test_simulate_json_shape_and_spends_nothing(tmp_path, toy_files):
    led = tmp_path / "l.sqlite"
    cp = run("simulate", *src(toy_files), "--stat", "histogram", "--column", "g", "--epsilon", "0.5",
             "--draws", "40", "--json", cwd=tmp_path, env={"DP_LEDGER": str(led)})
    assert cp.returncode == 0, cp.stderr
    s = json.loads(cp.stdout)
    assert s["labels"] == LABELS and len(s["truth"]) == 5 and sum(s["truth"]) == 400
    assert len(s["draws"]) == 40
    for d in s["draws"]:
        assert set(d) == {"values", "ci_low", "ci_high"} and all(len(d[k]) == 5 for k in d)
    assert s["scale"] == pytest.approx(2.0, rel=1e-6)
    assert s["summary"]["draws"] == 40 and 0.5 <= s["summary"]["coverage"] <= 1.0
    assert s["epsilon"] == pytest.approx(0.5) and s["spent"] == 0
    assert not led.exists() and not (tmp_path / "var").exists()   # no ledger touched


def test_embedded_cohort_release(tmp_path):
    cohorts = pytest.importorskip("data.cohorts")
    if not hasattr(cohorts, "load_cohort"):
        pytest.skip("data.cohorts.load_cohort not available yet")
    cp = run("release", "--cohort", "prostate", "--rows", "500", "--stat", "histogram", "--column",
             "isup_grade_group", "--epsilon", "0.5", "--analyst", "ann", "--json", cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    r = json.loads(cp.stdout)
    assert r["dataset_id"] == "prostate-rows500" and r["labels"][:5] == ["1", "2", "3", "4", "5"]
    assert sum(r["values"]) == pytest.approx(500, abs=60)
    assert (tmp_path / "var" / "ledger.sqlite").exists()   # the default ledger path, relative to cwd
    cp = run("release", "--cohort", "no_such_cohort", "--stat", "count", "--epsilon", "0.5", cwd=tmp_path)
    assert "unknown cohort 'no_such_cohort'" in one_line_error(cp)


# ------------------------------------------------------------------------------------ in-process
def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_human_output_and_preview(tmp_path, toy_files, capsys):
    led = tmp_path / "l.sqlite"
    rc, out, err = cli(capsys, "release", *src(toy_files), "--stat", "grouped-mean", "--column", "x", "--by", "g",
                       "--epsilon", "1", "--analyst", "ann", "--ledger", led)
    assert rc == 0, err
    assert out.splitlines()[0].startswith("Mean PSA by Gleason")
    assert "95% interval" in out and "charged epsilon 1 " in out and "you can still spend epsilon 4 (allowance 5" in out
    rc, out, _ = cli(capsys, "release", *src(toy_files), "--stat", "grouped-mean", "--column", "x", "--by", "g",
                     "--epsilon", "1", "--analyst", "ann", "--ledger", led)
    assert rc == 0 and "at no cost" in out and "you can still spend epsilon 4 (allowance 5" in out

    rc, out, _ = cli(capsys, "preview", *src(toy_files), "--stat", "histogram", "--column", "g", "--epsilon", "1",
                     "--json")
    p = json.loads(out)
    assert rc == 0 and p["epsilon"] == pytest.approx(1.0) and p["halfwidth"] == pytest.approx(3.2, abs=0.3)
    assert "each bar within ±4 patients" in p["words"]
    rc, out, _ = cli(capsys, "preview", *src(toy_files), "--stat", "histogram", "--column", "g",
                     "--target-error", "10", "--json")
    p = json.loads(out)
    assert rc == 0 and p["halfwidth"] <= 10 and 0.1 < p["epsilon"] < 1
    rc, out, _ = cli(capsys, "preview", *src(toy_files), "--stat", "mean", "--column", "x", "--epsilon", "0.5")
    assert rc == 0 and "costs epsilon 0.5" in out and "Expected 95% error: the mean within about" in out
    assert "ng/mL for 1,000 patients" in out
    assert len(ledger_rows(led)) == 3                   # previews spent nothing


@pytest.mark.parametrize("args, message", [
    (["--stat", "median", "--epsilon", "1"], "unknown statistic 'median'"),
    (["--stat", "mean", "--epsilon", "1"], "statistic 'mean' needs a column"),
    (["--stat", "count", "--column", "g", "--epsilon", "1"], "takes no --column"),
    (["--stat", "count", "--where", "g", "--epsilon", "1"], "--where must look like COLUMN=VALUE"),
    (["--stat", "count", "--where", "g=9", "--epsilon", "1"], "'9' is not a category of 'g'"),
    (["--stat", "count", "--where", "x=1", "--epsilon", "1"], "restriction column 'x' is numeric"),
    (["--stat", "mean", "--column", "g", "--epsilon", "1"], "column 'g' is categorical; it must be numeric"),
    (["--stat", "histogram", "--column", "x", "--bins", "0,5,20", "--epsilon", "1"],
     "bin edges outside the public bounds [0, 10] of 'x'"),
    (["--stat", "histogram", "--column", "x", "--bins", "0,a", "--epsilon", "1"], "--bins must be comma-separated"),
    (["--stat", "histogram", "--column", "d", "--date-unit", "decade", "--epsilon", "1"], "date unit must be one of"),
    (["--stat", "quantile", "--column", "x", "--q", "1.5", "--epsilon", "1"], "strictly between 0 and 1"),
    (["--stat", "crosstab", "--column", "g", "--by", "g", "--epsilon", "1"], "two different columns"),
    (["--stat", "count", "--epsilon", "1", "--mechanism", "exponential"], "mechanism must be one of"),
    (["--stat", "count", "--epsilon", "1", "--mechanism", "gaussian", "--delta", "0.5"], "--delta must be"),
    (["--stat", "count", "--epsilon", "abc"], "epsilon must be a number, got 'abc'"),
    (["--stat", "count"], "--epsilon is required"),
    (["--stat", "count", "--epsilon", "1", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_release_input_exit_2_in_process(tmp_path, toy_files, capsys, args, message):
    led = tmp_path / "l.sqlite"
    rc, out, err = cli(capsys, "release", *src(toy_files), "--analyst", "ann", "--ledger", led, *args)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not led.exists()


@pytest.mark.parametrize("args, message", [
    (["--data", "missing.csv", "--schema", "SCHEMA"], "data file not found"),
    (["--data", "DATA", "--schema", "missing.toml"], "schema file not found"),
    (["--data", "DATA"], "--data FILE and --schema FILE go together"),
    (["--data", "SCHEMA", "--schema", "SCHEMA"], "toy.toml"),
    ([], "say which data"),
    (["--cohort", "prostate", "--data", "DATA", "--schema", "SCHEMA"], "not both"),
    (["--data", "DATA", "--schema", "SCHEMA", "--rows", "10"], "--rows and --seed apply only to --cohort"),
])
def test_bad_source_exit_2_in_process(tmp_path, toy_files, capsys, args, message):
    args = [{"DATA": toy_files[0], "SCHEMA": toy_files[1]}.get(a, a) for a in args]
    rc, out, err = cli(capsys, "release", *args, "--stat", "count", "--epsilon", "1", "--ledger", tmp_path / "l")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_unconfirmed_schema_is_refused(tmp_path, toy_files, capsys):
    text = toy_files[1].read_text().replace("confirmed = true", "confirmed = false")
    (tmp_path / "proposal.toml").write_text(text)
    rc, out, err = cli(capsys, "release", "--data", toy_files[0], "--schema", tmp_path / "proposal.toml", "--stat",
                       "count", "--epsilon", "1", "--ledger", tmp_path / "l.sqlite")
    assert rc == 2 and "unconfirmed proposal" in err and not (tmp_path / "l.sqlite").exists()


def test_ledger_actions_in_process(tmp_path, capsys):
    led = tmp_path / "l.sqlite"
    rc, out, err = cli(capsys, "ledger", "--ledger", led, "--json")
    assert rc == 0 and json.loads(out)["entries"] == [] and not led.exists()   # listing creates nothing
    rc, _, err = cli(capsys, "ledger", "--ledger", led, "--verify")
    assert rc == 2 and "no ledger file" in err
    rc, _, err = cli(capsys, "ledger", "--ledger", led, "--set-budget", "2", "--dataset", "toy")
    assert rc == 2 and "--analyst" in err
    for bad in ("-1", "nan", "x"):
        rc, _, err = cli(capsys, "ledger", "--ledger", led, "--set-budget", bad, "--dataset", "toy", "--analyst", "a")
        assert rc == 2 and len(err.strip().splitlines()) == 1
        assert "--set-budget must be" in err or "allowance must be a finite number >= 0" in err, err
    rc, out, _ = cli(capsys, "ledger", "--ledger", led, "--set-budget", "2", "--dataset", "toy", "--analyst", "a",
                     "--json")
    assert rc == 0 and json.loads(out)["total"] == 2.0
    rc, out, _ = cli(capsys, "ledger", "--ledger", led)
    assert rc == 0 and "toy" in out and "budget" in out
    rc, out, _ = cli(capsys, "ledger", "--ledger", led, "--verify", "--json")
    assert rc == 0 and json.loads(out) == {"path": str(led), "rows": 1, "ok": True, "problems": []}


def test_failure_after_charge_is_exit_1_without_traceback(tmp_path, toy_files, capsys, monkeypatch):
    import privacy.release as R

    def boom(plan, prepared):      # the OpenDP invocation, after the reservation
        raise RuntimeError("measurement crashed")

    monkeypatch.setattr(R, "measure", boom)
    led = tmp_path / "l.sqlite"
    rc, out, err = cli(capsys, "release", *src(toy_files), "--stat", "count", "--epsilon", "0.7", "--analyst", "ann",
                       "--ledger", led)
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "failed after its cost was charged" in err and "Traceback" not in err
    assert [e["kind"] for e in ledger_rows(led)] == ["dataset", "reserve", "failure"]


def test_json_has_no_nan(tmp_path, toy_files, capsys):
    """A mean with a tiny epsilon can have unbounded intervals: JSON must still be strict JSON."""
    rc, out, _ = cli(capsys, "preview", *src(toy_files), "--stat", "mean", "--column", "x", "--epsilon", "0.001",
                     "--json")
    assert rc == 0
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    rc, out, _ = cli(capsys, "release", *src(toy_files), "--stat", "mean", "--column", "x", "--where", "g=8",
                     "--epsilon", "0.001", "--analyst", "ann", "--ledger", tmp_path / "l", "--json")
    assert rc == 0
    r = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert all(v is None or math.isfinite(v) for v in r["ci_low"] + r["ci_high"])


def test_budget_command_sets_dataset_budget_and_allowances(tmp_path, toy_files, capsys):
    led = tmp_path / "l.sqlite"
    rc, out, err = cli(capsys, "budget", *src(toy_files), "--ledger", led, "--json")
    assert rc == 0, err
    doc = json.loads(out)                                  # the schema's default budget is in force
    assert (doc["dataset"], doc["total"], doc["accounting"], doc["changed"]) == ("toy", 5.0, "pure", [])
    rc, out, err = cli(capsys, "budget", *src(toy_files), "--ledger", led, "--total", "1", "--delta", "2e-7",
                       "--default-allowance", "0", "--actor", "dpo", "--note", "pilot", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert (doc["total"], doc["delta_total"], doc["default_allowance"], doc["note"]) == (1.0, 2e-7, 0.0, "pilot")
    rc, out, err = cli(capsys, "budget", "--dataset", "toy", "--ledger", led, "--analyst", "ann", "--allowance",
                       "0.6", "--json")
    assert rc == 0, err
    assert [(a["analyst"], a["allowance"], a["allowance_set"]) for a in json.loads(out)["analysts"]] == [
        ("ann", 0.6, True)]
    # an uninvited analyst is refused (exit 2, one line naming the allowance); ann may spend
    rc, out, err = cli(capsys, "release", *src(toy_files), "--stat", "count", "--epsilon", "0.5", "--analyst", "bob",
                       "--ledger", led)
    assert rc == 2 and out == "" and "your allowance (0)" in err and len(err.strip().splitlines()) == 1
    rc, out, err = cli(capsys, "release", *src(toy_files), "--stat", "count", "--epsilon", "0.5", "--analyst", "ann",
                       "--ledger", led, "--json")
    r = json.loads(out)
    assert rc == 0 and r["remaining"] == pytest.approx(0.1) and r["dataset_remaining"] == pytest.approx(0.5)
    # delta: two Gaussian releases at 1e-7 fill the 2e-7 budget; the third is refused
    for i in range(2):
        rc, _, err = cli(capsys, "release", *src(toy_files), "--stat", "count", "--epsilon", f"0.0{i + 1}",
                         "--mechanism", "gaussian", "--analyst", "ann", "--ledger", led)
        assert rc == 0, err
    rc, _, err = cli(capsys, "release", *src(toy_files), "--stat", "count", "--epsilon", "0.03", "--mechanism",
                     "gaussian", "--analyst", "ann", "--ledger", led)
    assert rc == 2 and "δ budget" in err
    rc, out, _ = cli(capsys, "ledger", "--ledger", led, "--json")
    (ds,) = json.loads(out)["datasets"]
    assert ds["delta_spent"] == pytest.approx(2e-7) and ds["delta_total"] == 2e-7
    assert {a["analyst"]: a["remaining"] for a in ds["analysts"]} == {"ann": pytest.approx(0.07), "bob": 0.0}
    rc, out, _ = cli(capsys, "ledger", "--ledger", led)
    assert rc == 0 and "left for all analysts together" in out and "refusal" in out
    rc, out, _ = cli(capsys, "ledger", "--ledger", led, "--verify")
    assert rc == 0 and "intact" in out


@pytest.mark.parametrize("args, message", [
    (["--total", "-1"], "finite number >= 0"),
    (["--total", "nan"], "--total must be a finite number"),
    (["--accounting", "renyi"], "invalid choice"),
    (["--accounting", "zcdp", "--delta", "0"], "delta budget above 0"),
    (["--analyst", "ann"], "go together"),
    (["--allowance", "1"], "go together"),
    (["--analyst", " ", "--allowance", "1"], "must not be empty"),
    (["--delta", "1"], "below 1"),
])
def test_budget_command_bad_input_exit_2_nothing_written(tmp_path, toy_files, capsys, args, message):
    led = tmp_path / "l.sqlite"
    rc, out, err = cli(capsys, "budget", *src(toy_files), "--ledger", led, *args)
    assert rc == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err
    assert [e for e in ledger_rows(led) if e["kind"] != "dataset" or e["actor"] != "schema-default"] == []


def test_owner_actions_say_so_in_their_help(capsys):
    for cmd in ("simulate", "budget", "ledger"):
        rc, out, _ = cli(capsys, cmd, "--help")
        assert rc == 0 and "DATA OWNER ONLY" in out, cmd
    assert "owner permissions" in cli(capsys, "budget", "--help")[1]
