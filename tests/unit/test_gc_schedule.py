"""The GC schedule in a serving process: the recorded cron schedule becomes the scheduler's `gc`
job (and follows changes); a tick runs GC, unless another process just ran it."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from dockyard.commands.gc import change_gc_settings, gc_runs
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.gc.schedule import GcSchedule
from tests.unit.gc_fixtures import env, registry, store, uploads  # noqa: F401


def test_recorded_schedule_becomes_the_gc_job(registry: Registry, uploads: UploadSessions) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)  # never started: jobs wait, nothing fires
    watch = GcSchedule(scheduler, uploads)
    watch.sync()
    assert scheduler.get_job("gc") is None  # no schedule recorded

    change_gc_settings(registry, "0 0 0 * * *", delete_untagged=False, grace_hours=1)
    watch.sync()
    trigger = scheduler.get_job("gc").trigger
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert fire == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # the lab's: every day at midnight

    change_gc_settings(registry, "30 3 * * *", delete_untagged=False, grace_hours=1)
    watch.sync()
    fire = scheduler.get_job("gc").trigger.get_next_fire_time(None, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert fire == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)

    change_gc_settings(registry, None, delete_untagged=False, grace_hours=1)
    watch.sync()
    assert scheduler.get_job("gc") is None


def test_a_tick_runs_gc_once(registry: Registry, uploads: UploadSessions) -> None:
    watch = GcSchedule(BackgroundScheduler(timezone=UTC), uploads)
    watch.run()
    assert len(gc_runs(registry)) == 1 and gc_runs(registry)[0]["startedBy"] == "system"
    watch.run()  # the same tick on another process: a run just started, so it skips
    assert len(gc_runs(registry)) == 1
