import numpy as np
import pandas as pd
import pytest

from data.prepare import prepare
from data.schema import schema_from_dict


def toy_schema(max_rows_per_unit: int = 1, budget: float = 5.0):
    return schema_from_dict({
        "dataset": {"id": "toy", "privacy_unit": "pid", "max_rows_per_unit": max_rows_per_unit,
                    "max_rows": 10**7, "default_budget": budget},
        "columns": {
            "pid": {"kind": "id"},
            "g": {"kind": "categorical", "categories": ["6", "7", "8"], "label": "Gleason"},
            "x": {"kind": "numeric", "lower": 0, "upper": 10, "bins": 5, "label": "PSA", "unit": "ng/mL"},
            "d": {"kind": "date", "start": "2020-01-01", "end": "2020-12-31"},
        }})


def toy_frame(n: int = 1000, seed: int = 1, rows_per_unit: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "pid": np.arange(n) // rows_per_unit,
        "g": rng.choice(["6", "7", "8"], n, p=[0.5, 0.3, 0.2]),
        "x": rng.uniform(0, 10, n),
        "d": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 366, n), unit="D"),
    })


@pytest.fixture
def toy_cohort():
    return prepare(toy_frame(), toy_schema())


@pytest.fixture
def ledger(tmp_path):
    from privacy.ledger import BudgetLedger
    lg = BudgetLedger(tmp_path / "ledger.sqlite")
    yield lg
    lg.close()


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """Environment for an AppTest of the app: a private ledger and uploads folder, the 3,000-row
    demo cohort, the local data owner (no role variables), empty data caches. Yields tmp_path."""
    monkeypatch.setenv("DP_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DP_DEMO_ROWS", "3000")
    monkeypatch.setenv("DP_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.delenv("DP_ROLE", raising=False)
    monkeypatch.delenv("DP_ANALYST", raising=False)
    import streamlit
    streamlit.cache_data.clear()
    yield tmp_path
