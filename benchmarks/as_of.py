"""`?at=` latency on a long log: the whole log folded per request against only the events of
the repository asked about (`projections.as_of`), on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/as_of.py [--database-url URL] [--repositories 2000] [--moves 48]
        [--requests 50] [--whole 5]

Fills a fresh log through the write side (`Registry.save`, 500 aggregates per transaction):
`--repositories` repositories in 20 organisations, each with a team of 5 of 100 users granted
on it, and one tag moved `--moves` times per repository (about 100k events by default), then
catches the audit trail up. Then, for `--requests` random (position, repository, user) triples (the first `--whole` of
them also with the whole log folded: that takes seconds each),
times what `GET /api/v0/accounts/{user}/access?repository=…&at=…` and `GET …/{repository}?at=…`
do after the position is resolved: fold the past (`AsOf.at`, whole or scoped to the
repository and the user) and read the repository, its tags and the user's access facts from
it. Prints p50/p99/max in ms for each and checks both give the same answers.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from typing import Any

from bench_database import drop_database, fresh_database

from dockyard.bootstrap import registry_on
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.domain.account import Organization, User
from dockyard.domain.repository import Repository
from dockyard.domain.tag import Tag
from dockyard.domain.team import Team
from dockyard.projections.as_of import AsOf, PastState
from dockyard.projections.audit_trail import AuditTrail
from dockyard.projections.runner import ProjectionRunner

ORGANIZATIONS = 20
USERS = 100


def fill(registry: Registry, repositories: int, moves: int, rng: random.Random) -> list[str]:
    users = [User(name=f"user{i:03d}", password_hash="x", role="none") for i in range(USERS)]
    orgs = [Organization(name=f"org{i:02d}") for i in range(ORGANIZATIONS)]
    teams = []
    for org in orgs:
        team = Team(organization=org.name, name="dev")
        for user in rng.sample(users, 5):
            team.add_member(user.name)
        teams.append(team)
    registry.save(*users, *orgs, *teams)
    names, batch = [], []
    for i in range(repositories):
        repo = Repository(name=f"org{i % ORGANIZATIONS:02d}/app-{i}")
        repo.grant("dev", rng.choice(("read-only", "read-write")))
        names.append(repo.name)
        batch.append(repo)
        if len(batch) >= 500:
            registry.save(*batch)
            batch = []
    registry.save(*batch)
    tags = [Tag.unborn(repository=name, name="latest") for name in names]
    for _ in range(moves):
        for start in range(0, len(tags), 500):
            chunk = tags[start:start + 500]
            for tag in chunk:
                tag.point_at("sha256:" + uuid.uuid4().hex * 2)
            registry.save(*chunk)
    return names


def answers(state: PastState, repository: str, user: str) -> Any:
    return (state.registry_view.repository(repository), state.registry_view.tag_rows(repository),
            state.identity_view.user(user), state.identity_view.repository_facts(user, repository))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--repositories", type=int, default=2000)
    parser.add_argument("--moves", type=int, default=48)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--whole", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(12)
    url, dropped = fresh_database(args.database_url)
    registry = registry_on(event_store_env(tempfile.mkdtemp(prefix="dockyard-bench-"), url))
    try:
        started = time.perf_counter()
        names = fill(registry, args.repositories, args.moves, rng)
        head = registry.recorder.max_notification_id() or 0
        filled = time.perf_counter() - started
        ProjectionRunner(registry, AuditTrail()).catch_up()
        if registry.dialect.name == "postgres":  # what autovacuum would have done after the bulk fill
            with registry.recorder.datastore.get_connection() as connection:
                connection.execute("ANALYZE")
        print(f"backend: {registry.dialect.name}; {head:,} events written in {filled:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f}")
        as_of = AsOf(registry, registry.recorder.datastore, registry.dialect)
        cases = [(rng.randint(head // 2, head), rng.choice(names), f"user{rng.randrange(USERS):03d}")
                 for _ in range(args.requests)]
        for label, scoped in (("scoped to the repository", True), ("whole log", False)):
            ms = []
            for position, repository, user in cases if scoped else cases[:args.whole]:
                t0 = time.perf_counter()
                state = as_of.at(position, repository, (user,)) if scoped else as_of.at(position)
                found = answers(state, repository, user)
                ms.append((time.perf_counter() - t0) * 1000)
                assert found[0] is not None and found[1]
            ms.sort()
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(f"?at= fold + answers, {label}: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, "
                  f"max {ms[-1]:.1f} ms ({len(ms)} requests; load average {os.getloadavg()[0]:.1f})")
        for position, repository, user in cases[:args.whole]:  # the same answers either way
            assert answers(as_of.at(position, repository, (user,)), repository, user) == answers(
                as_of.at(position), repository, user)
    finally:
        registry.close()
        drop_database(args.database_url, dropped)


if __name__ == "__main__":
    main()
