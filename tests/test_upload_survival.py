"""Upload: the owner may declare a survival endpoint (public event definition) before confirming."""
from __future__ import annotations

import numpy as np

from data.schema import load_schema
from tests.test_upload_app import _env, limits, review, upload_page  # noqa: F401


def followup_csv(n: int = 200) -> bytes:
    rng = np.random.default_rng(4)
    lines = ["patient_id,months,status,arm"]
    for i in range(n):
        lines.append(f"{i},{int(rng.integers(0, 60))},{'dead' if i % 3 == 0 else 'alive'},{'A' if i % 2 else 'B'}")
    return ("\n".join(lines) + "\n").encode()


def survival_form():
    """The follow-up table uploaded, reviewed, row limits typed, and the survival form switched on."""
    at = upload_page(followup_csv(), name="fu.csv")
    review(at)
    limits(at, "1", "1000")
    at.run()
    at.toggle(key="up_surv_on").set_value(True).run()
    return at


def test_owner_declares_a_survival_endpoint(tmp_path):
    at = survival_form()
    at.selectbox(key="up_surv_time").select("months").run()
    at.selectbox(key="up_surv_event").select("status").run()
    at.multiselect(key="up_surv_events").select("dead").run()
    at.multiselect(key="up_surv_censored").select("alive").run()
    at.text_input(key="up_surv_label").input("Overall survival").run()
    assert not at.exception, at.exception
    assert not any("Fix before confirming" in e.value for e in at.error), [e.value for e in at.error]
    at.button(key="up_confirm").click().run()
    saved = load_schema(tmp_path / "uploads" / "fu" / "schema.toml")
    (e,) = saved.survival
    assert (e.time, e.event, e.events, e.censored, e.label) == ("months", "status", ("dead",), ("alive",),
                                                                 "Overall survival")


def test_an_endpoint_without_events_blocks_confirm_with_a_message(tmp_path):
    at = survival_form()
    at.selectbox(key="up_surv_event").select("status").run()
    assert any("needs at least one event category" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="up_confirm").disabled
