"""The one place OpenDP is imported and its features enabled.

Only `contrib` is enabled: every measurement used is built in; `honest-but-curious` (user
functions) is never turned on.

`dp` is `opendp.prelude` without its scikit-learn, NumPy, mbi, ibis and examples extras: the prelude
imports scikit-learn (about 3.4 s of the app's cold start) although no statistic here uses it. The
same names as the prelude (`dp.t`, `dp.m`, `dp.c`, domains, metrics, measures, accuracy, context,
`dp.polars`, `dp.len`); the mbi extra is imported where a synthetic cohort is built.
"""
import types

import opendp.accuracy
import opendp.combinators
import opendp.context
import opendp.core
import opendp.domains
import opendp.extras.polars
import opendp.measurements
import opendp.measures
import opendp.metrics
import opendp.mod
import opendp.transformations
import opendp.typing

dp = types.ModuleType("dp", "opendp.prelude without the scikit-learn/NumPy/mbi/ibis extras")
for _mod in (opendp.mod, opendp.domains, opendp.metrics, opendp.measures, opendp.typing, opendp.accuracy,
             opendp.context):
    for _name in getattr(_mod, "__all__", [n for n in dir(_mod) if not n.startswith("_")]):
        setattr(dp, _name, getattr(_mod, _name))
dp.t, dp.m, dp.c = opendp.transformations, opendp.measurements, opendp.combinators
dp.polars = opendp.extras.polars
dp.len = opendp.extras.polars.dp_len
dp.as_array, dp.new_function, dp.new_queryable = opendp.core.as_array, opendp.core.new_function, opendp.core.new_queryable

dp.enable_features("contrib")

__all__ = ["dp"]
