"""Real-browser journeys (Playwright + Debian chromium against `streamlit run dashboard/app.py`).

Owner: preview -> Release -> chart and budget drop -> survives reload -> identical repeat is free ->
refusal when the budget would be overspent -> radiology report -> HTML export renders offline;
full-page screenshots of every page go to test-artifacts/screenshots/.
Analyst: the owner pages are not in the navigation and their URLs show no true values.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from .conftest import full_page_screenshot, wait_for_app_run

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

OWNER_PAGES = ("Compare (owner)", "Trade-off (owner)", "Upload cohort (owner)")


# ----------------------------------------------------------------------------------- helpers
def remaining_budget(page: Page) -> float:
    value = (page.get_by_test_id("stSidebar").get_by_test_id("stMetric")
             .filter(has_text="Remaining budget").get_by_test_id("stMetricValue"))
    return float(value.inner_text())


def expect_remaining(page: Page, value: float) -> None:
    metric = (page.get_by_test_id("stSidebar").get_by_test_id("stMetric")
              .filter(has_text="Remaining budget").get_by_test_id("stMetricValue"))
    expect(metric).to_have_text(f"{value:.3g}")


def select(page: Page, label: str, option: str, scope=None) -> None:
    root = scope if scope is not None else page
    root.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app_run(page)


def choose_radio(page: Page, option: str) -> None:
    page.get_by_test_id("stRadio").get_by_text(option, exact=True).click()
    wait_for_app_run(page)


def go_to(page: Page, link: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    wait_for_app_run(page)


def build_query(page: Page, stat: str, column: str, level: str) -> None:
    select(page, "Statistic", stat)
    select(page, "Column", column)
    choose_radio(page, level)


def assert_no_traceback(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


# ----------------------------------------------------------------------------------- journeys
def test_owner_journey(page: Page, browser: Browser, owner_server, tmp_path):
    page.goto(owner_server.url)
    wait_for_app_run(page)
    expect(page.get_by_role("heading", name="Explore the cohort")).to_be_visible()
    start = remaining_budget(page)
    assert start == pytest.approx(2.0)

    # --- preview, then Release
    build_query(page, "Distribution (histogram)", "ISUP grade group", "Balanced (ε 0.25)")
    preview = page.get_by_test_id("stAlertContentInfo").filter(has_text="Cost:")
    expect(preview).to_contain_text("ε 0.25")
    expect(preview).to_contain_text("within ±")
    expect_remaining(page, start)                       # previewing spends nothing
    page.get_by_role("button", name="Release", exact=True).click()
    wait_for_app_run(page)
    chart = page.locator(".js-plotly-plot")
    expect(chart.first.locator(".barlayer .point").first).to_be_visible()
    assert chart.first.locator(".barlayer .point").count() >= 5       # ISUP grade groups 1-5
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("Released. Cost ε 0.25")
    expect_remaining(page, start - 0.25)
    assert_no_traceback(page)
    full_page_screenshot(page, "01_explore")

    # --- the spend is in the ledger, not the session: a reload still shows it
    page.reload()
    wait_for_app_run(page)
    expect_remaining(page, start - 0.25)

    # --- the identical query again is served from the ledger for free
    build_query(page, "Distribution (histogram)", "ISUP grade group", "Balanced (ε 0.25)")
    page.get_by_role("button", name="Release", exact=True).click()
    wait_for_app_run(page)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("cost nothing")
    expect(page.locator(".js-plotly-plot .barlayer .point").first).to_be_visible()
    expect_remaining(page, start - 0.25)

    # --- a release costing more than what remains cannot be clicked, says why, and spends nothing
    build_query(page, "Distribution (histogram)", "Hospital site", "High accuracy (ε 1)")
    page.get_by_role("button", name="Release", exact=True).click()
    wait_for_app_run(page)
    expect_remaining(page, start - 1.25)
    build_query(page, "Distribution (histogram)", "Clinical T stage", "High accuracy (ε 1)")
    expect(page.get_by_role("button", name="Release", exact=True)).to_be_disabled()
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="this release costs")
    expect(warning).to_contain_text("Not enough budget: this release costs ε 1")
    expect(page.get_by_text("This answers your previous question")).to_be_visible()
    expect(warning).to_contain_text("shared by all analysts")
    expect(warning).to_contain_text("Next step: lower ε to 0.75 or less")
    expect_remaining(page, start - 1.25)

    # --- owner pages (spend nothing), screenshots with their charts drawn
    go_to(page, "Compare (owner)")
    expect(page.get_by_test_id("stAlertContentWarning")).to_contain_text("not private")
    page.get_by_role("button", name="Simulate (spends nothing)").click()
    wait_for_app_run(page)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    assert_no_traceback(page)
    full_page_screenshot(page, "02_compare")

    go_to(page, "Trade-off (owner)")
    page.get_by_role("button", name="Compute trade-off").click()
    wait_for_app_run(page)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    assert_no_traceback(page)
    full_page_screenshot(page, "03_tradeoff")

    go_to(page, "Ledger")
    expect(page.get_by_role("heading", name="Privacy budget ledger")).to_be_visible()
    expect(page.get_by_text("hash chain intact")).to_be_visible()
    assert_no_traceback(page)
    full_page_screenshot(page, "05_ledger")

    go_to(page, "Upload cohort (owner)")
    assert_no_traceback(page)
    full_page_screenshot(page, "06_upload")
    expect_remaining(page, start - 1.25)                 # none of the owner pages spent anything

    # --- radiology cohort: a whole report at a small total, exported as offline HTML
    select(page, "Cohort", "Radiology examinations (synthetic)", scope=page.get_by_test_id("stSidebar"))
    go_to(page, "Radiology review")
    expect(page.get_by_role("heading", name="Radiology review")).to_be_visible()
    rad_start = remaining_budget(page)
    slider = page.get_by_test_id("stSlider").get_by_role("slider")
    slider.focus()
    page.keyboard.press("ArrowLeft")                     # 0.5 -> 0.2
    wait_for_app_run(page)
    expect(page.get_by_text(re.compile(r"The report is one release: ε 0\.2 for all \d+ statistics"))).to_be_visible()
    page.get_by_role("button", name="Release report").click()
    wait_for_app_run(page, timeout=60_000)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    assert page.locator(".js-plotly-plot").count() >= 3
    expect_remaining(page, rad_start - 0.2)
    assert_no_traceback(page)
    full_page_screenshot(page, "04_radiology")

    with page.expect_download() as info:
        page.get_by_role("button", name="Download report (HTML, works offline)").click()
    report = tmp_path / "radiology_report.html"
    info.value.save_as(report)
    assert report.stat().st_size > 1_000_000, "Plotly must be embedded, not loaded from a CDN"

    offline = browser.new_context(viewport={"width": 1200, "height": 900})
    blocked: list[str] = []
    js_errors: list[str] = []

    def block_network(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    try:
        offline.route("**/*", block_network)
        view = offline.new_page()
        view.on("pageerror", lambda e: js_errors.append(str(e)))
        view.goto(report.as_uri())
        expect(view.get_by_role("heading", level=1)).to_contain_text("Radiology review")
        plots = view.locator(".js-plotly-plot")
        expect(plots.first.locator("svg.main-svg").first).to_be_attached(timeout=20_000)
        assert plots.count() >= 3
        assert view.locator(".js-plotly-plot .plot-container svg").count() >= 3
        assert not blocked, f"the offline report tried to fetch {blocked}"
        assert not js_errors, js_errors
    finally:
        offline.close()


def test_a_link_to_a_cohort_keeps_it_across_pages(page: Page, owner_server):
    """?cohort=radiology opens the radiology cohort, and it stays chosen on the other pages (their
    URLs no longer carry the link's parameter; the picker used to fall back to the demo cohort)."""
    page.goto(owner_server.url + "/?cohort=radiology")
    wait_for_app_run(page)
    picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Cohort")   # its value is the choice
    expect(picker).to_have_value("Radiology examinations (synthetic)")
    for link in ("Ledger", "Radiology review", "Explore"):
        go_to(page, link)
        assert "cohort=" not in page.url
        expect(picker).to_have_value("Radiology examinations (synthetic)")
    full_page_screenshot(page, "05_cohort_from_a_link_kept")


def test_analyst_cannot_see_owner_pages(page: Page, analyst_server):
    page.goto(analyst_server.url)
    wait_for_app_run(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("ana (analyst)")
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link", name="Explore")).to_be_visible()
    expect(nav.get_by_role("link", name="Ledger")).to_be_visible()
    for name in OWNER_PAGES:
        expect(nav.get_by_role("link", name=name)).to_have_count(0)

    for path in ("compare", "tradeoff", "upload"):
        page.goto(f"{analyst_server.url}/{path}")
        wait_for_app_run(page)
        if path == "compare":
            full_page_screenshot(page, "07_analyst_at_compare_url")
        body = page.get_by_test_id("stApp")
        expect(body).not_to_contain_text("True vs private")
        expect(body).not_to_contain_text("not private")
        expect(body).not_to_contain_text("Privacy-utility trade-off")
        expect(body).not_to_contain_text("Upload a cohort")
        expect(page.get_by_role("button", name=re.compile("Simulate|Compute trade-off"))).to_have_count(0)
        expect(page.locator(".js-plotly-plot")).to_have_count(0)
        assert_no_traceback(page)
