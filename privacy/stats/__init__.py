"""One module per statistic: its plan builder (query spec + public schema + epsilon -> a calibrated
OpenDP measurement, its input, post-processing, preview words and owner truth), registered with
`privacy.measurements.register` when the module is imported.

The shared core (`Plan`, `Outcome`, input helpers, `build_plan`) is `privacy.measurements`, which
imports the statistics' modules at its bottom. It is imported here first, so a statistic module
imported on its own still finds the core complete.
"""
from privacy import measurements as _core  # noqa: F401
