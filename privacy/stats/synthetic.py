"""A DP synthetic cohort: OpenDP's marginal-based inference (`opendp.extras.mbi`, MST or AIM).

Public: the chosen columns' domains (categories plus 'missing'/'other', public numeric bins, public
date bins: the same buckets as a histogram), the algorithm, the row bound. Unit: one patient; with
several rows per patient OpenDP's map at d_in = max rows per patient is the cost.

Measurement: each row's columns are mapped (row-wise, public) to their bucket labels; OpenDP's
`make_contingency_table` measures noisy marginals (Gaussian noise, zCDP) and fits a Markov random
field; the synthetic rows are drawn from that model (post-processing). The cost is OpenDP's privacy
map of that one measurement, converted to (epsilon, delta) like every Gaussian release, and its rho
for zCDP accounting. No row of the result is a real patient's record.

On a cohort whose rows stay in an engine (Parquet, a database, Spark), the engine counts each
non-empty combination of the columns' buckets (public cells, after the per-patient bound) and the
same bucket-label rows are rebuilt from those counts (`_engine_input`): the same input multiset,
so the same measurement, cost and noise law.
"""
from __future__ import annotations

import numpy as np

from privacy.accounting import epsilon_to_rho, rho_to_epsilon
from privacy.calibrate import DEFAULT_DELTA, Cost
from privacy.opendp_runtime import dp
from privacy.queries import HistogramQuery, SyntheticQuery

CARD_SENTENCE = ("No row of this table is a real patient: it was generated from a model fitted to noisy "
                 "differentially private marginals of the cohort.")


def _buckets(schema, column: str) -> list[str]:
    from privacy.measurements import _hist_labels
    return [str(x) for x in _hist_labels(schema, HistogramQuery(column=column))]


def _synthetic_plan(q: SyntheticQuery, schema, epsilon, mechanism, delta):
    from opendp.extras.mbi import AIM, MST, make_contingency_table

    from privacy.measurements import Outcome, Plan, _histogram_codes, _rows

    delta = float(delta) if delta else DEFAULT_DELTA       # Gaussian noise (zCDP) whatever was requested
    d_in = schema.max_rows_per_unit
    keys = {c: _buckets(schema, c) for c in q.columns}
    domain = dp.lazyframe_domain([dp.series_domain(c, dp.atom_domain(T=dp.String)) for c in q.columns])
    domain = dp.with_margin(domain, dp.polars.Margin(by=[], max_length=schema.max_rows))
    bound = [dp.polars.Bound(per_group=d_in)]
    rho_target = epsilon_to_rho(float(epsilon), delta)
    rho = rho_target
    for _ in range(40):   # OpenDP's map decides the cost; shrink rho until it fits the request
        m, _scale, _thr = make_contingency_table(
            domain, dp.frame_distance(dp.symmetric_distance()), dp.zero_concentrated_divergence(), d_in=bound,
            d_out=rho, keys=keys, algorithm=AIM() if q.algorithm == "aim" else MST())
        rho_cost = float(m.map(bound))
        eps_cost = rho_to_epsilon(rho_cost, delta)
        if eps_cost <= epsilon:
            break
        rho *= 0.999
    else:  # pragma: no cover - defensive
        raise RuntimeError("could not fit the synthetic cohort's cost within the requested epsilon")
    cost = Cost(eps_cost, delta, rho_cost, m)

    def make_input(cohort):
        if getattr(cohort, "engine", None) is not None:
            return _engine_input(cohort, q, keys)
        mask = _rows(cohort, q)
        cols = {}
        for c in q.columns:
            codes = _histogram_codes(cohort, HistogramQuery(column=c))
            labels = np.asarray(keys[c], dtype=object)
            col = labels[np.clip(codes, 0, len(labels) - 1)]
            cols[c] = col if mask is None else col[mask]
        return _label_frame(cols)

    def finish(raw, alpha: float) -> Outcome:
        table = raw.synthesize()
        # OpenDP adds a null key to every domain; a null is this project's 'missing' bucket
        fill = {c: "missing" if "missing" in keys[c] else "other" for c in q.columns}
        rows = [[fill[c] if v is None else v for c, v in zip(q.columns, r)]
                for r in table.select(list(q.columns)).iter_rows()]
        n = float(len(rows))
        return Outcome([n], [n], [n], {
            "synthetic": {"columns": list(q.columns), "rows": rows},
            "domains": keys, "algorithm": q.algorithm.upper(), "card": CARD_SENTENCE,
            "interval": "no interval: a synthetic table (its row count is approximate)"})

    def truth(cohort) -> list[float]:
        return [float(len(make_input(cohort).collect()))]

    def preview(alpha: float) -> dict:
        return {"kind": "synthetic", "halfwidth": float("nan"), "unit": schema.rows_word,
                "words": (f"a synthetic table of about as many {schema.rows_word} as the cohort, keeping the "
                          f"{'one-way and selected two-way' if q.algorithm == 'mst' else 'selected'} margins of "
                          f"{', '.join(q.columns)} up to DP noise; no row is a real patient")}

    extra = {"method": f"OpenDP marginal-based inference ({q.algorithm.upper()}, Gaussian noise, zCDP)",
             "domains": keys}
    if mechanism != "gaussian":
        extra["mechanism_note"] = ("A synthetic cohort uses Gaussian noise under zCDP (OpenDP's mbi); its cost is "
                                   f"given as (epsilon, delta = {delta:g}).")
    return Plan(q, schema, float(epsilon), "gaussian", delta, m, d_in, cost, ["synthetic rows"],
                {"marginals": ("gaussian", float(_scale or 0.0))}, make_input, finish, truth, preview, extra)


def _engine_input(cohort, q: SyntheticQuery, keys: dict):
    """The same bucket-label rows as `make_input` of the prepared table, rebuilt from the engine's
    counts of each non-empty combination of the columns' buckets (public cells, after the
    per-patient bound and the restriction): as a multiset, which is all OpenDP's contingency
    table reads, so the measurement, its cost and its noise law are those of the in-memory path."""
    from privacy.engine.cells import cell_codes, synthetic_cells
    spec = synthetic_cells(cohort.schema, q)
    codes, counts = cell_codes(cohort.engine.grouped_rows(spec), spec)
    cols = {}
    for j, c in enumerate(q.columns):
        labels = np.asarray(keys[c], dtype=object)
        cols[c] = np.repeat(labels[np.clip(codes[:, j], 0, len(labels) - 1)], counts)
    return _label_frame(cols)


def _label_frame(cols: dict):
    """OpenDP's input: a LazyFrame of the bucket labels (text) of each column."""
    import polars as pl
    return pl.DataFrame({c: pl.Series(c, v.tolist(), dtype=pl.String) for c, v in cols.items()}).lazy()


def synthetic_frame(release):
    """The released synthetic table as a pandas DataFrame (post-processing of the stored release)."""
    import pandas as pd
    s = release.extra["synthetic"]
    return pd.DataFrame(s["rows"], columns=s["columns"])


def data_card(release, schema) -> dict:
    """The data card shipped with every download: what the table is, its public domains and cost."""
    return {"title": f"DP synthetic cohort of '{schema.title}'", "columns": release.extra["synthetic"]["columns"],
            "public_domains": release.extra.get("domains", {}), "epsilon": release.epsilon, "delta": release.delta,
            "method": release.extra.get("algorithm", ""), "released_at": release.timestamp,
            "release_key": release.release_key, "rows": len(release.extra["synthetic"]["rows"]),
            "statement": CARD_SENTENCE}


from privacy.measurements import register  # noqa: E402
register(SyntheticQuery, _synthetic_plan)


# ------------------------------------------------------------------ a synthetic cohort of its own
SYNTHETIC_BUDGET = 100.0   # exploring a synthetic table is post-processing: it protects no patient


def synthetic_releases(ledger) -> list[dict]:
    """Every stored synthetic-cohort release in the ledger (any dataset), newest last. Readable by
    anyone with access to the app: each is a DP release already."""
    out = []
    for ds in ledger.datasets():
        for r in ledger.releases(ds):
            if r["release"].get("query", {}).get("stat") == "synthetic" and "synthetic" in r["release"].get("extra", {}):
                out.append({"dataset": ds, "release_key": r["release_key"], "release": r["release"]})
    return out


def synthetic_cohort_id(dataset: str, release_key: str) -> str:
    return f"{dataset}-synthetic-{release_key[:8]}"


def synthetic_cohort(record: dict, source_schema=None):
    """The released table as a cohort: its columns are categorical over the release's public
    domains, each synthetic row its own unit, and its budget large (exploring it spends nothing of
    the real cohort's budget). Clearly labelled synthetic in its title and description."""
    import pandas as pd

    from data.prepare import prepare
    from data.schema import schema_from_dict

    rel = record["release"]
    s = rel["extra"]["synthetic"]
    frame = pd.DataFrame(s["rows"], columns=s["columns"])
    frame.insert(0, "synthetic_row", range(1, len(frame) + 1))
    domains = rel["extra"].get("domains", {})
    label = (lambda c: source_schema.label(c)) if source_schema is not None else (lambda c: c)
    title = (source_schema.title if source_schema is not None else record["dataset"])
    columns = {"synthetic_row": {"kind": "id", "label": "Synthetic row"}}
    for c in s["columns"]:
        cats = [v for v in domains.get(c, sorted(set(frame[c]))) if v not in ("missing", "other")]
        columns[c] = {"kind": "categorical", "label": label(c), "categories": cats}
    schema = schema_from_dict({
        "dataset": {"id": synthetic_cohort_id(record["dataset"], record["release_key"]),
                    "title": f"{title}: DP synthetic (ε {float(rel['epsilon']):.3g}), no real patient",
                    "description": CARD_SENTENCE, "source": f"release {record['release_key'][:12]} on "
                                                            f"'{record['dataset']}'",
                    "privacy_unit": "synthetic_row", "max_rows_per_unit": 1, "max_rows": max(len(frame), 1),
                    "default_budget": SYNTHETIC_BUDGET, "row_noun": "synthetic row"},
        "columns": columns})
    return prepare(frame, schema)
