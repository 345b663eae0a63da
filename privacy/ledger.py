"""Persistent, append-only, tamper-evident privacy budget ledger (SQLite).

Facts:
- One budget per (dataset, analyst). The data owner sets or raises it ('budget' rows). If never
  set, the schema's default budget is recorded as a 'budget' row by actor 'schema-default'.
- A release is charged BEFORE it is invoked: in one `BEGIN IMMEDIATE` transaction the ledger
  checks spent + cost <= total and appends a 'reserve' row. The released values are appended
  afterwards as a 'result' row. A failed or interrupted invocation stays charged.
- An identical release (same key: dataset, analyst, query, epsilon, mechanism, delta) returns the
  stored result at no cost, never fresh noise.
- Rows are never updated or deleted (SQLite triggers refuse it); each row carries the SHA-256 of
  the previous row's hash and its own content, so `verify()` finds edited, deleted or reordered
  rows. WAL mode; safe for many processes on one local disk.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

GENESIS = "0" * 64
IN_FLIGHT_WAIT_S = 30.0
_COLS = ("seq", "ts", "kind", "dataset", "analyst", "release_key", "epsilon", "delta", "mechanism",
         "query", "payload", "actor")


class LedgerError(RuntimeError):
    """The ledger file cannot be used (locked beyond the timeout, disk full, corrupt)."""


class BudgetExceeded(LedgerError):
    """A release would overspend; nothing was charged or invoked."""

    def __init__(self, cost: float, remaining: float, total: float, dataset: str, analyst: str):
        self.cost, self.remaining, self.total = cost, remaining, total
        super().__init__(
            f"refused: this release costs epsilon {cost:.4g} but only {max(remaining, 0):.4g} of "
            f"{total:.4g} remains for analyst '{analyst}' on '{dataset}'. Nothing was spent.")


@dataclass(frozen=True)
class Reservation:
    seq: int
    release_key: str
    epsilon: float
    delta: float


@dataclass(frozen=True)
class BudgetState:
    dataset: str
    analyst: str
    total: float
    spent: float
    delta_spent: float

    @property
    def remaining(self) -> float:
        return max(self.total - self.spent, 0.0)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _row_hash(prev: str, row: dict[str, Any]) -> str:
    body = json.dumps([prev] + [row.get(c) for c in _COLS], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class BudgetLedger:
    """SQLite budget ledger. Open one per process/thread; the file is shared safely."""

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
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

    def _init(self) -> None:
        if True:  # executescript manages its own transaction
            self._db.executescript("""
            CREATE TABLE IF NOT EXISTS ledger (
              seq INTEGER PRIMARY KEY AUTOINCREMENT,
              ts TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('budget','reserve','result','failure')),
              dataset TEXT NOT NULL, analyst TEXT NOT NULL, release_key TEXT,
              epsilon REAL NOT NULL DEFAULT 0, delta REAL NOT NULL DEFAULT 0, mechanism TEXT,
              query TEXT, payload TEXT, actor TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS ledger_key ON ledger(release_key, kind);
            CREATE INDEX IF NOT EXISTS ledger_who ON ledger(dataset, analyst, kind);
            CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
              BEGIN SELECT RAISE(ABORT, 'the budget ledger is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
              BEGIN SELECT RAISE(ABORT, 'the budget ledger is append-only'); END;
            """)

    # ------------------------------------------------------------------ transactions & appends
    def _tx(self):
        db = self

        class _Tx:
            def __enter__(self_inner):
                try:
                    db._db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    raise LedgerError(f"the budget ledger is busy or unavailable ({e}); nothing was spent") from None

            def __exit__(self_inner, et, ev, tb):
                if et is None:
                    try:
                        db._db.execute("COMMIT")
                    except sqlite3.DatabaseError as e:
                        db._db.execute("ROLLBACK")
                        raise LedgerError(f"could not write the budget ledger ({e}); nothing was spent") from None
                else:
                    try:
                        db._db.execute("ROLLBACK")
                    except sqlite3.DatabaseError:
                        pass
                    if isinstance(ev, sqlite3.DatabaseError):
                        raise LedgerError(f"budget ledger error ({ev}); nothing was spent") from None
                return False

        return _Tx()

    def _append(self, **row: Any) -> int:
        row.setdefault("ts", _now())
        last = self._db.execute("SELECT hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        prev = last[0] if last else GENESIS
        nxt = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger").fetchone()[0]
        seq_row = dict(row, seq=nxt)
        for c in ("release_key", "mechanism", "query", "payload", "actor"):
            seq_row.setdefault(c, None)
        seq_row.setdefault("epsilon", 0.0)
        seq_row.setdefault("delta", 0.0)
        h = _row_hash(prev, seq_row)
        self._db.execute(
            "INSERT INTO ledger (seq, ts, kind, dataset, analyst, release_key, epsilon, delta, mechanism, query,"
            " payload, actor, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [seq_row[c] for c in _COLS] + [prev, h])
        return nxt

    # --------------------------------------------------------------------------------- budgets
    def _total(self, dataset: str, analyst: str) -> float | None:
        r = self._db.execute("SELECT epsilon FROM ledger WHERE kind='budget' AND dataset=? AND analyst=? "
                             "ORDER BY seq DESC LIMIT 1", (dataset, analyst)).fetchone()
        return None if r is None else float(r[0])

    def _spent(self, dataset: str, analyst: str) -> tuple[float, float]:
        r = self._db.execute("SELECT COALESCE(SUM(epsilon),0), COALESCE(SUM(delta),0) FROM ledger "
                             "WHERE kind='reserve' AND dataset=? AND analyst=?", (dataset, analyst)).fetchone()
        return float(r[0]), float(r[1])

    def set_budget(self, dataset: str, analyst: str, total: float, actor: str = "data owner",
                   note: str = "") -> BudgetState:
        """Owner action: set (or raise/lower) the total budget. Recorded as an audit row."""
        try:
            total = float(total)
        except (TypeError, ValueError):
            raise ValueError(f"budget must be a number, got {total!r}") from None
        if not math.isfinite(total) or total < 0:
            raise ValueError(f"budget must be a finite number >= 0, got {total!r}")
        with self._tx():
            self._append(kind="budget", dataset=dataset, analyst=analyst, epsilon=total, actor=actor,
                         payload=json.dumps({"note": note}) if note else None)
        return self.state(dataset, analyst)

    def ensure_budget(self, dataset: str, analyst: str, default_total: float) -> BudgetState:
        """Record the schema's default budget the first time a (dataset, analyst) is seen."""
        if self._total(dataset, analyst) is None:
            with self._tx():
                if self._total(dataset, analyst) is None:
                    self._append(kind="budget", dataset=dataset, analyst=analyst, epsilon=float(default_total),
                                 actor="schema-default")
        return self.state(dataset, analyst)

    def state(self, dataset: str, analyst: str) -> BudgetState:
        total = self._total(dataset, analyst)
        spent, dspent = self._spent(dataset, analyst)
        return BudgetState(dataset, analyst, total if total is not None else 0.0, spent, dspent)

    # -------------------------------------------------------------------------------- releases
    def stored_result(self, release_key: str) -> dict | None:
        r = self._db.execute("SELECT payload FROM ledger WHERE kind='result' AND release_key=? "
                             "ORDER BY seq LIMIT 1", (release_key,)).fetchone()
        return json.loads(r[0]) if r else None

    def reserve(self, *, dataset: str, analyst: str, release_key: str, epsilon: float, delta: float,
                mechanism: str, query: str, default_total: float | None = None) -> Reservation | dict:
        """Charge a release before it runs, or return the stored result of an identical one.

        Returns the stored payload (dict) for a cached repeat, else a Reservation. Raises
        BudgetExceeded (nothing charged) when spent + epsilon would pass the total.
        """
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while True:
            with self._tx():
                stored = self.stored_result(release_key)
                if stored is not None:
                    return stored
                inflight = self._db.execute(
                    "SELECT r.seq, r.ts FROM ledger r WHERE r.kind='reserve' AND r.release_key=? AND NOT EXISTS "
                    "(SELECT 1 FROM ledger f WHERE f.kind IN ('result','failure') AND f.release_key=r.release_key "
                    " AND f.seq > r.seq) ORDER BY r.seq DESC LIMIT 1", (release_key,)).fetchone()
                fresh_inflight = inflight is not None and (
                    dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(inflight[1])).total_seconds() < IN_FLIGHT_WAIT_S
                if not fresh_inflight or time.monotonic() > deadline:
                    total = self._total(dataset, analyst)
                    if total is None:
                        if default_total is None:
                            raise BudgetExceeded(epsilon, 0.0, 0.0, dataset, analyst)
                        self._append(kind="budget", dataset=dataset, analyst=analyst,
                                     epsilon=float(default_total), actor="schema-default")
                        total = float(default_total)
                    spent, _ = self._spent(dataset, analyst)
                    if spent + epsilon > total + 1e-12:
                        raise BudgetExceeded(epsilon, total - spent, total, dataset, analyst)
                    seq = self._append(kind="reserve", dataset=dataset, analyst=analyst, release_key=release_key,
                                       epsilon=float(epsilon), delta=float(delta), mechanism=mechanism, query=query)
                    return Reservation(seq, release_key, float(epsilon), float(delta))
            time.sleep(0.05)  # an identical release is running in another session: wait for its result

    def store_result(self, reservation: Reservation, dataset: str, analyst: str, payload: dict) -> None:
        with self._tx():
            self._append(kind="result", dataset=dataset, analyst=analyst, release_key=reservation.release_key,
                         payload=json.dumps(payload, sort_keys=True, default=str), actor=str(reservation.seq))

    def record_failure(self, reservation: Reservation, dataset: str, analyst: str, message: str) -> None:
        """The invocation failed after the charge: the charge stays; the failure is recorded."""
        with self._tx():
            self._append(kind="failure", dataset=dataset, analyst=analyst, release_key=reservation.release_key,
                         payload=json.dumps({"error": message}), actor=str(reservation.seq))

    # ---------------------------------------------------------------------------------- reading
    def entries(self, dataset: str | None = None, analyst: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT " + ", ".join(_COLS) + ", prev_hash, hash FROM ledger"
        cond, args = [], []
        if dataset:
            cond.append("dataset=?"); args.append(dataset)
        if analyst:
            cond.append("analyst=?"); args.append(analyst)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY seq"
        names = list(_COLS) + ["prev_hash", "hash"]
        return [dict(zip(names, r)) for r in self._db.execute(sql, args)]

    def budgets(self) -> list[BudgetState]:
        pairs = self._db.execute("SELECT DISTINCT dataset, analyst FROM ledger ORDER BY dataset, analyst").fetchall()
        return [self.state(d, a) for d, a in pairs]

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
            prev = row["hash"]
            expected_seq = row["seq"] + 1
        # Deleting the LAST rows leaves an intact chain; AUTOINCREMENT's high-water mark remembers them.
        top = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='ledger'").fetchone()
        if top is not None and top[0] >= expected_seq:
            problems.append(f"rows {expected_seq} to {top[0]}: missing at the end (rows deleted)")
        return problems

    def close(self) -> None:
        self._db.close()
