"""Vectorised sampling helpers shared by the synthetic cohort generators.

Everything works on whole NumPy arrays (no Python loop over rows), with small dtypes, so that
10^7 rows take seconds and a few hundred MB. All randomness comes from the `Generator` passed in,
so a generator is deterministic given its seed.
"""
from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence

import numpy as np
import pandas as pd


def positive_int(value: object, what: str) -> int:
    """`value` as an int >= 1 (ints and NumPy integers; bools, floats and strings are refused)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be a positive integer, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return v


def _thresholds(table: np.ndarray) -> np.ndarray:
    """Cumulative thresholds (float32) for inverse-CDF sampling of each row of `table`.

    Entry [g, k] is P(category <= k | group g); a threshold after which only zero-probability
    categories follow is set to 2.0 so float32 rounding can never select an impossible category.
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim == 1:
        t = t[None, :]
    if (t < 0).any() or not (t.sum(axis=1) > 0).all():
        raise ValueError("probability tables need non-negative rows with a positive sum")
    t = t / t.sum(axis=1, keepdims=True)
    cdf = np.cumsum(t, axis=1)[:, :-1]
    rest = t[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]  # mass strictly after category k
    cdf[rest <= 0] = 2.0
    return cdf.astype(np.float32)


def sample_categories(rng: np.random.Generator, probs: Sequence[float], n: int) -> np.ndarray:
    """n draws of a category index 0..K-1 (int8) with probabilities `probs` (normalised)."""
    thr = _thresholds(np.asarray(probs, dtype=np.float64))[0]
    u = rng.random(n, dtype=np.float32)
    return _count_at_or_above(u, thr)


def _count_at_or_above(x: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Number of `cuts` <= x for each x, as int8 (a fast searchsorted for a handful of cuts)."""
    out = np.zeros(len(x), dtype=np.int8)
    for c in cuts:
        out += x >= c
    return out


def sample_conditional(rng: np.random.Generator, group: np.ndarray, table: np.ndarray) -> np.ndarray:
    """One category index (int8) per row, drawn from row `group[i]` of the (G, K) `table`."""
    thr = _thresholds(table)
    u = rng.random(len(group), dtype=np.float32)
    out = np.zeros(len(group), dtype=np.int8)
    for k in range(thr.shape[1]):
        out += u >= thr[:, k][group]
    return out


def ordinal_from_latent(z: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """Cut a standard-normal latent `z` into ordered categories with the given marginal shares."""
    from statistics import NormalDist

    p = np.asarray(shares, dtype=np.float64)
    p = p / p.sum()
    cuts = np.array([NormalDist().inv_cdf(min(max(c, 1e-12), 1 - 1e-12)) for c in np.cumsum(p)[:-1]],
                    dtype=np.float32)
    return _count_at_or_above(z, cuts)


def sorted_days(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n day indices (int32, ascending) drawn from per-day `weights` (one multinomial draw)."""
    w = np.asarray(weights, dtype=np.float64)
    counts = rng.multinomial(n, w / w.sum())
    return np.repeat(np.arange(len(w), dtype=np.int32), counts)


def day_weights(start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Calendar helpers for [start, end]: (weekday 0=Mon..6=Sun, day of year 1..366), int16 each."""
    days = pd.date_range(start, end, freq="D")
    return days.day_of_week.to_numpy(np.int16), days.day_of_year.to_numpy(np.int16)


def to_datetime(start: dt.date, day_index: np.ndarray) -> np.ndarray:
    """Day indices counted from `start` as datetime64[s] (the smallest unit pandas keeps)."""
    return (np.datetime64(start, "D") + day_index.astype("timedelta64[D]")).astype("datetime64[s]")


def categorical(codes: np.ndarray, categories: Sequence[str], missing: np.ndarray | None = None
                ) -> pd.Categorical:
    """A pandas Categorical holding the schema's category strings; `missing` rows become NaN."""
    c = np.asarray(codes, dtype=np.int8)
    if missing is not None:
        c = c.copy()
        c[missing] = -1
    return pd.Categorical.from_codes(c, categories=list(categories))


def lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    """float32 log-normal draws with the given median(s) and log-scale sd."""
    z = rng.standard_normal(n, dtype=np.float32)
    z *= np.float32(sigma)
    np.exp(z, out=z)
    z *= np.asarray(median, dtype=np.float32)
    return z


def round_to(x: np.ndarray, decimals: int) -> np.ndarray:
    """Round float32 values in place to `decimals` places (keeps dtype)."""
    return np.round(x, decimals, out=x)


def missing_mask(rng: np.random.Generator, share: float, n: int) -> np.ndarray:
    """Rows that are missing completely at random with probability `share`."""
    return rng.random(n, dtype=np.float32) < np.float32(share)
