"""Noise calibration: pick noise scales so a measurement costs exactly the requested budget.

Costs always come from the OpenDP privacy map (`m.map(d_in)`), never from a hand-written
sensitivity: a part is first built at scale 1, its map read, and the scale set from it (epsilon
is proportional to 1/scale for Laplace; rho to 1/scale^2 for Gaussian). The final measurement's
map is checked against the request and the scale nudged up if float rounding overshoots.

Gaussian noise is analysed under zCDP and converted to (epsilon, delta) with OpenDP's
`make_zCDP_to_approxDP` + `make_fix_delta`.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from privacy.accounting import epsilon_to_rho, zcdp_of
from privacy.opendp_runtime import dp

DEFAULT_DELTA = 1e-7
Builder = Callable[[float], "dp.Measurement"]


def rho_for(epsilon: float, delta: float) -> float:
    """Largest rho whose zCDP -> (epsilon, delta) conversion (OpenDP) stays within epsilon."""
    return epsilon_to_rho(float(epsilon), float(delta))


class Cost(tuple):
    """(epsilon, delta) of a calibrated measurement, as OpenDP's map reports it, with its zCDP
    form: `rho` and `zcdp` (the measurement under zCDP) for the ledger's zCDP accounting."""

    def __new__(cls, epsilon: float, delta: float, rho: float, zcdp):
        obj = super().__new__(cls, (float(epsilon), float(delta)))
        obj.rho, obj.zcdp = float(rho), zcdp
        return obj


def _rho_pair(inner, d_in: int, mechanism: str):
    z, rho = zcdp_of(inner, d_in, mechanism)
    return rho, z


def _as_approx(m, delta: float):
    return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(m), delta=delta)


def calibrate(builders: Sequence[Builder], weights: Sequence[float], d_in: int, epsilon: float,
              mechanism: str, delta: float = DEFAULT_DELTA, compose: Callable | None = None):
    """Return (measurement, scales, (cost_epsilon, cost_delta)).

    Each builder maps a noise scale to one OpenDP measurement; part i receives the share
    weights[i]/sum(weights) of the budget. Several parts are composed with `compose` (default
    `dp.c.make_composition`). For "laplace" the result is pure epsilon-DP (delta 0); for
    "gaussian" the zCDP result is converted to (epsilon, delta). The returned cost also carries
    the measurement's zCDP form and rho (for zCDP accounting in the ledger).
    """
    total_w = float(sum(weights))
    shares = [w / total_w for w in weights]
    compose = compose or (lambda ms: ms[0] if len(ms) == 1 else dp.c.make_composition(list(ms)))
    if mechanism == "laplace":
        unit = [b(1.0).map(d_in) for b in builders]
        scales = [u / (epsilon * s) for u, s in zip(unit, shares)]
    elif mechanism == "gaussian":
        rho = rho_for(float(epsilon), float(delta))
        unit = [b(1.0).map(d_in) for b in builders]
        scales = [math.sqrt(u / (rho * s)) for u, s in zip(unit, shares)]
    else:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    for _ in range(60):
        inner = compose([b(sc) for b, sc in zip(builders, scales)])
        if mechanism == "gaussian":
            m = _as_approx(inner, delta)
            eps_cost, delta_cost = m.map(d_in)
        else:
            m = inner
            eps_cost, delta_cost = m.map(d_in), 0.0
        if eps_cost <= epsilon:
            return m, scales, Cost(eps_cost, delta_cost, *_rho_pair(inner, d_in, mechanism))
        scales = [sc * (1 + 1e-9 * 4 ** _) for sc in scales]
    raise RuntimeError("could not calibrate the noise scale to the requested epsilon")
