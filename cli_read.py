"""The read-side verbs of the `dockyard` command (wired by `cli.main` through `add_parsers`):

    dockyard audit query [--actor A] [--namespace N] [--repository R] [--action X] [--since T] [--until T]
                         [--after POSITION] [-n N] [--format text|jsonl|csv]
    dockyard audit export --format jsonl|csv|chain [filters] [-o FILE]
    dockyard audit verify [--data-dir DIR | --database-url URL | --from-export FILE] [--public-key FILE]
    dockyard projections status
    dockyard projections retry NAME

Each folds the followed projections up to the log's head first (safe beside a serving
process: positions are compare-and-set, see `projections.runner`), so the answer is complete.
The CLI is trusted like an admin: it reads everything.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson


def _read_side(args: argparse.Namespace) -> Any:
    from dockyard import bootstrap
    from dockyard.cli import _registry

    registry = _registry(args)
    read_side = bootstrap.read_side(registry)
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
            if args.format == "chain":
                count = _chain_export(read_side.registry, out)
            else:
                count = _write_rows(read_side.audit.stream(_filters(args), EVERYTHING), args.format, out)
        finally:
            if out is not sys.stdout:
                out.close()
        print(f"exported {count} audit event(s)", file=sys.stderr)
    finally:
        read_side.registry.close()
    return 0


def _events_table(registry: Any) -> str:
    recorder = registry.recorder
    if registry.dialect.name == "postgres":
        return f"{recorder.datastore.schema}.{recorder.events_table_name}"
    return str(recorder.events_table_name)


def _chain_export(registry: Any, out: Any) -> int:
    """The log as an auditor verifies it offline: one JSON line per stored event (state in
    base64) with its chain row, then the signed checkpoints."""
    import base64

    from dockyard.projections import chain

    dialect, datastore = registry.dialect, registry.recorder.datastore
    chained = {p: (e, c) for p, e, c in chain.read_chain(dialect, datastore)}
    count = 0
    for row in chain.read_events(dialect, datastore, _events_table(registry)):
        event_digest, chain_digest = chained.get(row.position, (b"", b""))
        out.write(orjson.dumps({
            "position": row.position, "topic": row.topic, "originator_id": str(row.originator_id),
            "originator_version": row.version, "state": base64.b64encode(row.state).decode(),
            "event_hash": event_digest.hex(), "chain_hash": chain_digest.hex()}).decode() + "\n")
        count += 1
    for position, chain_digest, at, signature in chain.read_checkpoints(dialect, datastore):
        out.write(orjson.dumps({"checkpoint": {"position": position, "chain_hash": chain_digest.hex(),
                                               "signed_at": at, "signature": signature.hex()}}).decode() + "\n")
    return count


def _read_export(path: str) -> tuple[list[Any], list[Any], list[Any]]:
    import base64

    from dockyard.projections.chain import StoredRow

    events, chained, checkpoints = [], [], []
    with open(path, "rb") as handle:
        for line in handle:
            item = orjson.loads(line)
            if "checkpoint" in item:
                c = item["checkpoint"]
                checkpoints.append((c["position"], bytes.fromhex(c["chain_hash"]), c["signed_at"],
                                    bytes.fromhex(c["signature"])))
                continue
            events.append(StoredRow(item["position"], item["topic"], item["originator_id"],
                                    item["originator_version"], base64.b64decode(item["state"])))
            if item["chain_hash"]:
                chained.append((item["position"], bytes.fromhex(item["event_hash"]), bytes.fromhex(item["chain_hash"])))
    return events, chained, checkpoints


def audit_verify(args: argparse.Namespace) -> int:
    """Recompute the chain and check every checkpoint signature: no server, no private key."""
    from cryptography.hazmat.primitives import serialization

    from dockyard.projections import chain

    public_key = None
    if args.public_key:
        with open(args.public_key, "rb") as handle:
            public_key = serialization.load_pem_public_key(handle.read())
    if args.from_export:
        events, chained, checkpoints = _read_export(args.from_export)
        verdict = chain.verify(events, chained, checkpoints, public_key)
        source = args.from_export
    else:
        from dockyard.cli import _registry

        registry = _registry(args)
        try:
            if public_key is None:
                from dockyard.commands.secrets import SecretStore

                print("no --public-key: using the key stored beside the log (an auditor should pass the "
                      "key fetched from /api/v0/audit/public-key)", file=sys.stderr)
                public_key = SecretStore(registry).audit_signing_key().public_key()
            dialect, datastore = registry.dialect, registry.recorder.datastore
            verdict = chain.verify(chain.read_events(dialect, datastore, _events_table(registry)),
                                   chain.read_chain(dialect, datastore), chain.read_checkpoints(dialect, datastore),
                                   public_key)
            source = args.database_url or args.data_dir or "the configured database"
        finally:
            registry.close()
    if public_key is None:
        print("no --public-key: checkpoint signatures were not checked", file=sys.stderr)
    if not verdict.intact:
        print(f"TAMPERED ({source}): {verdict.finding}")
        return 1
    print(f"intact: {verdict.events} events chained, {verdict.checkpoints} signed checkpoint(s), "
          f"last at position {verdict.last_checkpoint}")
    return 0


def projections_status(args: argparse.Namespace) -> int:
    from dockyard import bootstrap
    from dockyard.cli import _registry
    from dockyard.projections.status import projection_status

    registry = _registry(args)
    try:
        rows = projection_status(bootstrap.read_side(registry))
    finally:
        registry.close()
    if args.format == "json":
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{'name':<12} {'kind':<8} {'position':>10} {'head':>10} {'lag':>8} {'lag s':>8} {'rows':>10}  state")
    for r in rows:
        lag_s = "" if r["lag_seconds"] is None else f"{r['lag_seconds']:.1f}"
        print(f"{r['name']:<12} {r['kind']:<8} {r['position']:>10} {r['head']:>10} {r['lag_events']:>8} "
              f"{lag_s:>8} {r['rows']:>10}  {r['state']}{' ' + r['error'] if r.get('error') else ''}"
              f"{' (next try ' + r['retry_at'] + ')' if r.get('retry_at') else ''}")
    return 0


def projections_retry(args: argparse.Namespace) -> int:
    """`projections retry NAME`: a failed projection tries its failing batch again now. When a
    serving process leads the projection its runner does it (within a second); when none does,
    it is done here and the outcome printed. Exit 1 if refused or it failed again."""
    from dockyard import bootstrap
    from dockyard.cli import _registry
    from dockyard.commands.projections import retry_projection
    from dockyard.commands.secrets import SecretStore
    from dockyard.domain.errors import DomainError
    from dockyard.projections.runner import ProjectionFailed

    registry = _registry(args)
    try:
        read_side = bootstrap.read_side(registry, SecretStore(registry))
        try:
            row = retry_projection(read_side, args.name)
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        try:
            applied = read_side.runners[args.name].catch_up_unless_led()
        except ProjectionFailed as exc:
            print(f"{args.name} failed again at position {exc.position}: {exc.error}")
            return 1
        if applied is None:
            print(f"{args.name} (failed at {row['position']}): retry requested; "
                  "the serving process that leads it tries again within a second")
        else:
            print(f"{args.name} resumed: {applied} events folded, now at position "
                  f"{read_side.positions.position(args.name)}")
        return 0
    finally:
        registry.close()


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `audit` verbs, and `status` under the existing `projections` parser."""
    p = sub.add_parser("audit", help="the audit trail: query, export")
    asub = p.add_subparsers(dest="verb", required=True)
    for verb, func, formats, default in (("query", audit_query, ("text", "jsonl", "csv"), "text"),
                                         ("export", audit_export, ("jsonl", "csv", "chain"), "jsonl")):
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
    v = asub.add_parser("verify", help="recompute the hash chain and check the signed checkpoints (exit 1 if tampered)")
    common(v)
    v.add_argument("--from-export", help="a file written by `dockyard audit export --format chain`")
    v.add_argument("--public-key", help="PEM from /api/v0/audit/public-key (default: the key stored beside the log)")
    v.set_defaults(func=audit_verify)


class RebuildProgress:
    """The progress of `projections rebuild`, one task per fold: on a terminal a rich bar with
    events/s; otherwise (a pipe, a log file, CI) plain lines, at most one per `interval` seconds
    per fold plus its last, so a log stays readable and holds no cursor movements."""

    def __init__(self, stream: Any = None, interval: float = 1.0) -> None:
        self.stream = stream or sys.stdout
        self.interval = interval
        self.bar: Any = None
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]:>10,.0f} events/s"), TimeElapsedColumn(),
                                console=Console(file=self.stream))

    def __enter__(self) -> RebuildProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def say(self, line: str) -> None:
        """A line that stays (above the bar on a terminal)."""
        if self.bar is not None:
            self.bar.console.print(line, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def track(self, name: str) -> Callable[[int, int], None]:
        """The `progress(position, head)` callback of one fold (a rebuild folds from position 0)."""
        started = time.perf_counter()
        task = self.bar.add_task(name, total=None, rate=0.0) if self.bar is not None else None
        last_line = [float("-inf")]

        def show(position: int, head: int) -> None:
            elapsed = time.perf_counter() - started
            rate = position / max(elapsed, 1e-9)
            if self.bar is not None:
                self.bar.update(task, completed=position, total=max(head, 1), rate=rate)
            elif position >= head or elapsed - last_line[0] >= self.interval:
                last_line[0] = elapsed
                percent = 100 * position // max(head, 1)
                print(f"{name}: {position}/{head} events ({percent}%), {rate:,.0f} events/s",
                      file=self.stream, flush=True)

        return show


def projections_rebuild(args: argparse.Namespace) -> int:
    """`projections rebuild NAME... | --all`: into fresh tables while the old ones serve, then a
    swap (`registry` and `identity`, the inline views, share one fold and are rebuilt together)."""
    from dockyard import bootstrap
    from dockyard.cli import _registry
    from dockyard.commands.secrets import SecretStore
    from dockyard.projections.online_rebuild import rebuild
    from dockyard.projections.rebuild import rebuild_inline_online
    from dockyard.projections.status import INLINE

    registry = _registry(args)
    try:
        read_side = bootstrap.read_side(registry, SecretStore(registry))
        known = [*INLINE, *read_side.runners]
        names = known if args.all else args.names
        unknown = [n for n in names if n not in known]
        if unknown:
            print(f"error: no projection {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
            return 2
        with RebuildProgress() as bar:
            if any(n in INLINE for n in names):  # the inline views share one fold: rebuilt together
                started = time.perf_counter()
                count = rebuild_inline_online(registry, progress=bar.track("inline"))
                bar.say(f"registry and identity views rebuilt from {count} events in "
                        f"{time.perf_counter() - started:.2f} s")
            for name in (n for n in names if n in read_side.runners):
                result = rebuild(registry, read_side.runners[name], progress=bar.track(name))
                bar.say(f"{name} rebuilt from {result.events} events in {result.seconds:.2f} s "
                        f"({result.rate:,.0f} events/s), swapped in at position {result.position}")
        return 0
    finally:
        registry.close()


def add_rebuild_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("names", nargs="*", metavar="NAME", help="registry, identity, audit, checkpoints")
    r.add_argument("--all", action="store_true", help="every projection")


def add_status_parser(psub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    s = psub.add_parser("status", help="each projection's position, head, lag, rows and state")
    common(s)
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=projections_status)
    r = psub.add_parser("retry", help="a failed projection tries again now instead of after its backoff")
    common(r)
    r.add_argument("name", metavar="NAME", help="audit, search, checkpoints")
    r.set_defaults(func=projections_retry)


