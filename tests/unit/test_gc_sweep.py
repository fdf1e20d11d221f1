"""Sweep: GC runs on in-memory stores — what goes, what stays and why, what the log records,
and what happens when storage fails or a push races the sweep."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dockyard.bootstrap import registry_on
from dockyard.commands.gc import change_gc_settings, gc_runs
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.errors import ManifestBlobUnknown
from dockyard.gc.collector import GarbageCollector, GcAlreadyRunning
from dockyard.projections.runner import Leadership
from dockyard.storage import StorageError, blob_key
from dockyard.storage.memory import MemoryStore
from tests.on_registry import registry_view
from tests.unit.gc_fixtures import (  # noqa: F401
    env,
    image_manifest,
    marked,
    push_image,
    registry,
    sha256,
    store,
    upload,
    uploads,
)

REPO = "engineering/barca"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def lab_images(registry: Registry, uploads: UploadSessions) -> tuple[str, list[str], list[str]]:
    """lona and neymar share two base layers; each has a config and a layer of its own."""
    lona, lona_blobs = push_image(registry, uploads, REPO, "lona", b"base-1", b"base-2", b"lona-app",
                                  config=b'{"tag":"lona"}')
    _, neymar_blobs = push_image(registry, uploads, REPO, "neymar", b"base-1", b"base-2", b"neymar-app",
                                 config=b'{"tag":"neymar"}')
    return lona, lona_blobs, neymar_blobs


def collected(registry: Registry) -> list[str]:
    return [registry.mapper.to_domain_event(n).digest
            for n in registry.recorder.select_notifications(1, 100_000, topics=["dockyard.GcRun.BlobCollected"])]


def test_soft_deleted_image_is_collected_shared_layers_stay(registry: Registry, uploads: UploadSessions,
                                                            store: MemoryStore) -> None:
    lona, lona_blobs, neymar_blobs = lab_images(registry, uploads)
    own = [lona_blobs[0], lona_blobs[3]]  # lona's config and its own layer

    # Soft delete: the manifest (and tag lona) go from the index; the bytes stay.
    registry.delete_manifest(REPO, lona)
    assert registry_view(registry).list_tags(REPO, None, None) == ["neymar"]
    assert all(store.exists(blob_key(d)) for d in lona_blobs)

    # Within the grace period nothing goes, and the explanation says so.
    clock = Clock()
    report = GarbageCollector(registry, store, clock).run()
    assert report.deleted == 0
    why = {d.digest: d.reason["why"] for d in report.decisions}
    assert {why[d] for d in own} == {"grace period"}

    # Two hours later, lona's own blobs go; the shared base and neymar stay.
    clock.now += 2 * 3600
    report = GarbageCollector(registry, store, clock).run()
    assert report.deleted == 2 and report.bytes_freed == len(b'{"tag":"lona"}') + len(b"lona-app")
    assert not any(store.exists(blob_key(d)) for d in own)
    assert all(store.exists(blob_key(d)) for d in neymar_blobs)
    assert sorted(collected(registry)) == sorted(own)
    # The links went with the bytes: the repository no longer offers them.
    assert registry_view(registry).blob_size(REPO, own[1]) is None
    # The run is in the log, finished, with its counts.
    latest = gc_runs(registry)[0]
    assert latest["state"] == "done" and latest["deleted"] == 2 and latest["bytesFreed"] == report.bytes_freed

    # Nothing more to do on the next run.
    assert GarbageCollector(registry, store, clock).run().deleted == 0


def test_dry_run_explains_and_deletes_nothing(registry: Registry, uploads: UploadSessions, store: MemoryStore) -> None:
    lona, lona_blobs, neymar_blobs = lab_images(registry, uploads)
    registry.delete_manifest(REPO, lona)
    report = GarbageCollector(registry, store).run(dry_run=True, grace_hours=0)

    assert report.deleted == 0 and report.candidates == 2
    assert all(store.exists(blob_key(d)) for d in lona_blobs)
    decisions = {d.digest: d for d in report.decisions}
    gone = decisions[lona_blobs[3]]
    assert gone.action == "delete"
    # The manifest delete and its tag's delete are one transaction; either is cited.
    assert gone.reason["unreferencedSince"]["what"] in (f"manifest {REPO}@{lona} deleted", f"tag {REPO}:lona deleted")
    kept = decisions[sha256(b"base-1")]
    assert kept.action == "keep"
    assert [h["via"] for h in kept.reason["holders"]] == ["tag:neymar"]
    assert collected(registry) == []


def test_delete_untagged_policy(registry: Registry, uploads: UploadSessions, store: MemoryStore) -> None:
    _, lona_blobs, _ = lab_images(registry, uploads)
    registry.delete_tag(REPO, "lona")
    assert GarbageCollector(registry, store).run(grace_hours=0).deleted == 0  # untagged is kept by default
    change_gc_settings(registry, None, delete_untagged=True, grace_hours=0)
    assert GarbageCollector(registry, store).run().deleted == 2
    assert not store.exists(blob_key(lona_blobs[3]))


def test_blob_swept_before_the_push_is_reported_unknown(registry: Registry, uploads: UploadSessions,
                                                        store: MemoryStore) -> None:
    # A client uploaded layers and a config but has not pushed its manifest yet; GC with no grace
    # period takes the dangling blobs (their links with them).
    config, layer = upload(uploads, REPO, b"{}"), upload(uploads, REPO, b"layer")
    assert GarbageCollector(registry, store).run(grace_hours=0).deleted == 2
    # The push is refused (MANIFEST_BLOB_UNKNOWN), never acknowledged with missing blobs...
    with pytest.raises(ManifestBlobUnknown):
        registry.push_manifest(REPO, "v1", None, image_manifest(config, layer))
    # ...and after uploading again it succeeds and pulls.
    upload(uploads, REPO, b"{}"), upload(uploads, REPO, b"layer")
    registry.push_manifest(REPO, "v1", None, image_manifest(config, layer))
    assert store.exists(blob_key(layer))


def test_blob_linked_during_the_sweep_is_kept(registry: Registry, uploads: UploadSessions, store: MemoryStore) -> None:
    dangling = upload(uploads, REPO, b"dangling")

    def progress(phase: str, done: int, total: int) -> None:
        # After the mark, before the first deletion: another client mounts the blob elsewhere.
        if phase == "sweep" and done == 0 and total:
            assert uploads.mount("engineering/madrid", dangling, REPO) is not None

    report = GarbageCollector(registry, store).run(grace_hours=0, progress=progress)
    assert report.deleted == 0 and report.kept == 1
    assert store.exists(blob_key(dangling))
    assert registry_view(registry).blob_size("engineering/madrid", dangling) == len(b"dangling")


class FlakyStore(MemoryStore):
    """Deletes fail for the digests in `failing` (the object stays)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()

    def _delete(self, key: str) -> None:
        if key in self.failing:
            raise StorageError(f"backend unavailable deleting {key}")
        super()._delete(key)


@pytest.fixture
def flaky() -> FlakyStore:
    return FlakyStore()


def test_storage_failing_mid_sweep_records_only_what_is_gone(registry: Registry, flaky: FlakyStore) -> None:
    uploads = UploadSessions(flaky, registry, registry_view(registry))
    digests = [upload(uploads, REPO, f"blob-{i}".encode()) for i in range(5)]
    flaky.failing = {blob_key(sorted(digests)[2])}

    report = GarbageCollector(registry, flaky).run(grace_hours=0)
    assert report.deleted == 4 and len(report.errors) == 1
    # Everything recorded as collected is gone; the one that failed is stored and still linked.
    assert all(not flaky.exists(blob_key(d)) for d in collected(registry))
    assert flaky.exists(blob_key(sorted(digests)[2]))
    assert registry_view(registry).blob_size(REPO, sorted(digests)[2]) is not None
    assert gc_runs(registry)[0]["state"] == "failed"

    # The next run, with storage back, finishes the job.
    flaky.failing = set()
    assert GarbageCollector(registry, flaky).run(grace_hours=0).deleted == 1
    assert sorted(collected(registry)) == sorted(digests)


def test_orphans_wait_a_grace_period_from_their_first_sighting(registry: Registry, store: MemoryStore) -> None:
    # Bytes in storage that no event names (a crash between the move and the link).
    orphan = sha256(b"orphan")
    store.write_bytes(blob_key(orphan), b"orphan")
    clock = Clock()
    first = GarbageCollector(registry, store, clock).run()
    assert first.deleted == 0 and first.decisions[0].reason["why"].startswith("orphan first seen")
    clock.now += 2 * 3600
    second = GarbageCollector(registry, store, clock).run()
    assert second.deleted == 1 and not store.exists(blob_key(orphan))
    assert second.decisions[0].reason["unreferencedSince"]["event"] == "dockyard.GcRun.Finished"


def test_one_run_at_a_time(registry: Registry, store: MemoryStore) -> None:
    held = Leadership(registry, "gc")
    assert held.try_acquire()
    try:
        with pytest.raises(GcAlreadyRunning):
            GarbageCollector(registry, store).run()
    finally:
        held.release()
    assert GarbageCollector(registry, store).run().deleted == 0


def test_a_link_removed_during_the_sweep_keeps_the_blob_and_its_other_links(
        env: dict[str, str], registry: Registry, uploads: UploadSessions, store: MemoryStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A dangling blob linked into two repositories.
    digest = upload(uploads, REPO, b"twice")
    assert uploads.mount("engineering/madrid", digest, REPO) is not None
    other = registry_on(env)  # another process
    save = registry.save

    def save_after_a_concurrent_unlink(*objects: Any, **kwargs: Any) -> Any:
        # Between the sweep loading the links and its transaction, another process unlinks one.
        if kwargs.get("fence") is not None and registry_view(registry).blob_size(REPO, digest) is not None:
            other.delete_blob(REPO, digest)
        return save(*objects, **kwargs)

    monkeypatch.setattr(registry, "save", save_after_a_concurrent_unlink)
    try:
        report = GarbageCollector(registry, store).run(grace_hours=0)
    finally:
        other.close()
    # The sweep's transaction conflicts before the fence touches storage: the bytes and the
    # other link stay (never gone while still linked); the next run collects the blob.
    assert report.deleted == 0 and report.errors == []
    assert store.exists(blob_key(digest))
    assert registry_view(registry).blob_size("engineering/madrid", digest) is not None
    monkeypatch.undo()
    assert GarbageCollector(registry, store).run(grace_hours=0).deleted == 1
    assert registry_view(registry).blob_size("engineering/madrid", digest) is None


class DyingStore(MemoryStore):
    """The backend goes away after `allowed` deletes: every call fails from then on."""

    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed
        self.down = False

    def _delete(self, key: str) -> None:
        if self.down or self.allowed == 0:
            self.down = True
            raise StorageError("connection reset by peer")
        self.allowed -= 1
        super()._delete(key)

    def exists(self, key: str) -> bool:
        if self.down:
            raise StorageError("connection refused")
        return super().exists(key)


def test_storage_going_down_mid_sweep_records_only_what_is_gone(registry: Registry) -> None:
    store = DyingStore(allowed=1000)
    uploads = UploadSessions(store, registry, registry_view(registry))
    digests = [upload(uploads, REPO, f"blob-{i}".encode()) for i in range(5)]
    store.allowed = 2

    report = GarbageCollector(registry, store).run(grace_hours=0)
    # Two deleted and recorded; the three the backend failed on are errors, recorded nowhere.
    assert report.deleted == 2 and len(report.errors) == 3
    assert gc_runs(registry)[0]["state"] == "failed"
    store.down, store.allowed = False, 10
    assert sorted(collected(registry)) == sorted(d for d in digests if not store.exists(blob_key(d)))
    assert all(registry_view(registry).blob_size(REPO, d) is not None for d in digests if store.exists(blob_key(d)))
    # The backend is back: the next run collects the rest.
    assert GarbageCollector(registry, store).run(grace_hours=0).deleted == 3
    assert sorted(collected(registry)) == sorted(digests)


def test_a_run_left_open_by_a_dead_process_is_abandoned_by_the_next(registry: Registry, store: MemoryStore) -> None:
    from dockyard.domain.gc_run import GcRun

    dead = GcRun(position=0, dry_run=False, grace_seconds=0.0, delete_untagged=False)
    registry.save(dead)  # started, never finished, and no process holds the GC lock
    assert gc_runs(registry)[0]["state"] == "running"
    report = GarbageCollector(registry, store).run()
    states = {run["id"]: run["state"] for run in gc_runs(registry)}
    assert states == {str(dead.id): "abandoned", report.run_id: "done"}


def test_a_sweep_between_the_push_check_and_its_transaction_is_caught_inside_it(
        registry: Registry, uploads: UploadSessions, store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule 4: the first check of a manifest PUT runs outside the transaction. A GC sweep landing
    # right after it must not let the push be acknowledged with its blobs gone.
    config, layer = upload(uploads, REPO, b"{}"), upload(uploads, REPO, b"layer")
    view = registry._registry_view
    check = view.unlinked_blobs
    swept = []

    def check_then_sweep(repository: str, digests: list[str], cursor: Any = None) -> list[str]:
        missing = check(repository, digests, cursor)
        if cursor is None and not swept:  # the cheap check outside the write lock passed...
            swept.append(GarbageCollector(registry, store).run(grace_hours=0).deleted)  # ...then GC
        return missing

    monkeypatch.setattr(view, "unlinked_blobs", check_then_sweep)
    with pytest.raises(ManifestBlobUnknown):
        registry.push_manifest(REPO, "v1", None, image_manifest(config, layer))
    assert swept == [2] and not store.exists(blob_key(layer))
    assert registry_view(registry).tag_digest(REPO, "v1") is None  # nothing acknowledged
