"""Moved to `privacy/stats/quantile.py`. This name stays importable: it is the same module object."""
import sys

from privacy.stats import quantile as _moved

sys.modules[__name__] = _moved
