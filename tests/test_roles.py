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


# ------------------------------------------------------------------------------------ fail closed
@pytest.fixture
def address():
    """Set Streamlit's server.address for one test (restored after: options are process-wide)."""
    from streamlit import config
    old = config.get_option("server.address")
    yield lambda value: config.set_option("server.address", value)
    config.set_option("server.address", old)


def _no_auth_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def _sign_in_help(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "Sign-in is not configured" in w.value]


@pytest.mark.parametrize("value", ["0.0.0.0", "", None, "::", "10.1.2.3", "stats.hospital.example"])
@pytest.mark.parametrize("dp_role", [None, "owner"])
def test_without_auth_off_localhost_nobody_is_owner(address, monkeypatch, value, dp_role):
    address(value)
    monkeypatch.delenv("DP_ANALYST", raising=False)
    if dp_role:
        monkeypatch.setenv("DP_ROLE", dp_role)           # the env override cannot make an owner either
    at = _no_auth_app()
    assert not at.exception, at.exception
    assert any("(analyst)" in m.value for m in at.sidebar.markdown), [m.value for m in at.sidebar.markdown]
    assert not any("data owner" in m.value for m in at.sidebar.markdown)
    for page in ("pages/compare.py", "pages/tradeoff.py", "pages/upload.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)                        # owner pages are not offered at all
    help_ = _sign_in_help(at)
    assert len(help_) == 1, [w.value for w in at.warning]       # said once, not once per role check
    assert "[auth]" in help_[0] and "Deployment" in help_[0] and "README" in help_[0]
    at.switch_page("pages/ledger.py").run()                   # an analyst page still works, still says so
    assert not at.exception, at.exception
    assert len(_sign_in_help(at)) == 1


def test_owner_pages_refuse_themselves_off_localhost_even_with_an_owner_context(address, tmp_path):
    """Run directly with a forged owner context in session state: the page re-checks on the server."""
    from dashboard.auth import ANALYST, OWNER, UNPROTECTED, Identity
    from dashboard.context import Context
    from dashboard.services import prepared_cohort
    from privacy.ledger import BudgetLedger
    address("0.0.0.0")
    root = Path(APP).parent
    cohort = prepared_cohort("prostate", 2000)
    for ident, refusal in ((Identity("local owner", OWNER, "local"), "sign in"),
                           (Identity("analyst", ANALYST, UNPROTECTED), "data owner only")):
        ctx = Context(ident, "prostate", cohort, BudgetLedger(tmp_path / "l.sqlite"), "laplace")
        for page in ("compare.py", "tradeoff.py", "upload.py"):
            pt = AppTest.from_file(str(root / "pages" / page), default_timeout=60)
            pt.session_state["_ctx"] = ctx
            pt.run()
            assert not pt.exception, pt.exception
            assert any(refusal in e.value.lower() for e in pt.error), (page, [e.value for e in pt.error])
            assert not pt.get("plotly_chart") and not pt.button and not pt.file_uploader, page


def test_explicit_analyst_off_localhost_stays_an_analyst(address, monkeypatch):
    address("0.0.0.0")
    monkeypatch.setenv("DP_ROLE", "analyst")
    monkeypatch.setenv("DP_ANALYST", "ana")
    at = _no_auth_app()
    assert any("ana (analyst)" in m.value for m in at.sidebar.markdown)
    assert _sign_in_help(at)


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1", "::1", "[::1]"])
def test_without_auth_on_localhost_the_local_user_is_owner(address, monkeypatch, value):
    address(value)
    monkeypatch.delenv("DP_ANALYST", raising=False)
    at = _no_auth_app()
    assert not at.exception, at.exception
    assert any("data owner" in m.value for m in at.sidebar.markdown)
    assert not _sign_in_help(at)
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_sign_in_still_decides_roles_on_any_address(address):
    address("0.0.0.0")
    at = _at({"is_logged_in": True, "email": "owner@hospital.org"})
    assert any("data owner" in m.value for m in at.sidebar.markdown)
    assert not _sign_in_help(at)


def test_loopback_addresses():
    from dashboard.auth import is_loopback
    assert all(is_loopback(a) for a in ("localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"))
    assert not any(is_loopback(a) for a in ("", None, "0.0.0.0", "::", "10.0.0.1", "192.168.1.5",
                                            "localhost.example.org", "127.0.0.1.nip.io"))


def test_make_run_and_streamlit_config_bind_to_localhost():
    import re
    import tomllib
    root = Path(APP).parents[1]
    server = tomllib.loads((root / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "localhost"
    make = (root / "Makefile").read_text()
    run = make.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--server.address $(ADDRESS)" in run
    assert re.search(r"^ADDRESS \?= localhost$", make, re.M)
