"""Ready-made multi-statistic reports (radiology review) with an explicit epsilon split.

The total epsilon is chosen once; each statistic receives a published share (editable), all
shown before spending. The whole report is released by `privacy.release.release_report` as one
ledger reservation: all of it is released and charged, or nothing is. Per-group statistics are
one measurement over the joint public cells (the groups are disjoint), so the per-department
medians cost one median.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from data.schema import Schema
from privacy.queries import (CrossTabQuery, GroupedMeanQuery, GroupedQuantileQuery, HistogramQuery, Query, Where,
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
    items.append(ReportItem("turnaround_median", "Median turnaround by department",
                            GroupedQuantileQuery(column="turnaround_hours", by="department", q=0.5), 0.20))
    items += [
        ReportItem("ct_dose", "CT dose (CTDIvol) distribution",
                   HistogramQuery(column="ctdi_vol_mgy", where=Where("modality", "CT")), 0.15),
        ReportItem("contrast", "Contrast use by modality", CrossTabQuery(column="modality", by="contrast"), 0.20),
    ]
    for it in items:
        validate_query(it.query, schema)
    return items


def with_shares(items: list[ReportItem], shares: dict[str, float]) -> list[ReportItem]:
    """The same report with other (public) shares, normalised to add up to 1. Raises ValueError
    for negative, non-finite or all-zero shares; an item with share 0 is left out."""
    import math
    vals = {it.key: float(shares.get(it.key, it.share)) for it in items}
    if any(not math.isfinite(v) or v < 0 for v in vals.values()):
        raise ValueError("shares must be finite numbers >= 0")
    total = sum(vals.values())
    if total <= 0:
        raise ValueError("at least one statistic needs a share above 0")
    return [replace(it, share=vals[it.key] / total) for it in items if vals[it.key] > 0]


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
