"""The one place OpenDP is imported and its features enabled.

Only `contrib` is enabled: every measurement used is built in; `honest-but-curious` (user
functions) is never turned on.

`dp` is `opendp.prelude` without its scikit-learn, NumPy, mbi, ibis and examples extras: the prelude
imports scikit-learn (about 3.4 s of the app's cold start) although no statistic here uses it. The
same names as the prelude (`dp.t`, `dp.m`, `dp.c`, domains, metrics, measures, accuracy, and, loaded
on first use, the Context API, `dp.polars` and `dp.len`); the mbi extra is imported where a synthetic
cohort is built.
"""
import types

import opendp.accuracy
import opendp.combinators
import opendp.core
import opendp.domains
import opendp.measurements
import opendp.measures
import opendp.metrics
import opendp.mod
import opendp.transformations
import opendp.typing

dp = types.ModuleType("dp", "opendp.prelude without the scikit-learn/NumPy/mbi/ibis extras")
for _mod in (opendp.mod, opendp.domains, opendp.metrics, opendp.measures, opendp.typing, opendp.accuracy):
    for _name in getattr(_mod, "__all__", [n for n in dir(_mod) if not n.startswith("_")]):
        setattr(dp, _name, getattr(_mod, _name))
dp.t, dp.m, dp.c = opendp.transformations, opendp.measurements, opendp.combinators


def _lazy(name: str):
    """`dp.polars`, `dp.len` and the Context API are imported on first use (only the synthetic
    cohort's domain needs them): about 0.3 s off every cold start."""
    if name in ("polars", "len"):
        import opendp.extras.polars as P
        dp.polars, dp.len = P, P.dp_len
        return getattr(dp, name)
    import opendp.context as C
    if name in getattr(C, "__all__", ()):
        for n in C.__all__:
            setattr(dp, n, getattr(C, n))
        return getattr(dp, name)
    raise AttributeError(f"module 'dp' has no attribute {name!r}")


dp.__getattr__ = _lazy       # PEP 562: looked up for names not set above
dp.as_array, dp.new_function, dp.new_queryable = opendp.core.as_array, opendp.core.new_function, opendp.core.new_queryable

dp.enable_features("contrib")

__all__ = ["dp"]
