"""Accuracy words: clinical units, patients vs the cohort's row noun, never 'ranks', 'inf' or 'rows'."""
from __future__ import annotations

import re

import pytest

from data.schema import load_schema
from privacy import words
from privacy.queries import make_query
from privacy.release import preview
from tests.conftest import toy_schema

STATS = ["count", "histogram", "crosstab", "mean", "quantile", "grouped-mean", "grouped-quantile"]


def _queries(schema):
    nums = [c.name for c in schema.of_kind("numeric")]
    cats = [c.name for c in schema.of_kind("categorical")]
    kw = {"count": {}, "histogram": dict(column=cats[0]), "crosstab": dict(column=cats[0], by=cats[-1]),
          "mean": dict(column=nums[0]), "quantile": dict(column=nums[0]),
          "grouped-mean": dict(column=nums[0], by=cats[0]), "grouped-quantile": dict(column=nums[0], by=cats[0])}
    return [make_query(s, **kw[s]) for s in STATS]


@pytest.mark.parametrize("cohort,noun", [("prostate", "patients"), ("radiology", "exams")])
@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("epsilon", [0.01, 0.1, 0.5, 2.0])
def test_words_are_clinical(cohort, noun, mechanism, epsilon):
    schema = load_schema(f"data/cohorts/{cohort}.toml")
    for q in _queries(schema):
        w = preview(q, schema, epsilon, mechanism).words
        assert w, q
        low = w.lower()
        for bad in ("rank", "inf", "nan", "rows", "∞", "e+", "e-0"):
            assert bad not in low, (q.stat, w)
        assert noun in w, (q.stat, w)
        if q.stat in ("mean", "grouped-mean", "quantile", "grouped-quantile"):
            unit = schema.column(q.column).unit
            assert unit and unit in w or "public bounds only" in w, (q.stat, w)


def test_counts_are_whole_numbers_rounded_up():
    schema = toy_schema()
    assert words.counts(6.43, schema, "each bar") == "each bar within ±7 patients"
    assert words.counts(6.0, schema) == "each count within ±6 patients"
    assert words.counts(1234.2, toy_schema(3)) == "each count within ±1,235 rows"


def test_mean_words_use_declared_group_sizes_and_say_when_too_small():
    schema = load_schema("data/cohorts/radiology.toml")
    assert schema.group_sizes == (500, 20_000) and schema.rows_word == "exams"
    text = words.mean(lambda n: 100.0 / n if n > 1_000 else float("inf"), "hours", schema)
    assert text == "the mean within about ±0.005 hours for a group of 20,000 exams (a group of 500 or fewer gets no useful estimate)"
    assert words.mean(lambda n: float("inf"), "h", schema).startswith("too little budget")


def test_quantile_words_in_percentiles_and_units():
    schema = toy_schema()       # no declared sizes: 100 / 1,000 / 10,000
    text = words.quantile("median", "Age at diagnosis", 20.0, 40.0, 90.0, "years", "to the public grid (step 1 years)",
                          schema)
    assert text.startswith("the median of age at diagnosis for a group of 100 patients: within about ±20 percentiles "
                           "(±10 years if values were spread evenly over 40–90 years); for 1,000: within about ±2 "
                           "percentiles (±1 years)")
    assert "for 10,000: within about ±0.2 percentiles" in text
    wide = words.quantile("median", "PSA", 80.0, 0, 100, "ng/mL", "", schema)
    assert "for a group of 100 patients: anywhere in the public range" in wide and wide.count("PSA") == 1


@pytest.mark.parametrize("v,text", [(0.0655, "0.0655"), (3.604, "3.6"), (40.0, "40"), (1234.5, "1,234"),
                                    (0.5, "0.5"), (12.06, "12.1")])
def test_number_formatting(v, text):
    assert words.number(v) == text
    assert not re.search(r"\.\d*0$", words.number(v))
