"""Plotly figures, tables and downloads for DP releases. PURE functions of their arguments.

Nothing here touches data, noise, the ledger or Streamlit: every number drawn comes from a
`Release` (OpenDP output and its post-processing) or, for owner-only views, from a `Simulation`
or numbers the caller passes in. Display-only post-processing done here:

- noisy counts below 0 are drawn as 0 (a true count cannot be negative); the raw value stays in
  the hover, the table and the downloads;
- count intervals are clipped at 0 for display;
- "missing" / "other" buckets are real buckets and stay, drawn in grey.

Colours: Okabe-Ito (`PALETTE`), safe for the common colour-vision deficiencies.

The figures live in `dashboard/figures/` by what they draw (common, bars, points, heatmap, tables,
exports, owner, lines); this module re-exports their names (the pages, tests and
`dashboard.tradeoff_charts` use them from here) and holds `release_figure` with the plug-in
figure registry (`FIGURES`, `register_figure`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

# Re-exported: every top-level name of the former single module (pages, tests and tradeoff_charts use them).
from dashboard.figures.bars import _bar_figure, _count_hover, _date_count_figure  # noqa: F401
from dashboard.figures.common import (BLACK, BLUE, COUNT_STATS, FONT_SIZE, GREEN, GREY, GREY_BUCKETS,  # noqa: F401
                                      HEIGHT, ORANGE, PALETTE, PURPLE, SKY, VERMILLION, WEAK_SHARE,
                                      YELLOW, _AXIS, _HEATMAP_SCALE, _RE_DAY, _RE_MONTH, _RE_QUARTER,
                                      _RE_YEAR, _TEMPLATE, _arr, _col_label, _col_unit, _column, _count,
                                      _count_bounds, _count_unit, _crosstab_axes, _date_positions,
                                      _date_unit_of, _decimals, _display_values, _empty, _esc,
                                      _is_count, _layout, _level, _median, _num, _parse_date_label,
                                      _rgba, _series_colour, _stat_word, _subtitle, _tick_labels,
                                      _uninformative, _with_unit, greyed, not_enough_words,
                                      on_bound, rows_noun)
from dashboard.figures.exports import (_FORMULA_PREFIXES, _csv_cell, _jsonable, _metadata, _neutralise,  # noqa: F401
                                       release_csv_bytes, release_json_bytes, rows_csv_bytes)
from dashboard.figures.heatmap import _heatmap_figure  # noqa: F401
from dashboard.figures.lines import _ts, spend_figure, timeseries_figure  # noqa: F401
from dashboard.figures.owner import TRUE_NAME, compare_figure, spread_figure  # noqa: F401
from dashboard.figures.points import _point_figure, dot_interval_figure  # noqa: F401
from dashboard.figures.tables import (describe_interval, display_table, first_header, interval_note,  # noqa: F401
                                     group_size_header, release_table, table_column_widths, table_height, table_row_height,
                                     value_name, weak_rule_note)
from data.schema import Schema

if TYPE_CHECKING:  # keep this module light: no OpenDP import just for type hints
    from privacy.release import Release


# ---------------------------------------------------------------------------------- releases
FIGURES: dict[str, Any] = {}   # statistic -> figure builder (release, schema) -> Figure, for plug-ins


def register_figure(stat: str, builder) -> None:
    """A statistic plug-in's own chart; without one its release is drawn as dots with intervals."""
    FIGURES[stat] = builder


def release_figure(release: "Release", schema: Schema | None = None) -> go.Figure:
    """The chart for one release, chosen by its statistic. `schema` (public) adds labels/units."""
    stat = release.query.get("stat")
    if not release.labels:
        return _empty(release.description, "This release has no values.")
    if stat in FIGURES:
        return FIGURES[stat](release, schema)
    if stat == "histogram":
        col = _column(schema, release.query.get("column"))
        is_date_col = col is not None and col.kind == "date"
        if col is None or is_date_col:
            pos = _date_positions(release.labels, allow_year=is_date_col)
            if pos is not None:
                return _date_count_figure(release, schema, pos)
        return _bar_figure(release, schema)
    if stat == "count":
        return _bar_figure(release, schema)
    if stat == "crosstab":
        return _heatmap_figure(release, schema)
    return _point_figure(release, schema)


from dashboard.tradeoff_charts import size_figure, tradeoff_figure  # noqa: E402,F401  (moved there)

from dashboard import survival_chart as _survival_chart  # noqa: E402,F401  (registers the survival figure)
