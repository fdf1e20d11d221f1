"""The projection runner (projections/runner.py) on SQLite and PostgreSQL: batches fold with
their position in one transaction; a failing event stops the projection at its position; a
runner killed mid-batch resumes with nothing applied twice or skipped; on PostgreSQL exactly one
of two runner processes is active and the other takes over when it dies. Waits are by position.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.commands.registry import Registry
from dockyard.domain.repository import Repository
from dockyard.projections.runner import ProjectionFailed, ProjectionRunner, Recorded, retry_delay
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures
from tests.projection_worker import SeenProjection

ROOT = Path(__file__).resolve().parents[2]


def append(registry: Registry, count: int, prefix: str = "ns/r") -> int:
    """Append `count` events (new repositories, 100 per transaction); returns the head."""
    start = registry.recorder.max_notification_id() or 0
    for i in range(0, count, 100):
        registry.save(*[Repository(name=f"{prefix}{start + i + j}") for j in range(min(100, count - i))])
    return registry.recorder.max_notification_id() or 0


def seen(registry: Registry) -> list[int]:
    with registry.dialect.reading(registry.recorder.datastore) as cursor:
        cursor.execute("SELECT position FROM seen ORDER BY position")
        return [r["position"] for r in cursor.fetchall()]


def positions(registry: Registry) -> list[int]:
    return [n.id for n in registry.recorder.select_notifications(0, 1_000_000, inclusive_of_start=False)]


def test_catch_up_in_batches_then_follow(registry: Registry) -> None:
    head = append(registry, 450)
    runner = ProjectionRunner(registry, SeenProjection(), batch=100)
    # Step 1: a one-shot catch-up folds every event once, in batches.
    assert runner.catch_up() == 450
    assert seen(registry) == positions(registry)
    assert runner.positions.position("seen") == head
    # Step 2: following, new events arrive without anyone calling it; wait by position.
    runner.start()
    try:
        head = append(registry, 30)
        assert runner.wait(head, timeout=30)
        assert seen(registry) == positions(registry)
    finally:
        runner.stop()


def test_a_following_leader_gathers_appends_into_one_batch(registry: Registry) -> None:  # noqa: F811
    # After a fold that moved its position the leader pauses (`batch_interval`), so the appends
    # that arrive meanwhile go into its next transaction together instead of one each.
    sizes: list[int] = []

    class Sizes(SeenProjection):
        def apply(self, dialect: Any, cursor: Any, events: Sequence[Recorded]) -> None:
            super().apply(dialect, cursor, events)
            sizes.append(len(events))

    class Pause(threading.Event):
        """The runner's stop event; its first batch pause sees five appends, one save each."""

        def wait(self, timeout: float | None = None) -> bool:
            if timeout == 60.0 and sizes == [3]:
                for i in range(5):
                    append(registry, 1, prefix=f"gather{i}/r")
                return super().wait(0)
            return super().wait(timeout)

    head = append(registry, 3)
    runner = ProjectionRunner(registry, Sizes(), batch_interval=60.0)
    runner._stop = Pause()
    runner.start()
    try:
        assert runner.wait(head + 5, timeout=30)
        assert sizes == [3, 5]
        assert seen(registry) == positions(registry)
    finally:
        runner.stop()


def test_a_failing_event_stops_the_projection_at_its_position(registry: Registry) -> None:
    append(registry, 250)
    bad = positions(registry)[149]
    runner = ProjectionRunner(registry, SeenProjection(fail_at=bad), batch=100)
    with pytest.raises(ProjectionFailed) as failure:
        runner.catch_up()
    # The batch holding the bad event is rolled back entirely: the position stays before it.
    first_of_batch = positions(registry)[100]
    assert failure.value.position == first_of_batch
    row = runner.positions.get("seen")
    assert row["position"] == positions(registry)[99] and row["failed_position"] == first_of_batch
    assert "cannot fold event" in row["error"]
    assert seen(registry) == positions(registry)[:100]
    assert not runner.wait(positions(registry)[-1], timeout=5)  # fails fast: the projection is stuck
    # Once the projection is mended, it resumes exactly there.
    mended = ProjectionRunner(registry, SeenProjection(), batch=100)
    mended.catch_up()
    assert seen(registry) == positions(registry)
    assert mended.positions.get("seen")["error"] is None


def test_the_retry_backoff_doubles_up_to_its_ceiling() -> None:
    assert [retry_delay(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert retry_delay(10_000) == 300 and retry_delay(3, initial=0.5, maximum=1) == 1


def _failed(runner: ProjectionRunner) -> bool:
    row = runner.positions.get(runner.name)
    return row is not None and row["error"] is not None


def test_a_failed_projection_resumes_by_itself_once_the_cause_is_gone(registry: Registry) -> None:  # noqa: F811
    """No restart: the following runner keeps trying the failing batch after a short backoff
    (configured here in milliseconds); it never skips it, and folds it exactly once when it can."""
    append(registry, 250)
    bad, first_of_batch = positions(registry)[149], positions(registry)[100]
    projection = SeenProjection(fail_at=bad)
    runner = ProjectionRunner(registry, projection, batch=100, retry_initial=0.01, retry_max=0.05,
                              takeover_interval=0.01)
    runner.start()
    try:
        _until(lambda: runner.attempts >= 3, "three failed tries in a row")
        row = runner.positions.get("seen")
        assert row["failed_position"] == first_of_batch and "cannot fold event" in row["error"]
        assert row["retry_at"] is not None and runner.state == "failed"
        assert seen(registry) == positions(registry)[:100]  # stuck before the batch, nothing skipped
        projection.fail_at = None  # the cause goes away
        _until(lambda: runner.positions.position("seen") == positions(registry)[-1], "the runner to resume")
        assert seen(registry) == positions(registry)  # each event once (the primary key forbids twice)
        row = runner.positions.get("seen")
        assert row["error"] is None and row["failed_position"] is None and row["retry_at"] is None
        _until(lambda: runner.attempts == 0 and runner.state == "running", "the backoff to start over")
        head = append(registry, 10)  # and it goes on following
        _until(lambda: runner.positions.position("seen") == head, "the new events")
    finally:
        runner.stop()


def test_retry_now_brings_the_next_try_forward(registry: Registry) -> None:  # noqa: F811
    """With an hour's backoff ahead, an admin's request (any process: it is a row update) makes
    the leading runner try again at once."""
    append(registry, 50)
    projection = SeenProjection(fail_at=positions(registry)[10])
    runner = ProjectionRunner(registry, projection, batch=100, retry_initial=3600, retry_max=3600,
                              takeover_interval=0.01)
    assert not runner.positions.request_retry("seen")  # not failed: nothing to bring forward
    runner.start()
    try:
        _until(lambda: runner.attempts == 1 and runner.positions.get("seen")["retry_at"] is not None,
               "the failure and its scheduled retry")
        scheduled = datetime.fromisoformat(runner.positions.get("seen")["retry_at"])
        assert scheduled - datetime.now(UTC) > timedelta(minutes=50)
        assert seen(registry) == []
        projection.fail_at = None
        assert runner.positions.request_retry("seen")
        _until(lambda: runner.positions.position("seen") == positions(registry)[-1], "the retry")
        assert seen(registry) == positions(registry)
        assert runner.attempts == 0 or runner.positions.get("seen")["error"] is None
    finally:
        runner.stop()


def _spawn(place: tuple[Path, str | None], *extra: str) -> subprocess.Popen[str]:
    data_dir, database_url = place
    return subprocess.Popen([sys.executable, "-m", "tests.projection_worker", str(data_dir), database_url or "-",
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _until(predicate, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def test_killed_mid_batch_resumes_without_duplicates_or_gaps(registry: Registry,
                                                              place: tuple[Path, str | None]) -> None:
    append(registry, 1000)
    runner = ProjectionRunner(registry, SeenProjection(), batch=100)  # creates the tables
    worker = _spawn(place, "--pause", "0.3", "--batch", "100")
    try:
        # Step 1: the worker commits a few batches, then dies while one is open.
        _until(lambda: runner.positions.position("seen") >= positions(registry)[199], "two batches")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        worker.kill()
    stopped_at = runner.positions.position("seen")
    assert stopped_at < positions(registry)[-1]
    assert seen(registry) == [p for p in positions(registry) if p <= stopped_at]
    # Step 2: a new runner finishes: every event exactly once (the primary key forbids twice).
    runner.catch_up()
    assert seen(registry) == positions(registry)


def test_one_active_runner_and_takeover(registry: Registry, place: tuple[Path, str | None], backend: str) -> None:
    ProjectionRunner(registry, SeenProjection())  # creates the tables
    first = _spawn(place)
    assert first.stdout.readline()  # one at a time: concurrent CREATE ... IF NOT EXISTS can clash on PostgreSQL
    second = _spawn(place)
    try:
        assert second.stdout.readline()
        head = append(registry, 200)
        runner_positions = ProjectionRunner(registry, SeenProjection()).positions
        assert runner_positions.wait("seen", head, timeout=30)
        with registry.dialect.reading(registry.recorder.datastore) as cursor:
            cursor.execute("SELECT DISTINCT pid FROM seen")
            writers = {r["pid"] for r in cursor.fetchall()}
        assert len(writers) == 1  # exactly one runner folded
        leader = first if writers == {first.pid} else second
        standby = second if leader is first else first
        # Step 2: the leader dies; the standby takes over and folds what comes next.
        leader.kill()
        leader.wait()
        head = append(registry, 100, prefix="after/r")
        assert runner_positions.wait("seen", head, timeout=60)
        with registry.dialect.reading(registry.recorder.datastore) as cursor:
            cursor.execute(registry.dialect.sql("SELECT DISTINCT pid FROM seen WHERE position > %(p)s"),
                           {"p": head - 100})
            assert {r["pid"] for r in cursor.fetchall()} == {standby.pid}
        assert seen(registry) == positions(registry)
    finally:
        for p in (first, second):
            p.kill()
            p.wait()


def test_a_lost_connection_is_retried_not_fatal(registry: Registry, backend: str) -> None:  # noqa: F811
    if backend != "postgres":
        pytest.skip("the leader's own connection (advisory lock, LISTEN) is PostgreSQL's")
    runner = ProjectionRunner(registry, SeenProjection(), takeover_interval=0.1)
    runner.start()
    try:
        assert runner.wait(append(registry, 10), timeout=30)
        _until(lambda: runner._leadership.connection is not None, "the lead")
        pid = runner._leadership.connection.info.backend_pid
        # The database drops the leader's session (as on a failover or an admin's kill).
        with registry.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_terminate_backend(%(pid)s)", {"pid": pid})
        assert runner.wait(append(registry, 10), timeout=30)
        assert seen(registry) == positions(registry)
    finally:
        runner.stop()


def test_a_standby_stops_without_sitting_out_its_wait(registry: Registry, backend: str) -> None:  # noqa: F811
    """A PostgreSQL standby waits for the lead in the advisory lock's queue; stopping it ends
    that wait at once (a stopping replica does not sit out the rest of it, per runner)."""
    if backend != "postgres":
        pytest.skip("the lock's queue is PostgreSQL's; an SQLite standby sleeps on the stop event")
    leader = ProjectionRunner(registry, SeenProjection(), takeover_interval=0.1)
    leader.start()
    standby = ProjectionRunner(registry, SeenProjection(), takeover_interval=30.0)
    try:
        _until(lambda: leader._leadership.connection is not None, "the lead")
        standby.start()

        def queued() -> bool:
            with registry.dialect.reading(registry.recorder.datastore) as cursor:
                cursor.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_lock%'")
                return cursor.fetchone()["n"] > 0

        _until(queued, "the standby in the lock's queue")
        started = time.monotonic()
        standby.stop(timeout=30)
        assert time.monotonic() - started < 5, "the standby sat out its wait"
        assert standby.state == "stopped"
    finally:
        standby.stop()
        leader.stop()
