"""Ready-made multi-statistic reports (radiology review) with an explicit epsilon split.

The total epsilon is chosen once; each statistic receives a published share, all shown before
spending. Each statistic is an ordinary release (own ledger charge), so costs add up to at most
the total (sequential composition).
"""
from __future__ import annotations

from dataclasses import dataclass

from data.schema import Schema
from privacy.queries import (CrossTabQuery, GroupedMeanQuery, HistogramQuery, Query, QuantileQuery, Where,
                             validate_query)

RADIOLOGY_COLUMNS = ("exam_date", "modality", "department", "turnaround_hours", "ctdi_vol_mgy", "contrast")


@dataclass(frozen=True)
class ReportItem:
    key: str
    title: str
    query: Query
    share: float          # share of the report's total epsilon

    def epsilon(self, total: float) -> float:
        return round(total * self.share, 10)


def radiology_report(schema: Schema) -> list[ReportItem]:
    """Exams per month per modality, turnaround by department (mean and median), CT dose, contrast use."""
    missing = [c for c in RADIOLOGY_COLUMNS if c not in schema.names]
    if missing:
        raise ValueError("this cohort is not an exam log: missing " + ", ".join(missing))
    items = [
        ReportItem("volume", "Exams per month and modality", CrossTabQuery(column="exam_date", by="modality"), 0.30),
        ReportItem("turnaround_mean", "Mean report turnaround by department",
                   GroupedMeanQuery(column="turnaround_hours", by="department"), 0.15),
    ]
    depts = schema.column("department").categories
    for d in depts:
        items.append(ReportItem(f"turnaround_median_{d}", f"Median turnaround: {d}",
                                QuantileQuery(column="turnaround_hours", q=0.5, where=Where("department", d)),
                                0.20 / len(depts)))
    items += [
        ReportItem("ct_dose", "CT dose (CTDIvol) distribution",
                   HistogramQuery(column="ctdi_vol_mgy", where=Where("modality", "CT")), 0.15),
        ReportItem("contrast", "Contrast use by modality", CrossTabQuery(column="modality", by="contrast"), 0.20),
    ]
    for it in items:
        validate_query(it.query, schema)
    return items


def rates_from_crosstab(rel, yes: str = "yes", no: str = "no", alpha: float = 0.05):
    """Per row of a (row x yes/no) crosstab release: share of 'yes' with a (1-alpha) interval.

    Post-processing of the release only: both counts' intervals at alpha/2 (Bonferroni) bound
    the ratio yes / (yes + no). Returns {row: (rate, low, high)}; rows with no support are skipped.
    """
    from privacy.accuracy import accuracy

    rows, cols = rel.extra["rows"], rel.extra["cols"]
    noise = rel.noise["counts"]
    a = accuracy(noise["scale"], alpha / 2, noise["distribution"])
    iy, ino = cols.index(yes), cols.index(no)
    out = {}
    for i, r in enumerate(rows):
        y = rel.values[i * len(cols) + iy]
        n = rel.values[i * len(cols) + ino]
        y_lo, y_hi = max(y - a, 0.0), max(y + a, 0.0)
        n_lo, n_hi = max(n - a, 0.0), max(n + a, 0.0)
        if y_hi + n_hi <= 0:
            continue
        est = min(max(y / (y + n), 0.0), 1.0) if (y + n) > 0 and y >= 0 and n >= 0 else (
            0.0 if y <= 0 else 1.0)
        lo = y_lo / (y_lo + n_hi) if (y_lo + n_hi) > 0 else 0.0
        hi = y_hi / (y_hi + n_lo) if (y_hi + n_lo) > 0 else 1.0
        out[r] = (est, lo, hi)
    return out
