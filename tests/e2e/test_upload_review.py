"""Real browser: the owner's upload review (issue 10, upload hardening).

Upload a CSV -> Confirm disabled, naming the unreviewed columns and the missing row limits -> type
the limits, tick "I declare this public" in each row of the (canvas) data editor -> the DP bounds
helper spends its shown ε -> Confirm -> "Schema confirmed and saved" with Edit and Delete, and no
proposal warning. Full-page screenshots of each state go to test-artifacts/screenshots/.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.test_upload_app import trial_csv

from .conftest import full_page_screenshot, wait_for_app_run

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PUBLIC_WIDTH = 160        # dashboard/pages/upload.py: width of the "I declare this public" column
ROW_HEIGHT = 35           # Streamlit's data editor rows (and header)


def not_reviewed(page: Page):
    return page.get_by_text("columns are not reviewed yet")


def tick(page: Page, grid, row: int, remaining_before: int) -> None:
    """Click the checkbox of `row` (1 = first data row) until the count of unreviewed columns drops."""
    for _ in range(3):
        grid.click(position={"x": PUBLIC_WIDTH / 2, "y": ROW_HEIGHT * row + ROW_HEIGHT / 2})
        wait_for_app_run(page)
        if remaining_before == 1:
            if not_reviewed(page).count() == 0:
                return
        elif page.get_by_text(f"{remaining_before - 1} of 4 columns are not reviewed").count():
            return
    raise AssertionError(f"row {row} could not be ticked")


def test_owner_reviews_and_confirms_an_upload_in_a_browser(owner_server, page: Page, tmp_path):
    csv = tmp_path / "trial.csv"
    csv.write_bytes(trial_csv(400))
    page.goto(owner_server.url)
    wait_for_app_run(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Upload cohort (owner)").click()
    wait_for_app_run(page)
    page.locator("input[type=file]").first.set_input_files(str(csv))
    wait_for_app_run(page)

    confirm = page.get_by_role("button", name="Confirm schema and save")
    expect(page.get_by_text("Read from the data: not public until you review and confirm it.")).to_be_visible()
    expect(not_reviewed(page)).to_contain_text("4 of 4 columns are not reviewed yet: 'age', 'psa', 'site', 'visit'")
    expect(page.get_by_text("Type max rows per patient")).to_be_visible()
    expect(page.get_by_role("textbox", name="Max rows per patient (public)")).to_have_value("")
    expect(page.get_by_role("textbox", name="Max rows (public upper bound)")).to_have_value("")
    expect(confirm).to_be_disabled()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    full_page_screenshot(page, "07_upload_review")

    for label, value in (("Max rows per patient (public)", "2"), ("Max rows (public upper bound)", "1000")):
        box = page.get_by_role("textbox", name=label)
        box.fill(value)
        box.press("Enter")
        wait_for_app_run(page)
    expect(page.get_by_text("Type max rows")).to_have_count(0)

    grid = page.get_by_test_id("stDataFrame").last          # the review table (the preview is first)
    grid.scroll_into_view_if_needed()
    for remaining, row in zip((4, 3, 2, 1), (2, 3, 4, 5)):   # age, psa, site, visit (row 1 is the patient id)
        tick(page, grid, row, remaining)
    expect(confirm).to_be_enabled()
    expect(page.get_by_text("Every proposed value is reviewed")).to_be_visible()

    # the optional DP bounds helper: its cost is shown, then spent
    page.get_by_text("Suggest bounds privately").click()
    wait_for_app_run(page)
    for label, value in (("Wide public range: from", "0"), ("to", "1000")):
        box = page.get_by_role("textbox", name=label, exact=True)
        box.fill(value)
        box.press("Enter")
        wait_for_app_run(page)
    expect(page.get_by_text("Costs ε 0.05")).to_be_visible()
    page.get_by_role("button", name="Spend ε 0.05 and suggest bounds").click()
    wait_for_app_run(page)
    expect(page.get_by_text("Suggested bounds for age")).to_be_visible()
    expect(page.get_by_text("ε 0.05 spent; ε 0.95 of 1 left on trial")).to_be_visible()
    full_page_screenshot(page, "08_upload_reviewed_dp_helper")

    confirm.click()
    wait_for_app_run(page)
    expect(page.get_by_text("Schema confirmed and saved.")).to_be_visible()
    expect(page.get_by_text("not public until")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit the schema")).to_be_visible()
    expect(page.get_by_role("button", name="Delete the cohort")).to_be_disabled()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    full_page_screenshot(page, "09_upload_saved")
