"""Who is working and in which role. Roles come from configuration, never from a widget.

- With an `[auth]` section in `.streamlit/secrets.toml`, sign-in is Streamlit's `st.login`
  (OpenID Connect); the signed-in e-mail is the analyst in the ledger and `[roles] owners = [...]`
  lists the data owners. Anonymous visitors get only the sign-in page.
- Without auth configuration the app runs as the single local data owner on the embedded demo
  cohorts, but ONLY when the server is bound to a loopback address (`server.address` 127.0.0.1,
  ::1 or localhost; `make run` and `.streamlit/config.toml` set localhost). Served on any other
  address without auth (unset `server.address` means all interfaces), it fails closed: nobody is
  owner, owner pages are not offered and `page_context(owner_only=True)` refuses them, and every
  page says how to configure sign-in (README, Deployment).
- For local testing, the environment variables DP_ROLE (owner|analyst) and DP_ANALYST override
  the role (server-side configuration, not reachable from the browser); DP_ROLE=owner is refused
  in the same way off localhost.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

import streamlit as st

try:
    from streamlit.errors import StreamlitDuplicateElementKey
except ImportError:  # pragma: no cover - older Streamlit names it differently
    from streamlit.errors import StreamlitAPIException as StreamlitDuplicateElementKey

OWNER, ANALYST = "owner", "analyst"
UNPROTECTED = "unprotected"      # Identity.mode: no sign-in and not on localhost -> never owner
SIGN_IN_HELP = (
    "Sign-in is not configured and this server is not bound to localhost (server.address is {address}), "
    "so nobody works as the data owner here: owner pages are refused. To use it as the data owner, "
    "configure sign-in: an `[auth]` section and `[roles] owners = [...]` in `.streamlit/secrets.toml` "
    "(see README.md, section Deployment); or serve it on this machine only with `make run` "
    "(`--server.address localhost`).")


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


def server_address() -> str:
    """Streamlit's `server.address` ('' when unset: the server listens on all interfaces)."""
    try:
        return str(st.get_option("server.address") or "").strip()
    except Exception:  # option unavailable: assume the worst
        return ""


def is_loopback(address: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 only. '' (all interfaces) and 0.0.0.0 / :: are not."""
    a = str(address or "").strip().lower().removeprefix("[").removesuffix("]")
    if a == "localhost":
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False


def server_is_local() -> bool:
    return is_loopback(server_address())


def _show_sign_in_help() -> None:
    """Say once per run (at the top of the page) why nobody is owner and how to configure sign-in."""
    try:
        box = st.container(key="dp_sign_in_help")
    except StreamlitDuplicateElementKey:    # called again in this run (a page's own role check): shown
        return
    addr = server_address()
    box.warning(SIGN_IN_HELP.format(address=repr(addr) if addr else "unset (all interfaces)"))


def current_identity() -> Identity | None:
    """The signed-in identity, or None when auth is configured and nobody is signed in.

    Without auth, owner only on localhost (see the module docstring); elsewhere an analyst whose
    mode is UNPROTECTED, and the page shows SIGN_IN_HELP."""
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
    mode = "env" if "DP_ROLE" in os.environ else "local"
    if not server_is_local():
        _show_sign_in_help()
        if role == OWNER:           # fail closed: an unauthenticated owner only on this machine
            return Identity(os.environ.get("DP_ANALYST", "analyst"), ANALYST, UNPROTECTED)
    name = os.environ.get("DP_ANALYST", "local owner" if role == OWNER else "analyst")
    return Identity(name, role, mode)


def ledger_path() -> str:
    sec = _secrets()
    return os.environ.get("DP_LEDGER") or str(sec.get("ledger", {}).get("path", "var/ledger.sqlite"))
