"""Command line for the cohort catalogue.

    python -m data list           cohorts with row counts, privacy unit and availability
    python -m data list --json    the same as a JSON list

Bad usage exits with status 2 and a one-line message on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import NoReturn

USAGE = "usage: python -m data list [--json]"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:     # one line instead of argparse's usage block
        self.exit(2, f"python -m data: error: {message} ({USAGE})\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m data", description="Cohort catalogue of the DP statistics dashboard.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    ls = sub.add_parser("list", help="list the cohorts with row counts and privacy unit",
                        description="List the catalogued cohorts.")
    ls.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return p


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
    from data.cohorts import list_cohorts

    infos = list_cohorts()
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in infos], indent=2))
    else:
        print(_table(infos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
