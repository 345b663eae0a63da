"""Plotly figures, tables and downloads for DP releases, one module per kind of drawing.

`dashboard.charts` is the facade the pages and tests use: it re-exports these modules' names and
holds `release_figure` (the chart for one release, chosen by its statistic) and the plug-in figure
registry (`FIGURES`, `register_figure`). Every module here is pure: nothing touches data, noise,
the ledger or Streamlit.

  common   style, layout, formatting, schema metadata, date labels, what a release says
  bars     bar figures of counts and histograms, date-bin count lines
  points   dot-and-interval figures (means, quantiles, values from several releases)
  heatmap  crosstab heatmap
  tables   release_table, display_table, describe_interval
  exports  CSV / JSON bytes
  owner    owner-only truth-vs-noise and simulated-spread figures
  lines    time series with bands, budget spent over time
"""
