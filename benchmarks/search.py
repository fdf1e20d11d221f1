"""Repository search latency with 100k repositories, on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/search.py [--database-url URL] [--repositories 100000] [--queries 400]
        [--keep DIR] [--rounds N]

Fills a fresh log through the write side (the `Repository`, `Tag` and `Team` aggregates saved
by the `Registry`'s recorders, 500 per transaction, inline read models included): 100k
repositories in 200 organisations, descriptions from a small vocabulary, a tag on every tenth;
0.2% public; user `reader` is in a team granted read-only on 250 of them and owns nothing, so
they can read about 450. The search projection then catches up, and `--queries` searches
(terms of 2-9 characters: exact names, prefixes, words, substrings, misses) run as `reader`
and as a global admin; prints p50/p99/max in ms and how many the reader could read. On
PostgreSQL the tables are ANALYZEd after the fill (as autovacuum would be).

`--keep DIR` (SQLite) fills `DIR` the first time and reuses it afterwards (the same seeds, so
the same repositories and terms), to compare code changes on one log; `--rounds N` times the
searches N times over and prints each round's figures.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid

from bench_database import drop_database, fresh_database

from dockyard.bootstrap import registry_on
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.repository import PRIVATE, PUBLIC, Repository
from dockyard.domain.tag import Tag
from dockyard.domain.team import Team
from dockyard.projections.readable import CallerFacts
from dockyard.projections.repository_search import RepositorySearch
from dockyard.projections.runner import ProjectionRunner
from dockyard.projections.search_queries import SearchQueries

WORDS = ("api", "web", "worker", "cache", "proxy", "billing", "search", "auth", "gateway", "ingest", "report",
         "madrid", "barca", "lona", "payments", "ledger", "etl", "ml", "vision", "edge")


def fill(registry: Registry, count: int, rng: random.Random) -> tuple[float, list[str]]:
    started, names, batch = time.perf_counter(), [], []
    for i in range(count):
        org = f"org{i % 200}"
        name = f"{org}/{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
        repo = Repository(name=name, visibility=PUBLIC if i % 500 == 0 else PRIVATE,
                          description=" ".join(rng.sample(WORDS, 3)))
        batch.append(repo)
        names.append(name)
        if i % 10 == 0:
            tag = Tag.unborn(repository=name, name=f"v{i % 7}")
            tag.point_at("sha256:" + uuid.uuid4().hex * 2)
            batch.append(tag)
        if len(batch) >= 500:
            registry.save(*batch)
            batch = []
    registry.save(*batch)
    batch = []
    granted = rng.sample(names, 250)
    teams = {}
    for name in granted:
        org = name.split("/")[0]
        if org not in teams:
            teams[org] = Team(organization=org, name="readers")
            teams[org].add_member("reader")
        repo = registry.repository.get(Repository.create_id(name))
        repo.grant("readers", "read-only")
        batch.append(repo)
    registry.save(*batch, *teams.values())
    return count / (time.perf_counter() - started), names


def timed(queries: SearchQueries, facts: CallerFacts, terms: list[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (this process's: the SQL runs in it on SQLite) ms per search."""
    times, cpu = [], []
    for term in terms:
        started, cpu_started = time.perf_counter(), time.process_time()
        queries.search(facts, term, 20)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--repositories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--keep", help="SQLite: a directory to fill once and reuse")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(12)
    url, dropped = fresh_database(args.database_url)
    reuse = bool(args.keep) and os.path.exists(os.path.join(args.keep, "dockyard.db"))
    registry = registry_on(event_store_env(args.keep or tempfile.mkdtemp(prefix="dockyard-bench-"), url))
    try:
        if reuse:
            rate, folded = 0.0, 0.0
            with registry.dialect.reading(registry.recorder.datastore) as cursor:
                cursor.execute("SELECT name FROM repository_search ORDER BY id")
                names = [r["name"] for r in cursor.fetchall()]
        else:
            rate, names = fill(registry, args.repositories, rng)
        started = time.perf_counter()
        ProjectionRunner(registry, RepositorySearch(fts=registry.dialect.name == "sqlite")).catch_up()
        folded = time.perf_counter() - started
        if registry.dialect.name == "postgres":  # what autovacuum would have done after the bulk fill
            with registry.recorder.datastore.get_connection() as connection:
                connection.execute("ANALYZE")
        queries = SearchQueries(registry.recorder.datastore, registry.dialect)
        reader = queries.caller_facts(Principal("reader", "none"))
        admin = CallerFacts(Principal("root", "admin"))
        readable = len(queries.search(reader, "", 100_000))
        terms, rng = [], random.Random(13)  # its own seed: the same terms whether filled now or reused
        for _ in range(args.queries):
            name = rng.choice(names)
            terms.append(rng.choice([name.split("/")[1], name.split("/")[1][:4], rng.choice(WORDS),
                                     rng.choice(WORDS)[1:4], "zz" + uuid.uuid4().hex[:6], "ba"]))
        print(f"backend: {registry.dialect.name}; {args.repositories:,} repositories written at {rate:,.0f}/s; "
              f"search projection caught up in {folded:.1f} s; reader can read {readable}")
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}, load average {os.getloadavg()[0]:.1f}")
            for label, facts in (("reader", reader), ("global admin", admin)):
                timed(queries, facts, terms[:20])  # warm the caches
                wall, cpu = (sorted(x) for x in timed(queries, facts, terms))
                p99, cpu99 = (x[min(len(x) - 1, int(len(x) * 0.99))] for x in (wall, cpu))
                print(f"search as {label}: p50 {statistics.median(wall):.1f} ms, p99 {p99:.1f} ms, "
                      f"max {wall[-1]:.1f} ms; CPU p50 {statistics.median(cpu):.1f} ms, p99 {cpu99:.1f} ms "
                      f"({len(wall)} queries, 20 per page)")
    finally:
        registry.close()
        drop_database(args.database_url, dropped)


if __name__ == "__main__":
    main()
