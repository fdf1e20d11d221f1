"""GC sweeps through the blob-store interface on every backend (issue 9, item 2): listed from
storage, deleted through it, recorded only once gone — on the filesystem, S3 (moto), Azure Blob
(Azurite) and Swift, each under a key prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.gc.collector import GarbageCollector
from dockyard.storage import blob_key
from dockyard.storage.base import BlobStore
from dockyard.storage.filesystem import FilesystemStore
from tests.on_registry import registry_view
from tests.storage.test_azure import azure_store
from tests.storage.test_s3 import s3_store
from tests.storage.test_swift import swift_store
from tests.unit.test_registry_commands import env, image_manifest, registry, upload, uploads  # noqa: F401

REPO = "engineering/barca"


@pytest.fixture(params=["filesystem", "s3", "azure", "swift"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemStore(str(tmp_path / "blobs"))
    elif request.param == "s3":
        moto = request.getfixturevalue("moto_s3")
        bucket = moto.new_bucket()
        yield s3_store(moto, bucket, "registry/gc")
        moto.empty_bucket(bucket)
    elif request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        container = azurite.new_container()
        yield azure_store(azurite, container, "registry/gc")
        azurite.drop_container(container)
    else:
        swift = request.getfixturevalue("swift")
        container = swift.new_container()
        yield swift_store(swift, container, "registry/gc")
        swift.drop_container(container)


def test_gc_sweeps_through_the_backend(registry: Registry, uploads: UploadSessions,  # noqa: F811
                                       store: BlobStore) -> None:  # noqa: F811
    base = upload(uploads, REPO, b"shared base layer")
    lona = [upload(uploads, REPO, b'{"tag":"lona"}'), upload(uploads, REPO, b"lona's own layer")]
    neymar = [upload(uploads, REPO, b'{"tag":"neymar"}'), upload(uploads, REPO, b"neymar's own layer")]
    digest = registry.push_manifest(REPO, "lona", None, image_manifest(lona[0], base, lona[1])).digest
    registry.push_manifest(REPO, "neymar", None, image_manifest(neymar[0], base, neymar[1]))
    registry.delete_manifest(REPO, digest)  # soft delete: the bytes stay

    report = GarbageCollector(registry, store).run(grace_hours=0)
    assert report.errors == [] and report.deleted == 2 and report.kept == 3
    assert not any(store.exists(blob_key(d)) for d in lona)
    for d in [base, *neymar]:
        assert store.exists(blob_key(d)) and registry_view(registry).blob_size(REPO, d) is not None
    assert GarbageCollector(registry, store).run(grace_hours=0).deleted == 0  # nothing left to do
