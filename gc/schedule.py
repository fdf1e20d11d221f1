"""The housekeeping a serving process runs on a timer (APScheduler, in a background thread):
the purge of abandoned upload sessions, and garbage collection on the recorded cron schedule.

Every worker process schedules the jobs. The purge is idempotent. GC runs once at a time
across processes and replicas (its lock): at each tick of the schedule one process runs it, and
the others find it running, or just run (`RECENT_RUN`), and skip. A changed schedule
(`PUT /api/v0/settings/gc`) reaches every process within `GC_WATCH_INTERVAL`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from dockyard.commands.gc import cron_trigger, gc_runs, gc_settings
from dockyard.commands.uploads import UploadSessions
from dockyard.gc.collector import GarbageCollector, GcAlreadyRunning
from dockyard.gc.upload_purge import purge_uploads

log = logging.getLogger("dockyard.gc")

# The first run waits this long (or one interval, if shorter) so a starting process serves first.
FIRST_RUN_DELAY = timedelta(minutes=1)
GC_WATCH_INTERVAL = timedelta(minutes=1)
RECENT_RUN = timedelta(seconds=30)


def purge_job(uploads: UploadSessions, older_than: timedelta) -> None:
    """One purge pass; failures are logged, never raised into the scheduler."""
    try:
        purged = purge_uploads(uploads, older_than)
    except Exception:
        log.exception("upload purge failed")
        return
    if purged:
        log.info("purged %d abandoned upload session(s) older than %s", len(purged), older_than)


class GcSchedule:
    """Keeps the scheduler's `gc` job in step with the recorded schedule."""

    def __init__(self, scheduler: BackgroundScheduler, uploads: UploadSessions) -> None:
        self.scheduler, self.uploads = scheduler, uploads
        self.schedule: str | None = None

    def sync(self) -> None:
        try:
            schedule = gc_settings(self.uploads.registry).schedule
            if schedule == self.schedule:
                return
            if self.scheduler.get_job("gc") is not None:
                self.scheduler.remove_job("gc")
            if schedule:
                self.scheduler.add_job(self.run, cron_trigger(schedule), id="gc", coalesce=True, max_instances=1)
            self.schedule = schedule
            log.info("GC schedule: %s", schedule or "none")
        except Exception:
            log.exception("reading the GC schedule failed")

    def run(self) -> None:
        registry = self.uploads.registry
        try:
            latest = gc_runs(registry, limit=1)
            now = datetime.fromtimestamp(self.uploads.clock(), UTC)
            if latest and now - datetime.fromisoformat(latest[0]["startedAt"]) < RECENT_RUN:
                return  # another process ran this tick
            GarbageCollector(registry, self.uploads.store, self.uploads.clock).run()
        except GcAlreadyRunning:
            log.info("scheduled GC skipped: a run is in progress")
        except Exception:
            log.exception("scheduled GC failed")


def start(uploads: UploadSessions, *, purge_age_hours: float, purge_interval_hours: float,
          gc_watch: timedelta | None = GC_WATCH_INTERVAL) -> BackgroundScheduler | None:
    """Start the housekeeping scheduler; None when every job is turned off (a purge interval of
    0 and no `gc_watch`)."""
    if purge_interval_hours <= 0 and gc_watch is None:
        return None
    scheduler = BackgroundScheduler(timezone=UTC)
    now = datetime.now(UTC)
    if purge_interval_hours > 0:
        interval = timedelta(hours=purge_interval_hours)
        scheduler.add_job(purge_job, "interval", args=(uploads, timedelta(hours=purge_age_hours)),
                          seconds=interval.total_seconds(), id="purge-uploads", coalesce=True, max_instances=1,
                          next_run_time=now + min(FIRST_RUN_DELAY, interval))
    if gc_watch is not None:
        watch = GcSchedule(scheduler, uploads)
        scheduler.add_job(watch.sync, "interval", seconds=gc_watch.total_seconds(), id="gc-watch",
                          coalesce=True, max_instances=1, next_run_time=now + min(FIRST_RUN_DELAY, gc_watch))
    scheduler.start()
    return scheduler
