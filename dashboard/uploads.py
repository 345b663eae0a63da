"""Owner-uploaded cohorts: data file + owner-confirmed schema saved under the uploads folder.

Only cohorts whose schema the owner confirmed (`confirmed = true`) are listed for analysts.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

from data.prepare import PreparedCohort, prepare
from data.schema import load_schema

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def uploads_dir() -> Path:
    return Path(os.environ.get("DP_UPLOADS", "var/uploads"))


def uploaded_cohorts() -> list[str]:
    root = uploads_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and NAME_RE.match(d.name) and (d / "schema.toml").is_file() and any(d.glob("data.*")):
            try:
                if load_schema(d / "schema.toml").confirmed:
                    out.append(d.name)
            except Exception:
                continue
    return out


@st.cache_resource(show_spinner="Preparing the uploaded cohort…", max_entries=4)
def _load(name: str, mtime: float) -> PreparedCohort:
    from data.loaders import load_table
    d = uploads_dir() / name
    data = next(d.glob("data.*"))
    return prepare(load_table(data), load_schema(d / "schema.toml"))


def load_uploaded(name: str) -> PreparedCohort:
    if not NAME_RE.match(name):
        raise ValueError(f"invalid cohort name {name!r}")
    d = uploads_dir() / name
    mtime = max(p.stat().st_mtime for p in d.iterdir())
    return _load(name, mtime)
