"""Privacy-loss conversions for the ledger's accounting modes, every number read from OpenDP.

Two modes, chosen per dataset by the data owner:
- "pure": basic composition. Each release costs (epsilon, delta) as its OpenDP privacy map
  says; epsilons add up, deltas add up (a Gaussian release needs a delta budget).
- "zcdp": zero-concentrated DP. Each release's cost is kept as rho (its zCDP map; a pure-DP
  release is converted with OpenDP's `make_pureDP_to_zCDP`); rhos add up (as OpenDP's
  `make_composition` of zCDP measurements does) and the total is shown as (epsilon, delta) at
  the dataset's delta through OpenDP's `make_zCDP_to_approxDP` + `make_fix_delta`.

The conversions here act on one stand-in measurement whose map is the given loss (a Gaussian at
scale 1 has rho = d^2/2 at input distance d; a Laplace at scale 1 has epsilon = d): OpenDP's
conversion combinators then give the converted loss. No conversion formula is written by hand.
"""
from __future__ import annotations

import functools
import math

from privacy.opendp_runtime import dp


def _scalar_space():
    return dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)


@functools.lru_cache(maxsize=1)
def _gauss_unit():
    return _scalar_space() >> dp.m.then_gaussian(scale=1.0)


@functools.lru_cache(maxsize=1)
def _laplace_unit():
    return _scalar_space() >> dp.m.then_laplace(scale=1.0)


@functools.lru_cache(maxsize=4096)
def rho_to_epsilon(rho: float, delta: float) -> float:
    """Epsilon of a zCDP loss `rho` at `delta` (OpenDP's zCDP -> approximate-DP conversion)."""
    if rho <= 0:
        return 0.0
    if delta <= 0:
        return math.inf
    conv = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(_gauss_unit()), delta=float(delta))
    return float(conv.map(math.sqrt(2.0 * rho))[0])


@functools.lru_cache(maxsize=4096)
def pure_to_rho(epsilon: float) -> float:
    """zCDP rho of a pure epsilon-DP release (OpenDP's `make_pureDP_to_zCDP`)."""
    if epsilon <= 0:
        return 0.0
    return float(dp.c.make_pureDP_to_zCDP(_laplace_unit()).map(float(epsilon)))


@functools.lru_cache(maxsize=1024)
def epsilon_to_rho(epsilon: float, delta: float) -> float:
    """Largest rho whose (epsilon, delta) conversion by OpenDP stays within `epsilon`."""
    if epsilon <= 0 or delta <= 0:
        return 0.0
    lo, hi = 1e-12, 1.0
    while rho_to_epsilon(hi, delta) < epsilon and hi < 1e9:
        hi *= 4
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if rho_to_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


def zcdp_of(measurement, d_in: int, mechanism: str):
    """The zCDP form of a calibrated measurement and its rho at `d_in`.

    `measurement` is the zCDP measurement itself for Gaussian plans and a pure-DP measurement
    otherwise (converted with `make_pureDP_to_zCDP`)."""
    m = measurement if mechanism == "gaussian" else dp.c.make_pureDP_to_zCDP(measurement)
    return m, float(m.map(d_in))
