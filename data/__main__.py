"""Command line for the cohort catalogue, and for data owners to check a table file.

    python -m data list           cohorts with row counts, privacy unit and availability
    python -m data list --json    the same as a JSON list
    python -m data load FILE [--schema S.toml] [--max-file-mb MB] [--encoding E] [--delimiter D] [--json]
                                  DATA OWNER ONLY: read FILE as the app and the CLI do (any size by
                                  default), print how it was read (rows, columns, separator,
                                  warnings) and, with --schema, what preparation kept; with the
                                  seconds each step took. The counts are private: for the owner.

Bad usage or a file that cannot be read exits with status 2 and a one-line message on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import NoReturn

USAGE = "usage: python -m data list [--json] | python -m data load FILE [--schema FILE] [--max-file-mb MB]"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:     # one line instead of argparse's usage block
        self.exit(2, f"python -m data: error: {message} ({USAGE})\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m data", description="Cohort catalogue of the DP statistics dashboard.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    ls = sub.add_parser("list", help="list the cohorts with row counts and privacy unit",
                        description="List the catalogued cohorts.")
    ls.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    ld = sub.add_parser("load", help="data owner only: read a table file and report how it was read",
                        description="DATA OWNER ONLY: read a .csv, .parquet or .xlsx file as the app does and "
                                    "report rows, columns, separator, warnings and timings (private counts).")
    ld.add_argument("file", metavar="FILE", help="table file (.csv, .parquet, .xlsx)")
    ld.add_argument("--schema", metavar="FILE", help="also prepare it under this public schema (TOML)")
    ld.add_argument("--max-file-mb", metavar="MB", type=_megabytes,
                    help="refuse a file larger than MB megabytes (default: no limit)")
    ld.add_argument("--encoding", help="CSV text encoding (default UTF-8; e.g. latin-1, cp1252, utf-16)")
    ld.add_argument("--delimiter", help="CSV separator: ',' ';' tab '|' (default: detected)")
    ld.add_argument("--json", action="store_true", help="print a JSON object")
    return p


def _megabytes(text: str) -> int:
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not (mb > 0 and mb != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of megabytes, got {text!r}")
    return max(1, int(mb * 1024 * 1024))


def _load(args) -> int:
    import time

    from data.loaders import load_table_with_report
    from data.prepare import DataValidationError, prepare
    from data.schema import SchemaError, load_schema

    try:
        schema = load_schema(args.schema) if args.schema else None
        t0 = time.perf_counter()
        frame, report = load_table_with_report(args.file, encoding=args.encoding, delimiter=args.delimiter,
                                               max_bytes=args.max_file_mb)
        t1 = time.perf_counter()
        cohort = prepare(frame, schema, keep_frame=False) if schema is not None else None
        t2 = time.perf_counter()
    except (DataValidationError, SchemaError) as e:
        # The owner runs this on their own file: the exact reason is theirs to see.
        print(f"python -m data load: {getattr(e, 'owner_detail', None) or e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"python -m data load: {e}", file=sys.stderr)
        return 2
    out = {"file": str(args.file), "format": report.format, "bytes": report.size_bytes, "rows": report.rows,
           "columns": report.columns, "encoding": report.encoding, "delimiter": report.delimiter,
           "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()}, "report": report.lines(),
           "load_s": round(t1 - t0, 3)}
    if cohort is not None:
        out.update(prepare_s=round(t2 - t1, 3), prepared=cohort.report.lines())
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("DATA OWNER ONLY: counts read from the private table.")
    for line in report.lines():
        print(line)
    print(f"read in {out['load_s']:.2f} s")
    if cohort is not None:
        for line in cohort.report.lines():
            print(line)
        print(f"prepared under schema '{schema.dataset_id}' in {out['prepare_s']:.2f} s")
    return 0


def _table(infos: list) -> str:
    head = ("name", "rows", "privacy unit", "max rows/unit", "available", "title")
    rows = []
    for c in infos:
        avail = "yes" if c.available else "no"
        rows.append((c.name, f"{c.rows:,}", c.privacy_unit, str(c.max_rows_per_unit), avail, c.title))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    right = {1, 3}
    out = []
    for r in [head, *rows]:
        cells = [r[i].rjust(w) if i in right else r[i].ljust(w) for i, w in enumerate(widths)]
        out.append("  ".join(cells + [r[-1]]).rstrip())
    for c in infos:
        if not c.available:
            out.append(f"{c.name}: unavailable, {c.reason}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().error("no command given")
    if args.command == "load":
        return _load(args)
    from data.cohorts import list_cohorts

    infos = list_cohorts()
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in infos], indent=2))
    else:
        print(_table(infos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
