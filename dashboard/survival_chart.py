"""Survival curve figures and the number-at-risk table: pure functions of a survival release.

Everything drawn is the release (noisy Kaplan-Meier values, their pointwise 95% bands, noisy
numbers at risk rounded and clipped at 0); nothing here touches data. Bins whose band is the whole
range [0, 1] (too few patients at risk for the noise) are not drawn: "not enough patients".
"""
from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

PALETTE = ("#1f6fb4", "#d1552a", "#2e8b57", "#8e44ad", "#b8860b", "#17a2b8", "#6b6b6b")
BAND_NOTE = "Shaded: 95% band (sampling + DP noise). A curve stops where too few patients remain at risk."


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=False)


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha:g})"


def _groups(release) -> list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    ex = release.extra
    nb = len(ex["edges"]) - 1
    v, lo, hi = (np.asarray(x, dtype=float) for x in (release.values, release.ci_low, release.ci_high))
    return [(g, v[i * nb:(i + 1) * nb], lo[i * nb:(i + 1) * nb], hi[i * nb:(i + 1) * nb])
            for i, g in enumerate(ex["groups"])]


def _shown(g: dict, lo: np.ndarray, hi: np.ndarray) -> int:
    """Number of bins to draw: up to the first bin whose band is [0, 1] (no information)."""
    gone = np.flatnonzero((lo <= 0.0) & (hi >= 1.0))
    return int(gone[0]) if len(gone) else len(lo)


def survival_figure(release, schema=None) -> go.Figure:
    ex = release.extra
    edges = np.asarray(ex["edges"], dtype=float)
    unit = ex.get("time_unit", "")
    fig = go.Figure()
    empty_groups = []
    for i, (g, v, lo, hi) in enumerate(_groups(release)):
        k = _shown(g, lo, hi)
        name = str(g["group"])
        if k == 0:
            if name not in ("missing", "other"):
                empty_groups.append(name)
            continue
        colour = PALETTE[i % len(PALETTE)]
        x = np.r_[edges[0], edges[1:k + 1]]
        y, yl, yh = np.r_[1.0, v[:k]], np.r_[1.0, lo[:k]], np.r_[1.0, hi[:k]]
        fig.add_trace(go.Scatter(x=x, y=yh, mode="lines", line=dict(width=0, shape="hv"), hoverinfo="skip",
                                 showlegend=False, legendgroup=name))
        fig.add_trace(go.Scatter(x=x, y=yl, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                                 fillcolor=_rgba(colour, 0.18), hoverinfo="skip", showlegend=False,
                                 legendgroup=name))
        hover = [f"<b>{_esc(name)}</b><br>{t:g} {_esc(unit)}: {100 * s:.1f}% surviving "
                 f"(95% band {100 * a:.1f}% to {100 * b:.1f}%)" for t, s, a, b in zip(x, y, yl, yh)]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=_esc(name), line=dict(color=colour, width=2.5,
                                                                                     shape="hv"),
                                 hovertext=hover, hoverinfo="text", legendgroup=name))
    title = release.description
    sub = BAND_NOTE + (f" Not enough patients to estimate: {', '.join(empty_groups)}." if empty_groups else "")
    fig.update_layout(template="plotly_white", height=460, title=dict(text=_esc(title), x=0.01,
                                                                      subtitle=dict(text=_esc(sub))),
                      margin=dict(l=64, r=24, t=90, b=56), legend=dict(orientation="h", y=-0.2),
                      hovermode="closest")
    fig.update_xaxes(title_text=_esc(f"Time since start of follow-up ({unit})" if unit else "Time"),
                     range=[edges[0], edges[-1]])
    fig.update_yaxes(title_text="Surviving (%)", range=[0, 1.02], tickformat=".0%")
    return fig


def _every(n: int, most: int | None) -> list[int]:
    """Indices 0, k, 2k, ... of n time bins, at most `most` of them (a regular step, from 0)."""
    if not most or n <= most:
        return list(range(n))
    step = -(-(n - 1) // max(most - 1, 1))
    return list(range(0, n, step))


def at_risk_table(release, max_times: int | None = None) -> pd.DataFrame:
    """Numbers at risk at the start of each time bin per group (noisy, rounded, clipped at 0).
    `max_times`: at most that many times, at a regular step from 0 (so the table fits a screen;
    the release has them all)."""
    ex = release.extra
    keep = _every(len(ex["edges"]) - 1, max_times)
    starts = [f"{ex['edges'][j]:g}" for j in keep]
    rows = {}
    for g, _, lo, hi in _groups(release):
        k = _shown(g, lo, hi)
        if k == 0 and str(g["group"]) in ("missing", "other"):
            continue
        rows[str(g["group"])] = [f"{max(g['at_risk'][j], 0):,}" if j < k else "" for j in keep]
    unit = ex.get("time_unit", "")
    df = pd.DataFrame(rows, index=starts).T
    df.columns = [f"{s} {unit}".strip() for s in starts]
    return df.reset_index(names="Number at risk")


LANDMARK_NOTE = "1-year survival, ...: the share surviving at that time (95% band), from the noisy curve."


def median_table(release, groups_as_columns: bool = True) -> pd.DataFrame:
    """Median survival per group with its interval; 'not reached' within the public follow-up; the
    share surviving at each landmark ('1-year survival', ...). By default one column per group
    (first column 'Survival': what each row is), which fits a narrow screen; else one row per
    group (first column 'Group')."""
    unit = release.extra.get("time_unit", "")

    def fmt(v):
        return "not reached" if not np.isfinite(v) else f"{v:g} {unit}".strip()   # within what is estimable

    def interval(a, b):          # short enough for one line: '70 to 95 months', '≥ 84 months'
        if not np.isfinite(a):
            return "not reached"
        if not np.isfinite(b):
            return f"≥ {fmt(a)}"
        return f"{a:g} to {fmt(b)}"

    out = []
    landmark_names = list(dict.fromkeys(n for g in release.extra["groups"] for n in g.get("landmarks", {})))
    for g, _, lo, hi in _groups(release):
        if _shown(g, lo, hi) == 0 and str(g["group"]) in ("missing", "other"):
            continue
        if _shown(g, lo, hi) == 0:
            out.append({"Group": g["group"], "Median survival": "not enough patients to estimate",
                        "95% interval": ""})
            continue
        out.append({"Group": g["group"], "Median survival": fmt(g["median"]),
                    "95% interval": interval(*(float("inf") if g[k] is None else float(g[k])
                                               for k in ("median_low", "median_high")))})
        for name in landmark_names:
            s_a_b = g.get("landmarks", {}).get(name)
            out[-1][name] = (f"{100 * s_a_b[0]:.0f}% ({100 * s_a_b[1]:.0f}–{100 * s_a_b[2]:.0f}%)"
                                           if s_a_b else "not enough patients to estimate")
    df = pd.DataFrame(out).fillna("")
    if not groups_as_columns or df.empty:
        return df
    df = df.rename(columns={"95% interval": "Median: 95% interval", **{n: f"{n} survival" for n in landmark_names}})
    df["Group"] = df["Group"].astype(str)
    return df.set_index("Group").T.reset_index(names="Survival").rename_axis(columns=None)


def compare_figure(labels, truth, values, ci_low, ci_high, title: str, unit: str = "") -> go.Figure:
    """Data owner only: the true (non-private) curve, dashed, beside one private release with its
    band, per group. Labels are the release's 'group | bin end'."""
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        g, _, t = str(lab).rpartition(" | ")
        groups.setdefault(g, []).append(i)
    fig = go.Figure()
    for k, (g, idx) in enumerate(groups.items()):
        tr = np.asarray(truth, dtype=float)[idx]
        if not np.isfinite(tr).any() or g in ("missing", "other"):
            continue
        colour = PALETTE[k % len(PALETTE)]
        ends = [float(str(labels[i]).rpartition(" | ")[2]) for i in idx]
        x = np.r_[0.0, ends]
        v, lo, hi = (np.r_[1.0, np.asarray(a, dtype=float)[idx]] for a in (values, ci_low, ci_high))
        fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0, shape="hv"), hoverinfo="skip",
                                 showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                                 fillcolor=_rgba(colour, 0.15), hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=v, mode="lines", name=_esc(f"{g}: private"),
                                 line=dict(color=colour, width=2.5, shape="hv")))
        fig.add_trace(go.Scatter(x=x, y=np.r_[1.0, tr], mode="lines", name=_esc(f"{g}: true (not private)"),
                                 line=dict(color=colour, width=1.5, dash="dash", shape="hv")))
    fig.update_layout(template="plotly_white", height=480, title=dict(text=_esc(title), x=0.01),
                      margin=dict(l=64, r=24, t=60, b=56), legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text=_esc(f"Time since start of follow-up ({unit})" if unit else "Time"))
    fig.update_yaxes(title_text="Surviving (%)", range=[0, 1.02], tickformat=".0%")
    return fig


def _register() -> None:
    from dashboard.charts import register_figure
    register_figure("survival", survival_figure)


_register()
