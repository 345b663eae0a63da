"""Real-browser journey: an analyst asks for cancer-specific survival by risk group on the prostate
demo and gets step curves with 95% bands, a number-at-risk table and median survival; no true value
and no owner wording reaches the page. Full-page screenshot: test-artifacts/screenshots/10_survival.png."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import full_page_screenshot, wait_for_app_run
from .test_journey import assert_no_traceback, choose_radio, expect_remaining, remaining_budget, select

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_analyst_survival_by_risk_group(page: Page, analyst_server):
    page.goto(analyst_server.url)
    wait_for_app_run(page)
    start = remaining_budget(page)
    select(page, "Statistic", "Survival curve")
    select(page, "Endpoint", "Prostate-cancer-specific survival")
    select(page, "Compare by", "Risk group (NCCN-style)")
    choose_radio(page, "Balanced (ε 0.25)")
    preview = page.get_by_test_id("stAlertContentInfo").filter(has_text="Cost:")
    expect(preview).to_contain_text("events and censorings per time bin within ±")
    page.get_by_role("button", name="Release", exact=True).click()
    wait_for_app_run(page)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("Released. Cost ε 0.25")
    expect_remaining(page, start - 0.25)
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    expect(chart.locator(".legendtext", has_text="intermediate")).to_have_count(1)
    assert chart.locator(".scatterlayer .trace").count() >= 9        # 3+ groups x (band edges + curve)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()     # the number-at-risk table
    expect(page.locator("th", has_text="Number at risk").first).to_be_attached()   # the grid keeps a hidden header
    body = page.get_by_test_id("stApp")
    expect(body).not_to_contain_text("not private")
    expect(body).not_to_contain_text("true (")
    assert_no_traceback(page)
    full_page_screenshot(page, "10_survival")
