"""Moved to `privacy/stats/survival.py`. This name stays importable: it is the same module object."""
import sys

from privacy.stats import survival as _moved

sys.modules[__name__] = _moved
