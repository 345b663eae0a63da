"""Export a report: one self-contained HTML file (Plotly embedded, no CDN) and PNG figures."""
from __future__ import annotations

import html
import io
import zipfile


def report_html(figs: dict, title: str, note: str = "") -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(note)}</p>"]
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
