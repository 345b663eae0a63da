"""Issue 13: push-down engines (DuckDB over Parquet, a DuckDB file, a real PostgreSQL server).

Each engine against the in-memory path on the same rows: identical aggregates (the truth the noise
is added to), identical cost, and the same OpenDP noise measurement (so the same noise law, which
tests/test_engine.py checks statistically); the per-patient bound enforced in SQL; hostile table,
column and category names cannot change the SQL; a server that is down or a missing table gives a
clear message and charges nothing.
"""
from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from data.cohorts import load_cohort
from data.prepare import prepare
from data.schema import SchemaError, schema_from_dict
from data.sources import data_source
from privacy.engine import SourceError, aggregate_noise, numpy_aggregates, prepare_input
from privacy.engine.sources import open_cohort
from privacy.ledger import BudgetLedger
from privacy.measurements import build_plan
from privacy.queries import (CountQuery, CrossTabQuery, HistogramQuery, MeanQuery, QuantileQuery, SyntheticQuery,
                             Where)
from privacy.release import release
from tests.pg_server import PostgresServer, pg_bin, unused_url
from tests.test_engine import QUERIES

PUSHED = list(QUERIES)


@pytest.fixture(scope="module")
def prostate():
    frame, schema = load_cohort("prostate", rows=3000, seed=7)
    return frame, schema, prepare(frame, schema)


def _with_storage(schema, **kv):
    return dataclasses.replace(schema, storage=tuple(sorted((k, str(v)) for k, v in kv.items())))


def _same_aggregates(plan, mem, eng):
    a = numpy_aggregates(plan, mem)
    b = eng.engine.aggregates(plan, aggregate_noise(plan))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(np.asarray(x), np.asarray(y)), (plan.query, x, y)


@pytest.fixture(scope="module")
def parquet_cohort(prostate, tmp_path_factory):
    frame, schema, mem = prostate
    d = tmp_path_factory.mktemp("parquet")
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):   # a directory of files
        frame.iloc[part].to_parquet(d / f"part-{i}.parquet")
    return open_cohort(_with_storage(schema, kind="parquet", path=f"{d}/*.parquet"))


@pytest.mark.parametrize("name", PUSHED)
def test_duckdb_parquet_matches_memory(prostate, parquet_cohort, name):
    frame, schema, mem = prostate
    for mechanism in ("laplace", "gaussian"):
        plan = build_plan(QUERIES[name], parquet_cohort.schema, 0.6, mechanism)
        ref = build_plan(QUERIES[name], schema, 0.6, mechanism)
        assert plan.cost == ref.cost
        _same_aggregates(plan, mem, parquet_cohort)


def test_release_from_parquet_charges_once_and_repeats_free(prostate, parquet_cohort, tmp_path):
    ledger = BudgetLedger(tmp_path / "l.sqlite")
    q = HistogramQuery(column="gleason_score")
    r1 = release(q, parquet_cohort, 0.5, ledger, "ana")
    r2 = release(q, parquet_cohort, 0.5, ledger, "ana")
    assert r2.cached and r2.values == r1.values
    assert ledger.state(parquet_cohort.schema.dataset_id, "ana").spent == pytest.approx(build_plan(q, parquet_cohort.schema, 0.5).cost[0])
    assert len(r1.values) == len(prostate[1].column("gleason_score").bucket_labels)
    ledger.close()


def test_colon_survival_with_two_rows_per_patient_matches_memory(tmp_path):
    """colon: two rows per patient (recurrence and death), the death endpoint restricted by `where`."""
    from data.cohorts import load_cohort
    frame, schema = load_cohort("colon")
    frame.to_parquet(tmp_path / "colon.parquet")
    src = open_cohort(_with_storage(schema, kind="parquet", path=tmp_path / "colon.parquet"))
    mem = prepare(frame, schema)
    for e in schema.survival:
        for by in (None, "rx"):
            q = QUERIES["survival"].__class__(column=e.time, endpoint=e.name, by=by)
            _same_aggregates(build_plan(q, schema, 0.5), mem, src)


# --------------------------------------------------------------------- per-patient bound in SQL
def _bounded_schema(k: int, storage: dict):
    return schema_from_dict({
        "dataset": {"id": "bounded", "privacy_unit": "pid", "max_rows_per_unit": k, "max_rows": 10**6},
        "columns": {"pid": {"kind": "id"}, "g": {"kind": "categorical", "categories": ["a", "b"]},
                    "x": {"kind": "numeric", "lower": 0, "upper": 10, "bins": 2}},
        "storage": storage})


def test_a_patient_with_20_rows_contributes_at_most_k(tmp_path):
    pids = [0] * 20 + list(range(1, 31))                 # patient 0 has 20 rows, the others one
    frame = pd.DataFrame({"pid": pids, "g": ["a"] * 20 + ["b"] * 30, "x": [9.0] * 20 + [1.0] * 30})
    frame.to_parquet(tmp_path / "t.parquet")
    for k in (1, 2, 3):
        schema = _bounded_schema(k, {"kind": "parquet", "path": str(tmp_path / "t.parquet")})
        eng = open_cohort(schema)
        for q, expect in ((CountQuery(), 30 + k), (HistogramQuery(column="g"), [k, 30, 0, 0])):
            plan = build_plan(q, schema, 1.0)
            got = eng.engine.aggregates(plan, aggregate_noise(plan))[0]
            assert np.array_equal(np.atleast_1d(got), np.atleast_1d(expect))
        plan = build_plan(MeanQuery(column="x"), schema, 1.0)
        s, n = eng.engine.aggregates(plan, aggregate_noise(plan))
        assert n == 30 + k
        mem = prepare(frame, dataclasses.replace(schema, storage=()))     # memory keeps the first k rows
        assert [s, n] == numpy_aggregates(plan, mem)


# ------------------------------------------------------------------------------ hostile names
HOSTILE_COL = 'gleason"; DROP TABLE cohort; --'
HOSTILE_CATS = ["'; DROP TABLE cohort; --", 'a"b', "naïve ünïcode ✓", "x) OR 1=1 --"]


def _hostile(tmp_path, table: str = 'cohort"; drop'):
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"pid; --": np.arange(n), HOSTILE_COL: rng.choice(HOSTILE_CATS + [None], n),
                          "dose 'mGy'": rng.uniform(0, 50, n)})
    schema = schema_from_dict({
        "dataset": {"id": "hostile", "privacy_unit": "pid; --", "max_rows_per_unit": 1, "max_rows": 10**6},
        "columns": {"pid; --": {"kind": "id"}, HOSTILE_COL: {"kind": "categorical", "categories": HOSTILE_CATS},
                    "dose 'mGy'": {"kind": "numeric", "lower": 0, "upper": 50, "bins": 5,
                                   "candidates": list(range(51))}}})
    return frame, schema


def _hostile_queries():
    return [HistogramQuery(column=HOSTILE_COL), HistogramQuery(column="dose 'mGy'"),
            CrossTabQuery(column=HOSTILE_COL, by="dose 'mGy'"), MeanQuery(column="dose 'mGy'",
                                                                          where=Where(HOSTILE_COL, HOSTILE_CATS[0])),
            QuantileQuery(column="dose 'mGy'", q=0.5), CountQuery(where=Where(HOSTILE_COL, HOSTILE_CATS[3]))]


def test_hostile_names_cannot_change_the_sql_duckdb(tmp_path):
    frame, schema = _hostile(tmp_path)
    db = tmp_path / "h.duckdb"
    eng = sa.create_engine(f"duckdb:///{db}")
    frame.to_sql('cohort"; drop', eng, index=False)
    frame.to_sql("cohort", eng, index=False)              # the table an injection would drop
    eng.dispose()
    src = open_cohort(_with_storage(schema, kind="duckdb", path=db, table='cohort"; drop'))
    mem = prepare(frame, schema)
    for q in _hostile_queries():
        plan = build_plan(q, src.schema, 0.5)
        _same_aggregates(plan, mem, src)
        sql = src.engine.statement_sql(plan)
        for value in HOSTILE_CATS:                      # values travel as parameters, never as SQL text
            assert value not in sql
    src.engine.url_engine.dispose()
    with sa.create_engine(f"duckdb:///{db}").connect() as c:
        assert c.execute(sa.text("select count(*) from cohort")).scalar() == len(frame)


def test_storage_never_holds_credentials():
    for bad in ({"kind": "postgresql", "table": "t", "url": "postgresql://u:pw@h/db"},
                {"kind": "postgresql", "table": "t", "password": "pw", "url_secret": "X"},
                {"kind": "parquet", "path": "s3://bucket/x.parquet"},
                {"kind": "postgresql", "table": "t"},
                {"kind": "oracle", "table": "t"}):
        with pytest.raises(SchemaError):
            data_source(_bounded_schema(1, bad))


# --------------------------------------------------------------------------------- PostgreSQL
needs_pg = pytest.mark.skipif(pg_bin() is None and not os.environ.get("CI"),
                              reason="PostgreSQL server binaries not installed (make system-deps)")


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    yield server
    server.stop()


def _pg_cohort(pg, frame, schema, table: str):
    """`frame` as `table` on the test server, opened as an engine cohort (URL from a secret)."""
    eng = sa.create_engine(pg.url)
    frame.to_sql(table, eng, index=False, if_exists="replace")
    eng.dispose()
    return open_cohort(_with_storage(schema, kind="postgresql", table=table, url_secret="DP_TEST_PG"),
                       secrets={"DP_TEST_PG": pg.url})


@needs_pg
def test_postgresql_matches_memory_and_releases(prostate, pg, tmp_path):
    frame, schema, mem = prostate
    src = _pg_cohort(pg, frame, schema, "prostate")
    for name in PUSHED:
        _same_aggregates(build_plan(QUERIES[name], src.schema, 0.6), mem, src)
    ledger = BudgetLedger(tmp_path / "l.sqlite")
    r = release(QuantileQuery(column="psa", q=0.5), src, 0.5, ledger, "ana")
    assert r.ci_low[0] <= r.values[0] <= r.ci_high[0]
    ledger.close()


@needs_pg
def test_postgresql_hostile_names_and_bound(pg, tmp_path):
    frame, schema = _hostile(tmp_path)
    eng = sa.create_engine(pg.url)
    frame.to_sql('cohort"; drop', eng, index=False, if_exists="replace")
    frame.to_sql("cohort", eng, index=False, if_exists="replace")
    src = open_cohort(_with_storage(schema, kind="postgresql", table='cohort"; drop', url_secret="PG"),
                      secrets={"PG": pg.url})
    mem = prepare(frame, schema)
    for q in _hostile_queries():
        _same_aggregates(build_plan(q, src.schema, 0.5), mem, src)
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from cohort")).scalar() == len(frame)
    pd.DataFrame({"pid": [7] * 20 + [8], "g": ["a"] * 21, "x": [1.0] * 21}).to_sql(
        "bounded", eng, index=False, if_exists="replace")
    eng.dispose()
    schema2 = _bounded_schema(3, {"kind": "postgresql", "table": "bounded", "url_secret": "PG"})
    src2 = open_cohort(schema2, secrets={"PG": pg.url})
    plan = build_plan(HistogramQuery(column="g"), schema2, 1.0)
    assert list(src2.engine.aggregates(plan, aggregate_noise(plan))[0]) == [4, 0, 0, 0]


@needs_pg
def test_missing_table_or_server_down_charges_nothing(prostate, pg, tmp_path):
    frame, schema, mem = prostate
    ledger = BudgetLedger(tmp_path / "l.sqlite")
    with pytest.raises(SourceError) as e:
        open_cohort(_with_storage(schema, kind="postgresql", table="no_such_table", url_secret="PG"),
                    secrets={"PG": pg.url})
    assert "could not be read; nothing was spent" in str(e.value) and "no_such_table" in e.value.owner_detail
    with pytest.raises(SourceError) as e:
        open_cohort(_with_storage(schema, kind="postgresql", table="t", url_secret="PG"), secrets={})
    assert "not configured" in str(e.value)
    # reachable when opened, down when the release runs
    eng = sa.create_engine(pg.url)
    frame.to_sql("later_down", eng, index=False, if_exists="replace")
    eng.dispose()
    src = open_cohort(_with_storage(schema, kind="postgresql", table="later_down", url_secret="PG"),
                      secrets={"PG": pg.url})
    src.engine.url_engine = sa.create_engine(unused_url(), connect_args={"connect_timeout": 2})
    with pytest.raises(SourceError) as e:
        release(HistogramQuery(column="gleason_score"), src, 0.5, ledger, "ana")
    assert "nothing was spent" in str(e.value) and "127.0.0.1" not in str(e.value)
    assert ledger.state(schema.dataset_id, "ana").spent == 0
    ledger.close()


def test_bound_is_verified_per_snapshot_of_the_files(tmp_path):
    """Files whose patients all have <= k rows are aggregated without the window; when the files
    change (a patient now has 20 rows) the new snapshot is checked again and the window bounds it."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({"pid": range(30), "g": ["a"] * 30, "x": [1.0] * 30}).to_parquet(path)
    schema = _bounded_schema(2, {"kind": "parquet", "path": str(path)})
    eng = open_cohort(schema)
    plan = build_plan(HistogramQuery(column="g"), schema, 1.0)
    assert list(eng.engine.aggregates(plan, aggregate_noise(plan))[0]) == [30, 0, 0, 0]
    assert "row_number" not in eng.engine.statement_sql(plan)
    pd.DataFrame({"pid": [0] * 20 + list(range(1, 30)), "g": ["a"] * 49, "x": [1.0] * 49}).to_parquet(path)
    os.utime(path, ns=(1, 1))                # a new snapshot even within the clock's resolution
    assert list(eng.engine.aggregates(plan, aggregate_noise(plan))[0]) == [31, 0, 0, 0]
    assert "row_number" in eng.engine.statement_sql(plan)


def test_cli_releases_from_a_schema_with_storage(prostate, tmp_path, capsys):
    """`python -m privacy release --schema S.toml` where S has [storage]: the release runs in DuckDB."""
    from privacy.cli import main
    frame, schema, _ = prostate
    frame.to_parquet(tmp_path / "p.parquet")
    toml = tmp_path / "s.toml"
    toml.write_text('[dataset]\nid = "pq"\nprivacy_unit = "pid"\nmax_rows_per_unit = 1\nmax_rows = 1000000\n'
                    '[columns.pid]\nkind = "id"\n[columns.gleason_score]\nkind = "categorical"\n'
                    'categories = ["6", "7", "8", "9", "10"]\n'
                    f'[storage]\nkind = "parquet"\npath = "{tmp_path / "p.parquet"}"\n')
    frame.rename(columns={"patient_id": "pid"})[["pid", "gleason_score"]].to_parquet(tmp_path / "p.parquet")
    led = tmp_path / "l.sqlite"
    rc = main(["release", "--schema", str(toml), "--stat", "histogram", "--column", "gleason_score",
               "--epsilon", "0.5", "--analyst", "ann", "--ledger", str(led), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    import json
    rel = json.loads(out.out)
    assert rel["dataset_id"] == "pq" and len(rel["values"]) == 7 and rel["spent"] == pytest.approx(0.5)
    rc = main(["simulate", "--schema", str(toml), "--stat", "histogram", "--column", "gleason_score",
               "--epsilon", "0.5"])
    assert rc == 2 and "needs the rows in memory" in capsys.readouterr().err
    (tmp_path / "p.parquet").unlink()                    # files gone: a clear message, nothing charged
    rc = main(["release", "--schema", str(toml), "--stat", "count", "--epsilon", "0.5", "--analyst", "ann",
               "--ledger", str(led)])
    err = capsys.readouterr().err
    assert rc == 2 and "could not be read; nothing was spent" in err


@needs_pg
def test_postgresql_skips_the_window_only_for_a_unique_not_null_patient_id(prostate, pg):
    frame, schema, mem = prostate
    eng = sa.create_engine(pg.url)
    frame.to_sql("with_pk", eng, index=False, if_exists="replace")
    frame.to_sql("without_pk", eng, index=False, if_exists="replace")
    with eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE with_pk ADD PRIMARY KEY (patient_id)")
    eng.dispose()
    for table, windowed in (("with_pk", False), ("without_pk", True)):
        src = open_cohort(_with_storage(schema, kind="postgresql", table=table, url_secret="PG"),
                          secrets={"PG": pg.url})
        sent = []
        sa.event.listen(src.engine.url_engine, "before_cursor_execute",
                        lambda conn, cur, statement, *a: sent.append(statement))
        plan = build_plan(HistogramQuery(column="gleason_score"), src.schema, 0.5)
        _same_aggregates(plan, mem, src)
        assert any("row_number" in q for q in sent) == windowed, table
        src.engine.url_engine.dispose()


@pytest.mark.slow
def test_duckdb_release_noise_has_the_plans_law(parquet_cohort, prostate):
    """Releases through DuckDB: released counts minus the true counts have the exact variance of
    the plan's discrete Laplace (5 sigma); the same draws fail against a 20%-wrong scale."""
    from privacy.engine import invoke
    from tests.test_stats import moments, variance_check
    plan = build_plan(HistogramQuery(column="gleason_score"), parquet_cohort.schema, 0.7)
    truth = np.asarray(numpy_aggregates(plan, prostate[2])[0], dtype=float)
    err = np.array([np.asarray(invoke(plan, parquet_cohort), dtype=float) - truth for _ in range(600)])
    noise, scale = plan.noise["counts"]
    ok, msg = variance_check(err, *moments(noise, scale))
    assert ok, msg
    assert not variance_check(err, *moments(noise, 1.2 * scale))[0]


# ----------------------------------------------------------------- owner's Compare on an engine cohort
@pytest.mark.parametrize("name", PUSHED)
def test_simulation_on_an_engine_cohort_uses_its_exact_aggregates(prostate, parquet_cohort, name):
    """The owner's simulation of a release on a cohort whose rows stay in Parquet: the true values
    come from the engine's exact aggregates and equal the in-memory truth (exactly for counts and
    survival; a mean to its quantisation step; a quantile to its public cell)."""
    from privacy.simulate import simulate
    frame, schema, mem = prostate
    q = QUERIES[name]
    eng = simulate(q, parquet_cohort, 0.8, draws=30)
    ref = simulate(q, mem, 0.8, draws=30)
    t_eng, t_mem = np.asarray(eng.truth), np.asarray(ref.truth)
    assert eng.labels == ref.labels and eng.values.shape == ref.values.shape == (30, len(ref.labels))
    assert eng.epsilon == ref.epsilon and eng.noise == ref.noise
    both = np.isfinite(t_mem)
    if q.stat in ("count", "histogram", "crosstab", "survival"):
        assert np.array_equal(np.isfinite(t_eng), both) and np.allclose(t_eng[both], t_mem[both], rtol=0, atol=1e-12)
    elif q.stat in ("mean", "grouped-mean"):
        col = schema.column(q.column)
        assert np.allclose(t_eng[both], t_mem[both], rtol=0, atol=(col.upper - col.lower) * 1e-4)
    else:                                      # quantiles: within the public candidate cell of the true one
        cands = np.asarray(schema.column(q.column).quantile_candidates, dtype=float)
        step = float(np.max(np.diff(cands)))
        assert np.all(np.abs(t_eng[both] - t_mem[both]) <= step + 1e-9), (t_eng, t_mem, step)


def test_simulation_on_an_engine_cohort_has_the_plans_noise_law(parquet_cohort):
    """Simulated histogram releases on the engine cohort minus its truth have the exact variance of
    the plan's discrete Laplace (5 sigma); the same draws fail against a 20%-wrong scale."""
    from privacy.simulate import simulate
    from tests.test_stats import moments, variance_check
    sim = simulate(HistogramQuery(column="gleason_score"), parquet_cohort, 0.7, draws=600)
    noise, scale = build_plan(HistogramQuery(column="gleason_score"), parquet_cohort.schema, 0.7).noise["counts"]
    ok, msg = variance_check(sim.errors, *moments(noise, scale))
    assert ok, msg
    assert not variance_check(sim.errors, *moments(noise, 1.2 * scale))[0]


@pytest.mark.parametrize("name", ["hist-categorical", "mean", "grouped-mean", "quantile", "grouped-quantile",
                                  "survival"])
def test_trade_off_on_an_engine_cohort_matches_memory(prostate, parquet_cohort, name):
    """The Trade-off's expected line from the engine's exact aggregates equals the in-memory one
    (a quantile's to its candidate cell); the simulated line is there at every epsilon."""
    from privacy.simulate import true_mean, tradeoff
    frame, schema, mem = prostate
    q = QUERIES[name]
    eng = tradeoff(q, parquet_cohort, [0.5, 2.0], draws=20)
    ref = tradeoff(q, mem, [0.5, 2.0], draws=20)
    assert eng.basis == ref.basis and eng.values == ref.values
    for a, b in zip(eng.points, ref.points):
        x, y = np.asarray(a.analytic_values), np.asarray(b.analytic_values)
        assert np.array_equal(np.isfinite(x), np.isfinite(y))
        ok = np.isfinite(y)
        tol = (1e-9 if q.stat not in ("quantile", "grouped-quantile")
               else 2 * float(np.max(np.diff(schema.column(q.column).quantile_candidates))))
        assert np.allclose(x[ok], y[ok], rtol=1e-6, atol=tol), (x, y)
        assert np.isfinite(a.empirical)
    if q.stat in ("mean", "grouped-mean"):
        col = schema.column(q.column)
        assert abs(true_mean(q, parquet_cohort) - true_mean(q, mem)) <= (col.upper - col.lower) * 1e-4


def test_engine_truth_of_groups_without_patients_is_nan_as_from_the_rows(prostate, parquet_cohort):
    from privacy.queries import GroupedMeanQuery, GroupedQuantileQuery
    from privacy.simulate import simulate
    frame, schema, mem = prostate
    for q in (GroupedMeanQuery(column="psa", by="risk_group", where=Where("risk_group", "high")),
              GroupedQuantileQuery(column="psa", by="risk_group", where=Where("risk_group", "low"))):
        eng, ref = (np.asarray(simulate(q, c, 1.0, draws=5, only_groups_with_truth=True).truth)
                    for c in (parquet_cohort, mem))
        assert np.array_equal(np.isfinite(eng), np.isfinite(ref)) and np.isfinite(ref).sum() == 1, (eng, ref)


# ------------------------------------------------ synthetic cohorts and the anonymity report
SYNTHETIC = (SyntheticQuery(columns=("risk_group", "age", "diagnosis_date")),
             SyntheticQuery(columns=("site", "psa", "status", "gleason_score"), where=Where("treatment", "ADT")))


def _multiset(lazy) -> collections.Counter:
    return collections.Counter(lazy.collect().rows())


def _same_synthetic_input(mem, eng):
    """A synthetic cohort's OpenDP input rebuilt from the engine's bucket-combination counts is the
    in-memory input as a multiset (all a contingency table reads): same cost, same noise law."""
    pytest.importorskip("mbi")
    for q in SYNTHETIC:
        plan = build_plan(q, eng.schema, 1.0, "gaussian")
        kind, rows = prepare_input(plan, eng)
        assert kind == "rows"                          # OpenDP's row-level measurement, two-commit path
        want = _multiset(plan.make_input(mem))
        assert _multiset(rows) == want and sum(want.values()) > 100, q
        assert plan.truth(eng) == plan.truth(mem)


def _same_anonymity(mem, eng):
    """The owner's anonymity report from the engine's bounded rows equals the in-memory one."""
    from data import anonymity as A
    schema = mem.schema
    qi, sa_ = list(schema.quasi_identifiers), list(schema.sensitive)
    a = A.risk_report(mem.frame, schema, qi, sa_)
    b = A.risk_report(eng.owner_frame(qi + sa_), schema, qi, sa_)
    for x, y in zip(a["versions"], b["versions"]):
        smallest = [(c["patients"], c["rows"]) for c in x.pop("smallest_classes")]   # ties may come in another order
        assert smallest == [(c["patients"], c["rows"]) for c in y.pop("smallest_classes")]
        assert x == y


def test_synthetic_input_and_anonymity_from_parquet_match_memory(prostate, parquet_cohort):
    _same_synthetic_input(prostate[2], parquet_cohort)
    _same_anonymity(prostate[2], parquet_cohort)


def test_owner_rows_are_bounded_per_patient_and_limited(tmp_path):
    from privacy.engine import OwnerRowsTooMany
    frame = pd.DataFrame({"pid": [0] * 20 + list(range(1, 31)), "g": ["a"] * 50, "x": [1.0] * 50})
    frame.to_parquet(tmp_path / "t.parquet")
    eng = open_cohort(_bounded_schema(2, {"kind": "parquet", "path": str(tmp_path / "t.parquet")}))
    got = eng.owner_frame(["g"])
    assert list(got.columns) == ["pid", "g"] and len(got) == 32 and (got["pid"] == 0).sum() == 2
    with pytest.raises(OwnerRowsTooMany, match="more than 31 rows"):
        eng.owner_frame(["g"], limit=31)
    assert len(eng.owner_frame(["g", "x"], limit=32)) == 32


@needs_pg
def test_postgresql_synthetic_input_and_anonymity_match_memory(prostate, pg):
    frame, schema, mem = prostate
    src = _pg_cohort(pg, frame, schema, "prostate_rows")
    _same_synthetic_input(mem, src)
    _same_anonymity(mem, src)
