"""Purging abandoned upload sessions (Distribution's upload purging): housekeeping of storage
that no event names, beside the GC of blobs. Sessions live in storage (`commands.uploads`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dockyard.commands.uploads import UploadSessions


def purge_uploads(sessions: UploadSessions, older_than: timedelta, *, now: datetime | None = None,
                  dry_run: bool = False) -> list[str]:
    """Delete the sessions started more than `older_than` before `now` (the sessions' clock by
    default); returns their ids, sorted.

    Idempotent, so every process may run it. A session whose start cannot be read is left
    alone (see `UploadSessions.started_at`).
    """
    cutoff = (now or datetime.fromtimestamp(sessions.clock(), UTC)) - older_than
    stale = []
    for upload_id in sessions.session_ids():
        started = sessions.started_at(upload_id)
        if started is not None and started < cutoff:
            stale.append(upload_id)
            if not dry_run:
                sessions.discard(upload_id)
    return stale
