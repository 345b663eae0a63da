"""Tables and words for a release: one row per released value (`release_table`), the same for
people (`display_table`), and one interval in plain words (`describe_interval`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dashboard.figures.common import (_arr, _col_label, _col_unit, _count, _count_bounds, _count_unit, _crosstab_axes,
                                      _decimals, _display_values, _is_count, _level, _num, _sentence, _stat_word,
                                      _uninformative, not_enough_words)
from data.schema import Schema

if TYPE_CHECKING:  # no OpenDP import just for type hints
    from privacy.release import Release


def describe_interval(release: "Release", i: int, schema: Schema | None = None) -> str:
    """The i-th interval in plain words, e.g. 'between 120 and 134 patients (95% interval)'."""
    lo, hi = _arr(release.ci_low)[i], _arr(release.ci_high)[i]
    level = _level(release.alpha)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval available"
    if _is_count(release):
        a, b = _count_bounds(lo, hi)
        return f"between {_count(a)} and {_count(b)} {_count_unit(release, schema)} ({level} interval)"
    unit = _col_unit(schema, release.query.get("column"))
    dec = _decimals((hi - lo) / 2, _arr(release.values)[i])
    text = f"between {_num(lo, dec)} and {_num(hi, dec)}{' ' + unit if unit else ''} ({level} interval"
    if _uninformative(release, schema)[i]:
        text += f"; {not_enough_words(release, schema)}: nothing more than the public range can be said"
    return text + ")"


# ------------------------------------------------------------------------------ table + files
def release_table(release: "Release", schema: Schema | None = None) -> pd.DataFrame:
    """One row per released value: label, value (raw, may be negative), shown (display value:
    counts clipped at 0), ci_low, ci_high (raw), extra per-statistic columns (crosstab: row, col;
    grouped mean: noisy_count), note (why a value is displayed differently, else '')."""
    v, lo, hi = _arr(release.values), _arr(release.ci_low), _arr(release.ci_high)
    shown = _display_values(release)
    n = len(release.labels)
    df = pd.DataFrame({"label": [str(x) for x in release.labels], "value": v, "shown": shown,
                       "ci_low": lo, "ci_high": hi})
    stat = release.query.get("stat")
    if stat == "crosstab" and (axes := _crosstab_axes(release)) is not None:
        rows, cols = axes
        df["row"] = [rows[i // len(cols)] for i in range(n)]
        df["col"] = [cols[i % len(cols)] for i in range(n)]
    counts = release.extra.get("noisy_counts")
    if stat == "grouped-mean" and counts is not None and len(counts) == n:
        df["noisy_count"] = _arr(counts)
    weak = _uninformative(release, schema)
    df.loc[np.asarray(weak, dtype=bool), "shown"] = np.nan
    interval_note = release.extra.get("interval")
    notes = []
    for i in range(n):
        if _is_count(release) and math.isfinite(v[i]) and v[i] < 0:
            notes.append(f"noisy count {v[i]:g} is below 0 because of the noise; shown as 0")
        elif weak[i]:
            notes.append(f"{not_enough_words(release, schema)}: the interval is (nearly) the whole public range; "
                         "the raw value is not an estimate")
        elif isinstance(interval_note, str) and interval_note:
            notes.append(f"interval: {interval_note}")
        else:
            notes.append("")
    df["note"] = notes
    return df


def first_header(release: "Release", schema: Schema | None = None) -> str:
    """The plain header of the table's first column: what its labels are (the column, the groups)."""
    q = release.query
    stat = q.get("stat")
    if stat == "histogram":
        return _col_label(schema, q.get("column")) or "Group"
    if stat in ("grouped-mean", "grouped-quantile"):
        return _col_label(schema, q.get("by")) or "Group"
    if stat == "crosstab":
        a, b = _col_label(schema, q.get("column")), _col_label(schema, q.get("by"))
        return f"{a} | {b}" if a and b else "Cell"
    if stat in ("mean", "quantile"):
        return "Column"
    return "Group"


def value_name(release: "Release", i: int, schema: Schema | None = None) -> str:
    """What the i-th value is, in words: 'Median PSA at diagnosis', 'low: mean PSA', '6'."""
    label, word = str(release.labels[i]), _stat_word(release.query)
    if not word:
        return label
    col = _sentence(_col_label(schema, release.query.get("column")) or label)
    if release.query.get("stat") in ("grouped-mean", "grouped-quantile"):
        return f"{label}: {word[0].lower() + word[1:]} {col}"
    return f"{word} {col}"


def interval_note(release: "Release") -> str:
    """How the intervals were computed, once for the table (the CSV/JSON repeat it on each row)."""
    note = release.extra.get("interval")
    return note if isinstance(note, str) else ""


def display_table(release: "Release", schema: Schema | None = None) -> pd.DataFrame:
    """`release_table` for people: plain headers (the first names what the labels are), counts and
    their intervals as whole numbers clipped at 0 (the raw values stay in the CSV/JSON downloads),
    others to 3 significant digits. Values that say nothing (`_uninformative`: post-processing of
    the release and the public schema only) read 'not enough patients to estimate', with no value,
    interval or group size; the way intervals are computed is `interval_note` (one caption), not
    a column."""
    if release.query.get("stat") == "survival":
        from dashboard.survival_chart import median_table
        return median_table(release)
    df = release_table(release, schema)
    count = _is_count(release)
    lo = np.maximum(df["ci_low"], 0.0) if count else df["ci_low"]
    hi = np.maximum(df["ci_high"], 0.0) if count else df["ci_high"]
    fmt = (lambda v: f"{v:,.0f}" if math.isfinite(v) else "") if count else (
        lambda v: f"{v:.3g}" if math.isfinite(v) else "")
    weak = _uninformative(release, schema)
    nothing = not_enough_words(release, schema)
    out = pd.DataFrame({first_header(release, schema): df["label"],
                        "Value": [nothing if w else fmt(v) for v, w in zip(df["shown"], weak)],
                        f"{_level(release.alpha)} interval": [
                            "" if w or not math.isfinite(a) else f"{fmt(a)} to {fmt(b)}" for a, b, w in zip(lo, hi, weak)]})
    if "noisy_count" in df:
        out["Group size (noisy)"] = ["" if w else f"{max(v, 0):,.0f}" for v, w in zip(df["noisy_count"], weak)]
    out["Note"] = [_shown_note(n, w) for n, w in zip(df["note"], weak)]
    return out


CHAR_PX, CELL_PAD_PX, MAX_COLUMN_PX = 7, 28, 230   # Streamlit's table font and padding; a column's widest


def _column_px(table: pd.DataFrame, name) -> int:
    longest = max([len(str(name))] + [len(str(v)) for v in table[name]])
    return CHAR_PX * longest + CELL_PAD_PX


def table_column_widths(table: pd.DataFrame) -> dict[str, int]:
    """Column widths (px) so that no header or cell is cut at 1400x900 in the result column:
    each column as wide as its longest text, at most MAX_COLUMN_PX (longer text wraps, see
    `table_row_height`). For st.column_config (the page builds it: no Streamlit here)."""
    return {str(name): min(_column_px(table, name), MAX_COLUMN_PX) for name in table.columns}


def table_row_height(table: pd.DataFrame) -> int | None:
    """Taller rows when a cell is wider than its column can be (Streamlit wraps text in rows
    taller than 64 px); None (one line) otherwise."""
    return 66 if any(_column_px(table, c) > MAX_COLUMN_PX for c in table.columns) else None


def _shown_note(note: str, weak: bool = False) -> str:
    """The note people read: short (the whole note stays in the downloads), no negative count in words."""
    if note.startswith("noisy count ") and "below 0" in note:
        return "shown as 0 (the noisy count was below 0)"
    if weak:
        return "interval covers (nearly) the whole public range"
    if note.startswith("interval: "):
        return ""                     # the same for every row: one caption under the table
    return note
