"""Synthetic radiology examination log: several rows (exams) per patient (no real patient in it).

Each patient has 1-15 exams (geometric, mean ~2.5, about 8 % of patients above 5 exams, which the
schema's `max_rows_per_unit = 5` truncates). The log is in exam-date order with `exam_id` 1..rows.
Dates are weekday-heavy with a winter peak; modality shares are ~45/25/15/10/3/2 % (XR, CT, US, MR,
NM, MG); body region depends on modality (and sex for breast/prostate), department on modality
(prostate exams go to urology/oncology), priority on department (stat mostly emergency), contrast on
modality (CT ~45 %, MR ~60 %, XR none), turnaround log-normal by department and priority
(emergency median ~1 h, outpatient ~24 h), CT dose (CTDIvol, DLP) by body region and null for
non-CT exams, finding by priority (critical ~2 %). Patient age and sex are fixed per patient.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from data.cohorts._sampling import (categorical, day_weights, lognormal, missing_mask, positive_int,
                                    round_to, sample_categories, sample_conditional, sorted_days,
                                    to_datetime)

DEFAULT_ROWS = 50_000
DEFAULT_SEED = 20261124

START = dt.date(2023, 1, 1)
END = dt.date(2024, 12, 31)
MAX_EXAMS_PER_PATIENT = 15
MEAN_EXAMS_PER_PATIENT = 2.5

MODALITIES = ("XR", "CT", "US", "MR", "NM", "MG")
MODALITY_SHARES = np.array([0.45, 0.25, 0.15, 0.10, 0.03, 0.02])
REGIONS = ("head", "chest", "abdomen-pelvis", "spine", "extremity", "prostate", "breast")
DEPARTMENTS = ("emergency", "inpatient", "outpatient", "oncology", "urology")
PRIORITIES = ("routine", "urgent", "stat")
YES_NO = ("yes", "no")
SEXES = ("female", "male")
FINDINGS = ("normal", "abnormal", "critical")

# P(modality | sex): mammography is (almost) only for women; the other modalities are scaled so
# that with half the patients female the marginal shares stay MODALITY_SHARES.
_MG = MODALITIES.index("MG")


def _modality_by_sex() -> np.ndarray:
    table = np.empty((2, len(MODALITIES)))
    for sex, mg_factor in ((0, 1.95), (1, 0.05)):
        mg = MODALITY_SHARES[_MG] * mg_factor
        rest = np.delete(MODALITY_SHARES, _MG)
        table[sex] = np.insert(rest / rest.sum() * (1 - mg), _MG, mg)
    return table


# P(body region | modality, sex); rows: modality * 2 + sex (0 female, 1 male), columns REGIONS.
_REGION = np.array([
    # head  chest  abd-pel spine  extrem prostate breast
    [0.05, 0.45, 0.08, 0.12, 0.30, 0.00, 0.00],   # XR female
    [0.05, 0.45, 0.08, 0.12, 0.30, 0.00, 0.00],   # XR male
    [0.30, 0.25, 0.35, 0.06, 0.04, 0.00, 0.00],   # CT female
    [0.30, 0.25, 0.35, 0.06, 0.04, 0.00, 0.00],   # CT male
    [0.04, 0.03, 0.62, 0.00, 0.11, 0.00, 0.20],   # US female
    [0.05, 0.03, 0.72, 0.00, 0.12, 0.08, 0.00],   # US male
    [0.38, 0.04, 0.16, 0.24, 0.12, 0.00, 0.06],   # MR female
    [0.33, 0.03, 0.10, 0.20, 0.12, 0.22, 0.00],   # MR male
    [0.08, 0.45, 0.25, 0.15, 0.07, 0.00, 0.00],   # NM female
    [0.08, 0.45, 0.25, 0.15, 0.07, 0.00, 0.00],   # NM male
    [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00],   # MG female
    [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00],   # MG male
])
# P(department | modality), last row: prostate exams whatever the modality. Columns DEPARTMENTS.
_DEPARTMENT = np.array([
    [0.35, 0.25, 0.35, 0.04, 0.01],   # XR
    [0.35, 0.25, 0.20, 0.17, 0.03],   # CT
    [0.20, 0.20, 0.50, 0.05, 0.05],   # US
    [0.08, 0.15, 0.55, 0.17, 0.05],   # MR
    [0.02, 0.15, 0.43, 0.40, 0.00],   # NM
    [0.00, 0.01, 0.89, 0.10, 0.00],   # MG
    [0.00, 0.03, 0.12, 0.20, 0.65],   # prostate region
])
# P(priority | department), columns PRIORITIES.
_PRIORITY = np.array([
    [0.15, 0.45, 0.40],   # emergency
    [0.50, 0.40, 0.10],   # inpatient
    [0.95, 0.05, 0.00],   # outpatient
    [0.82, 0.16, 0.02],   # oncology
    [0.90, 0.10, 0.00],   # urology
])
_CONTRAST = np.array([0.0, 0.45, 0.02, 0.60, 0.0, 0.0], dtype=np.float32)      # P(yes | modality)
_TURNAROUND_MEDIAN = np.array([1.25, 5.0, 19.0, 26.0, 30.0], dtype=np.float32)  # hours, by department
_PRIORITY_FACTOR = np.array([1.3, 0.9, 0.6], dtype=np.float32)                 # routine, urgent, stat
_CTDI_MEDIAN = np.array([50, 10, 15, 18, 8, 15, 10], dtype=np.float32)         # mGy, by region
_SCAN_LENGTH = np.array([18, 35, 45, 30, 35, 25, 25], dtype=np.float32)        # cm, by region
# P(finding | priority), columns FINDINGS.
_FINDING = np.array([
    [0.62, 0.37, 0.01],   # routine
    [0.45, 0.52, 0.03],   # urgent
    [0.38, 0.56, 0.06],   # stat
])


def _exam_day_weights() -> np.ndarray:
    weekday, doy = day_weights(START, END)
    w = np.choose(np.clip(weekday - 4, 0, 2), [1.0, 0.35, 0.28])   # Mon-Fri, Sat, Sun
    return w * (1 + 0.12 * np.cos(2 * np.pi * (doy - 15) / 365.25))  # winter peak mid-January


def _exams_per_patient(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exam counts (1..15, mean ~2.5) of consecutive patients, summing exactly to n."""
    p = 1 / MEAN_EXAMS_PER_PATIENT
    chunks, total = [], 0
    while total < n:
        c = np.minimum(rng.geometric(p, int((n - total) * p * 1.05) + 16), MAX_EXAMS_PER_PATIENT)
        chunks.append(c.astype(np.int16))
        total += int(c.sum())
    counts = np.concatenate(chunks)
    cs = np.cumsum(counts, dtype=np.int64)
    last = int(np.searchsorted(cs, n))           # first patient whose cumulative count reaches n
    counts = counts[: last + 1]
    counts[last] -= cs[last] - n
    return counts


def generate_radiology(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Synthetic radiology exam log (one row per exam), deterministic from `seed`.

    About 0.3 % of turnaround times are missing (report not yet signed).
    """
    n = positive_int(rows, "rows")
    rng = np.random.default_rng(seed)
    f32 = np.float32

    counts = _exams_per_patient(rng, n)
    n_patients = len(counts)
    id_dtype = np.int32 if n_patients < 2**31 else np.int64
    # Exams of all patients interleaved at random over the date-sorted log.
    patient = rng.permutation(np.repeat(np.arange(n_patients, dtype=id_dtype), counts))
    del counts
    day = sorted_days(rng, _exam_day_weights(), n)

    # Per-patient sex and age (7 % children, adults around 60).
    sex_p = sample_categories(rng, (0.5, 0.5), n_patients)
    age_p = rng.normal(60, 17, n_patients)
    child = rng.random(n_patients) < 0.07
    age_p[child] = rng.integers(0, 18, int(child.sum()))
    age_p = np.clip(np.rint(age_p), 0, 100).astype(np.int8)
    age_p[~child] = np.maximum(age_p[~child], 18)
    sex = sex_p[patient]
    age = age_p[patient]
    del sex_p, age_p, child

    modality = sample_conditional(rng, sex, _modality_by_sex())
    region = sample_conditional(rng, modality * 2 + sex, _REGION)
    is_prostate = region == REGIONS.index("prostate")
    department = sample_conditional(rng, np.where(is_prostate, np.int8(6), modality), _DEPARTMENT)
    del is_prostate
    priority = sample_conditional(rng, department, _PRIORITY)
    contrast = (rng.random(n, dtype=f32) >= _CONTRAST[modality]).astype(np.int8)   # 0 yes, 1 no

    turnaround = lognormal(rng, _TURNAROUND_MEDIAN[department] * _PRIORITY_FACTOR[priority], 0.8, n)
    turnaround = round_to(np.clip(turnaround, f32(0.1), f32(168)), 1)

    is_ct = modality == MODALITIES.index("CT")
    ct_rows = np.flatnonzero(is_ct)
    ct_region = region[ct_rows]
    ctdi_ct = np.clip(lognormal(rng, _CTDI_MEDIAN[ct_region], 0.25, len(ct_rows)), f32(0.5), f32(100))
    phases = np.where(contrast[ct_rows] == 0, f32(1.6), f32(1.0))
    dlp_ct = ctdi_ct * lognormal(rng, _SCAN_LENGTH[ct_region], 0.15, len(ct_rows)) * phases
    ctdi = np.full(n, np.nan, dtype=f32)
    ctdi[ct_rows] = round_to(ctdi_ct, 1)
    dlp = np.full(n, np.nan, dtype=f32)
    dlp[ct_rows] = np.rint(np.clip(dlp_ct, f32(0), f32(3000)))
    del ct_rows, ct_region, ctdi_ct, dlp_ct, phases, is_ct

    finding = sample_conditional(rng, priority, _FINDING)
    turnaround[missing_mask(rng, 0.003, n)] = np.nan

    return pd.DataFrame({
        "exam_id": np.arange(1, n + 1, dtype=np.int32 if n < 2**31 else np.int64),
        "patient_id": patient + 1,
        "exam_date": to_datetime(START, day),
        "modality": categorical(modality, MODALITIES),
        "body_region": categorical(region, REGIONS),
        "department": categorical(department, DEPARTMENTS),
        "priority": categorical(priority, PRIORITIES),
        "contrast": categorical(contrast, YES_NO),
        "turnaround_hours": turnaround,
        "ctdi_vol_mgy": ctdi,
        "dlp_mgy_cm": dlp,
        "patient_age": age,
        "patient_sex": categorical(sex, SEXES),
        "finding": categorical(finding, FINDINGS),
    }, copy=False)
