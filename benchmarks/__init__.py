"""Speed benchmarks for the DP release path (run with `python -m benchmarks`, or `make bench`).

Not tests: nothing here is collected by pytest and nothing asserts on time; the run prints a
table and a PASS/FAIL line against the speed targets. The NumPy baselines in `baseline.py` are
insecure comparisons only and never belong in product code.
"""
