"""Insecure NumPy baselines: the same statistic on the same prepared columns, plus NumPy noise.

For comparison only. These are NOT differentially private releases (floating-point Laplace noise
from NumPy, no clamping beyond what preparation did, no ledger) and must never be used in
product code.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from data.prepare import PreparedCohort

Baseline = Callable[[PreparedCohort, np.random.Generator], object]


def make_baselines(columns: dict[str, str], plans: dict) -> dict[str, Baseline]:
    """One baseline per query kind. `plans` gives the calibrated noise scale of each kind."""
    cat, cat2, num = columns["cat"], columns["cat2"], columns["num"]

    def scale(kind: str, part: str | None = None) -> float:
        noise = plans[kind].noise
        return float((noise[part] if part else next(iter(noise.values())))[1])

    def count(c, rng):                               # len() + noise: a row count is O(1) in NumPy
        return c.n_rows + rng.laplace(0.0, scale("count"))

    def cat_hist(c, rng):
        k = len(c.schema.column(cat).bucket_labels)
        return np.bincount(c.codes[cat], minlength=k) + rng.laplace(0.0, scale("cat-hist"), k)

    def num_hist(c, rng):
        edges = np.asarray(plans["num-hist20"].query.bin_edges)
        h, _ = np.histogram(c.numbers[num], bins=edges)
        return h + rng.laplace(0.0, scale("num-hist20"), len(h))

    def mean(c, rng):
        x = c.numbers[num]
        x = x[~np.isnan(x)]
        return (x.sum() + rng.laplace(0.0, scale("mean", "sum"))) / (x.size + rng.laplace(0.0, scale("mean", "count")))

    def quantile(c, rng):
        x = c.numbers[num]
        return np.quantile(x[~np.isnan(x)], 0.5) + rng.laplace(0.0, 1.0)

    def grouped_mean(c, rng):
        x, g = c.numbers[num], c.codes[cat]
        ok = ~np.isnan(x)
        k = len(c.schema.column(cat).bucket_labels)
        s = np.bincount(g[ok], weights=x[ok], minlength=k) + rng.laplace(0.0, scale("grouped-mean", "sum"), k)
        n = np.bincount(g[ok], minlength=k) + rng.laplace(0.0, scale("grouped-mean", "count"), k)
        return s / n

    def crosstab(c, rng):
        nb = len(c.schema.column(cat2).bucket_labels)
        k = len(c.schema.column(cat).bucket_labels) * nb
        return np.bincount(c.codes[cat] * nb + c.codes[cat2], minlength=k) + rng.laplace(0.0, scale("crosstab"), k)

    return {"count": count, "cat-hist": cat_hist, "num-hist20": num_hist, "mean": mean, "quantile": quantile,
            "grouped-mean": grouped_mean, "crosstab": crosstab}


BASELINE_NAMES = {
    "count": "len()+laplace", "cat-hist": "np.bincount", "num-hist20": "np.histogram", "mean": "sum/len",
    "quantile": "np.quantile", "grouped-mean": "np.bincount(w)", "crosstab": "np.bincount",
}
