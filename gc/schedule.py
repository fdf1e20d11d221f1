"""The housekeeping a serving process runs on a timer (APScheduler, in a background thread).

Today that is the purge of abandoned upload sessions; the GC sweep joins it when it lands.
Every worker process schedules the jobs: they are idempotent, so running one twice at once
costs only the duplicate listing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from dockyard.commands.uploads import UploadSessions

log = logging.getLogger("dockyard.gc")

# The first run waits this long (or one interval, if shorter) so a starting process serves first.
FIRST_RUN_DELAY = timedelta(minutes=1)


def purge_uploads(uploads: UploadSessions, older_than: timedelta) -> None:
    """One purge pass; failures are logged, never raised into the scheduler."""
    try:
        purged = uploads.purge(older_than)
    except Exception:
        log.exception("upload purge failed")
        return
    if purged:
        log.info("purged %d abandoned upload session(s) older than %s", len(purged), older_than)


def start(uploads: UploadSessions, *, purge_age_hours: float, purge_interval_hours: float) -> BackgroundScheduler | None:
    """Start the housekeeping scheduler; None when every job is turned off."""
    if purge_interval_hours <= 0:
        return None
    interval = timedelta(hours=purge_interval_hours)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(purge_uploads, "interval", args=(uploads, timedelta(hours=purge_age_hours)),
                      seconds=interval.total_seconds(), id="purge-uploads", coalesce=True, max_instances=1,
                      next_run_time=datetime.now(UTC) + min(FIRST_RUN_DELAY, interval))
    scheduler.start()
    return scheduler
