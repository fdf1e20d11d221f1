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

import contextvars
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError

from dockyard.commands.gc import abandon_open_runs, gc_runs, gc_settings
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


ABANDONED = "its process ended before the run finished (found with the GC lock free)"
STOPPED = "stopped: the process shut down before the sweep ended; the next run continues"


def _release(lock: Leadership) -> None:
    if lock.connection is not None:
        # Unlock before closing: the server ends a closed session (and frees its advisory
        # lock) asynchronously, so a run right after this one could still find it held.
        lock.connection.execute("SELECT pg_advisory_unlock_all()")
    lock.release()


def settle_abandoned_runs(registry: Registry) -> list[str]:
    """Record as abandoned the runs the log shows open while no run holds the GC lock (their
    process died); returns their ids. Cheap when no run is open: the lock is tried only then."""
    if not any(run["state"] == "running" for run in gc_runs(registry, None)):
        return []
    lock = Leadership(registry, "gc")
    if not lock.try_acquire():
        return []  # a run is in progress: the open run may be it
    try:
        return abandon_open_runs(registry, ABANDONED)
    finally:
        _release(lock)


class Running:
    """A run begun: the GC lock held, `Started` recorded. `complete` marks, sweeps, records
    `Finished` and releases the lock (call it exactly once, from any thread)."""

    def __init__(self, collector: GarbageCollector, lock: Leadership, run: GcRun, grace: timedelta,
                 delete_untagged: bool, started: float) -> None:
        self.collector, self.lock, self.run, self.grace = collector, lock, run, grace
        self.delete_untagged, self.started = delete_untagged, started
        self.id = str(run.id)

    def complete(self, progress: Progress | None = None, stop: threading.Event | None = None) -> Report:
        try:
            return self.collector._sweep(self, progress or (lambda *_: None), stop)
        finally:
            _release(self.lock)


class GarbageCollector:
    def __init__(self, registry: Registry, store: BlobStore, clock: Callable[[], float] = time.time) -> None:
        self.registry, self.store, self.clock = registry, store, clock

    def run(self, *, dry_run: bool = False, grace_hours: float | None = None,
            delete_untagged: bool | None = None, progress: Progress | None = None) -> Report:
        """Run once; the policy defaults to the recorded GC settings. `GcAlreadyRunning` (409)
        if a run is in progress anywhere."""
        running = self.begin(dry_run=dry_run, grace_hours=grace_hours, delete_untagged=delete_untagged)
        return running.complete(progress)

    def begin(self, *, dry_run: bool = False, grace_hours: float | None = None,
              delete_untagged: bool | None = None) -> Running:
        """Take the GC lock (`GcAlreadyRunning` if held anywhere), record the open runs whose
        process died as abandoned, and record `Started` at the log's last position."""
        lock = Leadership(self.registry, "gc")
        if not lock.try_acquire():
            raise GcAlreadyRunning()
        try:
            started = time.monotonic()
            abandon_open_runs(self.registry, ABANDONED)
            settings = gc_settings(self.registry)
            grace = timedelta(hours=settings.grace_hours if grace_hours is None else grace_hours)
            untagged = settings.delete_untagged if delete_untagged is None else delete_untagged
            position = self.registry.recorder.max_notification_id() or 0
            run = GcRun(position=position, dry_run=dry_run, grace_seconds=grace.total_seconds(),
                        delete_untagged=untagged)
            self.registry.save(run)
        except BaseException:
            _release(lock)
            raise
        return Running(self, lock, run, grace, untagged, started)

    def _sweep(self, running: Running, progress: Progress, stop: threading.Event | None) -> Report:
        started, run, grace, untagged = running.started, running.run, running.grace, running.delete_untagged
        position, dry_run = run.position, run.dry_run
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
            if stop is not None and stop.is_set():
                report.errors.append(STOPPED)
                break
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


class BackgroundRuns:
    """The runs this process's API started, each completed in a thread of its own, and the
    reports of the last `KEEP_REPORTS` (with every blob's decision, for `explain`)."""

    KEEP_REPORTS = 20

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._reports: OrderedDict[str, Report] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._guard = threading.Lock()

    def start(self, collector: GarbageCollector, *, dry_run: bool = False) -> str:
        """Begin a run (`GcAlreadyRunning` at once if one is in progress anywhere) and complete
        it in the background; returns its id."""
        running = collector.begin(dry_run=dry_run)
        # In the caller's context: the events the run records name who started it, and from where.
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(self._complete, running), name=f"gc-{running.id}",
                                  daemon=True)
        with self._guard:
            self._threads[running.id] = thread
        thread.start()
        return running.id

    def _complete(self, running: Running) -> None:
        try:
            report = running.complete(stop=self.stopping)
        except Exception:  # the run stays open in the log; the next run or listing abandons it
            log.exception("GC run %s failed", running.id)
            return
        finally:
            with self._guard:
                self._threads.pop(running.id, None)
        with self._guard:
            self._reports[running.id] = report
            while len(self._reports) > self.KEEP_REPORTS:
                self._reports.popitem(last=False)

    def report(self, run_id: str) -> Report | None:
        """The finished run's report, if this process ran it (and still keeps it)."""
        with self._guard:
            return self._reports.get(run_id)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask running sweeps to stop after their current blob (each records `Finished` with
        an error), and wait up to `timeout` seconds for them."""
        self.stopping.set()
        with self._guard:
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
