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
                                      _uninformative, not_enough_words, on_bound, rows_noun)
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


def group_size_header(schema: Schema | None = None) -> str:
    """'Patients (noisy)', 'Exams (noisy)': the noisy size of each group, in the schema's noun."""
    return f"{rows_noun(schema).capitalize()} (noisy)"


def weak_rule_note(release: "Release", schema: Schema | None = None) -> str:
    """The rule behind 'not enough patients to estimate', for a caption under the table ('' if no
    value is concerned). It reads the release and the public schema only."""
    if not any(_uninformative(release, schema)):
        return ""
    level = _level(release.alpha)
    text = (f"'{not_enough_words(release, schema).capitalize()}': the {level} interval covers (nearly) the whole "
            "public range of the column, or the group's noisy size may be 0, so no value, interval or group size "
            "is shown.")
    if any(on_bound(release, schema)):
        text += (f" Where the noisy mean fell at or beyond a public bound it was clamped there: only its {level} "
                 "interval is shown.")
    return text + " This uses only the release and the public schema."


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
    interval_only = on_bound(release, schema)      # a mean clamped to a public bound: its interval stays
    nothing = not_enough_words(release, schema)
    out = pd.DataFrame({first_header(release, schema): df["label"],
                        "Value": [nothing if w else fmt(v) for v, w in zip(df["shown"], weak)],
                        f"{_level(release.alpha)} interval": [
                            "" if (w and not keep) or not math.isfinite(a) else f"{fmt(a)} to {fmt(b)}"
                            for a, b, w, keep in zip(lo, hi, weak, interval_only)]})
    if "noisy_count" in df:
        out[group_size_header(schema)] = ["" if w else f"{max(v, 0):,.0f}" for v, w in zip(df["noisy_count"], weak)]
    notes = [_shown_note(n, w) for n, w in zip(df["note"], weak)]
    if any(notes):                    # no empty column taking the room of the others
        out["Note"] = notes
    return out


CHAR_PX, CELL_PAD_PX = 6.1, 22    # Streamlit's table font (14 px Source Sans: ~5.8 px a character), padding
TABLE_PX = 510                     # the result column's width at 1400x900 (519 px)
LINE_PX, ONE_LINE_PX = 22, 35      # a wrapped line; Streamlit's default row (one line, no wrapping)


def _text_px(text) -> int:
    return round(CHAR_PX * len(str(text)) + CELL_PAD_PX)


def _fit(table: pd.DataFrame, total_px: int) -> tuple[dict[str, int], int]:
    """Column widths that add up to at most `total_px` where possible (each at least its header,
    the widest cells wrapping), and the lines the tallest wrapped cell then needs."""
    heads = {str(c): max([_text_px(c)] + [_text_px(w) for v in table[c] for w in str(v).split()])
             for c in table.columns}           # a header, or a word, is never cut: longer text wraps
    cells = {str(c): max([_text_px(v) for v in table[c]] + [0]) for c in table.columns}
    natural = {c: max(heads[c], cells[c]) for c in heads}
    cap = max(natural.values(), default=0)
    while cap > 80 and sum(max(heads[c], min(natural[c], cap)) for c in natural) > total_px:
        cap -= 10
    widths = {c: max(heads[c], min(natural[c], cap)) for c in natural}
    lines = max([-(-cells[c] // widths[c]) for c in widths if widths[c] > 0] + [1])
    return widths, lines


def table_column_widths(table: pd.DataFrame, total_px: int = TABLE_PX) -> dict[str, int]:
    """Column widths (px) so that no header or cell is cut at 1400x900 in the result column:
    as wide as their text, the widest narrowed (their text wraps, see `table_row_height`) until
    the table fits `total_px`. For st.column_config (the page builds it: no Streamlit here)."""
    return _fit(table, total_px)[0]


def table_row_height(table: pd.DataFrame, total_px: int = TABLE_PX) -> int | None:
    """Rows tall enough for the wrapped cells of `table_column_widths` (Streamlit wraps text only
    in rows taller than 64 px); None (Streamlit's one-line rows) when nothing wraps."""
    lines = _fit(table, total_px)[1]
    return None if lines <= 1 else max(66, LINE_PX * lines + 14)


def table_height(table: pd.DataFrame, most_rows: int = 30) -> int | str:
    """Height (px) that shows every row at once (no row hidden behind a scroll bar) up to
    `most_rows` rows; 'auto' (Streamlit's, which scrolls) for longer tables."""
    if len(table) > most_rows:
        return "auto"
    row = table_row_height(table) or ONE_LINE_PX
    return ONE_LINE_PX + row * len(table) + 3


def _shown_note(note: str, weak: bool = False) -> str:
    """The note people read: short (the whole note stays in the downloads), no negative count in words."""
    if note.startswith("noisy count ") and "below 0" in note:
        return "noisy count below 0: shown as 0"
    if weak:
        return ""                     # the Value says it; the rule is one caption (`weak_rule_note`)
    if note.startswith("interval: "):
        return ""                     # the same for every row: one caption under the table
    return note
