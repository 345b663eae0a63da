"""Who is working and in which role. Roles come from configuration, never from a widget.

- With an `[auth]` section in `.streamlit/secrets.toml`, sign-in is Streamlit's `st.login`
  (OpenID Connect); the signed-in e-mail is the analyst in the ledger and `[roles] owners = [...]`
  lists the data owners. Anonymous visitors get only the sign-in page.
- Without auth configuration the app runs as the single local data owner on the embedded demo
  cohorts. For local testing, the environment variables DP_ROLE (owner|analyst) and DP_ANALYST
  override that (they are server-side configuration, not reachable from the browser).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

OWNER, ANALYST = "owner", "analyst"


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    mode: str        # "local", "env", "oidc"

    @property
    def is_owner(self) -> bool:
        return self.role == OWNER


def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets file
        return {}


def auth_configured() -> bool:
    return "auth" in _secrets()


def current_identity() -> Identity | None:
    """The signed-in identity, or None when auth is configured and nobody is signed in."""
    sec = _secrets()
    roles = sec.get("roles", {}) if isinstance(sec.get("roles", {}), dict) else {}
    if "auth" in sec:
        user = st.user
        if not getattr(user, "is_logged_in", False):
            return None
        email = str(user.get("email") or user.get("name") or "unknown")
        owners = {str(o).lower() for o in roles.get("owners", [])}
        return Identity(email, OWNER if email.lower() in owners else ANALYST, "oidc")
    role = os.environ.get("DP_ROLE", str(roles.get("default", OWNER))).strip().lower()
    if role not in (OWNER, ANALYST):
        role = ANALYST  # unknown configuration: least privilege
    name = os.environ.get("DP_ANALYST", "local owner" if role == OWNER else "analyst")
    mode = "env" if "DP_ROLE" in os.environ else "local"
    return Identity(name, role, mode)


def ledger_path() -> str:
    sec = _secrets()
    return os.environ.get("DP_LEDGER") or str(sec.get("ledger", {}).get("path", "var/ledger.sqlite"))
