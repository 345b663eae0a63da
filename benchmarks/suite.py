"""The measurements: cohort preparation, plan building, end-to-end release, invocation, NumPy.

Per (rows, query kind), repetitions are interleaved (cold build, cold release, warm release, warm
build, invocation, NumPy in turn) so drift in machine speed hits every path alike; medians are
reported. Peak memory is taken in one extra call per path after the timed repetitions.
"""
from __future__ import annotations

import gc
import itertools
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.baseline import BASELINE_NAMES, make_baselines
from benchmarks.cohort import KINDS, Source
from benchmarks.measure import Reps, peak_of, timed
from data.prepare import PreparedCohort, prepare
from privacy.calibrate import DEFAULT_DELTA
from privacy.ledger import BudgetLedger
from privacy.measurements import build_plan
from privacy.release import release

EPS = 0.5                      # epsilon of the warm (plan-cached) path
MECH = "laplace"
BIG_BUDGET = 1e9


@dataclass
class PrepareResult:
    rows: int
    generate_s: float
    prepare_s: float            # median
    prepare_all_s: list[float]
    peak_mb: float | None


@dataclass
class QueryResult:
    rows: int
    kind: str
    query: dict
    reps: int
    first_input_ms: float       # plan.make_input on a fresh cohort (its per-cohort cache empty)
    build_cold_ms: float        # build_plan cache miss (fresh epsilon)
    build_warm_ms: float        # build_plan cache hit (the same call release() makes)
    e2e_cold_ms: float          # release() with a fresh epsilon: build + reserve + invoke + store
    e2e_warm_ms: float          # release() with the plan cached (e.g. after a preview), fresh analyst
    invoke_ms: float            # plan.measurement(plan.make_input(cohort)) (+ OnceFrame.collect())
    numpy_ms: float             # insecure NumPy baseline with NumPy noise
    baseline: str
    peak_e2e_mb: float | None
    peak_invoke_mb: float | None
    peak_numpy_mb: float | None
    samples_ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def e2e_over_invoke(self) -> float:
        return self.e2e_warm_ms / self.invoke_ms

    @property
    def cold_over_invoke(self) -> float:
        return self.e2e_cold_ms / self.invoke_ms

    @property
    def invoke_over_numpy(self) -> float:
        return self.invoke_ms / self.numpy_ms if self.numpy_ms > 0 else float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["best_ms"] = {k: min(v) for k, v in self.samples_ms.items() if v}
        d.update(e2e_over_invoke=self.e2e_over_invoke, cold_over_invoke=self.cold_over_invoke,
                 invoke_over_numpy=self.invoke_over_numpy)
        return d


def invoke(plan, cohort: PreparedCohort):
    """The OpenDP invocation alone: plan.measurement(plan.make_input(cohort)).

    A Polars measurement (grouped mean) returns a OnceFrame whose noisy aggregate is only computed
    by `.collect()`, so that is included; otherwise the lazy result would time almost nothing.
    """
    raw = plan.measurement(plan.make_input(cohort))
    if type(raw).__name__ == "OnceFrame":
        raw = raw.collect()
    return raw


def _mb(b: int | None) -> float | None:
    return None if b is None else b / 2**20


def _ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1e3


class Bench:
    def __init__(self, source: Source, ledger_dir: Path, reps: int, kinds: tuple[str, ...] = KINDS,
                 seed: int = 20240601, log: Callable[[str], None] = print, kind_budget_s: float = 8.0):
        self.source, self.reps, self.kinds, self.seed, self.log = source, reps, kinds, seed, log
        self.kind_budget_s = kind_budget_s
        self.ledger_path = Path(ledger_dir) / "bench-ledger.sqlite"
        self.ledger = BudgetLedger(self.ledger_path)
        self.ledger.set_dataset_budget(source.schema.dataset_id, BIG_BUDGET, delta=0.5, actor="benchmark")
        self._eps = itertools.count(1)
        self._who = itertools.count(1)
        self.rng = np.random.default_rng(seed)
        self.warmup: dict[str, float] = {}

    # ------------------------------------------------------------------------------ helpers
    def fresh_eps(self) -> float:
        """A never-used epsilon, so build_plan's lru_cache and the ledger's release cache both miss."""
        return round(EPS + next(self._eps) * 1e-6, 9)

    def analyst(self) -> str:
        """A fresh analyst with a big allowance (set outside the timed region)."""
        name = f"bench-{next(self._who)}"
        self.ledger.set_budget(self.source.schema.dataset_id, name, BIG_BUDGET, actor="benchmark")
        return name

    def fresh_ledger(self) -> BudgetLedger:
        """A new, empty ledger (made outside the timed region): releases are shared per dataset, so a
        warm-plan release (same epsilon as before) misses the ledger's cache only in a new ledger."""
        lg = BudgetLedger(self.ledger_path.with_name(f"bench-warm-{next(self._who)}.sqlite"))
        lg.set_dataset_budget(self.source.schema.dataset_id, BIG_BUDGET, delta=0.5, actor="benchmark")
        return lg

    def _release(self, q, cohort: PreparedCohort, eps: float, who: str, ledger: BudgetLedger | None = None):
        rel = release(q, cohort, eps, ledger or self.ledger, who)
        if rel.cached:
            raise RuntimeError("benchmark bug: the release was served from the ledger cache")
        return rel

    # ------------------------------------------------------------------------------- phases
    def warm_up(self) -> float:
        """First queries in a new process are slower (library initialisation): pay that once here.

        Returns the total seconds; per-kind first-release times are kept in `self.warmup`.
        """
        t0 = time.perf_counter()
        small = prepare(self.source.generate(2_000, self.seed), self.source.schema)
        for kind in self.kinds:
            q = self.source.queries[kind]
            dt, _, _ = timed(lambda: self._release(q, small, self.fresh_eps(), self.analyst()))
            self.warmup[kind] = dt * 1e3
        return time.perf_counter() - t0

    def prepare_phase(self, rows: int, max_reps: int) -> tuple[PreparedCohort, PrepareResult]:
        tg, _, frame = timed(lambda: self.source.generate(rows, self.seed))
        times, peak, cohort = [], None, None
        for i in Reps(max_reps, min_reps=1, budget_s=10.0).iterate():
            cohort = None
            gc.collect()
            if i == 0:
                dt, p, cohort = peak_of(lambda: prepare(frame, self.source.schema))
                peak = p
            else:
                dt, _, cohort = timed(lambda: prepare(frame, self.source.schema))
            times.append(dt)
        del frame  # the cohort keeps the validated frame (prepare's default), as the app does
        return cohort, PrepareResult(rows, tg, statistics.median(times), times, _mb(peak))

    def query_phase(self, rows: int, cohort: PreparedCohort) -> list[QueryResult]:
        schema = self.source.schema
        warm = {k: build_plan(self.source.queries[k], schema, EPS, MECH, DEFAULT_DELTA) for k in self.kinds}
        baselines = make_baselines(self.source.columns, warm)
        out = []
        for kind in self.kinds:
            q, plan, base = self.source.queries[kind], warm[kind], baselines[kind]
            first_input, _, _ = timed(lambda: plan.make_input(cohort))
            s: dict[str, list[float]] = {k: [] for k in
                                         ("build_cold", "e2e_cold", "e2e_warm", "build_warm", "invoke", "numpy")}
            for _ in Reps(self.reps, min_reps=3, budget_s=self.kind_budget_s).iterate():
                eps = self.fresh_eps()
                s["build_cold"].append(timed(lambda: build_plan(q, schema, eps, MECH, DEFAULT_DELTA))[0])
                eps, who = self.fresh_eps(), self.analyst()
                s["e2e_cold"].append(timed(lambda: self._release(q, cohort, eps, who))[0])
                who, lg = self.analyst(), self.fresh_ledger()
                s["e2e_warm"].append(timed(lambda: self._release(q, cohort, EPS, who, lg))[0])
                lg.close()
                s["build_warm"].append(timed(lambda: build_plan(q, schema, EPS, MECH, DEFAULT_DELTA))[0])
                s["invoke"].append(timed(lambda: invoke(plan, cohort))[0])
                s["numpy"].append(timed(lambda: base(cohort, self.rng))[0])
            who, lg = self.analyst(), self.fresh_ledger()
            pe = peak_of(lambda: self._release(q, cohort, EPS, who, lg))[1]
            lg.close()
            pi = peak_of(lambda: invoke(plan, cohort))[1]
            pn = peak_of(lambda: base(cohort, self.rng))[1]
            r = QueryResult(
                rows=rows, kind=kind, query=q.to_dict(), reps=len(s["invoke"]), first_input_ms=first_input * 1e3,
                build_cold_ms=_ms(s["build_cold"]), build_warm_ms=_ms(s["build_warm"]),
                e2e_cold_ms=_ms(s["e2e_cold"]), e2e_warm_ms=_ms(s["e2e_warm"]), invoke_ms=_ms(s["invoke"]),
                numpy_ms=_ms(s["numpy"]), baseline=BASELINE_NAMES[kind],
                peak_e2e_mb=_mb(pe), peak_invoke_mb=_mb(pi), peak_numpy_mb=_mb(pn),
                samples_ms={k: [round(v * 1e3, 4) for v in vs] for k, vs in s.items()})
            self.log(f"  {rows:>10,} {kind:<13} e2e {r.e2e_warm_ms:8.1f} ms  invoke {r.invoke_ms:8.1f} ms  "
                     f"numpy {r.numpy_ms:7.2f} ms  ({r.reps} reps)")
            out.append(r)
        return out

    def close(self) -> None:
        problems = self.ledger.verify()
        self.ledger.close()
        if problems:  # not a timing assertion: the ledger must stay intact under benchmarking
            raise RuntimeError("benchmark ledger failed verification: " + "; ".join(problems[:3]))
