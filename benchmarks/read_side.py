"""Projection catch-up and online rebuild speed, on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/read_side.py [--database-url URL] [--events 200000] [--rounds 3]

Fills a fresh log with `--events` events (tags created and moved, as pushes make them, 500
aggregates per transaction, through the real recorders: chain and inline read models included),
then, `--rounds` times each: the audit trail's batched catch-up from position 0 into fresh
tables, and `projections rebuild audit` (fresh tables, then the swap). Prints events/s
(median, min..max). Without a URL it uses a temporary SQLite file; a URL without a database
name gets a fresh database, dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.domain.tag import Tag
from dockyard.projections.audit_trail import AuditTrail
from dockyard.projections.online_rebuild import rebuild
from dockyard.projections.runner import ProjectionRunner


def fill(registry: Registry, events: int) -> float:
    started, written = time.perf_counter(), 0
    i = 0
    while written < events:
        tags = []
        for _ in range(250):
            tag = Tag(repository=f"team{i % 50}/app{i % 997}", name=f"v{i}")
            tag.point_at("sha256:" + uuid.uuid4().hex * 2)
            tags.append(tag)
            i += 1
        written += len(registry.save(*tags))
    return written / (time.perf_counter() - started)


def catch_up(registry: Registry, round_: int, batch: int) -> float:
    name = f"audit_bench{round_}"
    runner = ProjectionRunner(registry, AuditTrail(f"__bench{round_}"), batch=batch, name=name)
    started = time.perf_counter()
    applied = runner.catch_up()
    seconds = time.perf_counter() - started
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(f"DROP TABLE audit_events__bench{round_}")
        cursor.execute(registry.dialect.sql("DELETE FROM projection_positions WHERE name = %(n)s"), {"n": name})
    return applied / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    url, dropped = args.database_url, None
    if url and url.rstrip("/").count("/") == 2:  # no database name: a fresh one
        import psycopg

        dropped = "dockyard_bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url.rstrip("/") + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dropped}"')
        url = url.rstrip("/") + "/" + dropped
    registry = Registry(event_store_env(tempfile.mkdtemp(prefix="dockyard-bench-"), url))
    try:
        write_rate = fill(registry, args.events)
        head = registry.recorder.max_notification_id()
        print(f"backend: {registry.dialect.name}; log: {head} events (filled at {write_rate:,.0f} events/s)")
        live = ProjectionRunner(registry, AuditTrail(), batch=args.batch)
        live.catch_up()
        figures: dict[str, list[float]] = {"catch-up (audit, fresh tables)": [], "rebuild + swap (audit)": []}
        for round_ in range(args.rounds):
            figures["catch-up (audit, fresh tables)"].append(catch_up(registry, round_, args.batch))
            figures["rebuild + swap (audit)"].append(rebuild(registry, live, batch=args.batch).rate)
        for label, rates in figures.items():
            print(f"{label}: {statistics.median(rates):,.0f} events/s "
                  f"({min(rates):,.0f}..{max(rates):,.0f}, {len(rates)} rounds)")
    finally:
        registry.close()
        if dropped:
            import psycopg

            with psycopg.connect(args.database_url.rstrip("/") + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')


if __name__ == "__main__":
    main()
