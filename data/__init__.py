"""Cohort data: public schemas (data.schema), encoding for OpenDP (data.prepare) and the cohort
catalogue (data.cohorts). `python -m data list` prints the catalogue."""
