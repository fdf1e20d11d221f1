"""One garbage-collection run, online: mark at P, plan, sweep blob by blob, record it all.

    collector = GarbageCollector(registry, store)
    report = collector.run(dry_run=False)          # GcAlreadyRunning if another run holds the lock

Exactly one run at a time across processes and replicas sharing a database: a PostgreSQL
session advisory lock, an `flock` beside the SQLite file (`projections.runner.Leadership`).
A run is a `GcRun` aggregate: `Started` (P, policy), a `BlobCollected` per blob deleted (each
in the transaction that deleted it), `Finished` (counts, bytes freed, errors, duration). A
storage error is logged and counted; the blob stays recorded as present, and the next run
tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError

from dockyard.commands.gc import gc_settings
from dockyard.commands.registry import Registry
from dockyard.domain.blob_link import BlobLink
from dockyard.domain.errors import Conflict
from dockyard.domain.gc_run import GcRun
from dockyard.gc.mark import mark
from dockyard.gc.sweep import DELETE, Catchup, Decision, Kept, StorageFailed, deletion_fence, plan, stored_digests
from dockyard.projections.runner import Leadership
from dockyard.storage import BlobStore

log = logging.getLogger("dockyard.gc")

# How many orphans (stored blobs no event names) one run records as seen; the rest wait a run.
MAX_ORPHANS_RECORDED = 10_000
MAX_YIELD_SECONDS = 0.05


class GcAlreadyRunning(Conflict):
    """A garbage collection is already running."""


@dataclass
class Report:
    """What a run did (or, dry, would do)."""

    run_id: str
    position: int
    dry_run: bool
    candidates: int = 0
    deleted: int = 0
    kept: int = 0
    bytes_freed: int = 0
    errors: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    mark_seconds: float = 0.0
    decisions: list[Decision] = field(default_factory=list)

    def as_dict(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.run_id, "position": self.position, "dryRun": self.dry_run, "candidates": self.candidates,
            "deleted": self.deleted, "kept": self.kept, "bytesFreed": self.bytes_freed, "errors": self.errors,
            "durationSeconds": round(self.duration_seconds, 3), "markSeconds": round(self.mark_seconds, 3)}
        if explain:
            out["blobs"] = [d.as_dict() for d in self.decisions]
        return out


Progress = Callable[[str, int, int], None]  # (phase, done, total)


class GarbageCollector:
    def __init__(self, registry: Registry, store: BlobStore, clock: Callable[[], float] = time.time) -> None:
        self.registry, self.store, self.clock = registry, store, clock

    def run(self, *, dry_run: bool = False, grace_hours: float | None = None,
            delete_untagged: bool | None = None, progress: Progress | None = None) -> Report:
        """Run once; the policy defaults to the recorded GC settings. `GcAlreadyRunning` (409)
        if a run is in progress anywhere."""
        lock = Leadership(self.registry, "gc")
        if not lock.try_acquire():
            raise GcAlreadyRunning()
        try:
            return self._run(dry_run, grace_hours, delete_untagged, progress or (lambda *_: None))
        finally:
            if lock.connection is not None:
                # Unlock before closing: the server ends a closed session (and frees its advisory
                # lock) asynchronously, so a run right after this one could still find it held.
                lock.connection.execute("SELECT pg_advisory_unlock_all()")
            lock.release()

    def _run(self, dry_run: bool, grace_hours: float | None, delete_untagged: bool | None,
             progress: Progress) -> Report:
        started = time.monotonic()
        settings = gc_settings(self.registry)
        grace = timedelta(hours=settings.grace_hours if grace_hours is None else grace_hours)
        untagged = settings.delete_untagged if delete_untagged is None else delete_untagged
        position = self.registry.recorder.max_notification_id() or 0
        run = GcRun(position=position, dry_run=dry_run, grace_seconds=grace.total_seconds(),
                    delete_untagged=untagged)
        self.registry.save(run)
        report = Report(str(run.id), position, dry_run)

        progress("mark", 0, position)
        marker = mark(self.registry.recorder, self.registry.mapper, position)
        report.mark_seconds = time.monotonic() - started
        progress("mark", position, position)
        digests = list(stored_digests(self.store))
        now = datetime.fromtimestamp(self.clock(), UTC)
        report.decisions = plan(marker, digests, delete_untagged=untagged, grace=grace, now=now)
        doomed = [d for d in report.decisions if d.action == DELETE]
        report.candidates = len(doomed)
        report.kept = len(report.decisions) - len(doomed)
        orphans = [d.digest for d in report.decisions
                   if d.reason.get("unreferencedSince") is None and d.digest not in marker.orphans_seen]

        catchup = Catchup(marker, self.registry.recorder, self.registry.mapper)
        for done, decision in enumerate(doomed):
            progress("sweep", done, len(doomed))
            if dry_run:
                continue
            began = time.monotonic()
            run = self._collect(run, decision, catchup, position, report)
            if self.registry.dialect.name == "sqlite":
                # SQLite's busy handler does not queue waiting writers: they poll with growing
                # sleeps while the sweep, never waiting, takes the lock again at once. Leaving it
                # free as long as the sweep held it lets pushes in (half the sweep rate, on SQLite).
                time.sleep(min(time.monotonic() - began, MAX_YIELD_SECONDS))
        progress("sweep", len(doomed), len(doomed))

        report.duration_seconds = time.monotonic() - started
        run.finish(candidates=report.candidates, deleted=report.deleted, kept=report.kept,
                   bytes_freed=report.bytes_freed, errors=report.errors[:100],
                   duration_seconds=round(report.duration_seconds, 3),
                   orphans_seen=sorted(orphans)[:MAX_ORPHANS_RECORDED])
        self.registry.save(run)
        log.info("GC run %s at position %d: %d deleted, %d kept, %d bytes freed, %d errors%s", report.run_id,
                 position, report.deleted, report.kept, report.bytes_freed, len(report.errors),
                 " (dry run)" if dry_run else "")
        return report

    def _collect(self, run: GcRun, decision: Decision, catchup: Catchup, position: int, report: Report) -> GcRun:
        """Delete one blob and record it, in one transaction; returns the run as now stored."""
        digest = decision.digest
        size = decision.size if decision.size is not None else self._size(digest)
        cause = decision.reason.get("unreferencedSince") or {}
        links = []
        for repository in catchup.marker.links_of(digest):
            link = self.registry.load(BlobLink, BlobLink.create_id(repository, digest))
            if link is not None and link.linked:
                link.unlink()
                links.append(link)
        run.collected_blob(digest=digest, size=size, reason=decision.reason.get("why", ""),
                           reason_position=cause.get("position"))
        try:
            self.registry.save(run, *links, fence=deletion_fence(catchup, position, self.store, digest))
        except Kept as exc:
            report.candidates -= 1
            report.kept += 1
            log.debug("GC kept %s: %s", digest, exc)
        except IntegrityError:  # a link changed meanwhile: it was touched, keep it this time
            report.candidates -= 1
            report.kept += 1
        except StorageFailed as exc:
            report.errors.append(f"{digest}: {exc}")
            log.warning("GC could not delete %s (kept, retried next run): %s", digest, exc)
        except Exception as exc:  # storage unreachable, database hiccup: nothing was recorded
            report.errors.append(f"{digest}: {type(exc).__name__}: {exc}")
            log.warning("GC could not delete %s (retried next run): %s", digest, exc, exc_info=True)
        else:
            report.deleted += 1
            report.bytes_freed += size
            return run
        return self.registry.repository.get(run.id)

    def _size(self, digest: str) -> int:
        from dockyard.storage import blob_key

        try:
            return self.store.stat(blob_key(digest))
        except Exception:
            return 0
