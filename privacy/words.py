"""Accuracy in clinical words: what the 95% error of a release means for this cohort and unit.

Public only: the words use the noise scale's accuracy, the column's public bounds, unit and grid,
and the schema's public row noun and typical group sizes (`group_sizes`, declared by the owner).
They never use the data (the true group size is private), so where the error depends on a
group's size they name sizes: the declared range, else a short list.
"""
from __future__ import annotations

import math

DEFAULT_SIZES = (100, 1_000, 10_000)


def sizes(schema) -> tuple[int, ...]:
    """Group sizes the words are given for: the owner's declared range, else 100 / 1,000 / 10,000."""
    g = getattr(schema, "group_sizes", None)
    return tuple(dict.fromkeys(g)) if g else DEFAULT_SIZES


def reference_size(schema) -> int:
    """The one group size a target accuracy refers to: the smallest declared, else 1,000."""
    g = getattr(schema, "group_sizes", None)
    return int(g[0]) if g else 1_000


# Target accuracy (the recommended way to choose epsilon): defaults, in the words' units.
DEFAULT_TARGETS = {"counts": 15.0, "mean": 1.0, "quantile": 5.0}   # ± rows, ± column unit, ± percentiles


def target_kind(stat: str) -> str:
    return {"count": "counts", "histogram": "counts", "crosstab": "counts", "survival": "counts",
            "mean": "mean", "grouped-mean": "mean"}.get(stat, "quantile")


def target_halfwidth(stat: str, value: float, schema) -> float:
    """A target in the words' units -> the preview's half-width units (quantiles: ranks at the
    reference group size, so ±5 percentiles of a group of 500 is ±25 ranks)."""
    if target_kind(stat) == "quantile":
        return float(value) * reference_size(schema) / 100.0
    return float(value)


def whole(a: float) -> str:
    """A count's half-width as a whole number, rounded up (never claims more accuracy)."""
    return f"{math.ceil(a - 1e-9):,}" if math.isfinite(a) else "∞"


def number(v: float) -> str:
    """Three significant figures, thousands separators, no trailing zeros, no scientific notation."""
    if not math.isfinite(v):
        return "∞"
    if v == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
    text = f"{round(v, digits):,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def in_sentence(label: str) -> str:
    """'Age at diagnosis' -> 'age at diagnosis' inside a sentence; acronyms (PSA, CT) stay."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def counts(a: float, schema, what: str = "each count") -> str:
    return f"{what} within ±{whole(a)} {schema.rows_word}"


def mean(halfwidth_at, unit: str, schema) -> str:
    """`halfwidth_at(n)` is the 95% half-width for a group of n (inf if no useful estimate)."""
    u = f" {unit}" if unit else ""
    parts, too_small = [], []
    for n in sizes(schema):
        a = halfwidth_at(n)
        if math.isfinite(a):
            parts.append(f"±{number(a)}{u} for a group of {n:,} {schema.rows_word}")
        else:
            too_small.append(n)
    if not parts:
        return "too little budget: the mean would be within its public bounds only"
    words = "the mean within about " + parts[0] + "".join(
        f"{', ' if i < len(parts) - 1 else ' and '}" + p.replace("for a group of ", "for ") for i, p in
        enumerate(parts[1:], 1))
    if too_small:
        words += f" (a group of {too_small[-1]:,} or fewer gets no useful estimate)"
    return words


def ordinal(p: float) -> str:
    """A percentile as an ordinal: 1 -> '1st', 52 -> '52nd', 11 -> '11th', 49.5 -> '49.5th'."""
    text = number(p)
    if "." in text:
        return text + "th"
    v = int(round(p))
    suffix = "th" if 10 <= v % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(v % 10, "th")
    return text + suffix


def _between(level: float, pts: float) -> str:
    """The percentile window level ± pts, rounded outward (whole percentiles, or tenths below ±1)."""
    step = 1.0 if pts >= 1 else 0.1
    lo = math.floor(round((100.0 * level - pts) / step, 6)) * step
    hi = math.ceil(round((100.0 * level + pts) / step, 6)) * step
    if lo <= 0:
        return f"a value below the group's {ordinal(hi)} percentile"
    if hi >= 100:
        return f"a value above the group's {ordinal(lo)} percentile"
    return f"a value between the group's {ordinal(lo)} and {ordinal(hi)} percentiles"


def quantile(name: str, column_label: str, ranks: float, lower: float, upper: float, unit: str, grid: str,
             schema, level: float = 0.5) -> str:
    """A quantile's error as percentiles of the group (exact, data-free: `ranks` / group size),
    and what that means in the column's unit without pretending to know the data: the interval
    spans the group's values between those percentiles, whose width in the unit depends on how
    the values spread there (it comes with the release). No unit figure is invented from the
    public range (values spread evenly over 0-100 ng/mL would overstate a PSA median's error
    about 15-fold); the only unit figures are the public range (a group too small to say
    anything) and the public grid the answer is rounded to."""
    u = f" {unit}" if unit else ""
    parts, too_small, explained = [], [], False
    for n in sizes(schema):
        pts = 100.0 * ranks / n
        if pts >= 50:
            too_small.append(n)
            continue
        who = f"for a group of {n:,} {schema.rows_word}" if not parts else f"for {n:,}"
        text = f"{who}: within about ±{number(pts)} percentile{'' if number(pts) == '1' else 's'}"
        if not explained:
            text += f" ({_between(level, pts)})"
            explained = True
        parts.append(text)
    head = f"the {name} of {in_sentence(column_label)} "
    public = f"anywhere in the public range {number(lower)}–{number(upper)}{u}"
    if not parts:
        return head + f"for a group of up to {too_small[-1]:,} {schema.rows_word}: {public}; rounded {grid}"
    text = head + "; ".join(parts)
    if too_small:
        text += f"; a group of {too_small[-1]:,} or fewer: {public}"
    unit_words = unit or "the column's unit"
    return text + (f"; in {unit_words}, as wide as the group's values between those percentiles (shown with the "
                   f"release); rounded {grid}")
