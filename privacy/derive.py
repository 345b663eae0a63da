"""Free answers: a new question answered by post-processing a release already stored on the dataset.

Post-processing of a DP release costs nothing, so before spending we look for stored releases
whose noisy cells add up to the new question's cells:
- a count (optionally in one public category W) = the sum of every cell of a histogram or crosstab
  with the same restriction W (their cells, incl. "missing"/"other", partition the rows);
- a count in category v of column C = the v cell of an unrestricted histogram of C, or the sum of
  the v row (or column) of a crosstab with C as an axis;
- a histogram of column A (default public bins) restricted to W = one row/column of a crosstab
  of A by W's column; unrestricted = the crosstab's margin (sums over the other axis).

Only releases of the same dataset are used; they are never re-invoked. Each derived value is a
sum of m independent noises of the source's published distribution and scale, so its 95%
interval comes from the exact law of that sum (the noise pmf convolved m times, computed on a
grid whose truncated tail mass is added to the miss probability): the interval covers at least
95% for any data. Counts clipped at 0 are not involved: raw noisy values are summed.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from privacy.queries import CountQuery, CrossTabQuery, HistogramQuery, Query, Where, query_from_dict


@dataclass(frozen=True)
class Derivation:
    """How the new question's values follow from one stored release."""

    source_key: str
    source: dict[str, Any]                # the stored release (payload)
    labels: list[str]
    cells: list[list[int]]                # per derived value: the source cells that add up to it
    how: str

    def release(self, query: Query, schema, analyst: str, alpha: float = 0.05):
        """The derived answer as a Release (values and honest intervals), cost 0."""
        from privacy.release import Release
        src = self.source
        noise = src["noise"]["counts"]
        vals = [float(np.sum([_num(src["values"][i]) for i in cells])) for cells in self.cells]
        halfs = [sum_halfwidth(noise["distribution"], float(noise["scale"]), len(c), alpha) for c in self.cells]
        return Release(
            dataset_id=src["dataset_id"], analyst=analyst, query=query.to_dict(), description=query.describe(schema),
            labels=list(self.labels), values=vals, ci_low=[v - a for v, a in zip(vals, halfs)],
            ci_high=[v + a for v, a in zip(vals, halfs)], alpha=alpha, epsilon=0.0, delta=0.0,
            mechanism=src["mechanism"], noise={"counts": {"distribution": f"sum of {noise['distribution']}",
                                                          "scale": float(noise["scale"])}},
            scale=float(noise["scale"]), timestamp=src["timestamp"], release_key=self.source_key, cached=True,
            extra={"derived_from": self.source_key, "derived_from_description": src.get("description", ""),
                   "derived_how": self.how, "cells_summed": [len(c) for c in self.cells],
                   "interval": f"exact law of a sum of independent {noise['distribution']} noises (covers >= "
                               f"{1 - alpha:.0%})"})


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _hist_labels(schema, column: str) -> list[str]:
    from privacy.measurements import _hist_labels as labels
    return list(labels(schema, HistogramQuery(column=column)))


def find_derivation(query: Query, schema, stored: list[dict[str, Any]]) -> Derivation | None:
    """The first stored release (newest first) that answers `query` by post-processing, or None.
    `stored` are the ledger's `releases(dataset)` rows ({"release_key", "release", ...})."""
    for row in reversed(stored):
        src = row["release"]
        if src.get("dataset_id") != schema.dataset_id or "counts" not in src.get("noise", {}):
            continue
        try:
            sq = query_from_dict(src["query"])
        except Exception:   # a release of a statistic this version does not know
            continue
        d = _match(query, sq, src, schema)
        if d is not None:
            labels, cells, how = d
            return Derivation(row["release_key"], src, labels, cells, how)
    return None


def _match(q: Query, sq: Query, src: dict, schema):
    n = len(src["labels"])
    if isinstance(q, CountQuery) and isinstance(sq, (HistogramQuery, CrossTabQuery)) and sq.where == q.where:
        what = "histogram" if isinstance(sq, HistogramQuery) else "2-D counts"
        return [_unit(schema)], [list(range(n))], f"sum of all cells of the {what}"
    if isinstance(q, CountQuery) and q.where is not None:
        w = q.where
        if isinstance(sq, HistogramQuery) and sq.where is None and sq.column == w.column and _default(sq):
            labels = list(src["labels"])
            if w.value in labels:
                return [_unit(schema)], [[labels.index(w.value)]], f"the '{w.value}' cell of the histogram"
        if isinstance(sq, CrossTabQuery) and sq.where is None and w.column in (sq.column, sq.by):
            rows, cols = src["extra"]["rows"], src["extra"]["cols"]
            if w.column == sq.column and w.value in rows:
                i = rows.index(w.value)
                return [_unit(schema)], [[i * len(cols) + j for j in range(len(cols))]], f"sum of the '{w.value}' row"
            if w.column == sq.by and w.value in cols:
                j = cols.index(w.value)
                return [_unit(schema)], [[i * len(cols) + j for i in range(len(rows))]], f"sum of the '{w.value}' column"
    if isinstance(q, HistogramQuery) and _default(q) and isinstance(sq, CrossTabQuery) and sq.where is None:
        rows, cols = src["extra"]["rows"], src["extra"]["cols"]
        if q.column not in (sq.column, sq.by):
            return None
        if q.column == sq.column:
            axis, other = rows, cols
            cell = lambda a, b: a * len(cols) + b          # noqa: E731
            other_col = sq.by
        else:
            axis, other = cols, rows
            cell = lambda a, b: b * len(cols) + a          # noqa: E731
            other_col = sq.column
        if axis != _hist_labels(schema, q.column):
            return None
        if q.where is None:
            return list(axis), [[cell(a, b) for b in range(len(other))] for a in range(len(axis))], \
                "margin of the 2-D counts"
        if q.where.column == other_col and q.where.value in other:
            b = other.index(q.where.value)
            return list(axis), [[cell(a, b)] for a in range(len(axis))], f"the '{q.where.value}' slice of the 2-D counts"
    return None


def _default(q: HistogramQuery) -> bool:
    return q.bin_edges is None and q.date_unit is None


def _unit(schema) -> str:
    return schema.rows_word


# ------------------------------------------------------------------- the law of a sum of noises
def _pmf(distribution: str, scale: float, tail: float = 1e-13) -> tuple[np.ndarray, float]:
    """pmf of one discrete noise on -K..K (OpenDP's laws: P(k) ~ exp(-|k|/scale) or
    exp(-k^2 / (2 scale^2))) and the probability mass outside -K..K."""
    if distribution == "discrete laplace":
        p = math.exp(-1.0 / scale)
        k = int(math.ceil(scale * math.log(1.0 / tail))) + 1
        x = np.arange(-k, k + 1)
        pmf = (1 - p) / (1 + p) * p ** np.abs(x)
        return pmf, 2.0 / (1 + p) * p ** (k + 1)           # 2 * sum_{x > k} (1-p)/(1+p) p^x
    if distribution == "discrete gaussian":
        k = int(math.ceil(scale * math.sqrt(2 * math.log(1.0 / tail)))) + 1
        x = np.arange(-k, k + 1).astype(float)
        w = np.exp(-x ** 2 / (2 * scale * scale))
        far = np.arange(k + 1, k + 1 + int(40 * scale) + 10).astype(float)
        outside = 2.0 * float(np.sum(np.exp(-far ** 2 / (2 * scale * scale))))
        z = float(w.sum()) + outside
        return w / z, outside / z
    raise ValueError(f"no exact sum law for {distribution!r}")


FFT_SLACK = 1e-9   # allowance for floating-point error of the FFT convolution


@functools.lru_cache(maxsize=512)
def sum_halfwidth(distribution: str, scale: float, m: int, alpha: float = 0.05) -> float:
    """Smallest a with P(|e_1 + ... + e_m| > a) <= alpha for iid noises e_i (exact law on a grid;
    the mass outside the grid and the FFT's rounding are counted as misses, so it is conservative)."""
    from privacy.accuracy import accuracy
    if m == 1:
        return accuracy(scale, alpha, distribution)
    if distribution == "gaussian":
        return accuracy(scale * math.sqrt(m), alpha, "gaussian")       # a sum of Gaussians is Gaussian
    pmf, out = _pmf(distribution, scale)
    size = m * (len(pmf) - 1) + 1
    nfft = 1 << (size - 1).bit_length()
    total = np.fft.irfft(np.fft.rfft(pmf, nfft) ** m, nfft)[:size]
    lost = min(1.0, m * out) + FFT_SLACK                               # outside the grid (union) + rounding
    half = (size - 1) // 2
    inside = total[half] + 2 * np.concatenate([[0.0], np.cumsum(total[half + 1:])])   # P(|S| <= a), a = 0, 1, ...
    ok = np.flatnonzero(1.0 - inside + lost <= alpha)
    return float(ok[0]) if len(ok) else float("inf")
