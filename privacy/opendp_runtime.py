"""The one place OpenDP is imported and its features enabled.

Only `contrib` is enabled: every measurement used is built in; `honest-but-curious` (user
functions) is never turned on.
"""
import opendp.prelude as dp

dp.enable_features("contrib")

__all__ = ["dp"]
