"""Garbage collection: mark time, sweep rate, and pushes per second during GC beside without.

Fills a fresh registry (SQLite file, or PostgreSQL with `--database-url`) and a filesystem blob
store: `--repositories` × `--blobs-per-repository` blobs, a manifest per three blobs, each tagged,
then tag moves until the log holds `--events` events; half the manifests are then deleted, so
half the blobs are garbage. The fill saves domain aggregates in batches (100 per transaction)
to make a large log quickly; everything measured goes through the real code paths.

    .venv/bin/python benchmarks/gc.py                                  # 100k events, 10k blobs, SQLite
    .venv/bin/python benchmarks/gc.py --database-url postgresql://postgres@127.0.0.1:5432/DB
    .venv/bin/python benchmarks/gc.py --events 20000 --repositories 20 --seconds 5   # quick

Prints: events in the log, mark seconds (events/s), the sweep's blobs deleted per second, and
single-client pushes/s without GC and while GC runs back to back (ratio).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from typing import Any

from small_push import manifest_body, push_small_image, sha256  # benchmarks/ is the script's folder

from dockyard.bootstrap import registry_on, views
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.blob_link import BlobLink
from dockyard.domain.manifest import Manifest
from dockyard.domain.manifest_format import OCI_MANIFEST
from dockyard.domain.repository import Repository
from dockyard.domain.tag import Tag
from dockyard.gc.collector import GarbageCollector
from dockyard.gc.mark import mark
from dockyard.gc.sweep import plan, stored_digests
from dockyard.storage import blob_key
from dockyard.storage.filesystem import FilesystemStore

BATCH = 100


def save_in_batches(registry: Registry, aggregates: list[Any]) -> None:
    for i in range(0, len(aggregates), BATCH):
        registry.save(*aggregates[i:i + BATCH])


def fill(registry: Registry, store: FilesystemStore, repositories: int, per_repository: int,
         events: int) -> list[tuple[str, str]]:
    """The registry described in the module docstring; returns every (repository, manifest digest)."""
    Identity(registry, *views(registry)).create_organization("bench", "admin")
    manifests: list[tuple[str, str]] = []
    tags: list[Tag] = []
    for r in range(repositories):
        name = f"bench/repo{r:04d}"
        aggregates: list[Any] = [Repository(name=name)]
        digests = []
        for b in range(per_repository):
            data = f"{name}/blob{b}".encode().ljust(64, b".")
            digest = sha256(data)
            store.write_bytes(blob_key(digest), data)
            link = BlobLink.unborn(repository=name, digest=digest)
            link.link(len(data), "upload")
            aggregates.append(link)
            digests.append(digest)
        for m in range(0, per_repository - 2, 3):
            body = manifest_body(digests[m], digests[m + 1:m + 3])
            digest = sha256(body)
            manifest = Manifest.unborn(repository=name, digest=digest)
            manifest.push(repository=name, digest=digest, media_type=OCI_MANIFEST, size=len(body),
                          payload=Manifest.encode_payload(body), blobs=digests[m:m + 3], manifests=[],
                          subject=None, artifact_type=None, annotations={})
            tag = Tag.unborn(repository=name, name=f"t{m // 3}")
            tag.point_at(digest)
            aggregates += [manifest, tag]
            tags.append(tag)
            manifests.append((name, digest))
        save_in_batches(registry, aggregates)
    # Tag moves (back and forth between two of the repository's manifests) until `events`.
    by_repository: dict[str, list[str]] = {}
    for name, digest in manifests:
        by_repository.setdefault(name, []).append(digest)
    i = 0
    while (registry.recorder.max_notification_id() or 0) < events:
        moved = []
        for tag in tags[i % len(tags):][:BATCH]:
            options = by_repository[tag.repository]
            tag.point_at(options[(options.index(tag.digest) + 1) % len(options)] if len(options) > 1 else options[0])
            moved.append(tag)
        registry.save(*moved)
        i += BATCH
    return manifests


def delete_half(registry: Registry, manifests: list[tuple[str, str]]) -> int:
    """Soft delete every other manifest (and its tags) through the command."""
    count = 0
    for name, digest in manifests[::2]:
        registry.delete_manifest(name, digest)
        count += 1
    return count


def pushes_per_second(registry: Registry, uploads: UploadSessions, seconds: float, label: str) -> float:
    """One client pushing small two-blob images through the commands for `seconds`."""
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        push_small_image(registry, uploads, "bench/pushes", f"{label}{n % 20}", f"{label}-{n}")
        n += 1
    return n / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--repositories", type=int, default=100)
    p.add_argument("--blobs-per-repository", type=int, default=100)
    p.add_argument("--seconds", type=float, default=15.0, help="each push phase")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockyard-gc-bench-") as tmp:
        registry = registry_on(event_store_env(os.path.join(tmp, "data"), a.database_url))
        store = FilesystemStore(os.path.join(tmp, "blobs"))
        try:
            t0 = time.perf_counter()
            manifests = fill(registry, store, a.repositories, a.blobs_per_repository, a.events)
            deleted = delete_half(registry, manifests)
            position = registry.recorder.max_notification_id() or 0
            print(f"fill: {position:,} events, {a.repositories * a.blobs_per_repository:,} blobs, "
                  f"{len(manifests):,} manifests ({deleted:,} deleted) in {time.perf_counter() - t0:.1f} s")

            t0 = time.perf_counter()
            marker = mark(registry.recorder, registry.mapper, position)
            mark_s = time.perf_counter() - t0
            live = marker.live(delete_untagged=False)
            print(f"mark: {mark_s:.2f} s for {position:,} events ({position / mark_s:,.0f} events/s), "
                  f"{len(live):,} live blobs")
            from datetime import UTC, datetime, timedelta

            t0 = time.perf_counter()
            decisions = plan(marker, stored_digests(store), delete_untagged=False, grace=timedelta(0),
                             now=datetime.now(UTC))
            print(f"plan: {time.perf_counter() - t0:.2f} s for {len(decisions):,} stored blobs, "
                  f"{sum(d.action == 'delete' for d in decisions):,} to delete")

            uploads = UploadSessions(store, registry, views(registry)[0])
            without = pushes_per_second(registry, uploads, a.seconds, "quiet")
            # Garbage for the sweep to chew on while the client pushes: delete the other half.
            for name, digest in manifests[1::2]:
                registry.delete_manifest(name, digest)
            gc_registry = registry_on(event_store_env(os.path.join(tmp, "data"), a.database_url))
            reports: list[Any] = []
            stop = threading.Event()

            def collect() -> None:
                collector = GarbageCollector(gc_registry, store)
                while not stop.is_set():
                    reports.append(collector.run(grace_hours=0))

            t0 = time.perf_counter()
            worker = threading.Thread(target=collect)
            worker.start()
            during = pushes_per_second(registry, uploads, a.seconds, "during")
            stop.set()
            worker.join()
            swept = sum(r.deleted for r in reports)
            sweep_s = sum(r.duration_seconds - r.mark_seconds for r in reports)
            print(f"sweep: {swept:,} blobs deleted in {sweep_s:.1f} s of sweeping "
                  f"({swept / sweep_s if sweep_s else 0:,.0f} blobs/s; one transaction per blob), "
                  f"{len(reports)} runs, first run's mark {reports[0].mark_seconds:.2f} s")
            print(f"pushes/s (1 client, {a.seconds:g} s each): without GC {without:.1f}, during GC {during:.1f}, "
                  f"ratio {during / without:.2f}")
            gc_registry.close()
        finally:
            registry.close()


if __name__ == "__main__":
    main()
