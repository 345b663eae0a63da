"""Confidence intervals and expected errors from OpenDP's accuracy functions (no data touched).

`accuracy(scale, alpha, noise)` is the half-width `a` with P(|noise| > a) <= alpha for one noisy
value, straight from OpenDP. Intervals for ratios (means) combine the sum's and the count's
intervals at alpha/2 each (Bonferroni), so the ratio interval covers with probability >= 1-alpha.
"""
from __future__ import annotations

from privacy.opendp_runtime import dp


def accuracy(scale: float, alpha: float, noise: str) -> float:
    """Two-sided (1-alpha) half-width of one noisy value with the given noise distribution."""
    if scale == 0:
        return 0.0
    if noise == "discrete laplace":
        return dp.discrete_laplacian_scale_to_accuracy(scale, alpha)
    if noise == "laplace":
        return dp.laplacian_scale_to_accuracy(scale, alpha)
    if noise == "discrete gaussian":
        return dp.discrete_gaussian_scale_to_accuracy(scale, alpha)
    if noise == "gaussian":
        return dp.gaussian_scale_to_accuracy(scale, alpha)
    raise ValueError(f"unknown noise {noise!r}")


def ratio_interval(noisy_sum: float, noisy_count: float, sum_acc: float, count_acc: float,
                   lower: float, upper: float) -> tuple[float, float, float]:
    """(estimate, low, high) of sum/count given each part's half-width at alpha/2.

    With probability >= 1-alpha both the true sum S and the true count N lie in their boxes; the
    true mean S/N then lies between the extreme ratios over the box, intersected with the public
    bounds. A count box reaching 0 gives the whole public range (nothing can be said).
    """
    est = noisy_sum / noisy_count if noisy_count > 0 else (lower + upper) / 2
    est = min(max(est, lower), upper)
    n_lo, n_hi = noisy_count - count_acc, noisy_count + count_acc
    if n_lo <= 0:
        return est, lower, upper
    s_lo, s_hi = noisy_sum - sum_acc, noisy_sum + sum_acc
    lo = min(s_lo / n_lo, s_lo / n_hi)
    hi = max(s_hi / n_lo, s_hi / n_hi)
    return est, max(lower, lo), min(upper, hi)
