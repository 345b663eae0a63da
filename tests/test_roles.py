"""Sign-in and roles: with auth configured, anonymous visitors see only sign-in; roles from config."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "id", "client_secret": "secret",
        "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_DEMO_ROWS", "2000")
    monkeypatch.delenv("DP_ROLE", raising=False)


def _at(user=None):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.secrets["roles"] = {"owners": ["owner@hospital.org"]}
    if user is not None:
        at.user = user
    return at.run()


def test_anonymous_visitor_sees_only_sign_in():
    at = _at({"is_logged_in": False})
    assert not at.exception, at.exception
    assert at.button(key="login")
    assert not at.sidebar.metric and not at.get("plotly_chart")
    assert not [s for s in at.selectbox]  # no query controls at all


def test_signed_in_analyst_is_the_ledger_identity_and_not_owner():
    at = _at({"is_logged_in": True, "email": "ana@hospital.org"})
    assert not at.exception, at.exception
    assert any("ana@hospital.org" in m.value and "analyst" in m.value for m in at.sidebar.markdown)
    with pytest.raises(ValueError):
        at.switch_page("pages/compare.py")


def test_signed_in_owner_from_role_map():
    at = _at({"is_logged_in": True, "email": "Owner@Hospital.org"})
    assert not at.exception, at.exception
    assert any("data owner" in m.value for m in at.sidebar.markdown)
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not at.error


def test_unknown_role_configuration_is_least_privilege(monkeypatch):
    monkeypatch.setenv("DP_ROLE", "superuser")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert any("(analyst)" in m.value for m in at.sidebar.markdown)
