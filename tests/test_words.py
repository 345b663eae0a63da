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
    assert words.counts(1234.2, toy_schema(3)) == "each count within ±1,235 records"   # never "rows" on a clinical screen


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
    assert text == ("the median of age at diagnosis for a group of 100 patients: within about ±20 percentiles (a value "
                    "between the group's 30th and 70th percentiles); for 1,000: within about ±2 percentiles; for "
                    "10,000: within about ±0.2 percentiles; in years, as wide as the group's values between those "
                    "percentiles (shown with the release); rounded to the public grid (step 1 years)")
    wide = words.quantile("median", "PSA", 80.0, 0, 100, "ng/mL", "to the public grid (step 1 ng/mL)", schema)
    assert "; a group of 100 or fewer: anywhere in the public range 0–100 ng/mL;" in wide and wide.count("PSA") == 1
    assert ") (" not in wide                                   # one parenthesis at a time
    assert words.quantile("median", "PSA", 1e4, 0, 100, "ng/mL", "", schema).startswith(
        "the median of PSA for a group of up to 10,000 patients: anywhere in the public range 0–100 ng/mL")
    upper = words.quantile("90% quantile", "PSA", 10.0, 0, 100, "ng/mL", "", schema, level=0.9)
    assert "(a value above the group's 80th percentile)" in upper
    assert words._between(0.5, 0.1) == "a value between the group's 49.9th and 50.1th percentiles"
    assert words._between(0.5, 1.18) == "a value between the group's 48th and 52nd percentiles"   # rounded outward


def test_quantile_preview_is_not_the_even_spread_guess():
    """The PSA median's preview no longer states '±4.7 ng/mL if values were spread evenly over
    0-100' (about 15 times the released interval): percentiles, and the unit's meaning only."""
    schema = load_schema("data/cohorts/prostate.toml")
    w = preview(make_query("quantile", "psa"), schema, 0.5).words
    assert "spread evenly" not in w and not re.search(r"±[\d.]+ ng/mL", w), w
    assert re.search(r"within about ±[\d.]+ percentiles \(a value between the group's \d+(st|nd|rd|th) and "
                     r"\d+(st|nd|rd|th) percentiles\)", w), w
    assert "in ng/mL, as wide as the group's values between those percentiles" in w


@pytest.mark.parametrize("p,text", [(1, "1st"), (2, "2nd"), (3, "3rd"), (11, "11th"), (12, "12th"), (13, "13th"),
                                    (21, "21st"), (52, "52nd"), (49.5, "49.5th"), (100, "100th")])
def test_ordinals(p, text):
    assert words.ordinal(p) == text


@pytest.mark.parametrize("v,text", [(0.0655, "0.0655"), (3.604, "3.6"), (40.0, "40"), (1234.5, "1,234"),
                                    (0.5, "0.5"), (12.06, "12.1")])
def test_number_formatting(v, text):
    assert words.number(v) == text
    assert not re.search(r"\.\d*0$", words.number(v))
