"""Printing: compact tables, the PASS/FAIL line against the speed targets, JSON output."""
from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks.suite import PrepareResult, QueryResult

TARGET_ROWS = 10**6
TARGET_MS = 50.0
TARGET_MS_KINDS = ("cat-hist", "num-hist20", "mean")
TARGET_RATIO = 1.5


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return fmt.format(v)


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _rows(n: int) -> str:
    e = round(math.log10(n)) if n > 0 else 0
    return f"1e{e}" if 10**e == n else f"{n:,}"


def prepare_table(results: list[PrepareResult]) -> str:
    head = f"{'rows':>6} {'generate s':>11} {'prepare s':>10} {'Mrows/s':>8} {'peak MB':>8}  reps"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{_rows(r.rows):>6} {r.generate_s:11.2f} {r.prepare_s:10.2f} "
                     f"{r.rows / r.prepare_s / 1e6:8.2f} {_f(r.peak_mb, '{:.0f}'):>8}  {len(r.prepare_all_s)}")
    return "\n".join(lines)


def query_table(results: list[QueryResult]) -> str:
    cols = [("rows", 5), ("query", 12), ("build1", 7), ("build", 6), ("e2e1", 7), ("e2e", 7), ("invoke", 7),
            ("numpy", 7), ("e2e/inv", 7), ("e2e1/inv", 8), ("inv/np", 7), ("MB e2e", 6), ("MB inv", 6),
            ("MB np", 6), ("n", 2)]
    head = " ".join(f"{n:>{w}}" if i != 1 else f"{n:<{w}}" for i, (n, w) in enumerate(cols))
    lines = [head, "-" * len(head)]
    for r in results:
        vals = [_rows(r.rows), r.kind, _ms(r.build_cold_ms), _ms(r.build_warm_ms), _ms(r.e2e_cold_ms),
                _ms(r.e2e_warm_ms), _ms(r.invoke_ms), _ms(r.numpy_ms), f"{r.e2e_over_invoke:.2f}",
                f"{r.cold_over_invoke:.2f}", f"{r.invoke_over_numpy:.1f}", _f(r.peak_e2e_mb, "{:.0f}"),
                _f(r.peak_invoke_mb, "{:.0f}"), _f(r.peak_numpy_mb, "{:.0f}"), str(r.reps)]
        lines.append(" ".join(f"{v:>{w}}" if i != 1 else f"{v:<{w}}" for i, (v, (_, w)) in enumerate(zip(vals, cols))))
    return "\n".join(lines)


LEGEND = """\
times are medians in ms. build1 = build_plan, cache miss (fresh epsilon); build = cache hit.
e2e1 = release() with a fresh epsilon (plan built inside); e2e = release() with the plan cached (as
after a preview), fresh analyst and fresh ledger each time (releases are shared per dataset). Both include ledger reserve + invoke + store on a temp
SQLite ledger (WAL; the result's commit synced to disk). invoke = plan.measurement(plan.make_input(cohort)), plus
.collect() for grouped-mean, whose Polars measurement returns a lazy OnceFrame.
numpy = insecure baseline on the same prepared columns plus NumPy noise (count's baseline is len(),
O(1), so its inv/np ratio only shows fixed cost). MB = {memory}."""


def check_targets(results: list[QueryResult], e2e_of, inv_of) -> tuple[bool | None, list[str]]:
    at = [r for r in results if r.rows == TARGET_ROWS]
    if not at:
        return None, [f"no results at {TARGET_ROWS:,} rows"]
    fails = []
    for r in at:
        e2e, inv = e2e_of(r), inv_of(r)
        if r.kind in TARGET_MS_KINDS and not e2e < TARGET_MS:
            fails.append(f"{r.kind} e2e {e2e:.1f} ms >= {TARGET_MS:.0f} ms")
        if r.kind in TARGET_MS_KINDS and not e2e <= TARGET_RATIO * inv:
            fails.append(f"{r.kind} e2e/invoke {e2e / inv:.2f} > {TARGET_RATIO}")
    return not fails, fails


def _best(r: QueryResult, key: str) -> float:
    return min(r.samples_ms[key])


def targets_text(results: list[QueryResult]) -> tuple[str, dict]:
    lines, out = [], {}
    checks = (
        ("plan cached (e2e), medians", "warm", lambda r: r.e2e_warm_ms, lambda r: r.invoke_ms),
        ("first build (e2e1), medians", "cold", lambda r: r.e2e_cold_ms, lambda r: r.invoke_ms),
        ("plan cached, best of n: load-robust lower bound, informational", "warm_best",
         lambda r: _best(r, "e2e_warm"), lambda r: _best(r, "invoke")),
    )
    for label, key, e2e_of, inv_of in checks:
        ok, fails = check_targets(results, e2e_of, inv_of)
        out[key] = {"pass": ok, "failures": fails}
        if ok is None:
            lines.append(f"TARGETS [{label}]: NOT EVALUATED ({fails[0]}; run without --quick)")
            break
        lines.append(f"TARGETS [{label}]: " + ("PASS" if ok else "FAIL"))
        lines += [f"    - {f}" for f in fails]
    if results and any(r.rows == TARGET_ROWS for r in results):
        lines.insert(0, f"targets at 1e6 rows: histograms and mean e2e < {TARGET_MS:.0f} ms and e2e <= "
                        f"{TARGET_RATIO}x invoke (other kinds: informational; count's invoke is sub-ms, "
                        "so its ratio shows the ledger's fixed ~1-2 ms)")
    return "\n".join(lines), out


def write_json(path: str | Path, meta: dict, prep: list[PrepareResult], queries: list[QueryResult],
               targets: dict) -> None:
    from dataclasses import asdict
    doc = {"meta": meta, "prepare": [asdict(p) for p in prep], "queries": [q.to_dict() for q in queries],
           "targets": targets}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
