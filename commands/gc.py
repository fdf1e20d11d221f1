"""GC commands and queries: the policy (schedule, deleteUntagged, grace period) and the runs.

The schedule is a cron expression as DTR's lab writes it — six fields, seconds first
(`0 0 0 * * *`: every day at midnight) — or the usual five (minute first); APScheduler's
`CronTrigger` parses both here, so a bad expression is refused before any event is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from apscheduler.triggers.cron import CronTrigger

import dockyard.domain.gc_run  # noqa: F401 - the event classes the topics resolve to
from dockyard.commands.registry import Registry
from dockyard.domain.errors import InvalidRequest
from dockyard.domain.gc_run import GcRun
from dockyard.domain.gc_settings import GcSettings

_FIELDS6 = ("second", "minute", "hour", "day", "month", "day_of_week")
_FIELDS5 = _FIELDS6[1:]


def cron_trigger(schedule: str) -> CronTrigger:
    """The trigger for a five- or six-field cron expression (UTC); `InvalidRequest` naming the
    field that is wrong otherwise."""
    fields = schedule.split()
    if len(fields) not in (5, 6):
        raise InvalidRequest(f"schedule must have 5 or 6 fields (seconds first when 6), not {len(fields)}",
                             {"schedule": schedule})
    names = _FIELDS6 if len(fields) == 6 else _FIELDS5
    for name, value in zip(names, fields, strict=True):
        try:  # each field alone, so the error names the one that is wrong
            CronTrigger(**{name: value}, timezone=UTC)
        except ValueError as exc:
            raise InvalidRequest(f"schedule field '{name}' is invalid: {value!r} ({exc})",
                                 {"schedule": schedule, "field": name}) from None
    try:
        return CronTrigger(**dict(zip(names, fields, strict=True)), timezone=UTC)
    except ValueError as exc:
        raise InvalidRequest(f"schedule is invalid: {exc}", {"schedule": schedule}) from None


def next_run(schedule: str | None, now: datetime | None = None) -> datetime | None:
    if not schedule:
        return None
    now = now or datetime.now(UTC)
    return cron_trigger(schedule).get_next_fire_time(None, now)


@dataclass(frozen=True)
class GcPolicy:
    schedule: str | None
    delete_untagged: bool
    grace_hours: float


def gc_settings(registry: Registry) -> GcPolicy:
    """The recorded GC policy (defaults when never set: no schedule, keep untagged, 1 h grace)."""
    aggregate = registry.load(GcSettings, GcSettings.create_id()) or GcSettings()
    return GcPolicy(aggregate.schedule, aggregate.delete_untagged, aggregate.grace_hours)


def change_gc_settings(registry: Registry, schedule: str | None, delete_untagged: bool,
                       grace_hours: float) -> GcPolicy:
    """Record a new GC policy (`GcSettings.Changed`), after checking the cron expression."""
    schedule = " ".join(schedule.split()) if schedule and schedule.strip() else None
    if schedule is not None:
        cron_trigger(schedule)

    def command() -> None:
        aggregate = registry.load(GcSettings, GcSettings.create_id()) or GcSettings()
        if aggregate.change(schedule, delete_untagged, grace_hours) or aggregate.version == 1:
            registry.save(aggregate)

    registry.retrying(command)
    return gc_settings(registry)


def gc_runs(registry: Registry, limit: int | None = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first: state (running, done, failed or abandoned), counts, bytes
    freed, errors (from the log)."""
    topics = ["dockyard.GcRun.Started", "dockyard.GcRun.Finished", "dockyard.GcRun.Abandoned"]
    runs: dict[str, dict[str, Any]] = {}
    start = 0
    while batch := registry.recorder.select_notifications(start, 1000, topics=topics, inclusive_of_start=False):
        for n in batch:
            e: Any = registry.mapper.to_domain_event(n)
            run_id = str(e.originator_id)
            if n.topic == "dockyard.GcRun.Started":
                runs[run_id] = {"id": run_id, "state": "running", "position": e.position, "dryRun": e.dry_run,
                                "graceSeconds": e.grace_seconds, "deleteUntagged": e.delete_untagged,
                                "startedAt": e.timestamp.isoformat(), "startedBy": e.actor}
            elif n.topic == "dockyard.GcRun.Finished" and run_id in runs:
                runs[run_id].update(state="failed" if e.errors else "done", finishedAt=e.timestamp.isoformat(),
                                    candidates=e.candidates, deleted=e.deleted, kept=e.kept,
                                    bytesFreed=e.bytes_freed, errors=e.errors,
                                    durationSeconds=e.duration_seconds)
            elif n.topic == "dockyard.GcRun.Abandoned" and run_id in runs:
                runs[run_id].update(state="abandoned", finishedAt=e.timestamp.isoformat(), errors=[e.reason])
        start = batch[-1].id
    ordered = sorted(runs.values(), key=lambda r: r["startedAt"], reverse=True)
    return ordered if limit is None else ordered[:limit]


def gc_run(registry: Registry, run_id: str) -> dict[str, Any] | None:
    """One run as `gc_runs` shows it; None when no run has that id."""
    return next((run for run in gc_runs(registry, None) if run["id"] == run_id), None)


def abandon_open_runs(registry: Registry, reason: str) -> list[str]:
    """Record `GcRun.Abandoned` for every run that started and neither finished nor was
    abandoned; returns their ids. Only for a caller holding the GC lock: then no run is in
    progress anywhere, so an open run's process died (a crash, a kill, a lost connection)."""
    abandoned = []
    for run in gc_runs(registry, None):
        if run["state"] != "running":
            continue
        aggregate = registry.load(GcRun, UUID(run["id"]))
        if aggregate is not None and aggregate.abandon(reason):
            registry.save(aggregate)
            abandoned.append(run["id"])
    return abandoned
