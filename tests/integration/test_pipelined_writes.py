"""PostgreSQL saves are sent in two pipelined flushes (`PostgresRegistryRecorder.insert_events`):
BEGIN, the events table's EXCLUSIVE lock, NOTIFY, the insert and the chain's head in one; a
fence's reads; then the chain rows, the read-model rows and COMMIT in one more. What must hold:

- concurrent saves from two processes (with and without fences) commit in notification-id
  order: a runner following the log sees each event exactly once, the ids of one save are
  contiguous, and the audit chain verifies over all of them;
- concurrent saves of one process share transactions (group commit); in one group, a version
  conflict or a refusing fence fails only its own save, and a fence sees the read-model rows
  of the saves before it;
- a version conflict is raised to its own save and records nothing, a fence that refuses
  rolls everything back, and the connection serves the next saves (more than psycopg's
  prepare threshold of 5 in a row, where a stale prepared statement would show).

    python -m tests.integration.test_pipelined_writes DATA_DIR DATABASE_URL PREFIX SAVES
is the writer process of the first test (4 threads, SAVES saves each).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from dockyard.bootstrap import registry_on
from dockyard.commands.persistence import PostgresRegistryRecorder, _Save, event_store_env
from dockyard.commands.registry import Registry
from dockyard.domain.repository import Repository
from dockyard.projections import chain
from dockyard.projections.dialect import Dialect
from dockyard.projections.runner import ProjectionRunner
from tests.projection_worker import SeenProjection

ROOT = Path(__file__).resolve().parents[2]
THREADS = 4


@pytest.fixture
def place(postgres: Any, tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "data", postgres.create()


@pytest.fixture
def registry(place: tuple[Path, str]) -> Any:
    app = registry_on(event_store_env(str(place[0]), place[1]))
    yield app
    app.close()


def _exists_fence(name: str) -> Any:
    """A fence that reads the read model through the transaction's cursor (under the lock)."""

    def fence(dialect: Dialect, cursor: Any) -> None:
        cursor.execute("SELECT COUNT(*) AS n FROM repositories WHERE name = %(name)s", {"name": name})
        assert cursor.fetchall()[0]["n"] == 0  # not yet: its read-model row comes after the fence

    return fence


def write(registry: Registry, prefix: str, saves: int) -> list[list[int]]:
    """`THREADS` threads, each `saves` saves of one or three new repositories (every other one
    with a fence); returns the notification ids of each save."""
    out: list[list[int]] = []
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            for i in range(saves):
                names = [f"{prefix}/t{t}-{i}-{k}" for k in range(1 + 2 * (i % 2))]
                recordings = registry.save(*[Repository(name=n) for n in names],
                                           fence=_exists_fence(names[0]) if i % 2 == 0 else None)
                out.append([r.notification.id for r in recordings])
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return out


def _positions(registry: Registry) -> list[int]:
    return [n.id for n in registry.recorder.select_notifications(0, 1_000_000, inclusive_of_start=False)]


def _seen(registry: Registry) -> list[int]:
    with registry.dialect.reading(registry.datastore) as cursor:
        cursor.execute("SELECT position FROM seen ORDER BY position")
        return [r["position"] for r in cursor.fetchall()]


def _chain_verdict(registry: Registry) -> chain.Verdict:
    table = f"{registry.datastore.schema}.{registry.recorder.events_table_name}"
    return chain.verify(chain.read_events(registry.dialect, registry.datastore, table),
                        chain.read_chain(registry.dialect, registry.datastore), [], None)


def test_concurrent_saves_from_two_processes_are_seen_once_in_id_order(registry: Registry,
                                                                       place: tuple[Path, str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Step 1: a runner follows the log while two writer processes and this one save at once.
    runner = ProjectionRunner(registry, SeenProjection(), batch=50)
    transactions: list[int] = []
    recorder = registry.recorder
    assert isinstance(recorder, PostgresRegistryRecorder)
    plain = recorder._transaction

    def counted(saves: list[Any], *, pipelined: bool) -> None:
        transactions.append(len(saves))
        plain(saves, pipelined=pipelined)

    monkeypatch.setattr(recorder, "_transaction", counted)
    runner.start()
    try:
        writers = [subprocess.Popen([sys.executable, "-m", "tests.integration.test_pipelined_writes",
                                     str(place[0]), place[1], f"p{n}", "40"], cwd=ROOT, stdout=subprocess.PIPE,
                                    text=True) for n in range(2)]
        mine = write(registry, "me", 20)
        for w in writers:
            out, _ = w.communicate(timeout=300)
            assert w.returncode == 0, out
        head = registry.recorder.max_notification_id() or 0
        assert runner.wait(head, timeout=60)
        # Step 2: every event was seen exactly once (the primary key forbids twice), none skipped.
        assert _seen(registry) == _positions(registry)
    finally:
        runner.stop()
    # Step 3: this process's concurrent saves shared transactions (group commit), and each
    # save's ids are contiguous (one insert under the lock).
    assert sum(transactions) == THREADS * 20
    assert len(transactions) < THREADS * 20, transactions
    for ids in mine:
        assert ids == list(range(ids[0], ids[0] + len(ids)))
    names = 2 * (2 * THREADS * 40 + THREADS * 20)  # 1 or 3 repositories per save, alternately: 2 on average
    assert len(_positions(registry)) == names
    with registry.dialect.reading(registry.datastore) as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM repositories")
        assert cursor.fetchall()[0]["n"] == names  # every save's read-model rows
    # Step 4: the audit chain covers every position, in log order.
    verdict = _chain_verdict(registry)
    assert verdict.intact, verdict.finding
    assert verdict.events == names


def test_a_conflict_or_a_refusing_fence_records_nothing_and_the_next_saves_work(registry: Registry) -> None:
    class Refused(Exception):
        pass

    def refuse(dialect: Dialect, cursor: Any) -> None:
        cursor.execute("SELECT 1 AS one")
        assert cursor.fetchall()[0]["one"] == 1
        raise Refused

    for i in range(8):  # past psycopg's prepare threshold (5) on the same pooled connections
        before = _positions(registry)
        # A version conflict: the same new repository twice. Only the second save fails.
        registry.save(Repository(name=f"ns/dup{i}"))
        with pytest.raises(IntegrityError):
            registry.save(Repository(name=f"ns/dup{i}"), Repository(name=f"ns/other{i}"))
        # A fence that refuses after reading: the whole transaction rolls back.
        with pytest.raises(Refused):
            registry.save(Repository(name=f"ns/fenced{i}"), fence=refuse)
        after = _positions(registry)
        assert len(after) == len(before) + 1
        with registry.dialect.reading(registry.datastore) as cursor:
            cursor.execute("SELECT name FROM repositories WHERE name IN (%(a)s, %(b)s)",
                           {"a": f"ns/other{i}", "b": f"ns/fenced{i}"})
            assert cursor.fetchall() == []
        # The next save, with a fence that reads, works on the same pool.
        registry.save(Repository(name=f"ns/next{i}"), fence=_exists_fence(f"ns/next{i}"))
    verdict = _chain_verdict(registry)
    assert verdict.intact, verdict.finding
    assert verdict.events == 16


def _save_of(registry: Registry, *aggregates: Any, fence: Any = None) -> _Save:
    """What `registry.save(*aggregates, fence=fence)` hands the recorder."""
    events = [e for a in aggregates for e in a.collect_events()]
    return _Save([registry.mapper.to_stored_event(e) for e in events], events, fence)


def test_in_one_group_a_conflict_or_a_refusal_fails_only_its_own_save(registry: Registry) -> None:
    class Refused(Exception):
        pass

    def refuse(dialect: Dialect, cursor: Any) -> None:
        raise Refused

    recorder = registry.recorder
    assert isinstance(recorder, PostgresRegistryRecorder)
    # Step 1: four saves in one group: the second repeats the first's new aggregate (a version
    # conflict), the third's fence refuses, the fourth's fence reads the first's read-model row.
    def sees_a(dialect: Dialect, cursor: Any) -> None:
        cursor.execute("SELECT COUNT(*) AS n FROM repositories WHERE name = 'g/a'")
        assert cursor.fetchall()[0]["n"] == 1  # written earlier in the same transaction

    a, b = _save_of(registry, Repository(name="g/a")), _save_of(registry, Repository(name="g/a"))
    c = _save_of(registry, Repository(name="g/c"), fence=refuse)
    d = _save_of(registry, Repository(name="g/d"), Repository(name="g/e"), fence=sees_a)
    recorder._commit_group([a, b, c, d])
    # Step 2: each save has its own outcome; only a and d are recorded, with contiguous ids.
    assert a.outcome() and len(d.outcome()) == 2
    with pytest.raises(IntegrityError):
        b.outcome()
    with pytest.raises(Refused):
        c.outcome()
    assert _positions(registry) == [*a.outcome(), *d.outcome()]
    with registry.dialect.reading(registry.datastore) as cursor:
        cursor.execute("SELECT name FROM repositories ORDER BY name")
        assert [r["name"] for r in cursor.fetchall()] == ["g/a", "g/d", "g/e"]
    verdict = _chain_verdict(registry)
    assert verdict.intact and verdict.events == 3, verdict.finding


def main() -> None:
    data_dir, database_url, prefix, saves = sys.argv[1:5]
    app = registry_on(event_store_env(data_dir, database_url))
    try:
        write(app, prefix, int(saves))
    finally:
        app.close()


if __name__ == "__main__":
    main()
