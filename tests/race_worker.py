"""A racing release process for the ledger tests: `python -m tests.race_worker SPEC_JSON`.

Started with subprocess (never multiprocessing spawn, which would re-run a pytest worker's
`__main__`, possibly a Streamlit page script left by an AppTest). Prints "ready" once imported
and set up, waits for the go file, runs its releases, prints one JSON line of outcomes.

SPEC: {"ledger", "go", "analyst", "wid", "attempts", "eps", "budget", "mode": "mixed"|"kill"|"retry",
       "ready_file" and "path": "rows"|"aggregates" (kill mode)}
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path


def _cohort(budget: float):
    from data.prepare import prepare
    from tests.conftest import toy_frame, toy_schema
    return prepare(toy_frame(200), toy_schema(budget=budget))


def race(spec: dict) -> dict:
    from privacy.ledger import BudgetExceeded, BudgetLedger
    from privacy.queries import CountQuery, HistogramQuery, MeanQuery
    from privacy.release import release

    cohort = _cohort(spec["budget"])
    lg = BudgetLedger(spec["ledger"])
    queries = [CountQuery(), HistogramQuery(column="g"), MeanQuery(column="x")]
    res: Counter = Counter()
    shared: dict[str, list] = {}
    print("ready", flush=True)
    go = Path(spec["go"])
    deadline = time.monotonic() + 600
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    wid, eps = spec["wid"], spec["eps"]
    for i in range(spec["attempts"]):
        if i % 4 == 0:   # the same release in every process: charged once, then served from the ledger
            q, e = queries[(i // 4) % 3], eps
        else:            # a release of its own (distinct epsilon -> distinct key)
            q, e = queries[i % 3], eps + 1e-6 * (wid * spec["attempts"] + i + 1)
        try:
            r = release(q, cohort, e, lg, spec["analyst"])
            res["cached" if r.cached else "charged"] += 1
            if i % 4 == 0:
                shared[r.release_key] = r.values
        except BudgetExceeded as ex:
            res[f"refused {ex.which}"] += 1
        except Exception as ex:  # anything else is a failure of the test
            res[f"error {type(ex).__name__}: {ex}"] += 1
    lg.close()
    return {"wid": wid, "analyst": spec["analyst"], "outcomes": dict(res), "shared": shared}


def killed(spec: dict) -> None:
    """Reserve, then hang inside the measurement until SIGKILLed by the test. With spec["path"] ==
    "rows" the release takes OpenDP's row-level path (its charge is committed before the
    measurement); else the engine-aggregate path (charge and result in one transaction)."""
    import privacy.release as R
    from privacy.engine import ROW_LEVEL, prepare_input
    from privacy.ledger import BudgetLedger
    from privacy.queries import HistogramQuery
    from privacy.release import release

    def stuck(plan, prepared):  # the OpenDP invocation: after the reservation, before the result
        Path(spec["ready_file"]).write_text(str(os.getpid()))
        time.sleep(120)

    R.measure = stuck
    if spec.get("path") == "rows":
        R.prepare_input = lambda plan, cohort: prepare_input(plan, cohort, ROW_LEVEL)
    release(HistogramQuery(column="g"), _cohort(1.0), spec["eps"], BudgetLedger(spec["ledger"]), spec["analyst"])


def retry(spec: dict) -> dict:
    import privacy.ledger as L
    from privacy.queries import HistogramQuery
    from privacy.release import release

    L.IN_FLIGHT_WAIT_S = 0.5  # don't wait the default 30 s for the dead process's result
    cohort = _cohort(1.0)
    t = time.monotonic()
    r = release(HistogramQuery(column="g"), cohort, spec["eps"], L.BudgetLedger(spec["ledger"]), spec["analyst"])
    return {"cached": r.cached, "values": r.values, "remaining": r.remaining, "seconds": time.monotonic() - t}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    mode = spec.get("mode", "mixed")
    if mode == "kill":
        killed(spec)
    else:
        print(json.dumps(race(spec) if mode == "mixed" else retry(spec)), flush=True)
