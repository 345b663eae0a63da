"""Synthetic prostate cancer cohort: one row per patient (no real patient is in it).

Distributions follow published figures (see shared DATA_NOTES.md) so the dashboard plots look
clinical: age about normal with median ~67 (SEER median age at diagnosis), PSA log-normal with
median ~7 ng/mL rising with grade and stage, ISUP grade groups ~35/30/15/10/10 %, T1c about half,
NCCN-style risk groups derived from PSA, grade and stage, treatment depending on risk and age, and
competing-risk follow-up (death from prostate cancer / other causes, administrative censoring at
2024-12-31).

The model is a few correlated standard-normal latents:
  age_z            age (years) = 67 + 8 * age_z
  aggr = 0.3 age_z + 0.95 e1        ISUP grade group cut at the marginal quantiles (exact shares)
  stage = 0.55 aggr + 0.84 e2       clinical T stage cut at its marginal quantiles
  vol_z = 0.35 age_z + 0.94 e3      prostate volume = 40 * exp(0.42 vol_z) mL (grows with age)
  log psa = log 7 + 0.33 aggr + 0.22 stage + 0.15 vol_z + 0.52 e4      (median 7 by symmetry)
Everything is vectorised NumPy with int8/int16/int32/float32 columns and pandas Categoricals that
hold the schema's category strings (isup "1".."5", gleason "6".."10", ...).
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from data.cohorts._sampling import (categorical, day_weights, missing_mask, ordinal_from_latent,
                                    positive_int, round_to, sample_categories, sample_conditional,
                                    sorted_days, to_datetime)

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 20261123

START = dt.date(2015, 1, 1)
END = dt.date(2024, 12, 31)

SITES = ("Site A", "Site B", "Site C", "Site D")
SITE_SHARES = (0.41, 0.27, 0.20, 0.12)
ISUP = ("1", "2", "3", "4", "5")
ISUP_SHARES = (0.35, 0.30, 0.15, 0.10, 0.10)
GLEASON = ("6", "7", "8", "9", "10")
T_STAGES = ("T1c", "T2a", "T2b", "T2c", "T3a", "T3b", "T4")
T_STAGE_SHARES = (0.50, 0.12, 0.08, 0.12, 0.10, 0.06, 0.02)
PIRADS = ("1", "2", "3", "4", "5")
PIRADS_SHARES = (0.04, 0.14, 0.22, 0.37, 0.23)
RISK_GROUPS = ("low", "intermediate", "high", "very high")
TREATMENTS = ("active surveillance", "prostatectomy", "radiotherapy", "ADT", "watchful waiting")
STATUSES = ("alive", "died of prostate cancer", "died of other causes")

# P(treatment | risk group), columns in TREATMENTS order.
_TREATMENT_BY_RISK = np.array([
    [0.62, 0.16, 0.10, 0.01, 0.11],   # low
    [0.12, 0.42, 0.34, 0.05, 0.07],   # intermediate
    [0.01, 0.38, 0.43, 0.14, 0.04],   # high
    [0.00, 0.20, 0.45, 0.32, 0.03],   # very high
])
# Multipliers by age band (<60, 60-74, >=75): young men get surgery, old men RT/ADT/observation.
_TREATMENT_AGE_FACTOR = np.array([
    [1.0, 1.6, 0.9, 0.7, 0.2],
    [1.0, 1.0, 1.0, 1.0, 1.0],
    [0.8, 0.25, 1.1, 1.8, 3.0],
])
# P(positive cores = 0..12 | grade group): Binomial(12, p) with p growing with grade; a diagnosis
# needs at least one positive core, so the mass at 0 moves to 1.
_CORES_PMF = np.array([[math.comb(12, k) * p ** k * (1 - p) ** (12 - k) for k in range(13)]
                       for p in (0.20, 0.33, 0.45, 0.55, 0.70)])
_CORES_PMF[:, 1] += _CORES_PMF[:, 0]
_CORES_PMF[:, 0] = 0.0
# Yearly hazard of death from prostate cancer by risk group.
_PCA_HAZARD = np.array([0.0015, 0.005, 0.015, 0.045], dtype=np.float32)
_OTHER_HAZARD_AT_67 = 0.012     # per year, times exp(0.085 * (age - 67))
_LOSS_HAZARD = 0.02             # per year lost to follow-up (censored, status alive)


def _diagnosis_day_weights() -> np.ndarray:
    weekday, _ = day_weights(START, END)
    n = len(weekday)
    w = 1.0 + 0.5 * np.arange(n) / n                        # slight upward trend over ten years
    w *= np.where(weekday < 5, 1.0, 0.05)                   # biopsies happen on weekdays
    dates = pd.date_range(START, END, freq="D")
    covid = np.ones(n)
    covid[(dates >= "2020-04-01") & (dates < "2020-07-01")] = 0.6
    covid[(dates >= "2020-07-01") & (dates < "2021-01-01")] = 0.85
    return w * covid


def generate_prostate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Synthetic prostate cancer cohort, one row per patient, deterministic from `seed`.

    Rows are in order of diagnosis date with `patient_id` 1..rows. A few values are missing at
    random: ~1 % bmi, ~0.5 % pirads, ~0.3 % prostate volume (and hence PSA density).
    """
    n = positive_int(rows, "rows")
    rng = np.random.default_rng(seed)
    f32 = np.float32

    weights = _diagnosis_day_weights()
    day = sorted_days(rng, weights, n)
    site = sample_categories(rng, SITE_SHARES, n)

    age_z = rng.standard_normal(n, dtype=f32)
    age = np.clip(np.rint(67 + 8 * age_z), 40, 95).astype(np.int16)

    aggr = rng.standard_normal(n, dtype=f32)
    aggr *= f32(np.sqrt(1 - 0.3 ** 2))
    aggr += f32(0.3) * age_z
    isup = ordinal_from_latent(aggr, ISUP_SHARES)

    stage_z = rng.standard_normal(n, dtype=f32)
    stage_z *= f32(np.sqrt(1 - 0.55 ** 2))
    stage_z += f32(0.55) * aggr
    stage = ordinal_from_latent(stage_z, T_STAGE_SHARES)

    # Prostate volume: log-normal, median ~40 mL, grows with age.
    vol_z = rng.standard_normal(n, dtype=f32)
    vol_z *= f32(np.sqrt(1 - 0.35 ** 2))
    vol_z += f32(0.35) * age_z
    volume = np.exp(f32(np.log(40)) + f32(0.42) * vol_z)
    volume = round_to(np.clip(volume, f32(10), f32(200)), 1)

    log_psa = rng.standard_normal(n, dtype=f32)
    log_psa *= f32(0.52)
    log_psa += f32(0.33) * aggr + f32(0.22) * stage_z + f32(0.15) * vol_z + f32(np.log(7))
    psa = round_to(np.clip(np.exp(log_psa), f32(0.1), f32(100)), 2)
    del log_psa, stage_z, vol_z
    density = round_to(np.clip(psa / volume, f32(0), f32(2)), 3)

    # Gleason score consistent with the grade group: GG1 6, GG2/GG3 7, GG4 8, GG5 9 (85 %) or 10.
    gleason = np.array([0, 1, 1, 2, 3], dtype=np.int8)[isup]
    gleason[(isup == 4) & (rng.random(n, dtype=f32) < f32(0.15))] = 4

    pirads_z = rng.standard_normal(n, dtype=f32)
    pirads_z *= f32(0.8)
    pirads_z += f32(0.6) * aggr
    pirads = ordinal_from_latent(pirads_z, PIRADS_SHARES)
    del pirads_z, aggr

    # Positive cores of 12: binomial with a hit rate growing with grade; a diagnosis needs one.
    cores = sample_conditional(rng, isup, _CORES_PMF)

    bmi = rng.standard_normal(n, dtype=f32)
    bmi *= f32(4.5)
    bmi += f32(28)
    bmi = round_to(np.clip(bmi, f32(15), f32(50)), 1)

    # NCCN-style risk group from PSA, grade group and clinical T stage.
    n_high = ((stage == 4).astype(np.int8) + (isup >= 3) + (psa > 20)).astype(np.int8)
    risk = np.zeros(n, dtype=np.int8)
    risk[(stage >= 2) | (isup >= 1) | (psa >= 10)] = 1
    risk[n_high >= 1] = 2
    risk[(stage >= 5) | (gleason == 4) | (n_high >= 2)] = 3
    del n_high

    age_band = (age >= 60).astype(np.int8) + (age >= 75)
    table = (_TREATMENT_BY_RISK[:, None, :] * _TREATMENT_AGE_FACTOR[None, :, :]).reshape(-1, 5)
    treatment = sample_conditional(rng, risk * 3 + age_band, table)
    del age_band

    # Competing risks in years; administrative censoring at END, loss to follow-up.
    to_cutoff = ((len(weights) - day) / f32(365.25)).astype(f32)
    t_pca = rng.standard_exponential(n, dtype=f32) / _PCA_HAZARD[risk]
    other_rate = f32(_OTHER_HAZARD_AT_67) * np.exp(f32(0.085) * (age.astype(f32) - f32(67)))
    t_other = rng.standard_exponential(n, dtype=f32) / other_rate
    del other_rate
    t_loss = rng.standard_exponential(n, dtype=f32) / f32(_LOSS_HAZARD)
    followup = np.minimum(np.minimum(t_pca, t_other), np.minimum(to_cutoff, t_loss))
    status = np.zeros(n, dtype=np.int8)
    status[t_pca == followup] = 1
    status[t_other == followup] = 2
    del t_pca, t_other, t_loss, to_cutoff
    followup_months = np.clip(np.floor(followup * f32(12)), 0, 120).astype(np.int16)
    del followup

    no_bmi = missing_mask(rng, 0.01, n)
    bmi[no_bmi] = np.nan
    no_pirads = missing_mask(rng, 0.005, n)
    no_volume = missing_mask(rng, 0.003, n)
    volume[no_volume] = np.nan
    density[no_volume] = np.nan

    id_dtype = np.int32 if n < 2**31 else np.int64
    return pd.DataFrame({
        "patient_id": np.arange(1, n + 1, dtype=id_dtype),
        "site": categorical(site, SITES),
        "diagnosis_date": to_datetime(START, day),
        "age": age,
        "psa": psa,
        "prostate_volume": volume,
        "psa_density": density,
        "isup_grade_group": categorical(isup, ISUP),
        "gleason_score": categorical(gleason, GLEASON),
        "clinical_t_stage": categorical(stage, T_STAGES),
        "pirads": categorical(pirads, PIRADS, missing=no_pirads),
        "positive_cores": cores,
        "bmi": bmi,
        "risk_group": categorical(risk, RISK_GROUPS),
        "treatment": categorical(treatment, TREATMENTS),
        "followup_months": followup_months,
        "status": categorical(status, STATUSES),
    }, copy=False)
