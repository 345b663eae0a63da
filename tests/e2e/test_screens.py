"""Issue 10: a full-page screenshot of every page and important state, for review (CI artifacts).

At 1400x900 in Debian's chromium against `streamlit run`; every step checks that no traceback is
shown and that the element the state is about is visible, then saves
test-artifacts/screenshots/screens_NN_name.png (the `screens_` prefix keeps them apart from the
other browser tests' screenshots).

Data owner: Explore empty, after a histogram release, with the question changed (stale result),
a grouped mean with empty groups, a 2-D counts heatmap, a median, a survival curve by risk group,
a refusal (the dataset budget is lowered behind the page's back, as another analyst's spending
would), a free answer derived from a stored release; Compare after Simulate; Trade-off after Compute; Upload before review; Ledger with the
audit trail; Synthetic cohort before releasing; Anonymity risk; Radiology review before and after its
report; one synthetic cohort release (MST, 2 columns). Analyst: Explore after a release, Ledger.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.test_upload_app import trial_csv

from .conftest import full_page_screenshot, wait_for_app_run
from .test_journey import assert_no_traceback, choose_radio, expect_remaining, go_to, remaining_budget

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

DATASET = "prostate-rows5000"          # the demo cohort at DP_DEMO_ROWS=5000 (conftest)
BALANCED = "Balanced (ε 0.25)"
EMPTY_GROUP = "not enough patients to estimate"


# ----------------------------------------------------------------------------------- helpers
def shot(page: Page, name: str) -> None:
    assert_no_traceback(page)
    full_page_screenshot(page, f"screens_{name}")


def pick(page: Page, label: str, option: str, scope=None) -> None:
    """Choose `option` in the selectbox whose label is exactly `label` ("Column" is not "Columns")."""
    root = scope if scope is not None else page.get_by_test_id("stMain")
    box = root.get_by_test_id("stSelectbox").filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))
    expect(box).to_have_count(1)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app_run(page)


def balanced(page: Page) -> None:
    """Privacy level Balanced, checked (a click landing during a rerun can be lost: retry)."""
    radio = page.get_by_test_id("stMain").get_by_role("radio", name=BALANCED, exact=True)
    for _ in range(3):
        if radio.is_checked():
            break
        choose_radio(page, BALANCED)
    expect(radio).to_be_checked()
    cost = page.get_by_test_id("stMain").get_by_test_id("stAlertContentInfo").filter(has_text="Cost:")
    expect(cost).to_have_count(1)              # the previous run's box is gone
    expect(cost).to_contain_text("Cost: ε 0.25")


def overflowing(page: Page, root) -> bool:
    """Whether `root` (a dataframe) scrolls sideways, i.e. some column is cut at this width."""
    scroller = root.locator(".dvn-scroller").first
    return scroller.evaluate("e => e.scrollWidth > e.clientWidth + 1")


def expect_tables_fit(page: Page) -> None:
    """Issue 10: no table on the page scrolls sideways at 1400x900 (no column is cut off)."""
    tables = page.get_by_test_id("stMain").get_by_test_id("stDataFrame")
    expect(tables.first).to_be_visible()
    cut = [i for i in range(tables.count()) if overflowing(page, tables.nth(i))]
    assert not cut, f"tables {cut} are wider than the page: a column is cut off"


def expect_sidebar_plain(page: Page) -> None:
    """Issue 10: the budget says it is ε, the cohort's name is not cut, no 'row(s)' anywhere."""
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stMetricLabel")).to_contain_text("Remaining budget (ε)")
    picker = sidebar.get_by_role("combobox", name="Cohort")
    assert picker.evaluate("e => e.scrollWidth <= e.clientWidth"), f"cut off in the picker: {picker.input_value()}"
    expect(page.get_by_test_id("stApp")).not_to_contain_text("row(s)")


def release(page: Page) -> None:
    button = page.get_by_role("button", name="Release", exact=True)
    expect(button).to_be_enabled()
    button.click()
    wait_for_app_run(page, timeout=60_000)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Released.")).to_be_visible()


def result_chart(page: Page):
    chart = page.get_by_test_id("stMain").locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    return chart


def fewest_draws(page: Page) -> None:
    """Move the page's only slider (simulated draws) to its minimum."""
    slider = page.get_by_test_id("stSlider").get_by_role("slider")
    expect(slider).to_have_count(1)
    slider.focus()
    page.keyboard.press("Home")
    wait_for_app_run(page)
    expect(slider).to_have_value("20")


# ----------------------------------------------------------------------------------- owner
def test_owner_screens(page: Page, owner_server):
    from privacy.ledger import BudgetLedger
    ledger = BudgetLedger(owner_server.env["DP_LEDGER"])

    page.goto(owner_server.url)
    wait_for_app_run(page)
    expect(page.get_by_role("heading", name="Explore the cohort")).to_be_visible()
    expect(page.get_by_test_id("stAlertContentInfo").filter(has_text="then press Release")).to_be_visible()
    start = remaining_budget(page)
    assert start == pytest.approx(2.0)
    expect_sidebar_plain(page)
    shot(page, "01_explore_empty")

    # --- a histogram release
    pick(page, "Statistic", "Distribution (histogram)")
    pick(page, "Column", "ISUP grade group")
    balanced(page)
    release(page)
    expect(result_chart(page).locator(".barlayer .point").first).to_be_visible()
    expect_remaining(page, start - 0.25)
    expect_tables_fit(page)
    shot(page, "02_explore_histogram")

    # --- the question changes: the old result is greyed and says which question it answers
    pick(page, "Column", "Gleason score")
    stale = page.locator(".st-key-ex_stale")
    expect(page.get_by_test_id("stMain").get_by_test_id("stCaptionContainer").filter(
        has_text="This answers your previous question")).to_contain_text("Distribution of ISUP grade group")
    assert float(stale.evaluate("e => getComputedStyle(e).opacity")) <= 0.6, "the stale result is not greyed"
    expect(page.get_by_test_id("stAlertContentSuccess")).to_have_count(0)   # no "Released." beside it
    shot(page, "03_explore_stale_result")

    # --- mean PSA by risk group: the empty 'missing' and 'other' groups get no number
    pick(page, "Statistic", "Mean by group")
    pick(page, "Mean of", "PSA at diagnosis (ng/mL)")
    pick(page, "By group", "Risk group (NCCN-style)")
    balanced(page)
    release(page)
    # 'missing' and 'other' have no patients; the rule reads only the release (its `empty_below`: an
    # empty group's noisy count exceeds it with probability 1e-6)
    expect(result_chart(page).locator(".scatterlayer text", has_text=EMPTY_GROUP)).to_have_count(2)
    expect_tables_fit(page)
    shot(page, "04_explore_grouped_mean_empty_groups")

    # --- 2-D counts: a heatmap
    pick(page, "Statistic", "2-D counts (table)")
    pick(page, "Rows", "Clinical T stage")
    pick(page, "Columns", "ISUP grade group")
    balanced(page)
    release(page)
    expect(result_chart(page).locator(".heatmaplayer").first).to_be_attached()
    shot(page, "05_explore_crosstab_heatmap")

    # --- a median
    pick(page, "Statistic", "Median / quantile")
    pick(page, "Column", "PSA at diagnosis (ng/mL)")
    balanced(page)
    release(page)
    result_chart(page)
    expect(page.get_by_test_id("stMain").get_by_text(re.compile(r"median", re.I)).first).to_be_visible()
    expect(result_chart(page).locator(".scatterlayer text", has_text="Median")).to_have_count(1)  # the dot says it
    expect(result_chart(page).locator(".xtitle")).to_have_text("Median PSA at diagnosis (ng/mL)")
    shot(page, "06_explore_median")

    # --- survival by risk group: curves, bands and the number-at-risk table
    pick(page, "Statistic", "Survival curve")
    pick(page, "Endpoint", "Prostate-cancer-specific survival")
    pick(page, "Compare by", "Risk group (NCCN-style)")
    balanced(page)
    release(page)
    expect(result_chart(page).locator(".legendtext", has_text="intermediate")).to_have_count(1)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect_remaining(page, start - 1.25)
    expect_tables_fit(page)
    shot(page, "07_explore_survival_by_risk_group")

    # --- a refusal: the page offered the release, then the cohort budget shrank (as when another
    # analyst spends it first); the refusal replaces the result, with no chart beside it
    pick(page, "Statistic", "Distribution (histogram)")
    pick(page, "Column", "PI-RADS score")
    balanced(page)
    button = page.get_by_role("button", name="Release", exact=True)
    expect(button).to_be_enabled()
    ledger.set_dataset_budget(DATASET, 1.35, actor="screens test", note="lowered to show a refusal")
    button.click()
    wait_for_app_run(page)
    refused = page.get_by_test_id("stAlertContentError")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("Refused")
    expect(refused).to_contain_text("Next step: lower ε to 0.1 or less, or ask the data owner for more budget")
    expect(refused).to_contain_text("Prostate cancer patients (synthetic)")      # the cohort's name ...
    expect(page.get_by_test_id("stApp")).not_to_contain_text(DATASET)         # ... never its internal id
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)       # the refusal is shown once
    expect(page.get_by_test_id("stAlertContentInfo").filter(has_text="press Release")).to_have_count(0)
    expect(page.get_by_test_id("stMain").locator(".js-plotly-plot")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_have_count(0)
    expect(button).to_be_disabled()           # the rerun's preview now knows it would not fit
    expect_remaining(page, 0.1)
    shot(page, "08_explore_refusal")

    # --- a question that follows from a stored release is still answered, for free
    pick(page, "Column", "Clinical T stage")
    free_box = page.locator(".st-key-ex_free_box")
    expect(free_box).to_contain_text("Free: answered from an earlier release (costs nothing)")
    expect(free_box).to_contain_text("may be wider than a fresh release's")
    expect(free_box.get_by_test_id("stAlertContainer")).to_have_count(0)        # no budget warning in it
    free_box.get_by_role("button", name="Show the free answer").click()
    wait_for_app_run(page)
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text(
        "Free: answered from an earlier release (costs nothing)")
    expect(page.get_by_test_id("stMain").get_by_text("ε 0", exact=True)).to_have_count(0)
    expect(result_chart(page).locator(".barlayer .point").first).to_be_visible()
    expect_remaining(page, 0.1)
    expect_tables_fit(page)
    shot(page, "09_explore_free_answer")
    ledger.set_dataset_budget(DATASET, 3.0, actor="screens test", note="raised again for the other pages")

    # --- Compare after Simulate (spends nothing)
    go_to(page, "Compare (owner)")
    expect(page.get_by_test_id("stAlertContentWarning")).to_contain_text("not private")
    fewest_draws(page)
    page.get_by_role("button", name="Simulate (spends nothing)").click()
    wait_for_app_run(page, timeout=60_000)
    result_chart(page)
    expect(page.get_by_test_id("stMetric").filter(has_text="95% intervals covering the truth")).to_be_visible()
    shot(page, "10_compare_simulated")

    # --- Trade-off after Compute (few draws)
    go_to(page, "Trade-off (owner)")
    fewest_draws(page)
    page.get_by_role("button", name="Compute trade-off").click()
    wait_for_app_run(page, timeout=90_000)
    result_chart(page)
    expect(page.get_by_text(re.compile(r"Computed in [\d.]+ s"))).to_be_visible()
    shot(page, "11_tradeoff_computed")

    # --- Upload before review: Confirm disabled (tests/e2e/test_upload_review.py goes further)
    go_to(page, "Upload cohort (owner)")
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "trial.csv", "mimeType": "text/csv", "buffer": trial_csv(120)}])
    wait_for_app_run(page)
    expect(page.get_by_text("columns are not reviewed yet")).to_be_visible()
    expect(page.get_by_role("button", name="Confirm schema and save")).to_be_disabled()
    shot(page, "12_upload_before_review")

    # --- Ledger: releases, the refusal and both budget changes in the audit trail
    go_to(page, "Ledger")
    expect(page.get_by_role("heading", name="Audit trail (data owner)")).to_be_visible()
    expect(page.get_by_text("hash chain intact")).to_be_visible()
    expect(page.get_by_text("Note from the data owner: raised again for the other pages")).to_be_visible()
    expect_remaining(page, 3.0 - 1.25)             # none of the owner pages spent anything
    shot(page, "13_ledger_owner_audit_trail")

    # --- Synthetic cohort: the page before releasing (a release takes about a minute)
    go_to(page, "Synthetic cohort")
    expect(page.get_by_role("heading", name="Synthetic cohort")).to_be_visible()
    expect(page.get_by_test_id("stAlertContentInfo").filter(has_text="Cost:")).to_be_visible()
    expect(page.get_by_role("button", name="Release synthetic cohort")).to_be_enabled()
    shot(page, "14_synthetic_before_release")

    # --- Anonymity risk of the true table
    go_to(page, "Anonymity risk (owner)")
    expect(page.get_by_test_id("stMetric").filter(has=page.get_by_text("k (generalised)", exact=True))
           ).to_be_visible()
    expect(page.get_by_role("heading", name="Smallest equivalence classes")).to_be_visible()
    shot(page, "15_anonymity_risk")

    # --- Radiology review, opened by a link naming the cohort; then the report released at ε 0.2
    page.goto(f"{owner_server.url}/radiology?cohort=radiology")
    wait_for_app_run(page)
    expect(page.get_by_role("heading", name="Radiology review")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_role("combobox", name="Cohort")).to_have_value(
        re.compile("Radiology"))
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    shot(page, "16_radiology_before_release")
    rad_start = remaining_budget(page)
    page.get_by_test_id("stSlider").get_by_role("slider").focus()
    page.keyboard.press("ArrowLeft")                     # 0.5 -> 0.2
    wait_for_app_run(page)
    expect(page.get_by_text(re.compile(r"The report is one release: ε 0\.2 for all \d+ statistics"))).to_be_visible()
    page.get_by_role("button", name="Release report").click()
    wait_for_app_run(page, timeout=90_000)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    expect(result_chart(page)).to_be_visible()
    assert page.get_by_test_id("stMain").locator(".js-plotly-plot").count() >= 3
    expect_remaining(page, rad_start - 0.2)
    shot(page, "17_radiology_report")


def test_owner_synthetic_release(page: Page, owner_server):
    """One MST release of 2 small columns (~30 s here): the released table and its data card."""
    from privacy.ledger import BudgetLedger        # room for ε 1 whatever the owner test left
    BudgetLedger(owner_server.env["DP_LEDGER"]).set_dataset_budget(DATASET, 5.0, actor="screens test")
    page.goto(owner_server.url)      # the entry script first: a fresh server knows its pages only after it ran
    wait_for_app_run(page)
    page.goto(f"{owner_server.url}/synthetic")
    wait_for_app_run(page)
    box = page.get_by_test_id("stMultiSelect")
    box.locator("input").click()
    for _ in range(2):                               # default: site, diagnosis date, age -> site
        page.keyboard.press("Backspace")
    page.get_by_role("option", name="ISUP grade group", exact=True).click()
    page.keyboard.press("Escape")
    wait_for_app_run(page)
    cost = page.get_by_test_id("stAlertContentInfo").filter(has_text="Cost:")
    expect(cost).to_contain_text("site, isup_grade_group")
    before = remaining_budget(page)
    page.get_by_role("button", name="Release synthetic cohort").click()
    wait_for_app_run(page, timeout=180_000)
    done = page.get_by_test_id("stAlertContentSuccess")
    expect(done).to_contain_text("Released. Cost ε 1")
    left = float(re.search(r"remaining budget ε (\d+(?:\.\d+)?)", done.inner_text())[1])
    assert left < before
    expect_remaining(page, left)      # the sidebar shows the ledger after this page's release, not before it
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_role("button", name="Data card (JSON)")).to_be_visible()
    shot(page, "18_synthetic_released")


# --------------------------------------------------------------------------------- analyst
def test_analyst_screens(page: Page, analyst_server):
    page.goto(analyst_server.url)
    wait_for_app_run(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("ana (analyst)")
    expect_sidebar_plain(page)
    start = remaining_budget(page)
    pick(page, "Statistic", "Distribution (histogram)")
    pick(page, "Column", "Gleason score")
    balanced(page)
    release(page)
    expect(result_chart(page).locator(".barlayer .point").first).to_be_visible()
    expect_remaining(page, start - 0.25)
    expect(page.get_by_test_id("stApp")).not_to_contain_text("not private")
    shot(page, "19_analyst_explore_histogram")

    go_to(page, "Ledger")
    expect(page.get_by_role("heading", name="Releases on this cohort")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_role("heading", name="Audit trail (data owner)")).to_have_count(0)
    shot(page, "20_analyst_ledger")
