"""Issue 10 in a real browser at 1400x900: the anonymity page's metric labels and the radiology
page's statistic table are fully readable (no label ends in an ellipsis, no table scrolls sideways),
and the radiology accuracy sentences wrap instead of being cut."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import wait_for_app_run
from .test_journey import go_to

pytestmark = pytest.mark.browser


def _cut(locator) -> list[str]:
    """Texts of the elements (or any of their children) whose text is wider than their box."""
    return locator.evaluate_all("""els => els.filter(e => [e, ...e.querySelectorAll('*')].some(
        c => c.scrollWidth > c.clientWidth + 1 && getComputedStyle(c).overflow !== 'visible'))
        .map(e => e.innerText)""")


def test_anonymity_metric_labels_and_radiology_table_are_readable(page: Page, owner_server):
    page.goto(owner_server.url)
    wait_for_app_run(page)
    go_to(page, "Anonymity risk (owner)")
    labels = page.get_by_test_id("stMain").get_by_test_id("stMetricLabel")
    expect(labels.first).to_be_visible()
    assert labels.count() == 4
    texts = labels.all_inner_texts()
    assert any("Largest risk (generalised)" in t for t in texts), texts
    assert not _cut(labels), f"cut metric labels: {_cut(labels)}"

    page.goto(f"{owner_server.url}/radiology?cohort=radiology")
    wait_for_app_run(page)
    table = page.get_by_test_id("stMain").get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    assert table.locator(".dvn-scroller").first.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), \
        "the statistic table scrolls sideways: a column is cut off"
    words = page.get_by_test_id("stMain").get_by_test_id("stMarkdown").filter(has_text="Expected 95% accuracy")
    expect(words).to_contain_text("each cell within ±")
    assert not _cut(words.locator("li")), "an accuracy sentence is cut off"
