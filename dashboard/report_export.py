"""Export a report: one self-contained HTML file (Plotly embedded, no CDN) and PNG figures."""
from __future__ import annotations

import html
import io
import zipfile


READING = ("Every number is a differentially private release: noise was added so that no single patient's "
           "record can be inferred. Each dot or bar is the released value; its line is a 95% interval, which "
           "contains the true value at least 95% of the time. Groups shown as 'not enough patients to "
           "estimate' had an interval covering (nearly) the whole public range, so no value is given.")


def report_html(figs: dict, title: str, note: str = "", rows: list[dict] | None = None,
                released_at: str = "", cohort: str = "") -> str:
    """One self-contained HTML file: title, date, cohort, a table of the statistics (epsilon,
    expected accuracy, ledger reference), how to read the intervals, then the figures."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left;vertical-align:top}th{background:#f4f4f4}</style></head><body>",
             f"<h1>{e(title)}</h1>"]
    facts = [x for x in (f"Cohort: {cohort}" if cohort else "", f"Released: {released_at}" if released_at else "", note)
             if x]
    parts += [f"<p>{e(x)}</p>" for x in facts]
    if rows:
        cols = list(rows[0])
        parts.append("<table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append(f"<h2>How to read this report</h2><p>{e(READING)}</p>")
    first = True
    for fig in figs.values():
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False))
        first = False
    parts.append("</body></html>")
    return "\n".join(parts)


def figures_png_zip(figs: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, fig in figs.items():
            z.writestr(f"{name}.png", fig.to_image(format="png", width=1100, height=500))
    return buf.getvalue()
