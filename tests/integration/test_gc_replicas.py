"""GC across processes sharing a database, on SQLite (a file beside it) and PostgreSQL (an
advisory lock): exactly one run at a time, a run whose holder died shown as abandoned, and
`dockyard gc run --dry-run --explain` with its progress bars, as an admin scripts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from dockyard.bootstrap import registry_on, views
from dockyard.commands.gc import gc_runs
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.gc.collector import GarbageCollector, GcAlreadyRunning, settle_abandoned_runs
from dockyard.storage import blob_key
from dockyard.storage.filesystem import FilesystemStore
from tests.conftest import database_url_for
from tests.on_registry import registry_view
from tests.unit.test_registry_commands import image_manifest, upload

REPO = "engineering/barca"


@pytest.fixture
def replicas(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    """Two registries on one database (as two replicas would be), the filesystem store, the URL."""
    url = database_url_for(backend, request)
    env = event_store_env(str(tmp_path / "data"), url)
    one, two = registry_on(env), registry_on(env)
    store = FilesystemStore(str(tmp_path / "data" / "blobs"))
    Identity(one, *views(one)).create_organization("engineering", "admin")
    try:
        yield one, two, store, url
    finally:
        one.close()
        two.close()


def lab_image(registry: Registry, store: FilesystemStore) -> tuple[list[str], list[str]]:
    """lona and neymar share a base layer; lona is soft-deleted by digest. Returns (lona's own, shared)."""
    uploads = UploadSessions(store, registry, registry_view(registry))
    base = upload(uploads, REPO, b"base layer")
    lona = [upload(uploads, REPO, b'{"tag":"lona"}'), upload(uploads, REPO, b"lona layer")]
    neymar = [upload(uploads, REPO, b'{"tag":"neymar"}'), upload(uploads, REPO, b"neymar layer")]
    digest = registry.push_manifest(REPO, "lona", None, image_manifest(lona[0], base, lona[1])).digest
    registry.push_manifest(REPO, "neymar", None, image_manifest(neymar[0], base, neymar[1]))
    registry.delete_manifest(REPO, digest)
    return lona, [base]


def test_exactly_one_gc_across_replicas(replicas) -> None:
    one, two, store, _ = replicas
    lab_image(one, store)
    running = GarbageCollector(one, store).begin(grace_hours=0)
    try:
        # The other replica can neither run nor take the open run for a dead one.
        with pytest.raises(GcAlreadyRunning):
            GarbageCollector(two, store).run(grace_hours=0)
        assert settle_abandoned_runs(two) == []
        assert [r["state"] for r in gc_runs(two)] == ["running"]
    finally:
        report = running.complete()
    assert report.deleted == 2 and report.errors == []
    # Once it ended, the other replica runs (nothing left to do).
    assert GarbageCollector(two, store).run(grace_hours=0).deleted == 0
    assert [r["state"] for r in gc_runs(two)] == ["done", "done"]


def test_a_run_whose_replica_died_is_recorded_abandoned(replicas) -> None:
    one, two, store, _ = replicas
    running = GarbageCollector(one, store).begin()
    running.lock.release()  # the replica dies: its lock (session or file) goes, `Finished` never comes
    deadline = time.monotonic() + 10  # PostgreSQL ends a closed session's locks asynchronously
    while not (abandoned := settle_abandoned_runs(two)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert abandoned == [running.id]
    runs = gc_runs(two)
    assert runs[0]["state"] == "abandoned" and "process ended" in runs[0]["errors"][0]
    assert settle_abandoned_runs(two) == []  # recorded once
    events = one.recorder.select_notifications(1, 100_000, topics=["dockyard.GcRun.Abandoned"])
    assert len(events) == 1


def test_cli_dry_run_explains_each_blob_with_a_progress_bar(replicas, tmp_path: Path) -> None:
    one, _, store, url = replicas
    lona, shared = lab_image(one, store)
    args = ["gc", "run", "--data-dir", str(tmp_path / "data"), "--dry-run", "--explain", "--grace-hours", "0"]
    if url:
        args += ["--database-url", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    result = subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "mark (events)" in result.stderr and "sweep (blobs)" in result.stderr  # the progress bars
    assert "would delete 2 blob(s)" in result.stderr
    report = orjson.loads(result.stdout)
    assert report["dryRun"] and report["deleted"] == 0
    blobs = {b["digest"]: b for b in report["blobs"]}
    for digest in lona:  # goes: the event that left it unreferenced is cited
        assert blobs[digest]["action"] == "delete"
        assert blobs[digest]["reason"]["unreferencedSince"]["what"].endswith(" deleted")  # manifest or its tag
    for digest in shared:  # kept: which manifest, through which tag, from which position
        holders = blobs[digest]["reason"]["holders"]
        assert blobs[digest]["action"] == "keep" and holders[0]["via"] == "tag:neymar"
        assert holders[0]["repository"] == REPO and holders[0]["position"] > 0
    assert all(store.exists(blob_key(d)) for d in lona)  # dry: nothing deleted
