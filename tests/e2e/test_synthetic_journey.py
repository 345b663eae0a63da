"""Real-browser journey (issue 12): the data owner generates a DP synthetic cohort, downloads it
with its data card, then explores it from the cohort picker without spending the real cohort's
budget. Screenshot: test-artifacts/screenshots/11_synthetic.png."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import full_page_screenshot, wait_for_app_run
from .test_journey import assert_no_traceback, choose_radio, go_to, remaining_budget, select

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
pytest.importorskip("mbi")


def test_generate_download_and_explore_a_synthetic_cohort(page: Page, owner_server, tmp_path):
    page.goto(owner_server.url)
    wait_for_app_run(page)
    start = remaining_budget(page)
    go_to(page, "Synthetic cohort")
    expect(page.get_by_role("heading", name="Synthetic cohort")).to_be_visible()
    expect(page.get_by_test_id("stAlertContentInfo").filter(has_text="Cost:")).to_contain_text("ε 1")
    page.get_by_role("button", name="Release synthetic cohort").click()
    wait_for_app_run(page, timeout=240_000)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("Released. Cost ε 1")
    expect(page.get_by_text("No row of this table is a real patient").first).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / "synthetic.csv"
    info.value.save_as(path)
    lines = path.read_text().splitlines()
    assert len(lines) > 100 and "," in lines[0]
    with page.expect_download() as info:
        page.get_by_role("button", name="Data card (JSON)").click()
    assert "no row of this table is a real patient" in info.value.path().read_text().lower()
    assert_no_traceback(page)
    full_page_screenshot(page, "11_synthetic")

    # the released table is now a cohort of its own in the picker; exploring it is free for the real cohort
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Cohort").click()
    page.get_by_role("option", name="DP synthetic", exact=False).first.click()
    wait_for_app_run(page)
    go_to(page, "Explore")
    expect(page.get_by_text("DP synthetic").first).to_be_visible()
    select(page, "Statistic", "Distribution (histogram)")
    choose_radio(page, "Balanced (ε 0.25)")
    page.get_by_role("button", name="Release", exact=True).click()
    wait_for_app_run(page)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("Released")
    assert_no_traceback(page)
    page.goto(owner_server.url)
    wait_for_app_run(page)
    assert remaining_budget(page) == pytest.approx(start - 1.0, abs=1e-3)   # only the synthetic release itself
