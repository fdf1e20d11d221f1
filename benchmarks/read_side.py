"""Projection catch-up and online rebuild speed, on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/read_side.py [--database-url URL] [--events 200000] [--rounds 3]
                                             [--projection audit|search] [--no-writes]

Fills a fresh log with `--events` events (tags created and moved, as pushes make them, 500
aggregates per transaction, through the real recorders: chain and inline read models included),
then, `--rounds` times each: the projection's (`--projection`, default the audit trail) batched
catch-up from position 0 into fresh tables, and `projections rebuild NAME` (fresh tables, then
the swap); the log's events are all Tag events (the search projection folds every `Tag.Moved`
into its repository's row: ~50k repositories). Prints events/s
(median, min..max). Then the latency of small writes (one tag moved per transaction, as a
push's save) while a rebuild runs, beside the same writes on a quiet log: every write must
succeed; p50 and p99 are printed (`--no-writes` skips this part). Without a URL it uses a
temporary SQLite file; a URL without a database name gets a fresh database, dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

from bench_database import drop_database, fresh_database

from dockyard.bootstrap import registry_on
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.domain.tag import Tag
from dockyard.projections.audit_trail import AuditTrail
from dockyard.projections.online_rebuild import rebuild
from dockyard.projections.repository_search import RepositorySearch
from dockyard.projections.runner import ProjectionRunner


def fill(registry: Registry, events: int) -> float:
    started, written = time.perf_counter(), 0
    i = 0
    while written < events:
        tags = []
        for _ in range(250):
            tag = Tag.unborn(repository=f"team{i % 50}/app{i % 997}", name=f"v{i}")
            tag.point_at("sha256:" + uuid.uuid4().hex * 2)
            tags.append(tag)
            i += 1
        written += len(registry.save(*tags))
    return written / (time.perf_counter() - started)


PROJECTIONS: dict[str, Any] = {"audit": lambda dialect: AuditTrail(),
                               "search": lambda dialect: RepositorySearch(fts=dialect == "sqlite")}


def catch_up(registry: Registry, projection: str, round_: int, batch: int) -> float:
    name = f"{projection}_bench{round_}"
    fresh = PROJECTIONS[projection](registry.dialect.name).with_suffix(f"__bench{round_}")
    runner = ProjectionRunner(registry, fresh, batch=batch, name=name)
    started = time.perf_counter()
    applied = runner.catch_up()
    seconds = time.perf_counter() - started
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        for table in fresh.tables().values():
            cursor.execute(f"DROP TABLE {table}")
        cursor.execute(registry.dialect.sql("DELETE FROM projection_positions WHERE name = %(n)s"), {"n": name})
    return applied / seconds


def writes(registry: Registry, stop: threading.Event, latencies: list[float], limit: int) -> None:
    """Move a tag per transaction until `stop` (or `limit` writes), recording each save's time."""
    tag = Tag.unborn(repository="bench/latency", name=f"t{uuid.uuid4().hex[:8]}")  # as a push opens one
    while not stop.is_set() and len(latencies) < limit:
        tag.point_at("sha256:" + uuid.uuid4().hex * 2)
        started = time.perf_counter()
        registry.save(tag)
        latencies.append(time.perf_counter() - started)


def _writer_process(data_dir: str, url: str | None, stop: Any, out: Any) -> None:
    """`writes` in its own process with its own connections, as a serving worker would be (in
    the benchmark's process the rebuild's Python work would also take the GIL from it)."""
    registry = registry_on(event_store_env(data_dir, url))
    latencies: list[float] = []
    try:
        writes(registry, stop, latencies, 1_000_000)
    finally:
        out.put(latencies)
        registry.close()


def percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(ordered)} writes, p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--projection", choices=sorted(PROJECTIONS), default="audit")
    parser.add_argument("--no-writes", action="store_true", help="skip the writes during a rebuild")
    args = parser.parse_args()
    url, dropped = fresh_database(args.database_url)
    data_dir = tempfile.mkdtemp(prefix="dockyard-bench-")
    registry = registry_on(event_store_env(data_dir, url))
    try:
        write_rate = fill(registry, args.events)
        head = registry.recorder.max_notification_id()
        print(f"backend: {registry.dialect.name}; log: {head} events (filled at {write_rate:,.0f} events/s)")
        which = args.projection
        live = ProjectionRunner(registry, PROJECTIONS[which](registry.dialect.name), batch=args.batch)
        live.catch_up()
        figures: dict[str, list[float]] = {f"catch-up ({which}, fresh tables)": [], f"rebuild + swap ({which})": []}
        for round_ in range(args.rounds):
            figures[f"catch-up ({which}, fresh tables)"].append(catch_up(registry, which, round_, args.batch))
            figures[f"rebuild + swap ({which})"].append(rebuild(registry, live).rate)
        for label, rates in figures.items():
            print(f"{label}: {statistics.median(rates):,.0f} events/s "
                  f"({min(rates):,.0f}..{max(rates):,.0f}, {len(rates)} rounds)")
        if args.no_writes:
            return
        # Writes from another process during a rebuild, then as many on a quiet log.
        context = multiprocessing.get_context("fork")
        stop, out = context.Event(), context.Queue()
        writer = context.Process(target=_writer_process, args=(data_dir, url, stop, out))
        writer.start()
        try:
            rebuild(registry, live)
        finally:
            stop.set()
            during: list[float] = out.get()
            writer.join()
        quiet: list[float] = []
        writes(registry, threading.Event(), quiet, len(during))
        print(f"writes during a rebuild: {percentiles(during)}")
        print(f"writes on a quiet log:   {percentiles(quiet)}")
    finally:
        registry.close()
        drop_database(args.database_url, dropped)


if __name__ == "__main__":
    main()
