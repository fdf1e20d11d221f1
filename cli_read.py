"""The read-side verbs of the `dockyard` command (wired by `cli.main` through `add_parsers`):

    dockyard audit query [--actor A] [--namespace N] [--repository R] [--action X] [--since T] [--until T]
                         [--after POSITION] [-n N] [--format text|jsonl|csv]
    dockyard audit export --format jsonl|csv [filters]
    dockyard projections status

Each folds the followed projections up to the log's head first (safe beside a serving
process: positions are compare-and-set, see `projections.runner`), so the answer is complete.
The CLI is trusted like an admin: it reads everything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson


def _read_side(args: argparse.Namespace) -> Any:
    from dockyard.cli import _registry
    from dockyard.projections.read_side import ReadSide

    registry = _registry(args)
    read_side = ReadSide(registry)
    for runner in read_side.runners.values():
        runner.catch_up()
    return read_side


def _filters(args: argparse.Namespace) -> Any:
    from dockyard.projections.audit_queries import AuditFilter

    return AuditFilter(args.actor, args.namespace, args.repository, args.action, args.since, args.until, args.after)


def _write_rows(rows: Any, fmt: str, out: Any) -> int:
    import csv

    from dockyard.projections.audit_trail import COLUMNS

    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
    for row in rows:
        count += 1
        if fmt == "jsonl":
            out.write(orjson.dumps({**row, "details": orjson.loads(row["details"])}).decode() + "\n")
        elif fmt == "csv":
            writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        else:
            target = row["repository"] or row["namespace"] or ""
            if row["tag"]:
                target += f":{row['tag']}"
            if row["digest"]:
                target += f"@{row['digest']}"
            out.write(f"{row['position']}\t{row['recorded_at']}\t{row['actor']}\t{row['client_address']}\t"
                      f"{row['action']}\t{target}\n")
    return count


def audit_query(args: argparse.Namespace) -> int:
    from dockyard.projections.audit_queries import EVERYTHING

    read_side = _read_side(args)
    try:
        rows = read_side.audit.stream(_filters(args), EVERYTHING)
        if args.n:
            rows = (r for _, r in zip(range(args.n), rows, strict=False))
        _write_rows(rows, args.format, sys.stdout)
    finally:
        read_side.registry.close()
    return 0


def audit_export(args: argparse.Namespace) -> int:
    from dockyard.projections.audit_queries import EVERYTHING

    read_side = _read_side(args)
    try:
        out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
        try:
            count = _write_rows(read_side.audit.stream(_filters(args), EVERYTHING), args.format, out)
        finally:
            if out is not sys.stdout:
                out.close()
        print(f"exported {count} audit event(s)", file=sys.stderr)
    finally:
        read_side.registry.close()
    return 0


def projections_status(args: argparse.Namespace) -> int:
    from dockyard.cli import _registry
    from dockyard.projections.read_side import ReadSide
    from dockyard.projections.status import projection_status

    registry = _registry(args)
    try:
        rows = projection_status(ReadSide(registry))
    finally:
        registry.close()
    if args.format == "json":
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{'name':<12} {'kind':<8} {'position':>10} {'head':>10} {'lag':>8} {'lag s':>8} {'rows':>10}  state")
    for r in rows:
        lag_s = "" if r["lag_seconds"] is None else f"{r['lag_seconds']:.1f}"
        print(f"{r['name']:<12} {r['kind']:<8} {r['position']:>10} {r['head']:>10} {r['lag_events']:>8} "
              f"{lag_s:>8} {r['rows']:>10}  {r['state']}{' ' + r['error'] if r.get('error') else ''}")
    return 0


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `audit` verbs, and `status` under the existing `projections` parser."""
    p = sub.add_parser("audit", help="the audit trail: query, export")
    asub = p.add_subparsers(dest="verb", required=True)
    for verb, func, formats, default in (("query", audit_query, ("text", "jsonl", "csv"), "text"),
                                         ("export", audit_export, ("jsonl", "csv"), "jsonl")):
        q = asub.add_parser(verb, help=f"{verb} audit events (filters combine)")
        common(q)
        for name in ("actor", "namespace", "repository", "action"):
            q.add_argument(f"--{name}")
        q.add_argument("--since", help="ISO 8601, inclusive")
        q.add_argument("--until", help="ISO 8601, exclusive")
        q.add_argument("--after", type=int, default=0, help="only events after this log position")
        q.add_argument("--format", choices=formats, default=default)
        if verb == "query":
            q.add_argument("-n", type=int, default=0, help="at most N events")
        else:
            q.add_argument("--output", "-o", help="write to this file (default: stdout)")
        q.set_defaults(func=func)


def add_status_parser(psub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    s = psub.add_parser("status", help="each projection's position, head, lag, rows and state")
    common(s)
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=projections_status)


