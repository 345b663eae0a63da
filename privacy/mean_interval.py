"""A joint (sum, count) confidence interval for a DP mean: test inversion, no Bonferroni boxes.

Released (OpenDP): S~ = S + e_s, the sum of the centred values (discrete Laplace on values
quantised to integers at a public resolution, or Laplace on a float sum as in the grouped mean's
Polars measurement), and N~ = N + e_c, the count (discrete Laplace). For the true
quantised mean m = S / N the pivot S~ - m N~ = e_s - m e_c has a law that depends only on m and
the two public noise scales. So the set

    { m in [-H, H] : |S~ - m N~| <= a(m) },   a(m) = the (1-alpha) quantile of |e_s - m e_c|,

contains the true m with probability >= 1 - alpha for ANY data (ties, heaping, tiny groups).
It is computed on a grid of cells: a cell is kept when the smallest |S~ - m N~| on it is within
the largest a(m) at its two ends (a(m) grows with |m|: for independent symmetric unimodal noises
|e_s - m e_c| is stochastically increasing in |m|, Anderson's theorem), so the reported hull
contains every m of the set; the two end cells are then split finer with the same rule. a(m) is exact: P(|e_s - m k| <= a) has a closed form for each count-noise value k, summed
over k's pmf; the count pmf's truncated tail is counted as a miss. Everything here is public math.
"""
from __future__ import annotations

import functools
import math

import numpy as np

GRID_CELLS = 400
REFINE = 100
A_POINTS = 21      # values of |m| at which a(m) is computed exactly
TAIL = 1e-12


def _dl_cdf(x: np.ndarray, scale: float) -> np.ndarray:
    """P(e <= x) for OpenDP's discrete Laplace (P(k) ~ exp(-|k|/scale)), x integer-valued."""
    p = math.exp(-1.0 / scale)
    x = np.asarray(x, dtype=float)
    pos = 1.0 - np.exp(-(np.maximum(x, 0.0) + 1.0) / scale) / (1.0 + p)
    neg = np.exp(np.minimum(x, 0.0) / scale) / (1.0 + p)
    return np.where(x >= 0, pos, neg)


@functools.lru_cache(maxsize=64)
def _count_pmf(scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    p = math.exp(-1.0 / scale)
    kmax = int(math.ceil(scale * math.log(1.0 / TAIL))) + 1
    k = np.arange(-kmax, kmax + 1, dtype=float)
    pmf = (1 - p) / (1 + p) * p ** np.abs(k)
    return k, pmf, max(0.0, 1.0 - float(pmf.sum()))


def _laplace_cdf(x: np.ndarray, scale: float) -> np.ndarray:
    """P(e <= x) for a (continuous) Laplace noise with this scale."""
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0.0) / scale), 1.0 - 0.5 * np.exp(-np.maximum(x, 0.0) / scale))


@functools.lru_cache(maxsize=64)
def _count_pmf_folded(scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The count noise's pmf on k >= 0 with the mass of -k added to k: e_s's law is symmetric, so
    P(|e_s - m k| <= a) = P(|e_s + m k| <= a) and the two terms of +-k are equal (half the work)."""
    k, pmf, tail = _count_pmf(scale)
    keep = k >= 0
    return k[keep], np.where(k[keep] > 0, 2.0, 1.0) * pmf[keep], tail


def miss_probability(a: np.ndarray, m: np.ndarray, sum_scale: float, count_scale: float,
                     continuous: bool = False) -> np.ndarray:
    """P(|e_s - m e_c| > a) for each (a, m) pair (an upper bound: the truncated tail is a miss).
    e_s is discrete Laplace on integers, or a continuous Laplace with `continuous`."""
    k, pmf, tail = _count_pmf_folded(count_scale)
    a = np.asarray(a, dtype=float)[:, None]
    c = np.asarray(m, dtype=float)[:, None] * k[None, :]
    if continuous:
        inside = _laplace_cdf(c + a, sum_scale) - _laplace_cdf(c - a, sum_scale)
    else:
        inside = _dl_cdf(np.floor(c + a), sum_scale) - _dl_cdf(np.ceil(c - a) - 1.0, sum_scale)
    return 1.0 - (inside * pmf[None, :]).sum(axis=1) + tail


def joint_halfwidth(m: np.ndarray, sum_scale: float, count_scale: float, alpha: float,
                    continuous: bool = False) -> np.ndarray:
    """Smallest a (to 1e-6 relative) with P(|e_s - m e_c| > a) <= alpha, for each m."""
    m = np.abs(np.asarray(m, dtype=float))
    lo = np.zeros_like(m)
    hi = np.full_like(m, sum_scale * math.log(2.0 / alpha) + 1.0)
    hi += m * count_scale * math.log(2.0 / alpha) * 2.0
    while True:          # make sure hi is enough (it nearly always is at once)
        bad = miss_probability(hi, m, sum_scale, count_scale, continuous) > alpha
        if not bad.any():
            break
        hi[bad] *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        ok = miss_probability(mid, m, sum_scale, count_scale, continuous) <= alpha
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
        if np.all(hi - lo <= 1e-6 * np.maximum(hi, 1.0)):
            break
    return hi


@functools.lru_cache(maxsize=256)
def _grid(H: float, sum_scale: float, count_scale: float, alpha: float,
          continuous: bool = False) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(-H, H, GRID_CELLS + 1)
    # a(m) depends on |m| and grows with it: compute it at A_POINTS values of |m| only and give each
    # edge the value at the next one outward (conservative), ~20x less work than at every edge.
    steps = np.linspace(0.0, H, A_POINTS)
    a_steps = joint_halfwidth(steps, sum_scale, count_scale, alpha, continuous)
    outward = np.minimum(np.ceil(np.abs(edges) / H * (A_POINTS - 1) - 1e-9).astype(int), A_POINTS - 1)
    return edges, a_steps[outward]


def _kept(edges: np.ndarray, a: np.ndarray, noisy_sum: float, noisy_count: float) -> np.ndarray:
    """Indices of the cells [edges[i], edges[i+1]] that may hold an m of the confidence set."""
    r = noisy_sum - edges * noisy_count              # S~ - m N~ at each edge (linear in m)
    sign_change = r[:-1] * r[1:] <= 0
    dist = np.where(sign_change, 0.0, np.minimum(np.abs(r[:-1]), np.abs(r[1:])))
    return np.flatnonzero(dist <= np.maximum(a[:-1], a[1:]) * (1 + 1e-9))


def mean_interval(noisy_sum: float, noisy_count: float, H: float, sum_scale: float, count_scale: float,
                  alpha: float, continuous: bool = False) -> tuple[float, float, float]:
    """(estimate, low, high) of the quantised centred mean, all in [-H, H] (integer units).
    The two boundary cells of the coarse grid are refined into REFINE sub-cells each."""
    est = noisy_sum / noisy_count if noisy_count > 0 else 0.0
    est = min(max(est, -H), H)
    edges, a = _grid(float(H), float(sum_scale), float(count_scale), float(alpha), continuous)
    keep = _kept(edges, a, noisy_sum, noisy_count)
    if len(keep) == 0:       # nothing fits (a rare noise draw): say nothing rather than something wrong
        return est, -H, H
    ends = []
    for i, pick in ((keep[0], 0), (keep[-1], -1)):
        sub = np.linspace(edges[i], edges[i + 1], REFINE + 1)
        a_cell = np.full(REFINE + 1, max(a[i], a[i + 1]))    # a(m) <= its larger end value on the cell
        k = _kept(sub, a_cell, noisy_sum, noisy_count)
        j = k[pick] if len(k) else (0 if pick == 0 else REFINE - 1)
        ends.append(float(sub[j] if pick == 0 else sub[j + 1]))
    lo, hi = ends
    return min(max(est, lo), hi), lo, hi


def typical_halfwidth(n: float, H: float, sum_scale: float, count_scale: float, alpha: float,
                      continuous: bool = False) -> float:
    """Expected half-width (integer units) for a group of n with |mean| at half the public range:
    a(H/2) / n. For previews; the released interval uses the data's own noisy values."""
    return float(joint_halfwidth(np.array([H / 2]), sum_scale, count_scale, alpha, continuous)[0]) / n
