"""Command line: `python -m privacy release|preview|simulate|ledger ...`.

    release   one DP release, charged to the persistent ledger before it runs
    preview   cost and expected 95% error of a query (touches no data, spends nothing)
    simulate  data owner only: many draws on the true data, spends nothing
    budget    data owner only: a dataset's total budget, accounting, analysts' allowances
    ledger    data owner only: list entries and every analyst's budget; verify the hash chain

Owner actions need the ledger file's owner permissions: the file should be readable and writable
by the data owner's account only; analysts release through the app or a wrapper run as that account.

Exit status: 0 success; 2 bad input or a refused budget (one line on stderr, nothing spent);
1 the ledger is damaged (`ledger --verify`) or unusable, or a release failed after its charge.
OpenDP and pandas are imported only by the subcommands that need them, and everything that can be
checked against the public schema (columns, categories, epsilon, bins) is checked before the
data are read. Set DP_DEBUG=1 to see tracebacks.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Sequence

DEFAULT_LEDGER = os.path.join("var", "ledger.sqlite")
DEFAULT_DELTA = 1e-7  # = privacy.calibrate.DEFAULT_DELTA (not imported: it pulls in OpenDP)
from privacy.statistics import names as _stat_names  # noqa: E402  (the registry: one list for CLI and UI)
MECHANISMS = ("laplace", "gaussian")


class UsageError(ValueError):
    """Bad command-line arguments (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message} (see {self.prog} --help)")


# -------------------------------------------------------------------------------------- helpers
def _default_analyst() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "analyst"


def _ledger_path(args) -> str:
    return args.ledger or os.environ.get("DP_LEDGER") or DEFAULT_LEDGER


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> null, tuples -> lists, numpy scalars -> Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "tolist"):  # numpy arrays and scalars
        return _clean(x.tolist())
    return str(x)


def _print_json(obj: Any) -> None:
    print(json.dumps(_clean(obj), indent=2, allow_nan=False))


def _num(v: Any) -> str:
    if v is None:
        return "n/a"
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    if abs(v) >= 1000 or v.is_integer():
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _eps(v: float) -> str:
    return f"{v:.4g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  " + "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header)] + [line(r) for r in rows])


def _float_arg(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise UsageError(f"{name} must be a finite number, got {text!r}")
    return v


# ------------------------------------------------------------------------------ data & queries
def _source(args) -> tuple[str, Any]:
    if args.cohort and (args.data or args.schema):
        raise UsageError("give either --cohort NAME or --data FILE --schema FILE, not both")
    if args.cohort:
        return "cohort", args.cohort
    if args.schema and not args.data and _has_storage(args.schema):
        if args.rows is not None or args.seed is not None:
            raise UsageError("--rows and --seed apply only to --cohort")
        return "storage", args.schema           # the schema's [storage] says where the rows live
    if args.data or args.schema:
        if not (args.data and args.schema):
            raise UsageError("--data FILE and --schema FILE go together (the schema is the data owner's "
                             "public TOML description of the table), or --schema FILE alone when the "
                             "schema has a [storage] table (Parquet files, a DuckDB file, PostgreSQL)")
        if args.rows is not None or args.seed is not None:
            raise UsageError("--rows and --seed apply only to --cohort")
        return "file", (args.data, args.schema)
    raise UsageError("say which data: --cohort NAME (for example prostate) or --data FILE --schema FILE")


def _has_storage(path: str) -> bool:
    """Whether the schema file declares where its rows live (a [storage] table of another kind than memory)."""
    from data.schema import load_schema
    return dict(load_schema(path).storage).get("kind", "memory") != "memory"


def _schema(args):
    """The public schema, without reading the private table when possible."""
    kind, src = _source(args)
    if kind in ("file", "storage"):
        from data.schema import load_schema
        return load_schema(src[1] if kind == "file" else src)
    import data.cohorts as cohorts
    if hasattr(cohorts, "cohort_schema"):
        return _variant(cohorts.cohort_schema(src), args)
    return _variant(cohorts.load_cohort(src, rows=args.rows, seed=args.seed)[1], args)


def _variant(schema, args):
    """A synthetic cohort generated with other --rows/--seed is another data set: it gets its own
    dataset id, so its releases are never served from (or charged to) the default cohort's."""
    if args.rows is None and args.seed is None:
        return schema
    import dataclasses
    tag = "".join(f"-{k}{v}" for k, v in (("rows", args.rows), ("seed", args.seed)) if v is not None)
    return dataclasses.replace(schema, dataset_id=schema.dataset_id + tag)


def _prepared(args, schema):
    """Read and encode the private table (after every public check has passed)."""
    from data.prepare import prepare
    kind, src = _source(args)
    if kind == "storage":       # aggregated where the rows live; database URLs from secrets (environment)
        from privacy.engine.sources import open_cohort
        return open_cohort(schema)
    if kind == "cohort":
        from data.cohorts import load_cohort
        frame, schema = load_cohort(src, rows=args.rows, seed=args.seed)
        schema = _variant(schema, args)
    else:
        from data.loaders import load_table
        frame = load_table(src[0], max_bytes=getattr(args, "max_file_mb", None))
    return prepare(frame, schema, keep_frame=False)


def _query(args, schema):
    """Build and validate the query, epsilon, mechanism and delta against the public schema."""
    from privacy.queries import make_query, validate_mechanism, validate_query

    stat = args.stat
    if stat not in _stat_names():
        raise UsageError(f"unknown statistic {stat!r}; choose one of {', '.join(_stat_names())}")
    if stat == "count" and args.column:
        raise UsageError("--stat count takes no --column (use --where COLUMN=VALUE to restrict)")
    if args.by and stat not in ("grouped-mean", "grouped-quantile", "crosstab", "survival"):
        raise UsageError(f"--by applies only to grouped-mean, grouped-quantile, crosstab and survival, not {stat}")
    if getattr(args, "endpoint", None) and stat != "survival":
        raise UsageError(f"--endpoint applies only to --stat survival, not {stat}")
    if args.q is not None and stat not in ("quantile", "grouped-quantile"):
        raise UsageError(f"--q applies only to --stat quantile and grouped-quantile, not {stat}")
    if (args.bins or args.date_unit) and stat != "histogram":
        raise UsageError(f"--bins and --date-unit apply only to --stat histogram, not {stat}")
    q = _float_arg(args.q, "--q")
    edges = None
    if args.bins:
        try:
            edges = [float(x) for x in args.bins.split(",")]
        except ValueError:
            raise UsageError(f"--bins must be comma-separated numbers like 0,10,20, got {args.bins!r}") from None
    query = make_query(stat, column=args.column, by=args.by, where=args.where, q=q, bin_edges=edges,
                       date_unit=args.date_unit, endpoint=getattr(args, "endpoint", None))
    validate_query(query, schema)
    return query, validate_mechanism(args.mechanism), _delta(args)


def _delta(args) -> float:
    """Delta for Gaussian releases (Laplace plans ignore it and cost delta 0)."""
    if args.delta is None:
        return DEFAULT_DELTA
    d = _float_arg(args.delta, "--delta")
    if args.mechanism != "gaussian":
        raise UsageError("--delta applies only to --mechanism gaussian (Laplace releases have delta 0)")
    if not 0.0 < d <= 1e-5:  # = privacy.release.MAX_DELTA
        raise UsageError(f"--delta must be above 0 and at most 1e-05, got {args.delta}")
    return d


def _epsilon(args) -> float:
    from privacy.queries import validate_epsilon
    if args.epsilon is None:
        raise UsageError("--epsilon is required")
    return validate_epsilon(args.epsilon)


# ---------------------------------------------------------------------------------- commands
def cmd_release(args) -> int:
    schema = _schema(args)
    if not schema.confirmed:
        raise UsageError(f"the schema of '{schema.dataset_id}' is an unconfirmed proposal (read off the data); "
                         "the data owner must review it and set confirmed = true before any release")
    query, mechanism, delta = _query(args, schema)
    epsilon = _epsilon(args)
    analyst = args.analyst or _default_analyst()
    if not analyst.strip():
        raise UsageError("--analyst must not be empty")
    cohort = _prepared(args, schema)
    from privacy.ledger import BudgetLedger
    from privacy.release import release

    ledger = BudgetLedger(_ledger_path(args))
    try:
        rel = release(query, cohort, epsilon, ledger, analyst, mechanism=mechanism, delta=delta)
        state = ledger.state(cohort.schema.dataset_id, analyst)
    finally:
        ledger.close()
    out = rel.to_dict()
    out["total"] = state.total              # the analyst's allowance
    out["spent"] = state.spent
    out["remaining"] = state.remaining      # the smaller of allowance left and dataset left
    out["dataset_remaining"] = state.dataset_remaining
    out["accounting"] = state.data.accounting
    if args.json:
        _print_json(out)
        return 0
    print(f"{rel.description}  (dataset {rel.dataset_id}, analyst {analyst})")
    rows = [[str(lab), _num(v), f"[{_num(lo)}, {_num(hi)}]"]
            for lab, v, lo, hi in zip(rel.labels, out["values"], out["ci_low"], out["ci_high"])]
    print(_table(["", "value", f"{1 - rel.alpha:.0%} interval"], rows, [False, True, True]))
    cost = f"epsilon {_eps(rel.epsilon)}" + (f", delta {rel.delta:.2g}" if rel.delta else "")
    left = (f"you can still spend epsilon {_eps(state.remaining)} (allowance {_eps(state.total)}, "
            f"dataset {_eps(state.dataset_remaining)} left of {_eps(state.data.total)})")
    if rel.cached:
        print(f"identical release returned from the ledger at no cost (it cost {cost} when first made); {left}")
    else:
        print(f"charged {cost} ({rel.mechanism}, noise scale {rel.scale:.4g}); {left}")
    return 0


def cmd_preview(args) -> int:
    schema = _schema(args)
    query, mechanism, delta = _query(args, schema)
    target = _float_arg(args.target_error, "--target-error")
    if target is None and args.epsilon is None:
        raise UsageError("give --epsilon (to see the error) or --target-error (to see the epsilon needed)")
    from privacy.release import epsilon_for_error, preview

    d = delta
    desc = query.describe(schema)
    if target is not None:
        if args.epsilon is not None:
            raise UsageError("give either --epsilon or --target-error, not both")
        if target <= 0:
            raise UsageError(f"--target-error must be positive, got {args.target_error}")
        if not math.isfinite(preview(query, schema, 1.0, mechanism, d).halfwidth):
            raise UsageError(f"the error of a {query.stat} depends on the data, so no epsilon can be chosen "
                             "for a target error; use --epsilon to see the cost")
        eps = epsilon_for_error(query, schema, target, mechanism, d)
        p = preview(query, schema, eps, mechanism, d)
        out = {"description": desc, "query": query.to_dict(), "target_error": target, "epsilon": p.epsilon,
               "requested_epsilon": eps, "delta": p.delta, "mechanism": p.mechanism,
               "halfwidth": p.halfwidth, "words": p.words, "detail": p.detail}
        if args.json:
            _print_json(out)
        else:
            print(f"{desc}: an expected 95% error within ±{target:g} needs epsilon {_eps(eps)} "
                  f"({p.mechanism}" + (f", delta {p.delta:.2g}" if p.delta else "") + ").")
            print(f"At that epsilon: {p.words}.")
        return 0
    eps = _epsilon(args)
    p = preview(query, schema, eps, mechanism, d)
    out = {"description": desc, "query": query.to_dict(), "epsilon": p.epsilon, "delta": p.delta,
           "mechanism": p.mechanism, "halfwidth": p.halfwidth, "words": p.words, "detail": p.detail}
    if args.json:
        _print_json(out)
    else:
        print(f"{desc}: costs epsilon {_eps(p.epsilon)}" + (f", delta {p.delta:.2g}" if p.delta else "")
              + f" ({p.mechanism}); nothing is spent by a preview.")
        print(f"Expected 95% error: {p.words}.")
    return 0


def cmd_simulate(args) -> int:
    schema = _schema(args)
    query, mechanism, delta = _query(args, schema)
    epsilon = _epsilon(args)
    from privacy.simulate import MAX_DRAWS
    if not 1 <= args.draws <= MAX_DRAWS:
        raise UsageError(f"--draws must be between 1 and {MAX_DRAWS:,}, got {args.draws}")
    if _source(args)[0] == "storage":
        raise UsageError("simulation compares with the true values, which needs the rows in memory: "
                         "export the table and use --data FILE --schema FILE")
    cohort = _prepared(args, schema)
    from privacy.simulate import simulate

    sim = simulate(query, cohort, epsilon, args.draws, mechanism, delta)
    out = sim.to_dict()
    out.update(description=query.describe(cohort.schema), query=query.to_dict(), spent=0.0,
               owner_only="contains the true (non-private) values; never show to analysts")
    if args.json:
        _print_json(out)
        return 0
    s = sim.summary()
    print("DATA OWNER ONLY: simulated releases on the true data (truth shown); nothing was spent.")
    print(f"{out['description']}: {s['draws']:,} draws at epsilon {_eps(sim.epsilon)} "
          f"({sim.mechanism}, noise scale {sim.scale:.4g})")
    vals = sim.values
    rows = []
    for i, lab in enumerate(sim.labels):
        col = vals[:, i]
        err = abs(col - sim.truth[i])
        rows.append([str(lab), _num(sim.truth[i]), _num(float(col.mean())), _num(float(err.mean()))])
    print(_table(["", "truth", "mean of draws", "mean |error|"], rows, [False, True, True, True]))
    print(f"mean |error| {_num(s['mean_abs_error'])}, 95th percentile |error| {_num(s['p95_abs_error'])}, "
          f"{s['coverage']:.1%} of intervals contain the truth")
    return 0


def cmd_ledger(args) -> int:
    from privacy.ledger import BudgetLedger

    path = _ledger_path(args)
    dataset = args.dataset
    if args.cohort:
        if dataset and dataset != args.cohort:
            raise UsageError("give --cohort or --dataset, not both")
        dataset = _schema(args).dataset_id
    actions = sum(bool(x) for x in (args.verify, args.set_budget is not None))
    if actions > 1:
        raise UsageError("--verify and --set-budget are separate actions")

    if args.set_budget is not None:
        if not dataset or not args.analyst:
            raise UsageError("--set-budget needs --dataset D (or --cohort NAME) and --analyst A")
        total = _float_arg(args.set_budget, "--set-budget")
        actor = args.actor or f"data owner ({_default_analyst()})"
        lg = BudgetLedger(path)
        try:
            st = lg.set_budget(dataset, args.analyst, total, actor=actor, note=args.note or "")
        finally:
            lg.close()
        out = {"dataset": st.dataset, "analyst": st.analyst, "total": st.total, "spent": st.spent,
               "remaining": st.remaining, "actor": actor}
        if args.json:
            _print_json(out)
        else:
            print(f"budget for analyst '{st.analyst}' on '{st.dataset}' set to epsilon {_eps(st.total)} by "
                  f"{actor}; spent {_eps(st.spent)}, remaining {_eps(st.remaining)} (recorded in {path})")
        return 0

    if args.verify:
        if not os.path.exists(path):
            raise UsageError(f"no ledger file at {path}")
        lg = BudgetLedger(path)
        try:
            problems = lg.verify()
            n = lg._db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        finally:
            lg.close()
        if args.json:
            _print_json({"path": path, "rows": n, "ok": not problems, "problems": problems})
        elif problems:
            print(f"ledger {path}: {len(problems)} problem(s) in the hash chain:")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"ledger {path}: {n:,} rows, hash chain intact")
        if problems:
            print(f"privacy ledger: {len(problems)} problem(s) found in {path}; first: {problems[0]}",
                  file=sys.stderr)
            return 1
        return 0

    if not os.path.exists(path):  # listing never creates a ledger
        entries, datasets = [], []
    else:
        lg = BudgetLedger(path)
        try:
            entries = lg.entries(dataset, args.analyst)
            datasets = [_dataset_doc(lg, d, args.analyst) for d in lg.datasets() if not dataset or d == dataset]
        finally:
            lg.close()
    for e in entries:
        if e.get("payload"):
            try:
                e["payload"] = json.loads(e["payload"])
            except ValueError:
                pass
    bud = [dict(a, dataset=d["dataset"]) for d in datasets for a in d["analysts"]]
    if args.json:
        _print_json({"path": path, "datasets": datasets, "budgets": bud, "entries": entries})
        return 0
    print(f"ledger {path}")
    if not datasets:
        print("  (no budgets or releases yet)")
        return 0
    for d in datasets:
        _print_dataset(d)
    shown = entries[-args.limit:] if args.limit > 0 else []
    if shown:
        print(f"last {len(shown)} of {len(entries)} entries:")
        rows = []
        for e in shown:
            what = _describe_query(e.get("query")) if e.get("query") else (e.get("actor") or "")
            if e["kind"] in ("result", "failure"):
                what = f"for reserve #{e.get('actor')}"
            elif e["kind"] == "refusal":
                what = f"refused ({e['payload'].get('which')}): {what}"
            rows.append([str(e["seq"]), e["ts"][:19], e["kind"], e["dataset"], e["analyst"],
                         _eps(e["epsilon"]) if e["kind"] in ("budget", "reserve", "dataset") else "", str(what)[:60]])
        print(_table(["#", "time (UTC)", "kind", "dataset", "analyst", "epsilon", "what"], rows,
                     [True, False, False, False, False, True, False]))
    return 0


def _dataset_doc(lg, dataset: str, analyst: str | None = None) -> dict[str, Any]:
    """Dataset budget and per-analyst allowances, as `ledger --json` and `budget --json` print them."""
    d = lg.dataset_state(dataset).to_dict()
    d["analysts"] = [a.to_dict() for a in lg.analysts(dataset) if not analyst or a.analyst == analyst]
    return d


def _print_dataset(d: dict[str, Any]) -> None:
    dl = (f"; delta {d['delta_spent']:.2g} spent of {d['delta_total']:.2g}" if d["delta_total"] else "; no delta")
    allow = "the whole dataset budget" if d["default_allowance"] is None else _eps(d["default_allowance"])
    print(f"dataset {d['dataset']} ({d['accounting']} accounting): epsilon {_eps(d['spent'])} spent of "
          f"{_eps(d['total'])}, {_eps(d['remaining'])} left for all analysts together{dl}; "
          f"{d['releases']} release(s); analysts without an allowance of their own may spend {allow}")
    if d["analysts"]:
        print(_table(["analyst", "allowance", "spent", "can still spend"],
                     [[a["analyst"], _eps(a["allowance"]) + ("" if a["allowance_set"] else " (default)"),
                       _eps(a["spent"]), _eps(a["remaining"])] for a in d["analysts"]], [False, True, True, True]))


def cmd_budget(args) -> int:
    """Owner action: show or set a dataset's budget, accounting and allowances."""
    from privacy.ledger import BudgetLedger

    if args.dataset and (args.cohort or args.data or args.schema):
        raise UsageError("give --dataset D, or the data (--cohort NAME or --data FILE --schema FILE), not both")
    schema = None if args.dataset else _schema(args)
    dataset = args.dataset or schema.dataset_id
    total = _float_arg(args.total, "--total")
    delta = _float_arg(args.delta, "--delta")
    allowance = _float_arg(args.allowance, "--allowance")
    default_allowance: Any = "keep"
    if args.default_allowance is not None:
        default_allowance = (None if args.default_allowance.strip().lower() in ("none", "all", "dataset")
                             else _float_arg(args.default_allowance, "--default-allowance"))
    if (allowance is None) != (args.analyst is None):
        raise UsageError("--analyst NAME and --allowance EPS go together")
    if args.analyst is not None and not args.analyst.strip():
        raise UsageError("--analyst must not be empty")
    actor = args.actor or f"data owner ({_default_analyst()})"
    path = _ledger_path(args)
    lg = BudgetLedger(path)
    try:
        changed = []
        if any(v is not None for v in (total, delta, args.accounting)) or default_allowance != "keep":
            lg.set_dataset_budget(dataset, total, delta, args.accounting, default_allowance, actor=actor,
                                  note=args.note or "", default_total=schema.default_budget if schema else None)
            changed.append("dataset budget")
        if allowance is not None:
            if schema is not None:   # the schema's default dataset budget, if none was set yet
                lg.ensure_budget(dataset, args.analyst, schema.default_budget)
            lg.set_allowance(dataset, args.analyst.strip(), allowance, actor=actor, note=args.note or "")
            changed.append(f"allowance of {args.analyst.strip()}")
        if not changed and schema is not None:
            lg.ensure_budget(dataset, actor, schema.default_budget)   # show the budget in force
        doc = _dataset_doc(lg, dataset)
    finally:
        lg.close()
    doc["changed"] = changed
    doc["actor"] = actor
    if args.json:
        _print_json(doc)
        return 0
    if changed:
        print(f"{' and '.join(changed)} set by {actor} (recorded in {path})")
    _print_dataset(doc)
    return 0


def _describe_query(key: str) -> str:
    try:
        from privacy.queries import query_from_dict
        return query_from_dict(json.loads(key)).describe()
    except Exception:  # an old or foreign row: show it raw
        return key


# ------------------------------------------------------------------------------------- parser
def _megabytes(text: str) -> int:
    """--max-file-mb: a positive number of megabytes, as bytes."""
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not (math.isfinite(mb) and mb > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of megabytes, got {text!r}")
    return max(1, int(mb * 1024 * 1024))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m privacy",
                description="Differentially private releases on medical cohorts, with a persistent budget ledger.")
    sub = p.add_subparsers(dest="command", metavar="{release,preview,simulate,budget,ledger}")

    def source(sp):
        g = sp.add_argument_group("data (one of)")
        g.add_argument("--cohort", metavar="NAME", help="an embedded cohort, e.g. prostate")
        g.add_argument("--rows", type=int, help="rows of a synthetic cohort (default: its own)")
        g.add_argument("--seed", type=int, help="seed of a synthetic cohort (default: its own)")
        g.add_argument("--data", metavar="FILE", help="table file (.csv, .parquet, .xlsx)")
        g.add_argument("--schema", metavar="FILE", help="the table's public schema (TOML); alone if it has a [storage] table")
        g.add_argument("--max-file-mb", metavar="MB", type=_megabytes,
                       help="refuse a --data file larger than MB megabytes (default: no limit)")

    def query_opts(sp):
        g = sp.add_argument_group("query")
        g.add_argument("--stat", default="count", help=f"one of {', '.join(_stat_names())} (default count)")
        g.add_argument("--column", help="column the statistic is about")
        g.add_argument("--by", help="second column (grouped-mean, grouped-quantile, crosstab; survival: compare by)")
        g.add_argument("--endpoint", help="survival: the schema's endpoint name (default: the first on --column)")
        g.add_argument("--where", metavar="COLUMN=VALUE", help="restrict to one public category")
        g.add_argument("--q", help="quantile level (default 0.5)")
        g.add_argument("--bins", metavar="EDGES", help="comma-separated public bin edges (numeric histogram)")
        g.add_argument("--date-unit", help="day, week, month, quarter or year (date histogram)")
        g.add_argument("--epsilon", help="privacy cost epsilon (0.001 to 100)")
        g.add_argument("--mechanism", default="laplace", help="laplace (default) or gaussian")
        g.add_argument("--delta", help="delta for gaussian, at most 1e-5 (default 1e-7)")

    def out_opts(sp):
        sp.add_argument("--json", action="store_true", help="machine-readable output")

    r = sub.add_parser("release", help="one DP release, charged to the ledger before it runs",
                       description="Release one differentially private statistic. Its cost is charged to "
                                   "the ledger before the measurement runs; an identical request returns the "
                                   "stored release at no cost.")
    source(r)
    query_opts(r)
    r.add_argument("--analyst", help="who is charged (default $USER or 'analyst')")
    r.add_argument("--ledger", metavar="PATH", help=f"ledger file (default $DP_LEDGER or {DEFAULT_LEDGER})")
    out_opts(r)
    r.set_defaults(func=cmd_release)

    pv = sub.add_parser("preview", help="cost and expected error; spends nothing, reads no data")
    source(pv)
    query_opts(pv)
    pv.add_argument("--target-error", metavar="X", help="print the epsilon needed for a 95%% error within ±X")
    out_opts(pv)
    pv.set_defaults(func=cmd_preview)

    s = sub.add_parser("simulate", help="data owner only: many draws on the true data; spends nothing",
                       description="DATA OWNER ONLY: simulated releases on the true data (the output shows true "
                                   "values). Needs read access to the private table; spends nothing.")
    source(s)
    query_opts(s)
    s.add_argument("--draws", type=int, default=200, help="number of simulated releases (default 200)")
    out_opts(s)
    s.set_defaults(func=cmd_simulate)

    b = sub.add_parser("budget", help="data owner only: dataset budget, accounting, allowances",
                       description="DATA OWNER ONLY (needs the ledger file's owner permissions). Show or set a "
                                   "dataset's total budget: everything released on it, by all analysts together, "
                                   "stays within it. --total/--delta/--accounting set the dataset budget; "
                                   "--analyst NAME --allowance EPS sets how much one analyst may spend of it; "
                                   "--default-allowance EPS (or 'none' = the whole budget) is the allowance of "
                                   "analysts without one of their own (0: only invited analysts can spend). "
                                   "Every change is an audit row in the ledger.")
    source(b)
    b.add_argument("--dataset", metavar="D", help="a dataset id (instead of --cohort/--data)")
    b.add_argument("--ledger", metavar="PATH", help=f"ledger file (default $DP_LEDGER or {DEFAULT_LEDGER})")
    b.add_argument("--total", metavar="EPS", help="total epsilon of the dataset, for all analysts together")
    b.add_argument("--delta", metavar="D", help="total delta of the dataset (Gaussian noise; 0 = Laplace only)")
    b.add_argument("--accounting", choices=["pure", "zcdp"],
                   help="pure: epsilons (and deltas) add up; zcdp: rhos add up, total shown as (epsilon, delta)")
    b.add_argument("--default-allowance", metavar="EPS", help="allowance of analysts not named (or 'none')")
    b.add_argument("--analyst", metavar="NAME", help="the analyst whose --allowance is set")
    b.add_argument("--allowance", metavar="EPS", help="epsilon this analyst may spend of the dataset budget")
    b.add_argument("--actor", help="who makes the change (recorded)")
    b.add_argument("--note", help="note recorded with the change")
    out_opts(b)
    b.set_defaults(func=cmd_budget)

    lg = sub.add_parser("ledger", help="data owner only: budgets and entries; --verify",
                        description="DATA OWNER ONLY (needs the ledger file's owner permissions): list every "
                                    "dataset's budget, every analyst's allowance and the entries; --set-budget "
                                    "sets an analyst's allowance (an audit row; see also `budget`); --verify "
                                    "checks the hash chain (exit 1 when problems are found).")
    lg.add_argument("--ledger", metavar="PATH", help=f"ledger file (default $DP_LEDGER or {DEFAULT_LEDGER})")
    lg.add_argument("--dataset", metavar="D", help="dataset id (filter, or target of --set-budget)")
    lg.add_argument("--cohort", metavar="NAME", help="the dataset of an embedded cohort")
    lg.add_argument("--analyst", metavar="A", help="analyst (filter, or target of --set-budget)")
    lg.add_argument("--set-budget", metavar="X", help="set the allowance (epsilon) of --analyst on --dataset")
    lg.add_argument("--actor", help="who sets the budget (recorded)")
    lg.add_argument("--note", help="note recorded with --set-budget")
    lg.add_argument("--verify", action="store_true", help="check the hash chain; exit 1 on problems")
    lg.add_argument("--limit", type=int, default=20, help="entries shown in the text listing (default 20)")
    out_opts(lg)
    lg.set_defaults(func=cmd_ledger, data=None, schema=None, rows=None, seed=None)
    return p


# --------------------------------------------------------------------------------------- main
def _exit_code(e: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) for an error, by class name so no heavy import is needed."""
    names = {c.__name__ for c in type(e).__mro__}
    msg = " ".join(str(e).split()) or type(e).__name__
    if "BudgetExceeded" in names:
        return 2, msg
    if "ReleaseError" in names:
        return 1, msg
    if "SourceError" in names:
        return 2, msg
    if "LedgerError" in names:
        return 1, f"ledger error: {msg}"
    if "CohortUnavailableError" in names:
        return 2, msg
    if isinstance(e, (ValueError, KeyError)):  # QueryError, SchemaError, DataValidationError, UnknownCohortError
        return 2, msg
    if isinstance(e, OSError):
        return 2, f"{msg}"
    return 1, f"internal error ({type(e).__name__}): {msg}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    prog = "python -m privacy"
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help(sys.stderr)
            return 2
        prog = f"{prog} {args.command}"
        return int(args.func(args))
    except SystemExit as e:  # --help
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # one line, never a traceback (DP_DEBUG=1 shows it)
        if os.environ.get("DP_DEBUG"):
            raise
        code, msg = _exit_code(e)
        print(f"{prog}: {msg}", file=sys.stderr)
        return code
