"""Survival curves (Kaplan-Meier over public time bins) from ONE OpenDP noisy count.

Public: the schema's survival endpoint (time column, its public time bins, which event categories
are events and which are censored, an optional public row restriction), the optional compare-by
column's categories. Unit: one patient; with several rows per patient (colon: a recurrence row and
a death row) OpenDP's map at d_in = max rows per patient is the cost.

Measurement: every row is mapped (row-wise, public) to one cell: group x (time bin x {event,
censored}), or the group's "still followed after the last bin" cell; rows whose event category is
neither an event nor censored, or whose time is missing, are left out. OpenDP counts the cells
(`then_count_by_categories`) and adds discrete Laplace or discrete Gaussian noise. All groups are
one measurement: a patient's rows fall in at most d_in cells, so groups compose in parallel and
cost what one curve would.

Post-processing only: numbers at risk at the start of each bin are reverse
cumulative sums; the Kaplan-Meier (life-table) estimate S_b = prod_{j<=b} (1 - d_j / n_j) at the
end of every bin (censorings in a bin count half, the actuarial rule), made non-increasing by a
monotone least-squares fit (its band widened to contain it); median and landmark survival.

Interval (pointwise 95%, stated in the release): on the log scale, with variance = Greenwood's
sum_j d_j / (n_j (n_j - d_j)) over the noisy counts (sampling) + the DP noise's variance through
the delta method (the gradient of log S_b in every noisy cell, times the noise variance OpenDP's
scale gives), mapped to a log(-log S) band; from the first bin with too few patients at risk for
the noise (WEAK_NOISE_SDS) the band is [0, 1]. The statistical tests check >= 95% coverage of the
population curve; this is an approximate (delta-method) band, not a bound proven for any data.
"""
from __future__ import annotations

import math

import numpy as np

from privacy import words
from privacy.accuracy import accuracy
from privacy.calibrate import calibrate
from privacy.opendp_runtime import dp
from privacy.stats.quantile import isotonic
from privacy.queries import SurvivalQuery

Z95 = 1.959963984540054
# From the first bin whose effective number at risk is below WEAK_NOISE_SDS standard deviations of
# its noise (or MIN_AT_RISK), the band is the whole range [0, 1]: the delta method does not hold
# there, and the chart says "not enough patients to estimate".
WEAK_NOISE_SDS, MIN_AT_RISK = 5.0, 20.0
# The noise's delta-method variance is inflated for the heavier-than-normal tails of Laplace noise
# and the ratio's non-linearity (calibrated by the coverage tests in tests/test_survival.py).
NOISE_INFLATION = 1.5
LANDMARK_YEARS = (1, 3, 5, 10)
_PER_YEAR = {"months": 12.0, "month": 12.0, "days": 365.25, "day": 365.25, "years": 1.0, "year": 1.0,
             "weeks": 52.18, "week": 52.18}


def _noise_variance(distribution: str, scale: float) -> float:
    if distribution == "discrete laplace":
        p = math.exp(-1.0 / scale)
        return 2.0 * p / (1.0 - p) ** 2
    return float(scale) ** 2             # discrete Gaussian: variance <= scale^2 (OpenDP's sigma)


def kaplan_meier(d: np.ndarray, c: np.ndarray, beyond: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Life-table Kaplan-Meier over bins: (S at the end of each bin, numbers at risk at the start of
    each bin, effective numbers at risk n_j - c_j/2, Greenwood terms h_j = d_j / (n'_j (n'_j - d_j))).

    d, c: events and censorings per bin (clipped at 0); beyond: still followed after the last bin.
    Censorings inside a bin count as at risk for half of it (the actuarial rule), which removes most
    of the binning bias against the exact-time Kaplan-Meier curve.
    """
    d = np.asarray(d, dtype=float)
    c = np.asarray(c, dtype=float)
    at_risk = np.cumsum((d + c)[::-1])[::-1] + float(beyond)
    eff = at_risk - c / 2.0
    dd = np.clip(d, 0.0, np.maximum(eff, 0.0))      # for the variance only
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(eff > 0, np.clip(1.0 - d / eff, 0.0, None), 1.0)
        h = np.where((eff > 0) & (eff - dd > 0), dd / (eff * (eff - dd)), 0.0)
    return np.clip(np.cumprod(frac), 0.0, 1.0), at_risk, eff, h


def log_variance(eff: np.ndarray, h: np.ndarray, noise_var: float) -> np.ndarray:
    """Var(log S_b) per bin: Greenwood (sampling) + DP noise through the delta method.

    log S_b = sum_{j<=b} log(1 - d_j/n'_j), n'_j = sum_{k>=j} (d_k + c_k) + beyond - c_j/2, so
    d/d(beyond) = H_b, d/dc_i = H[min(b, i)] - [i <= b] h_i/2 and d/dd_i = H[min(b, i)] - [i <= b]/n'_i,
    with H = cumsum(h).
    """
    nb = len(eff)
    cum_h = np.cumsum(h)
    b = np.arange(nb)[:, None]
    i = np.arange(nb)[None, :]
    a = cum_h[np.minimum(b, i)]
    inside = (i <= b)
    inv_n = np.where(eff > 0, 1.0 / np.maximum(eff, 1e-300), 0.0)
    g_c = a - inside * (h[None, :] / 2.0)
    g_d = a - inside * inv_n[None, :]
    return cum_h + NOISE_INFLATION * noise_var * ((g_c ** 2).sum(axis=1) + (g_d ** 2).sum(axis=1) + cum_h ** 2)


def _band(s: np.ndarray, var_log: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise band on the log(-log S) scale (se = sd(log S) / |log S|); where that scale is
    unstable (S near 1, se > 1) the log scale: S exp(-/+ z sd)."""
    sd = np.sqrt(np.maximum(var_log, 0.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_s = np.log(np.clip(s, 1e-300, 1.0))
        se = np.where(log_s < 0, sd / np.abs(log_s), np.inf)
        loglog = se <= 1.0
        lo = np.where(loglog, s ** np.exp(z * se), np.exp(log_s - z * sd))
        hi = np.where(loglog, s ** np.exp(-z * se), np.exp(log_s + z * sd))
    lo = np.where(s > 0, lo, 0.0)
    hi = np.where(s > 0, hi, 1.0)                     # an estimate of 0 (noisy counts): claim nothing
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def _landmarks(edges: np.ndarray, unit: str) -> dict[str, int]:
    """Bin ends within 1% of 1, 3, 5 and 10 years, if the time unit is known."""
    per = _PER_YEAR.get(unit.strip().lower())
    out = {}
    if per:
        for y in LANDMARK_YEARS:
            target = y * per
            k = int(np.argmin(np.abs(edges[1:] - target)))
            if abs(edges[1 + k] - target) <= 0.01 * target:
                out[f"{y}-year"] = k
    return out


def _median(edges: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float, float]:
    """Median survival: first bin end where S <= 0.5; interval from where the band's limits cross
    0.5 (Brookmeyer-Crowley style); nan = not reached within the public follow-up."""
    def first(x):
        k = np.flatnonzero(x <= 0.5)
        return float(edges[1 + k[0]]) if len(k) else float("nan")
    return first(s), first(lo), first(hi)


def _survival_plan(q: SurvivalQuery, schema, epsilon, mechanism, delta):
    from privacy.measurements import Outcome, Plan, _count_metric, _int_space, _noise_of, _rows, _then_noise

    e = schema.endpoint(q.endpoint, q.column)
    tcol, ecol = schema.column(e.time), schema.column(e.event)
    edges = np.asarray(e.bin_edges or tcol.bin_edges, dtype=float)
    nb = len(edges) - 1
    per_group = 2 * nb + 1
    groups = list(schema.column(q.by).bucket_labels) if q.by else [e.label or "all patients"]
    d_in = schema.max_rows_per_unit
    cells = list(range(len(groups) * per_group))
    kind_of = np.full(len(ecol.bucket_labels), -1, dtype=np.int32)
    for v in e.events:
        kind_of[ecol.bucket_labels.index(v)] = 0
    for v in e.censored:
        kind_of[ecol.bucket_labels.index(v)] = 1

    def build(scale: float):
        return (_int_space() >> dp.t.then_count_by_categories(categories=cells, null_category=False,
                                                              MO=_count_metric(mechanism))
                >> _then_noise(mechanism, scale))

    m, (scale,), cost = calibrate([build], [1.0], d_in, epsilon, mechanism, delta)
    noise = _noise_of(mechanism, True)
    noise_var = _noise_variance(noise, scale)

    def make_input(cohort) -> np.ndarray:
        t = cohort.numbers[e.time]
        kind = kind_of[cohort.codes[e.event]]
        keep = (kind >= 0) & ~np.isnan(t)
        for mask in (_rows(cohort, q), cohort.mask(*e.where) if e.where else None):
            if mask is not None:
                keep &= mask
        t, kind = t[keep], kind[keep]
        b = np.searchsorted(edges, t, side="right").astype(np.int32) - 1
        b[t == edges[-1]] = nb - 1                      # the last bin is closed on the right
        b = np.clip(b, 0, nb)                           # values are clamped to the bounds: b >= 0
        cell = np.where(b < nb, 2 * b + kind, 2 * nb).astype(np.int32)
        cell[(t >= edges[-1]) & (kind == 1)] = 2 * nb   # censored at the end of follow-up: at risk throughout
        if q.by:
            cell = cohort.codes[q.by][keep].astype(np.int32) * np.int32(per_group) + cell
        return cell

    landmarks = _landmarks(edges, tcol.unit)

    def curves(counts: np.ndarray, alpha: float, with_noise: bool = True):
        z = Z95 if abs(alpha - 0.05) < 1e-12 else _z(alpha)
        out = []
        for row in counts.reshape(len(groups), per_group):
            d, c, beyond = row[0:2 * nb:2], row[1:2 * nb:2], row[2 * nb]
            s, at_risk, eff, h = kaplan_meier(d, c, beyond)
            var = log_variance(eff, h, noise_var if with_noise else 0.0)
            lo, hi = _band(s, var, z)
            if with_noise:           # a survival curve never rises: the monotone fit of the noisy one,
                s = -isotonic(-s)    # and the band widened (never narrowed) to contain it
                lo, hi = np.minimum(lo, s), np.maximum(hi, s)
            if with_noise:   # too few at risk for the noise: no information, the whole range [0, 1]
                weak = eff < np.maximum(MIN_AT_RISK, WEAK_NOISE_SDS * np.sqrt(noise_var * (2 * (nb - np.arange(nb)) + 1)))
                if weak.any():
                    k = int(np.flatnonzero(weak)[0])
                    lo[k:], hi[k:] = 0.0, 1.0
            out.append((s, lo, hi, at_risk))
        return out

    def finish(raw, alpha: float) -> Outcome:
        counts = np.asarray(raw, dtype=float)
        res = curves(counts, alpha)
        vals, lows, highs = [], [], []
        extra_groups = []
        for g, (s, lo, hi, at_risk) in zip(groups, res):
            vals += s.tolist(); lows += lo.tolist(); highs += hi.tolist()
            weak = np.flatnonzero((lo <= 0.0) & (hi >= 1.0))
            k = int(weak[0]) if len(weak) else nb                # read the median only where estimable
            med = _median(edges[:k + 1], s[:k], lo[:k], hi[:k])
            extra_groups.append({
                "group": g,
                "at_risk": [int(round(max(v, 0.0))) for v in at_risk],
                "median": med[0], "median_low": med[1], "median_high": med[2],
                "landmarks": {name: [float(s[i]), float(lo[i]), float(hi[i])] for name, i in landmarks.items()
                              if i < k}})
        return Outcome(vals, lows, highs, {
            "edges": edges.tolist(), "groups": extra_groups, "time_unit": tcol.unit,
            "noisy_cells": counts.tolist(),
            "interval": "pointwise 95% band on the log(-log) scale: Greenwood variance from the noisy counts plus "
                        "the DP noise's variance (delta method); [0, 1] where too few remain at risk"})

    def truth(cohort) -> list[float]:
        c = make_input(cohort)
        counts = np.bincount(c, minlength=len(cells)).astype(float)
        return [v for s, *_ in curves(counts, 0.05, with_noise=False) for v in s.tolist()]

    labels = [f"{g} | {edges[b + 1]:g}" for g in groups for b in range(nb)]

    def preview(alpha: float) -> dict:
        a = accuracy(scale, alpha, noise)
        parts = []
        for n in words.sizes(schema):
            half = Z95 * math.sqrt(noise_var * 2 * nb) / n     # S near 0.5 after all bins: rough guide
            parts.append(f"about ±{words.number(min(100.0, 100 * half))} percentage points for a group of "
                         f"{n:,} {schema.rows_word}" if not parts else
                         f"±{words.number(min(100.0, 100 * half))} for {n:,}")
        text = (("in each group (all groups for the price of one), " if q.by else "")
                + f"events and censorings per time bin within ±{words.whole(a)} {schema.rows_word}; "
                + "the curve's DP noise " + ", ".join(parts) + " (sampling variation comes on top)")
        return {"kind": "survival", "halfwidth": a, "unit": schema.rows_word, "words": text}

    extra = {"method": "noisy counts of events and censorings per public time bin (one OpenDP measurement"
                       + (" over group x bin cells: groups compose in parallel" if q.by else "")
                       + "); Kaplan-Meier by post-processing",
             "endpoint": e.name, "time_bins": nb, "time_unit": tcol.unit}
    return Plan(q, schema, epsilon, mechanism, delta, m, d_in, cost, labels, {"counts": (noise, scale)},
                make_input, finish, truth, preview, extra, cells=len(cells))


def _z(alpha: float) -> float:
    """Two-sided normal quantile for 1 - alpha (bisection on erf; no SciPy needed)."""
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if math.erfc(mid / math.sqrt(2)) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


from privacy.measurements import register  # noqa: E402
register(SurvivalQuery, _survival_plan)
