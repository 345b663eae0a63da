"""Persistent, append-only, tamper-evident privacy budget ledger (SQLite): one budget per patient.

Facts:
- **Dataset budget.** Each dataset has one total budget (epsilon, and delta for Gaussian noise)
  that bounds everything released on it by all analysts together: that is the per-patient
  guarantee. The data owner sets it ('dataset' rows); the first time a dataset is used the
  schema's default budget is recorded by actor 'schema-default'. A 'dataset' row also records
  the accounting mode ("pure" basic composition or "zcdp", see `privacy.accounting`) and the
  allowance of analysts the owner has not named (None = up to the whole dataset budget).
- **Allowances.** Within it, each analyst may spend at most an allowance ('budget' rows, set by
  the owner; the kind name is the one older ledgers used for per-analyst budgets, which are
  read as allowances).
- A release is charged BEFORE it is shown: in a `BEGIN IMMEDIATE` transaction the ledger
  checks the dataset budget, the delta budget and the analyst's allowance, then appends a
  'reserve' row (epsilon, delta, and rho in its payload). Results are appended as 'result'
  rows. Two ways, both synced to disk before anything is shown, so every release an analyst
  saw is on disk with its charge:
  - `charge` (noise over engine aggregates, which takes no time): the reservation, the
    measurement and its result are one transaction and one synced commit. A measurement that
    raises stays charged ('failure' row); a process that dies before the commit leaves nothing,
    and showed nothing.
  - `reserve` then `store_result`/`record_failure` (OpenDP's row-level measurements, which may
    take seconds): the reservation commits first without waiting for the disk (visible to all
    sessions at once); the result's or failure's commit does wait. An invocation that fails or
    is interrupted after the reservation stays charged.
- **One release per question per dataset.** An identical release (same dataset, query, epsilon,
  mechanism, delta) is served from its stored result to any analyst at no cost, never fresh
  noise; the first time an analyst is served someone else's release a 'served' row (cost 0)
  keeps the audit trail of who asked what. Refused attempts are 'refusal' rows (cost 0), and
  answers derived from a stored release by post-processing are 'derived' rows (cost 0).
- Rows are never updated or deleted (SQLite triggers refuse it); each row carries the SHA-256 of
  the previous row's hash and its own content, so `verify()` finds edited, deleted or reordered
  rows. WAL mode; safe for many processes on one local disk. Ledgers written before dataset
  budgets existed are migrated in place on open (rows and hashes kept verbatim).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

GENESIS = "0" * 64
IN_FLIGHT_WAIT_S = 30.0
FORMAT_VERSION = 2
KINDS = ("budget", "reserve", "result", "failure", "dataset", "refusal", "served", "derived")
ACCOUNTING = ("pure", "zcdp")    # the modes privacy.accounting converts between
DEFAULT_DELTA_BUDGET = 1e-6      # dataset delta budget when the schema declares none
TOL = 1e-12                      # costs are OpenDP map values compared against exact budgets
_COLS = ("seq", "ts", "kind", "dataset", "analyst", "release_key", "epsilon", "delta", "mechanism",
         "query", "payload", "actor")
DATASET_ACTOR = "*"              # the analyst column of dataset-level rows


class LedgerError(RuntimeError):
    """The ledger file cannot be used (locked beyond the timeout, disk full, corrupt)."""


class BudgetExceeded(LedgerError):
    """A release would overspend the dataset budget, its delta budget or the analyst's allowance;
    nothing was charged or invoked. `which` is "dataset", "delta" or "allowance"."""

    def __init__(self, which: str, cost: float, remaining: float, total: float, dataset: str, analyst: str,
                 accounting: str = "pure"):
        self.which, self.cost, self.remaining, self.total = which, cost, max(remaining, 0.0), total
        self.dataset, self.analyst, self.accounting = dataset, analyst, accounting
        left = _fmt(self.remaining)
        whose = (f"the dataset budget ({_fmt(total)}) is left on '{dataset}' for all analysts together"
                 if which == "dataset" else f"your allowance ({_fmt(total)}) on '{dataset}' is left")
        raise_what = "the dataset budget" if which == "dataset" else "your allowance"
        if which == "delta":
            text = (f"Refused: this release uses Gaussian noise with δ {cost:.2g}, but the dataset '{dataset}' "
                    f"has δ {self.remaining:.2g} of its δ budget {total:.2g} left. Use Laplace noise, or ask the "
                    "data owner to raise the dataset's δ budget.")
        elif accounting == "zcdp":
            text = (f"Refused: this release would add ε {_fmt(cost)} to what has been spent, but only ε {left} of "
                    f"{whose} (zCDP accounting: ε at the dataset's δ; many small releases, especially with "
                    f"Gaussian noise, add up to less than their sum). Choose a smaller ε, or ask the data owner "
                    f"to raise {raise_what}.")
        else:
            text = (f"Refused: this release costs ε {_fmt(cost)}, but only ε {left} of {whose}. "
                    + (f"Choose ε {left} or less, or ask" if self.remaining > 0 else "Ask")
                    + f" the data owner to raise {raise_what}.")
        super().__init__(text + " Nothing was spent.")


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x >= 1e-3 or x == 0 else f"{x:.2g}"


@dataclass(frozen=True)
class Reservation:
    seq: int
    release_key: str
    epsilon: float
    delta: float


class _Ask(NamedTuple):
    """One request to charge a release (`reserve`, `charge`), its numbers as floats."""

    dataset: str
    analyst: str
    release_key: str
    epsilon: float
    delta: float
    rho: float
    mechanism: str
    query: str
    default_total: float | None
    default_delta: float | None
    legacy_keys: tuple[str, ...]

    @classmethod
    def of(cls, dataset, analyst, release_key, epsilon, delta, mechanism, query, rho, default_total,
           default_delta, legacy_keys) -> "_Ask":
        rho = _legacy_rho(epsilon, delta) if rho is None else float(rho)
        return cls(dataset, analyst, release_key, float(epsilon), float(delta), rho, mechanism, query, default_total,
                   default_delta, tuple(legacy_keys))


class FailedAfterCharge(RuntimeError):
    """`BudgetLedger.charge`: the measurement raised; its charge and a 'failure' row are committed
    (the charge stands). `detail` (the underlying error) is for the data owner."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class DatasetBudget:
    """The per-patient guarantee of one dataset: everything released on it, by everyone.

    In "zcdp" accounting `spent` is the epsilon of the summed rho at `delta_total` (OpenDP's
    conversion), `delta_spent` is `delta_total` once anything is released."""

    dataset: str
    accounting: str
    total: float
    delta_total: float
    default_allowance: float | None
    spent: float
    delta_spent: float
    rho_spent: float
    releases: int
    set_by: str = ""
    note: str = ""

    @property
    def remaining(self) -> float:
        return max(self.total - self.spent, 0.0)

    @property
    def delta_remaining(self) -> float:
        return max(self.delta_total - self.delta_spent, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "accounting": self.accounting, "total": self.total,
                "spent": self.spent, "remaining": self.remaining, "delta_total": self.delta_total,
                "delta_spent": self.delta_spent, "delta_remaining": self.delta_remaining,
                "rho_spent": self.rho_spent, "default_allowance": self.default_allowance,
                "releases": self.releases, "set_by": self.set_by, "note": self.note}


@dataclass(frozen=True)
class BudgetState:
    """One analyst on one dataset: `total` is the analyst's allowance, `spent` what they spent,
    `remaining` what they can still spend (the smaller of allowance left and dataset left)."""

    dataset: str
    analyst: str
    total: float
    spent: float
    delta_spent: float
    data: DatasetBudget | None = None
    allowance_set: bool = False

    @property
    def dataset_remaining(self) -> float:
        return self.data.remaining if self.data is not None else max(self.total - self.spent, 0.0)

    @property
    def remaining(self) -> float:
        return min(max(self.total - self.spent, 0.0), self.dataset_remaining)

    def to_dict(self) -> dict[str, Any]:
        return {"analyst": self.analyst, "allowance": self.total, "allowance_set": self.allowance_set,
                "spent": self.spent, "remaining": self.remaining, "delta_spent": self.delta_spent}


@dataclass(frozen=True)
class Charged:
    """A release charged and stored in one synced commit (`BudgetLedger.charge`): its stored
    payload and the analyst's budget state after the charge."""

    payload: dict
    state: BudgetState


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _row_hash(prev: str, row: dict[str, Any]) -> str:
    body = json.dumps([prev] + [row.get(c) for c in _COLS], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _finite(x: Any, name: str, allow_none: bool = False) -> float | None:
    if x is None and allow_none:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {x!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    return v


_TABLE_SQL = f"""
CREATE TABLE ledger (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in KINDS)})),
  dataset TEXT NOT NULL, analyst TEXT NOT NULL, release_key TEXT,
  epsilon REAL NOT NULL DEFAULT 0, delta REAL NOT NULL DEFAULT 0, mechanism TEXT,
  query TEXT, payload TEXT, actor TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)"""
_EXTRAS_SQL = [
    "CREATE INDEX IF NOT EXISTS ledger_key ON ledger(release_key, kind)",
    "CREATE INDEX IF NOT EXISTS ledger_who ON ledger(dataset, analyst, kind)",
    "CREATE INDEX IF NOT EXISTS ledger_kind ON ledger(dataset, kind)",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger "
    "BEGIN SELECT RAISE(ABORT, 'the budget ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger "
    "BEGIN SELECT RAISE(ABORT, 'the budget ledger is append-only'); END",
]


def _missing_kinds(table_sql: str) -> list[str]:
    return [k for k in KINDS if f"'{k}'" not in table_sql]


class _Tx:
    """`BudgetLedger._tx`: BEGIN IMMEDIATE on entry; COMMIT (or leave open) on a normal exit, ROLLBACK
    on an error (a database error becomes LedgerError: nothing was spent)."""

    __slots__ = ("ledger", "synced", "defer_commit")

    def __init__(self, ledger: "BudgetLedger", synced: bool, defer_commit: bool):
        self.ledger, self.synced, self.defer_commit = ledger, synced, defer_commit

    def __enter__(self) -> None:
        db = self.ledger._db
        try:
            if not self.synced:
                db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if not self.synced:
                db.execute("PRAGMA synchronous=FULL")
            raise LedgerError(f"the budget ledger is busy or unavailable ({e}); nothing was spent") from None

    def __exit__(self, et, ev, tb) -> bool:
        if et is None:
            if not self.defer_commit:
                self.ledger._commit(self.synced)
            return False
        try:
            self.ledger._rollback(ev)
            return False
        finally:
            if not self.synced:
                self.ledger._db.execute("PRAGMA synchronous=FULL")


class BudgetLedger:
    """SQLite budget ledger. Open one per process/thread; the file is shared safely."""

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
        self._releases_cache: dict[str, tuple[int | None, list[dict[str, Any]]]] = {}
        self._legacy: dict[str, list[str]] = {}
        self._any_legacy: bool | None = None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._init()
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"cannot open the budget ledger at {path}: {e}") from None

    def _table_sql(self) -> str | None:
        r = self._db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='ledger'").fetchone()
        return r[0] if r else None

    def _init(self) -> None:
        sql = self._table_sql()
        if sql is not None and not _missing_kinds(sql):
            return
        with self._tx():
            sql = self._table_sql()               # another process may have done it meanwhile
            if sql is None:
                self._db.execute(_TABLE_SQL)
            elif _missing_kinds(sql):
                self._migrate_v1()
            for s in _EXTRAS_SQL:
                self._db.execute(s)
            self._db.execute(f"PRAGMA user_version={FORMAT_VERSION}")

    def _migrate_v1(self) -> None:
        """Ledger files from before dataset budgets (or before a later row kind): same columns, a
        narrower CHECK on `kind`.
        Copy every row verbatim (seq, content, hashes) into the new table, keep AUTOINCREMENT's
        high-water mark (it detects deleted last rows), all in the caller's transaction."""
        top = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='ledger'").fetchone()
        self._db.execute("DROP TRIGGER IF EXISTS ledger_no_update")
        self._db.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
        self._db.execute("ALTER TABLE ledger RENAME TO ledger_v1")
        self._db.execute(_TABLE_SQL)
        cols = ", ".join(_COLS + ("prev_hash", "hash"))
        self._db.execute(f"INSERT INTO ledger ({cols}) SELECT {cols} FROM ledger_v1 ORDER BY seq")
        self._db.execute("DROP TABLE ledger_v1")
        if top is not None:
            self._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name='ledger'", (top[0],))
            if self._db.execute("SELECT changes()").fetchone()[0] == 0:
                self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('ledger', ?)", (top[0],))

    # ------------------------------------------------------------------ transactions & appends
    def _tx(self, synced: bool = True, defer_commit: bool = False) -> "_Tx":
        """A write transaction. `synced=False` commits without waiting for the disk (WAL,
        synchronous=NORMAL): the commit survives a crash of this process, not a power loss, until
        the next synced commit writes the log to disk (the WAL is one file, synced as a whole).
        `defer_commit`: a block that ends normally leaves the transaction open, for `_commit`
        (a block that raises still rolls back)."""
        return _Tx(self, synced, defer_commit)

    def _rollback(self, error: BaseException) -> None:
        """Roll back the open transaction after `error` (LedgerError if that was the database's)."""
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass
        if isinstance(error, sqlite3.DatabaseError):
            raise LedgerError(f"budget ledger error ({error}); nothing was spent") from None

    def _commit(self, synced: bool = True) -> None:
        """Commit the open transaction (rolled back if that fails: LedgerError)."""
        try:
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self._db.execute("ROLLBACK")
            raise LedgerError(f"could not write the budget ledger ({e}); nothing was spent") from None
        finally:
            if not synced:
                self._db.execute("PRAGMA synchronous=FULL")

    def _append(self, **row: Any) -> int:
        return self._insert_rows([row], *self._chain_head())[0]

    def _chain_head(self) -> tuple[str, int]:
        """Inside a write transaction: the last row's hash and the seq the next row gets."""
        last, top, high = self._db.execute(
            "SELECT (SELECT hash FROM ledger ORDER BY seq DESC LIMIT 1), COALESCE(MAX(seq), 0), "
            "(SELECT seq FROM sqlite_sequence WHERE name='ledger') FROM ledger").fetchone()
        nxt = top + 1
        if high is not None and high >= nxt:
            nxt = high + 1   # never reuse the number of a deleted row (verify() reports the gap)
        return (last if last is not None else GENESIS), nxt

    def _insert_rows(self, rows: list[dict[str, Any]], prev: str, nxt: int) -> list[int]:
        """Append rows in order after the chain head (`prev`, `nxt`) in one INSERT statement; their seqs."""
        values, seqs = [], []
        for row in rows:
            seq_row = {"ts": _now(), "release_key": None, "mechanism": None, "query": None, "payload": None,
                       "actor": None, "epsilon": 0.0, "delta": 0.0, **row, "seq": nxt}
            h = _row_hash(prev, seq_row)
            values.append([seq_row[c] for c in _COLS] + [prev, h])
            seqs.append(nxt)
            prev, nxt = h, nxt + 1
        self._db.executemany(
            "INSERT INTO ledger (seq, ts, kind, dataset, analyst, release_key, epsilon, delta, mechanism, query,"
            " payload, actor, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
        return seqs

    # ------------------------------------------------------------------------- dataset budgets
    def _dataset_row(self, dataset: str) -> dict[str, Any] | None:
        r = self._db.execute("SELECT epsilon, delta, payload, actor FROM ledger WHERE kind='dataset' AND dataset=? "
                             "ORDER BY seq DESC LIMIT 1", (dataset,)).fetchone()
        if r is None:
            return None
        p = json.loads(r[2]) if r[2] else {}
        return {"total": float(r[0]), "delta_total": float(r[1]), "accounting": p.get("accounting", "pure"),
                "default_allowance": p.get("default_allowance"), "note": p.get("note", ""), "actor": r[3] or ""}

    def _ensure_dataset(self, dataset: str, default_total: float | None,
                        default_delta: float | None) -> dict[str, Any] | None:
        """Inside a transaction: the dataset's budget row, recording the schema default once."""
        row = self._dataset_row(dataset)
        if row is None and default_total is not None:
            self._append_dataset(dataset, float(default_total),
                                 DEFAULT_DELTA_BUDGET if default_delta is None else float(default_delta),
                                 "pure", None, "schema-default", "")
            row = self._dataset_row(dataset)
        return row

    def _append_dataset(self, dataset, total, delta_total, accounting, default_allowance, actor, note) -> None:
        self._append(kind="dataset", dataset=dataset, analyst=DATASET_ACTOR, epsilon=total, delta=delta_total,
                     actor=actor, payload=json.dumps({"accounting": accounting, "default_allowance": default_allowance,
                                                      "note": note}, sort_keys=True))

    def set_dataset_budget(self, dataset: str, total: float | None = None, delta: float | None = None,
                           accounting: str | None = None, default_allowance: float | None | str = "keep",
                           actor: str = "data owner", note: str = "", default_total: float | None = None,
                           default_delta: float | None = None) -> DatasetBudget:
        """Owner action: set the dataset's total (epsilon, delta), accounting mode and the allowance
        of analysts without one of their own (None = the whole dataset budget; "keep" = unchanged).
        Unset arguments keep their current value (or the schema default given). Audit row."""
        total = _finite(total, "the dataset budget", allow_none=True)
        delta = _finite(delta, "the dataset's delta budget", allow_none=True)
        if delta is not None and delta >= 1:
            raise ValueError(f"the dataset's delta budget must be below 1, got {delta!r}")
        if accounting is not None:
            accounting = str(accounting).strip().lower()
            if accounting not in ACCOUNTING:
                raise ValueError(f"accounting must be one of {', '.join(ACCOUNTING)}, got {accounting!r}")
        if default_allowance != "keep":
            default_allowance = _finite(default_allowance, "the default allowance", allow_none=True)
        with self._tx():
            cur = self._dataset_row(dataset) or {
                "total": default_total, "accounting": "pure", "default_allowance": None,
                "delta_total": DEFAULT_DELTA_BUDGET if default_delta is None else float(default_delta)}
            total = cur["total"] if total is None else total
            if total is None:
                raise ValueError(f"dataset '{dataset}' has no budget yet: give its total epsilon")
            delta = cur["delta_total"] if delta is None else delta
            accounting = cur["accounting"] if accounting is None else accounting
            allow = cur["default_allowance"] if default_allowance == "keep" else default_allowance
            if accounting == "zcdp" and delta <= 0:
                raise ValueError("zCDP accounting states the total as (epsilon, delta): give the dataset a "
                                 "delta budget above 0 (e.g. --delta 1e-6)")
            self._append_dataset(dataset, float(total), float(delta), accounting, allow, actor, note)
        return self.dataset_state(dataset)

    def _sums(self, dataset: str, analyst: str | None = None, need_rho: bool = True) -> tuple[float, float, float, int]:
        """(epsilon, delta, rho, releases) reserved on the dataset (by one analyst if given), summed
        by SQLite. rho (zCDP accounting only) of rows written before rho was recorded is converted by OpenDP."""
        where = "WHERE kind='reserve' AND dataset=?" + (" AND analyst=?" if analyst is not None else "")
        args = [dataset] + ([analyst] if analyst is not None else [])
        n, eps, dlt, rho = self._db.execute(
            "SELECT COUNT(*), TOTAL(epsilon), TOTAL(delta), TOTAL(json_extract(payload, '$.rho')) FROM ledger "
            + where, args).fetchone()
        if need_rho:
            for e, d in self._db.execute(f"SELECT epsilon, delta FROM ledger {where} "
                                         "AND json_extract(payload, '$.rho') IS NULL ORDER BY seq", args):
                rho += _legacy_rho(e, d)
        else:
            rho = 0.0
        return eps, dlt, rho, n

    def _sums_and_allowance(self, dataset: str, analyst: str, need_rho: bool):
        """(the dataset's `_sums`, the analyst's `_sums`, the analyst's `_allowance`) in one statement."""
        n, eps, dlt, rho, legacy, mn, meps, mdlt, mrho, own = self._db.execute(
            "SELECT COUNT(*), TOTAL(epsilon), TOTAL(delta), TOTAL(json_extract(payload, '$.rho')), "
            "TOTAL(json_extract(payload, '$.rho') IS NULL), TOTAL(analyst=?1), "
            "TOTAL(CASE WHEN analyst=?1 THEN epsilon END), TOTAL(CASE WHEN analyst=?1 THEN delta END), "
            "TOTAL(CASE WHEN analyst=?1 THEN json_extract(payload, '$.rho') END), "
            "(SELECT epsilon FROM ledger WHERE kind='budget' AND dataset=?2 AND analyst=?1 ORDER BY seq DESC LIMIT 1) "
            "FROM ledger WHERE kind='reserve' AND dataset=?2", (analyst, dataset)).fetchone()
        own = None if own is None else float(own)
        if need_rho and legacy:          # rows written before rho was recorded: converted by OpenDP
            return self._sums(dataset), self._sums(dataset, analyst), own
        if not need_rho:
            rho = mrho = 0.0
        return (eps, dlt, rho, n), (meps, mdlt, mrho, int(mn)), own

    def dataset_state(self, dataset: str, default_total: float | None = None,
                      default_delta: float | None = None) -> DatasetBudget:
        row = self._dataset_row(dataset) or {
            "total": float(default_total or 0.0), "accounting": "pure", "default_allowance": None, "note": "",
            "delta_total": DEFAULT_DELTA_BUDGET if default_delta is None else float(default_delta), "actor": ""}
        eps, dlt, rho, n = self._sums(dataset, need_rho=row["accounting"] == "zcdp")
        return self._dataset_budget(dataset, row, eps, dlt, rho, n)

    @staticmethod
    def _dataset_budget(dataset, row, eps, dlt, rho, n) -> DatasetBudget:
        if row["accounting"] == "zcdp":
            spent = _rho_to_eps(rho, row["delta_total"])
            dlt = row["delta_total"] if n else 0.0
        else:
            spent = eps
        return DatasetBudget(dataset, row["accounting"], row["total"], row["delta_total"], row["default_allowance"],
                             spent, dlt, rho, n, row.get("actor", ""), row.get("note", ""))

    # ---------------------------------------------------------------------------- allowances
    def _allowance(self, dataset: str, analyst: str) -> float | None:
        r = self._db.execute("SELECT epsilon FROM ledger WHERE kind='budget' AND dataset=? AND analyst=? "
                             "ORDER BY seq DESC LIMIT 1", (dataset, analyst)).fetchone()
        return None if r is None else float(r[0])

    def set_allowance(self, dataset: str, analyst: str, allowance: float, actor: str = "data owner",
                      note: str = "") -> BudgetState:
        """Owner action: how much of the dataset budget `analyst` may spend. Audit row."""
        allowance = _finite(allowance, "the allowance")
        if not str(analyst).strip() or analyst == DATASET_ACTOR:
            raise ValueError(f"name the analyst whose allowance you set, got {analyst!r}")
        with self._tx():
            self._append(kind="budget", dataset=dataset, analyst=analyst, epsilon=allowance, actor=actor,
                         payload=json.dumps({"note": note}) if note else None)
        return self.state(dataset, analyst)

    set_budget = set_allowance   # the name older callers used for per-analyst budgets

    def ensure_budget(self, dataset: str, analyst: str, default_total: float,
                      default_delta: float | None = None) -> BudgetState:
        """The analyst's state, recording the dataset's schema default budget the first time."""
        if self._dataset_row(dataset) is None:
            with self._tx():
                self._ensure_dataset(dataset, default_total, default_delta)
        return self.state(dataset, analyst)

    def state(self, dataset: str, analyst: str, default_total: float | None = None,
              default_delta: float | None = None) -> BudgetState:
        data = self.dataset_state(dataset, default_total, default_delta)
        return self._analyst_state(data, analyst)

    def _analyst_state(self, data: DatasetBudget, analyst: str) -> BudgetState:
        own = self._allowance(data.dataset, analyst)
        sums = self._sums(data.dataset, analyst, need_rho=data.accounting == "zcdp")
        return self._analyst_budget(data, analyst, own, sums)

    @staticmethod
    def _analyst_budget(data: DatasetBudget, analyst: str, own: float | None, sums) -> BudgetState:
        """The analyst's state from their allowance row (`own`, None: the dataset's default) and the
        (epsilon, delta, rho, releases) sums of their reservations."""
        eps, dlt, rho, _ = sums
        allowance = own if own is not None else (
            data.default_allowance if data.default_allowance is not None else data.total)
        spent = _rho_to_eps(rho, data.delta_total) if data.accounting == "zcdp" else eps
        return BudgetState(data.dataset, analyst, float(allowance), spent, dlt, data, own is not None)

    def analysts(self, dataset: str) -> list[BudgetState]:
        """Every analyst seen on the dataset (owner view)."""
        data = self.dataset_state(dataset)
        names = [r[0] for r in self._db.execute(
            "SELECT DISTINCT analyst FROM ledger WHERE dataset=? AND analyst<>? ORDER BY analyst",
            (dataset, DATASET_ACTOR))]
        return [self._analyst_state(data, a) for a in names]

    def legacy_analysts(self, dataset: str) -> list[str]:
        """Analysts with releases stored under the per-analyst keys of older ledgers. Read once per
        dataset and kept: this code writes every reservation with a payload, so the list cannot grow
        (and a file with no such reservation at all, read once, has none for any dataset)."""
        if self._any_legacy is None:
            self._any_legacy = self._db.execute(
                "SELECT 1 FROM ledger WHERE kind='reserve' AND payload IS NULL LIMIT 1").fetchone() is not None
        if not self._any_legacy:
            return []
        if dataset not in self._legacy:
            self._legacy[dataset] = [r[0] for r in self._db.execute(
                "SELECT DISTINCT analyst FROM ledger WHERE kind='reserve' AND dataset=? AND payload IS NULL",
                (dataset,))]
        return list(self._legacy[dataset])

    def datasets(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT dataset FROM ledger ORDER BY dataset")]

    # -------------------------------------------------------------------------------- releases
    def stored_result(self, release_key: str) -> dict | None:
        r = self._db.execute("SELECT payload FROM ledger WHERE kind='result' AND release_key=? "
                             "ORDER BY seq LIMIT 1", (release_key,)).fetchone()
        return json.loads(r[0]) if r else None

    def _check(self, data: DatasetBudget, who: BudgetState, own_rho: float, epsilon: float, delta: float,
               rho: float) -> None:
        """Raise BudgetExceeded unless the release fits the dataset, delta and allowance budgets
        (`who`: the analyst's state, `own_rho`: what they spent as rho, used under zCDP).
        Under zCDP the cost named in a refusal is the release's marginal epsilon (how much the
        dataset's total epsilon at its delta would grow), since rhos, not epsilons, add up."""
        analyst = who.analyst
        if data.accounting == "zcdp":
            marginal = _rho_to_eps(data.rho_spent + rho, data.delta_total) - data.spent
            if data.rho_spent + rho > _eps_to_rho(data.total, data.delta_total) * (1 + 1e-9) + TOL:
                raise BudgetExceeded("dataset", marginal, data.remaining, data.total, data.dataset, analyst, "zcdp")
            if own_rho + rho > _eps_to_rho(who.total, data.delta_total) * (1 + 1e-9) + TOL:
                marginal = _rho_to_eps(own_rho + rho, data.delta_total) - who.spent
                raise BudgetExceeded("allowance", marginal, who.total - who.spent, who.total, data.dataset,
                                     analyst, "zcdp")
            return
        if delta > 0 and data.delta_spent + delta > data.delta_total * (1 + 1e-9):
            raise BudgetExceeded("delta", delta, data.delta_remaining, data.delta_total, data.dataset, analyst)
        if data.spent + epsilon > data.total + TOL:
            raise BudgetExceeded("dataset", epsilon, data.remaining, data.total, data.dataset, analyst)
        if who.spent + epsilon > who.total + TOL:
            raise BudgetExceeded("allowance", epsilon, who.total - who.spent, who.total, data.dataset, analyst)

    def marginal_epsilon(self, dataset: str, epsilon: float, rho: float) -> float:
        """How much a new release would add to the dataset's spent epsilon: its epsilon under pure
        accounting; under zCDP the growth of the total epsilon at the dataset's delta."""
        data = self.dataset_state(dataset)
        if data.accounting != "zcdp":
            return float(epsilon)
        return _rho_to_eps(data.rho_spent + float(rho), data.delta_total) - data.spent

    def questions_left(self, dataset: str, analyst: str, epsilon: float, rho: float,
                       default_total: float | None = None) -> int:
        """How many more releases of this cost `analyst` could make now (allowance and dataset budget;
        under zCDP from the rho still available). For the 'questions left' hint."""
        who = self.state(dataset, analyst, default_total)
        data = who.data
        if data.accounting == "zcdp":
            if rho <= 0:
                return 0
            own_rho = self._sums(dataset, analyst)[2]
            room = min(_eps_to_rho(data.total, data.delta_total) - data.rho_spent,
                       _eps_to_rho(who.total, data.delta_total) - own_rho)
            return max(int(math.floor(room * (1 + 1e-9) / rho)), 0)
        if epsilon <= 0:
            return 0
        return max(int(math.floor((who.remaining + TOL) / epsilon)), 0)

    def refusal_for(self, dataset: str, analyst: str, epsilon: float, delta: float, rho: float | None = None,
                    default_total: float | None = None, default_delta: float | None = None) -> BudgetExceeded | None:
        """Would this release be refused now? (For disabling a button; `reserve` decides.)"""
        rho = _legacy_rho(epsilon, delta) if rho is None else float(rho)
        data = self.dataset_state(dataset, default_total, default_delta)
        _, mine, own = self._sums_and_allowance(dataset, analyst, need_rho=data.accounting == "zcdp")
        try:
            self._check(data, self._analyst_budget(data, analyst, own, mine), mine[2], epsilon, delta, rho)
        except BudgetExceeded as e:
            return e
        return None

    def reserve(self, *, dataset: str, analyst: str, release_key: str, epsilon: float, delta: float,
                mechanism: str, query: str, rho: float | None = None, default_total: float | None = None,
                default_delta: float | None = None, legacy_keys: tuple[str, ...] = ()) -> Reservation | dict:
        """Charge a release before it runs, or return the stored result of an identical one. For
        measurements that take long (OpenDP's row-level path); `charge` is the one-commit form.

        Returns the stored payload (dict) for a repeat (by anyone; `legacy_keys` are the keys an
        older ledger used for the same release), else a Reservation. Raises BudgetExceeded
        (nothing charged; a 'refusal' audit row is recorded) when the release does not fit.

        Durability: a new reservation is committed without waiting for the disk (it is visible to
        every session at once and survives a crash of this process), and becomes durable against a
        power loss with the synced commit of its result or failure (`store_result`,
        `record_failure`), which the caller makes before anything is shown. A power loss before
        that loses a reservation whose result nobody saw. A stored answer is served in a synced
        commit (its 'served' audit row is kept).
        """
        ask = _Ask.of(dataset, analyst, release_key, epsilon, delta, mechanism, query, rho, default_total,
                      default_delta, legacy_keys)
        repeat = any(self.stored_result(k) is not None for k in (release_key, *legacy_keys))
        got = self._charge_in_tx(ask, synced=repeat)
        if isinstance(got, dict):
            return got
        self._commit(synced=repeat)
        return got[0]

    def charge(self, *, dataset: str, analyst: str, release_key: str, epsilon: float, delta: float,
               mechanism: str, query: str, compute, rho: float | None = None, default_total: float | None = None,
               default_delta: float | None = None, legacy_keys: tuple[str, ...] = ()) -> Charged | dict:
        """Charge a release and store its result in ONE transaction, or return the stored result of
        an identical one (dict, as `reserve`).

        Inside the transaction that appends the 'reserve' row (after the same budget checks as
        `reserve`), `compute(reservation)` runs the measurement and returns `(payload, parts)` (as
        `store_result`); its 'result' rows are appended and the whole is committed, synced to disk,
        before `charge` returns: nothing is shown before its charge is on disk, and every release
        shown is stored with it. The write lock is held while `compute` runs, so it is for noise
        over aggregates (under a millisecond); a measurement that takes seconds (OpenDP's row-level
        path, a synthetic cohort) goes through `reserve` and `store_result`. If `compute` raises, the reservation and a
        'failure' row are committed (the charge stands: the measurement has read the data) and
        FailedAfterCharge is raised. If the process dies or the commit fails before that, the
        transaction is rolled back: nothing was shown, nothing is charged (LedgerError; the noise
        drawn is never seen). Raises BudgetExceeded as `reserve`.
        Returns Charged: the payload and the analyst's state after the charge, without re-reading it.
        """
        ask = _Ask.of(dataset, analyst, release_key, epsilon, delta, mechanism, query, rho, default_total,
                      default_delta, legacy_keys)
        got = self._charge_in_tx(ask, append=False)
        if isinstance(got, dict):
            return got
        (reserve_row, after), failed = got, None
        try:
            prev, seq = self._chain_head()
            reservation = Reservation(seq, ask.release_key, ask.epsilon, ask.delta)
            try:
                payload, parts = compute(reservation)
            except Exception as e:   # the charge stays: the measurement may have seen the data
                failed, cause = FailedAfterCharge(f"{type(e).__name__}: {e}"), e
                rows = [self._failure_row(reservation, dataset, analyst, failed.detail)]
            else:
                rows = self._result_rows(reservation, dataset, analyst, payload, parts)
            self._insert_rows([reserve_row, *rows], prev, seq)
        except BaseException as e:
            self._rollback(e)
            raise
        self._commit()
        if failed is not None:
            raise failed from cause
        return Charged(payload, after)

    def _charge_in_tx(self, ask: _Ask, append: bool = True, synced: bool = True) -> dict | tuple:
        """The stored result of an identical release (committed, with its 'served' row), or the
        checked reservation in a write transaction left open for the caller's `_commit(synced)`:
        the appended Reservation (`append`) or the 'reserve' row to append, with the analyst's
        state once it is committed. Waits while an identical release is in flight in another session."""
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while True:
            with self._refusals_recorded(ask), self._tx(synced=synced, defer_commit=True):
                got = self._reserve_in_tx(ask, deadline)
                if got is not None and not isinstance(got, dict):
                    if not append:
                        return got
                    reserve_row, after = got
                    return Reservation(self._append(**reserve_row), ask.release_key, ask.epsilon, ask.delta), after
            self._commit(synced)
            if got is not None:
                return got
            time.sleep(0.05)  # an identical release is running in another session: wait for its result

    def _reserve_in_tx(self, ask: _Ask, deadline: float) -> dict | tuple[dict, BudgetState] | None:
        """Inside a write transaction: the stored result of an identical release (dict, with its
        'served' row appended), or the checked reservation as (the 'reserve' row to append, the
        analyst's state once it is), or None while an identical release is in flight in another
        session (before `deadline`)."""
        dataset, analyst, release_key, epsilon, delta, rho, mechanism, query, default_total, default_delta, \
            legacy_keys = ask
        row = self._ensure_dataset(dataset, default_total, default_delta)
        for k in (release_key, *legacy_keys):
            stored = self.stored_result(k)
            if stored is not None:
                self._note_served(dataset, analyst, k)
                return stored
        if self._inflight(release_key) and time.monotonic() <= deadline:
            return None
        if row is None:
            raise BudgetExceeded("dataset", epsilon, 0.0, 0.0, dataset, analyst)
        zcdp = row["accounting"] == "zcdp"
        total, mine, own = self._sums_and_allowance(dataset, analyst, need_rho=zcdp)
        data = self._dataset_budget(dataset, row, *total)
        self._check(data, self._analyst_budget(data, analyst, own, mine), mine[2], epsilon, delta, rho)
        plus = (epsilon, delta, rho if zcdp else 0.0)          # the sums with this reservation in them
        data_after = self._dataset_budget(dataset, row, *(a + b for a, b in zip(total, plus)), total[3] + 1)
        who_after = self._analyst_budget(data_after, analyst, own, tuple(a + b for a, b in zip(mine, plus)) + (0,))
        return dict(kind="reserve", dataset=dataset, analyst=analyst, release_key=release_key, epsilon=epsilon,
                    delta=delta, mechanism=mechanism, query=query, payload=json.dumps({"rho": rho})), who_after

    @contextlib.contextmanager
    def _refusals_recorded(self, ask: _Ask):
        """A BudgetExceeded raised inside (whose transaction rolled back) leaves a 'refusal' audit row."""
        try:
            yield
        except BudgetExceeded as e:
            self._record_refusal(e, ask.release_key, ask.epsilon, ask.delta, ask.mechanism, ask.query)
            raise

    def _inflight(self, release_key: str) -> bool:
        r = self._db.execute(
            "SELECT r.ts FROM ledger r WHERE r.kind='reserve' AND r.release_key=? AND NOT EXISTS "
            "(SELECT 1 FROM ledger f WHERE f.kind IN ('result','failure') AND f.release_key=r.release_key "
            " AND f.seq > r.seq) ORDER BY r.seq DESC LIMIT 1", (release_key,)).fetchone()
        return r is not None and (
            dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(r[0])).total_seconds() < IN_FLIGHT_WAIT_S

    def _note_served(self, dataset: str, analyst: str, release_key: str) -> None:
        """Audit: the first time an analyst is served a stored release they did not pay for."""
        seen = self._db.execute("SELECT 1 FROM ledger WHERE release_key=? AND analyst=? AND kind IN "
                                "('reserve','served') LIMIT 1", (release_key, analyst)).fetchone()
        if seen is None:
            self._append(kind="served", dataset=dataset, analyst=analyst, release_key=release_key)

    def record_derived(self, dataset: str, analyst: str, source_key: str, query: str, how: str) -> None:
        """Audit (cost 0): an answer shown to `analyst` by post-processing the stored release `source_key`."""
        with self._tx():
            self._append(kind="derived", dataset=dataset, analyst=analyst, release_key=source_key, query=query,
                         payload=json.dumps({"how": how}))

    def _record_refusal(self, e: BudgetExceeded, release_key, epsilon, delta, mechanism, query) -> None:
        try:
            with self._tx():
                self._append(kind="refusal", dataset=e.dataset, analyst=e.analyst, release_key=release_key,
                             mechanism=mechanism, query=query,
                             payload=json.dumps({"which": e.which, "epsilon": epsilon, "delta": delta,
                                                 "remaining": e.remaining, "message": str(e)}, sort_keys=True))
        except LedgerError:
            pass   # the refusal stands; only its audit row could not be written

    def store_result(self, reservation: Reservation, dataset: str, analyst: str, payload: dict,
                     parts: dict[str, dict] | None = None) -> None:
        """Append the result of a reservation; `parts` (key -> payload) are the statistics of a
        report, stored under their own keys in the same transaction (so each is also served alone)."""
        with self._tx():
            self._insert_rows(self._result_rows(reservation, dataset, analyst, payload, parts), *self._chain_head())

    @staticmethod
    def _result_rows(reservation: Reservation, dataset: str, analyst: str, payload: dict,
                     parts: dict[str, dict] | None) -> list[dict[str, Any]]:
        return [dict(kind="result", dataset=dataset, analyst=analyst, release_key=key, actor=str(reservation.seq),
                     payload=json.dumps(p, sort_keys=True, default=str))
                for key, p in [*(parts or {}).items(), (reservation.release_key, payload)]]

    def record_failure(self, reservation: Reservation, dataset: str, analyst: str, message: str) -> None:
        """The invocation failed after the charge: the charge stays; the failure is recorded."""
        with self._tx():
            self._append(**self._failure_row(reservation, dataset, analyst, message))

    @staticmethod
    def _failure_row(reservation: Reservation, dataset: str, analyst: str, message: str) -> dict[str, Any]:
        return dict(kind="failure", dataset=dataset, analyst=analyst, release_key=reservation.release_key,
                    payload=json.dumps({"error": message}), actor=str(reservation.seq))

    # ---------------------------------------------------------------------------------- reading
    def entries(self, dataset: str | None = None, analyst: str | None = None,
                kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        sql = "SELECT " + ", ".join(_COLS) + ", prev_hash, hash FROM ledger"
        cond, args = [], []
        if dataset:
            cond.append("dataset=?"); args.append(dataset)
        if analyst:
            cond.append("analyst=?"); args.append(analyst)
        if kinds:
            cond.append(f"kind IN ({','.join('?' * len(kinds))})"); args.extend(kinds)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY seq"
        names = list(_COLS) + ["prev_hash", "hash"]
        return [dict(zip(names, r)) for r in self._db.execute(sql, args)]

    def releases(self, dataset: str) -> list[dict[str, Any]]:
        """Stored releases on the dataset, oldest first, without who asked for them: every analyst
        of the dataset may see them (they are differentially private already)."""
        top = self._db.execute("SELECT MAX(seq) FROM ledger WHERE kind='result' AND dataset=?", (dataset,)).fetchone()[0]
        cached = self._releases_cache.get(dataset)
        if cached is not None and cached[0] == top:    # rows are append-only: same last result, same list
            return [dict(r) for r in cached[1]]
        out = []
        for ts, key, payload in self._db.execute(
                "SELECT ts, release_key, payload FROM ledger WHERE kind='result' AND dataset=? ORDER BY seq",
                (dataset,)):
            p = json.loads(payload)
            if "report" in p:      # a report's own row: its statistics are listed as their own rows
                continue
            p.pop("analyst", None)
            out.append({"ts": ts, "release_key": key, "release": p})
        self._releases_cache[dataset] = (top, out)
        return [dict(r) for r in out]

    def budgets(self) -> list[BudgetState]:
        return [s for d in self.datasets() for s in self.analysts(d)]

    def row_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])

    def verify(self) -> list[str]:
        """Problems in the hash chain (edited, deleted, inserted or reordered rows); [] if intact."""
        problems = []
        prev = GENESIS
        expected_seq = 1
        names = list(_COLS) + ["prev_hash", "hash"]
        for r in self._db.execute("SELECT " + ", ".join(names) + " FROM ledger ORDER BY seq"):
            row = dict(zip(names, r))
            if row["seq"] != expected_seq:
                problems.append(f"row {expected_seq}: missing (next row is {row['seq']}): rows deleted or renumbered")
            if row["prev_hash"] != prev:
                problems.append(f"row {row['seq']}: does not follow the previous row (deleted or reordered rows)")
            if _row_hash(row["prev_hash"], row) != row["hash"]:
                problems.append(f"row {row['seq']}: content does not match its hash (edited)")
            if row["kind"] not in KINDS:
                problems.append(f"row {row['seq']}: unknown kind {row['kind']!r}")
            prev = row["hash"]
            expected_seq = row["seq"] + 1
        # Deleting the LAST rows leaves an intact chain; AUTOINCREMENT's high-water mark remembers them.
        top = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='ledger'").fetchone()
        if top is not None and top[0] >= expected_seq:
            problems.append(f"rows {expected_seq} to {top[0]}: missing at the end (rows deleted)")
        return problems

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------- OpenDP conversions (lazy)
def _legacy_rho(epsilon: float, delta: float) -> float:
    """rho of a reserve row written without one (older ledgers). Pure-DP rows: OpenDP's
    pure -> zCDP conversion. Gaussian rows were calibrated as the largest rho within (epsilon,
    delta), so that rho (OpenDP's conversion, searched) bounds them; nudged up to stay conservative."""
    from privacy.accounting import epsilon_to_rho, pure_to_rho
    if delta <= 0:
        return pure_to_rho(float(epsilon))
    return epsilon_to_rho(float(epsilon), float(delta)) * (1 + 1e-6)


def _rho_to_eps(rho: float, delta: float) -> float:
    from privacy.accounting import rho_to_epsilon
    return rho_to_epsilon(float(rho), float(delta))


def _eps_to_rho(epsilon: float, delta: float) -> float:
    from privacy.accounting import epsilon_to_rho
    return epsilon_to_rho(float(epsilon), float(delta))
