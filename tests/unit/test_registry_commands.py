"""The write side: the `Registry` application on an in-memory SQLite event store (with the
read model written in the event transaction, as in production), and upload sessions on the
in-memory blob store. No files, no network.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import IntegrityError

from dockyard.bootstrap import registry_on, views
from dockyard.commands import registry as registry_module
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.actor import Actor, current_actor
from dockyard.domain.digest import Digest
from dockyard.domain.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    RangeInvalid,
    SizeInvalid,
    TooManyRequests,
)
from dockyard.domain.manifest_format import OCI_INDEX, OCI_MANIFEST
from dockyard.domain.tag import Tag
from dockyard.gc.upload_purge import purge_uploads
from dockyard.storage import blob_key
from dockyard.storage.memory import MemoryStore
from tests.on_registry import registry_view

REPO = "lib/app"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The embedded default's environment, but with a shared in-memory SQLite database: every
    `Registry` built from it (each standing for a process) sees the same log and read model."""
    env = event_store_env(str(tmp_path), None)
    env["SQLITE_DBNAME"] = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
    return env


@pytest.fixture
def registry(env: dict[str, str]) -> Iterator[Registry]:
    app = registry_on(env)
    for namespace in ("lib", "engineering"):  # a push needs an account's namespace (gc_fixtures shares this)
        Identity(app, *views(app)).create_organization(namespace, "admin")
    yield app
    app.close()


@pytest.fixture
def other(env: dict[str, str], registry: Registry) -> Iterator[Registry]:
    """A second process on the same database."""
    app = registry_on(env)
    yield app
    app.close()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def uploads(store: MemoryStore, registry: Registry) -> UploadSessions:
    return UploadSessions(store, registry, registry_view(registry))


# -- helpers -------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# The size of each blob uploaded and manifest made here: descriptors must declare the stored size.
SIZES: dict[str, int] = {}


def upload(uploads: UploadSessions, repository: str, data: bytes) -> str:
    """Upload `data` as a blob of `repository` in one request; return its digest."""
    SIZES[sha256(data)] = len(data)
    upload_id = uploads.start(repository)
    append = uploads.append(repository, upload_id)
    append.write(data)
    append.close()
    digest = sha256(data)
    uploads.finish(repository, upload_id, digest)
    return digest


def image_manifest(config: str, *layers: str, **extra: Any) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                   "size": SIZES.get(config, 2)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": SIZES.get(d, 5)}
                   for d in layers],
        **extra,
    }
    body = orjson.dumps(doc)
    SIZES[sha256(body)] = len(body)
    return body


def index_manifest(*children: str) -> bytes:
    return orjson.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": SIZES.get(d, 100)} for d in children],
    })


def topics(registry: Registry) -> list[str]:
    """Every stored event's topic, in log order, after the fixture's organisation `lib`."""
    return [n.topic for n in registry.recorder.select_notifications(1, 10_000)
            if not n.topic.startswith(("dockyard.Organization.", "dockyard.Team."))]


@pytest.fixture
def blobs(uploads: UploadSessions) -> tuple[str, str, str]:
    """A config and two layers uploaded to REPO."""
    return upload(uploads, REPO, b"{}"), upload(uploads, REPO, b"layer-one"), upload(uploads, REPO, b"layer-two")


# -- pushing manifests ---------------------------------------------------------------------------


def test_push_manifest_with_linked_blobs(registry: Registry, other: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, layer2 = blobs
    body = image_manifest(config, layer1, layer2)

    # gordon pushes a manifest whose blobs are all in the repository, as tag `latest`.
    token = current_actor.set(Actor("gordon", "10.0.0.7"))
    try:
        parsed = registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)
    finally:
        current_actor.reset(token)

    # The digest is over the exact bytes; the blobs are the ones referenced.
    assert parsed.digest == sha256(body)
    assert parsed.blobs == (config, layer1, layer2)

    # Another process sees it at once, by tag and by digest, byte for byte.
    by_tag = registry_view(other).manifest_by_tag(REPO, "latest")
    assert by_tag is not None and by_tag.body == body and by_tag.digest == parsed.digest
    assert by_tag.media_type == OCI_MANIFEST and by_tag.size == len(body)
    assert registry_view(other).manifest_by_digest(REPO, parsed.digest).body == body
    assert registry_view(other).list_tags(REPO, None, None) == ["latest"]
    assert registry_view(other).catalog(None, None) == [REPO]

    # The tag row says who moved it.
    (tag_row,) = registry_view(other).table_rows("tags")
    assert tag_row[:3] == (REPO, "latest", parsed.digest) and tag_row[4] == "gordon"

    # The log holds the uploads (repository created with the first link) and then the push: one
    # event per new link, manifest and tag (its `Linked`/`Pushed`/`Moved` at version 1).
    assert topics(registry) == [
        "dockyard.Repository.Created", "dockyard.BlobLink.Linked", "dockyard.BlobLink.Linked",
        "dockyard.BlobLink.Linked", "dockyard.Manifest.Pushed", "dockyard.Tag.Moved",
    ]


def test_a_new_small_image_is_four_events(registry: Registry, uploads: UploadSessions) -> None:
    # The repository exists (an earlier image); a new small image is a config and one layer,
    # uploaded, then its manifest pushed under a new tag.
    upload(uploads, REPO, b"earlier")
    head = registry.recorder.max_notification_id()
    body = image_manifest(upload(uploads, REPO, b'{"small":1}'), upload(uploads, REPO, b"the one layer"))
    registry.push_manifest(REPO, "small", OCI_MANIFEST, body)

    # One event per new object, each at version 1: 4 events (8 when each began with `Created`).
    recorded = registry.recorder.select_notifications(head, 100, inclusive_of_start=False)
    assert [(n.topic, n.originator_version) for n in recorded] == [
        ("dockyard.BlobLink.Linked", 1), ("dockyard.BlobLink.Linked", 1),
        ("dockyard.Manifest.Pushed", 1), ("dockyard.Tag.Moved", 1)]


def test_push_manifest_with_unlinked_blobs_is_refused(registry: Registry, uploads: UploadSessions,
                                                      blobs: tuple[str, str, str]) -> None:
    config, layer1, _ = blobs
    # A layer that exists only in another repository, and one that exists nowhere.
    elsewhere = upload(uploads, "lib/other", b"elsewhere")
    nowhere = sha256(b"nowhere")
    SIZES[nowhere] = len(b"nowhere")
    before = topics(registry)

    # The push names both as missing and records nothing.
    with pytest.raises(ManifestBlobUnknown) as info:
        registry.push_manifest(REPO, "latest", OCI_MANIFEST, image_manifest(config, layer1, elsewhere, nowhere))
    assert info.value.detail == {"missing": [elsewhere, nowhere]}
    assert topics(registry) == before
    assert registry_view(registry).tag_digest(REPO, "latest") is None

    # Once the layers are linked into the repository, the same push succeeds.
    registry.link_blob(REPO, elsewhere, 9, "mount:lib/other")
    registry.link_blob(REPO, nowhere, 7)
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, image_manifest(config, layer1, elsewhere, nowhere))
    assert registry_view(registry).tag_digest(REPO, "latest") is not None


def test_push_by_digest(registry: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, _ = blobs
    body = image_manifest(config, layer1)

    # By its own digest: stored, untagged.
    parsed = registry.push_manifest(REPO, sha256(body), OCI_MANIFEST, body)
    assert registry_view(registry).manifest_by_digest(REPO, parsed.digest).body == body
    assert registry_view(registry).list_tags(REPO, None, None) == []

    # By a digest of other bytes: refused.
    with pytest.raises(DigestInvalid):
        registry.push_manifest(REPO, sha256(b"other"), OCI_MANIFEST, body)

    # By its sha512 digest: stored under that digest.
    sha512 = "sha512:" + hashlib.sha512(body).hexdigest()
    assert registry.push_manifest(REPO, sha512, OCI_MANIFEST, body).digest == sha512
    assert registry_view(registry).manifest_by_digest(REPO, sha512).body == body

    # A reference that is neither a tag nor a digest, or a bad repository name, is refused.
    with pytest.raises(DigestInvalid):
        registry.push_manifest(REPO, "md5:abc", OCI_MANIFEST, body)
    with pytest.raises(ManifestInvalid):
        registry.push_manifest(REPO, "-bad-tag", OCI_MANIFEST, body)
    with pytest.raises(NameInvalid):
        registry.push_manifest("Lib/App", "latest", OCI_MANIFEST, body)


def test_push_index_needs_its_children(registry: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, layer2 = blobs
    amd64, arm64 = image_manifest(config, layer1), image_manifest(config, layer2)
    index = index_manifest(sha256(amd64), sha256(arm64))

    # The children are not in the repository yet: refused, naming both.
    with pytest.raises(ManifestBlobUnknown) as info:
        registry.push_manifest(REPO, "multi", OCI_INDEX, index)
    assert info.value.detail == {"missing": [sha256(amd64), sha256(arm64)]}

    # Pushed by digest first (as clients do), then the index is accepted.
    registry.push_manifest(REPO, sha256(amd64), OCI_MANIFEST, amd64)
    registry.push_manifest(REPO, sha256(arm64), OCI_MANIFEST, arm64)
    registry.push_manifest(REPO, "multi", OCI_INDEX, index)
    assert registry_view(registry).manifest_by_tag(REPO, "multi").media_type == OCI_INDEX

    # A deleted child counts as missing again.
    registry.delete_manifest(REPO, sha256(arm64))
    with pytest.raises(ManifestBlobUnknown):
        registry.push_manifest(REPO, "multi2", OCI_INDEX, index)


def test_repushing_the_same_manifest_records_nothing(registry: Registry, blobs: tuple[str, str, str]) -> None:
    body = image_manifest(*blobs)
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)
    before = topics(registry)

    # The same bytes to the same tag, and by digest: no event at all.
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)
    registry.push_manifest(REPO, sha256(body), OCI_MANIFEST, body)
    assert topics(registry) == before

    # The same bytes under a second tag: only that tag's events.
    registry.push_manifest(REPO, "stable", OCI_MANIFEST, body)
    assert topics(registry)[len(before):] == ["dockyard.Tag.Moved"]


def test_tag_moves_to_the_newest_push(registry: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, layer2 = blobs
    first, second = image_manifest(config, layer1), image_manifest(config, layer2)

    # `latest` is pushed, then pushed again with other content.
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, first)
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, second)

    # It now names the second manifest; the first is still there by digest.
    assert registry_view(registry).tag_digest(REPO, "latest") == sha256(second)
    assert registry_view(registry).manifest_by_digest(REPO, sha256(first)).body == first

    # The tag's history records the move from the first to the second.
    tag = registry.repository.get(Tag.create_id(REPO, "latest"))
    moves = [(e.previous, e.digest) for e in registry.repository.event_store.get(tag.id)
             if isinstance(e, Tag.Moved)]
    assert moves == [(None, sha256(first)), (sha256(first), sha256(second))]


def test_referrers_are_found_by_subject(registry: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, layer2 = blobs
    subject_body = image_manifest(config, layer1)
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, subject_body)

    # An SBOM naming the image as its subject, pushed by digest.
    sbom = image_manifest(config, layer2, artifactType="application/vnd.example.sbom",
                          subject={"mediaType": OCI_MANIFEST, "digest": sha256(subject_body),
                                   "size": len(subject_body)},
                          annotations={"org.example.kind": "sbom"})
    registry.push_manifest(REPO, sha256(sbom), OCI_MANIFEST, sbom)

    # The referrers query lists it with its type and annotations; a filter by other type does not.
    assert registry_view(registry).referrers(REPO, sha256(subject_body), None) == [{
        "mediaType": OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom),
        "artifactType": "application/vnd.example.sbom", "annotations": {"org.example.kind": "sbom"},
    }]
    assert registry_view(registry).referrers(REPO, sha256(subject_body), "application/vnd.example.sig") == []


# -- deleting ------------------------------------------------------------------------------------


def test_delete_manifest_removes_its_tags(registry: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, layer2 = blobs
    doomed, kept = image_manifest(config, layer1), image_manifest(config, layer2)
    registry.push_manifest(REPO, "a", OCI_MANIFEST, doomed)
    registry.push_manifest(REPO, "b", OCI_MANIFEST, doomed)
    registry.push_manifest(REPO, "c", OCI_MANIFEST, kept)

    # Deleting the manifest deletes both tags naming it, and says which.
    assert registry.delete_manifest(REPO, sha256(doomed)) == ["a", "b"]
    assert registry_view(registry).list_tags(REPO, None, None) == ["c"]
    assert registry_view(registry).manifest_by_digest(REPO, sha256(doomed)) is None
    assert registry_view(registry).manifest_by_tag(REPO, "a") is None

    # Deleting it again, or a manifest never pushed, is MANIFEST_UNKNOWN.
    with pytest.raises(ManifestUnknown):
        registry.delete_manifest(REPO, sha256(doomed))
    with pytest.raises(ManifestUnknown):
        registry.delete_manifest(REPO, sha256(b"never"))
    with pytest.raises(DigestInvalid):
        registry.delete_manifest(REPO, "latest")

    # It can be pushed again; the old tags stay gone.
    registry.push_manifest(REPO, sha256(doomed), OCI_MANIFEST, doomed)
    assert registry_view(registry).manifest_by_digest(REPO, sha256(doomed)).body == doomed
    assert registry_view(registry).list_tags(REPO, None, None) == ["c"]


def test_delete_tag_keeps_the_manifest(registry: Registry, blobs: tuple[str, str, str]) -> None:
    body = image_manifest(*blobs)
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)

    # Deleting the tag returns what it named; the manifest stays reachable by digest.
    assert registry.delete_tag(REPO, "latest") == sha256(body)
    assert registry_view(registry).tag_digest(REPO, "latest") is None
    assert registry_view(registry).manifest_by_digest(REPO, sha256(body)).body == body

    # A deleted or unknown tag is MANIFEST_UNKNOWN.
    with pytest.raises(ManifestUnknown):
        registry.delete_tag(REPO, "latest")
    with pytest.raises(ManifestUnknown):
        registry.delete_tag(REPO, "never")

    # Pushing the tag again brings it back.
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)
    assert registry_view(registry).tag_digest(REPO, "latest") == sha256(body)


def test_delete_blob_unlinks_it(registry: Registry, blobs: tuple[str, str, str]) -> None:
    config, layer1, _ = blobs
    assert registry_view(registry).blob_size(REPO, layer1) == len(b"layer-one")

    # Unlinking makes it unknown to the repository: not pullable, not referenceable.
    registry.delete_blob(REPO, layer1)
    assert registry_view(registry).blob_size(REPO, layer1) is None
    with pytest.raises(ManifestBlobUnknown):
        registry.push_manifest(REPO, "latest", OCI_MANIFEST, image_manifest(config, layer1))

    # Unlinking again, or a blob never linked, is BLOB_UNKNOWN.
    with pytest.raises(BlobUnknown):
        registry.delete_blob(REPO, layer1)
    with pytest.raises(BlobUnknown):
        registry.delete_blob(REPO, sha256(b"never"))


# -- version conflicts ---------------------------------------------------------------------------


def test_conflicting_change_is_retried_on_fresh_state(registry: Registry, other: Registry,
                                                      blobs: tuple[str, str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config, layer1, layer2 = blobs
    ours, theirs = image_manifest(config, layer1), image_manifest(config, layer2)
    other.push_manifest(REPO, sha256(ours), OCI_MANIFEST, ours)

    # Between our load of tag `latest` and our save, another process creates and moves it.
    real_load = registry.load
    loads: list[type] = []

    def load_then_race(cls: type, aggregate_id: Any) -> Any:
        aggregate = real_load(cls, aggregate_id)
        loads.append(cls)
        if cls is Tag and loads.count(Tag) == 1:
            other.push_manifest(REPO, "latest", OCI_MANIFEST, theirs)
        return aggregate

    monkeypatch.setattr(registry, "load", load_then_race)

    # Our push of `latest` conflicts once, is re-run, and wins on top of theirs.
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, ours)
    assert loads.count(Tag) == 2
    assert registry_view(registry).tag_digest(REPO, "latest") == sha256(ours)

    # The re-run decided on what the other process had done: the move is from their digest.
    events = list(registry.repository.event_store.get(Tag.create_id(REPO, "latest")))
    # (Both wrote the new tag's first `Moved` at version 1: ours conflicted on it.)
    moves = [(e.previous, e.digest) for e in events if isinstance(e, Tag.Moved)]
    assert moves == [(None, sha256(theirs)), (sha256(theirs), sha256(ours))]
    assert [e.originator_version for e in events] == [1, 2]


def test_conflicts_are_retried_a_bounded_number_of_times(registry: Registry, blobs: tuple[str, str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    body = image_manifest(*blobs)
    real_save = registry.save
    attempts = []

    def always_conflicts(*aggregates: Any, **kwargs: Any) -> Any:
        attempts.append(aggregates)
        raise IntegrityError("simulated version conflict")

    monkeypatch.setattr(registry, "save", always_conflicts)

    # Every attempt conflicts: after MAX_ATTEMPTS the client is told to retry later.
    with pytest.raises(TooManyRequests):
        registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)
    assert len(attempts) == registry_module.MAX_ATTEMPTS

    # Nothing was recorded; with saving restored, the push goes through.
    monkeypatch.setattr(registry, "save", real_save)
    assert registry_view(registry).tag_digest(REPO, "latest") is None
    registry.push_manifest(REPO, "latest", OCI_MANIFEST, body)
    assert registry_view(registry).tag_digest(REPO, "latest") == sha256(body)


def test_concurrent_first_pushes_create_the_repository_once(registry: Registry, other: Registry,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Two processes link the first blobs of a new repository; ours loses the race to create it.
    real_load = registry.load
    raced = []

    def load_then_race(cls: type, aggregate_id: Any) -> Any:
        aggregate = real_load(cls, aggregate_id)
        if cls.__name__ == "Repository" and not raced:
            raced.append(True)
            other.link_blob("lib/new", sha256(b"theirs"), 6)
        return aggregate

    monkeypatch.setattr(registry, "load", load_then_race)
    registry.link_blob("lib/new", sha256(b"ours"), 4)

    # One Repository.Created, both blobs linked.
    assert topics(registry).count("dockyard.Repository.Created") == 1
    assert registry_view(registry).blob_size("lib/new", sha256(b"ours")) == 4
    assert registry_view(registry).blob_size("lib/new", sha256(b"theirs")) == 6


# -- upload sessions -----------------------------------------------------------------------------


def test_upload_in_pieces(uploads: UploadSessions, store: MemoryStore, registry: Registry) -> None:
    data = b"".join(bytes([i]) * 1000 for i in range(5))
    upload_id = uploads.start(REPO)
    assert uploads.status(REPO, upload_id).size == 0

    # Five PATCH requests, each naming where it starts (Content-Range), each one piece.
    for i in range(5):
        append = uploads.append(REPO, upload_id, start=i * 1000)
        assert append.offset == i * 1000
        append.write(data[i * 1000:(i + 1) * 1000])
        assert append.close() == (i + 1) * 1000
        assert uploads.status(REPO, upload_id).size == (i + 1) * 1000

    # The PUT with the digest verifies, moves the bytes into place and links the blob.
    assert uploads.finish(REPO, upload_id, sha256(data)) == len(data)
    assert store.read_bytes(blob_key(sha256(data))) == data
    assert registry_view(registry).blob_size(REPO, sha256(data)) == len(data)

    # The session is gone.
    with pytest.raises(BlobUploadUnknown):
        uploads.status(REPO, upload_id)
    assert list(store.list("_uploads")) == []


def test_content_range_mismatch_is_refused(uploads: UploadSessions) -> None:
    upload_id = uploads.start(REPO)
    append = uploads.append(REPO, upload_id, start=0)
    append.write(b"abc")
    append.close()

    # A chunk that claims to start anywhere but at the end (3) is out of order.
    for start in (0, 2, 4):
        with pytest.raises(RangeInvalid) as info:
            uploads.append(REPO, upload_id, start=start)
        assert info.value.detail == {"expected": 3, "got": start}

    # The session is untouched and continues from 3.
    assert uploads.status(REPO, upload_id).size == 3
    append = uploads.append(REPO, upload_id, start=3)
    append.write(b"def")
    append.close()
    assert uploads.finish(REPO, upload_id, sha256(b"abcdef")) == 6


def test_digest_mismatch_discards_the_upload(uploads: UploadSessions, store: MemoryStore,
                                             registry: Registry) -> None:
    upload_id = uploads.start(REPO)
    append = uploads.append(REPO, upload_id)
    append.write(b"actual bytes")
    append.close()
    before = topics(registry)

    # The client names the digest of other bytes.
    with pytest.raises(DigestInvalid) as info:
        uploads.finish(REPO, upload_id, sha256(b"claimed bytes"))
    assert info.value.detail == {"expected": sha256(b"claimed bytes"), "actual": sha256(b"actual bytes")}

    # Nothing is stored under either digest, nothing is linked, and the session is gone.
    assert not store.exists(blob_key(sha256(b"claimed bytes")))
    assert not store.exists(blob_key(sha256(b"actual bytes")))
    assert list(store.list("_uploads")) == []
    assert topics(registry) == before
    with pytest.raises(BlobUploadUnknown):
        uploads.status(REPO, upload_id)


def test_size_mismatch_discards_the_upload(uploads: UploadSessions, store: MemoryStore) -> None:
    upload_id = uploads.start(REPO)
    append = uploads.append(REPO, upload_id)
    append.write(b"12345")
    append.close()
    with pytest.raises(SizeInvalid):
        uploads.finish(REPO, upload_id, sha256(b"12345"), expected_size=6)
    assert list(store.list("_uploads")) == []


def test_rehash_when_another_process_appended(store: MemoryStore, registry: Registry, other: Registry) -> None:
    # Two registry processes share the blob store; the client's PATCHes alternate between them.
    first = UploadSessions(store, registry, registry_view(registry))
    second = UploadSessions(store, other, registry_view(other))
    pieces = [b"first process, " * 100, b"second process, " * 100, b"first again, " * 100, b"second again"]
    upload_id = first.start(REPO)

    # Each process appends in turn; each time, the other's remembered hash is stale.
    for i, piece in enumerate(pieces):
        sessions = (first, second)[i % 2]
        append = sessions.append(REPO, upload_id, start=sum(map(len, pieces[:i])))
        append.write(piece)
        append.close()

    # The first process finishes: its digest covers every byte, whoever appended them.
    data = b"".join(pieces)
    assert first.finish(REPO, upload_id, sha256(data)) == len(data)
    assert store.read_bytes(blob_key(sha256(data))) == data
    assert registry_view(other).blob_size(REPO, sha256(data)) == len(data)


def test_aborted_append_forgets_its_hash(uploads: UploadSessions, store: MemoryStore) -> None:
    upload_id = uploads.start(REPO)
    append = uploads.append(REPO, upload_id)
    append.write(b"kept ")
    append.close()

    # A request dies half-way: some bytes may have reached storage, its hash state is dropped...
    append = uploads.append(REPO, upload_id)
    append.write(b"partial ")
    append.abort()

    # ...and the next request hashes from what is really stored, so the digest is right.
    size = uploads.status(REPO, upload_id).size
    stored = store.read_bytes(f"_uploads/{upload_id}/data")[:size]
    append = uploads.append(REPO, upload_id, start=size)
    append.write(b"rest")
    append.close()
    assert uploads.finish(REPO, upload_id, sha256(stored + b"rest")) == size + 4


def test_sha512_upload(uploads: UploadSessions, store: MemoryStore, registry: Registry) -> None:
    data = b"hashed with sha512" * 1000
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    upload_id = uploads.start(REPO)
    append = uploads.append(REPO, upload_id)
    append.write(data)
    append.close()

    # Verified with sha512, stored and linked under the sha512 digest.
    assert uploads.finish(REPO, upload_id, digest) == len(data)
    assert store.read_bytes(blob_key(digest)) == data
    assert blob_key(digest).startswith("blobs/sha512/")
    assert registry_view(registry).blob_size(REPO, digest) == len(data)

    # A wrong sha512 digest is refused like a wrong sha256 one.
    upload_id = uploads.start(REPO)
    append = uploads.append(REPO, upload_id)
    append.write(data)
    append.close()
    with pytest.raises(DigestInvalid):
        uploads.finish(REPO, upload_id, "sha512:" + hashlib.sha512(b"other").hexdigest())


def test_empty_blob(uploads: UploadSessions, store: MemoryStore) -> None:
    # A blob of no bytes (used by OCI artifacts) uploads like any other.
    upload_id = uploads.start(REPO)
    assert uploads.finish(REPO, upload_id, sha256(b"")) == 0
    assert store.read_bytes(blob_key(sha256(b""))) == b""


def test_sessions_belong_to_their_repository(uploads: UploadSessions, store: MemoryStore) -> None:
    upload_id = uploads.start(REPO)

    # Another repository, a malformed id, or an id with a trailing newline: no such session.
    for repository, uid in (("lib/other", upload_id), (REPO, "not-a-uuid"), (REPO, upload_id + "\n"),
                            (REPO, str(uuid.uuid4())), (REPO, "../" + upload_id)):
        with pytest.raises(BlobUploadUnknown):
            uploads.status(repository, uid)
        with pytest.raises(BlobUploadUnknown):
            uploads.append(repository, uid)

    # Cancelling removes it and everything it stored.
    uploads.cancel(REPO, upload_id)
    with pytest.raises(BlobUploadUnknown):
        uploads.status(REPO, upload_id)
    assert list(store.list("_uploads")) == []

    # A session cannot be started for an invalid repository name.
    with pytest.raises(NameInvalid):
        uploads.start("Not/Valid")


def test_purge_deletes_only_sessions_older_than_the_age(uploads: UploadSessions, store: MemoryStore) -> None:
    old, fresh = uploads.start(REPO), uploads.start(REPO)
    append = uploads.append(REPO, old)  # an abandoned session with bytes in it
    append.write(b"half a layer")
    append.close()
    week_later = datetime.now(UTC) + timedelta(days=7)
    # The fresh one was started a moment after `old`: backdate `old` by an hour to tell them apart.
    info = orjson.loads(store.read_bytes(f"_uploads/{old}/info"))
    info["started_at"] = (datetime.fromisoformat(info["started_at"]) - timedelta(hours=1)).isoformat()
    store.write_bytes(f"_uploads/{old}/info", orjson.dumps(info))
    # A session being started right now has data but no info yet: never purged.
    store.writer(f"_uploads/{uuid.uuid4()}/data", append=True).close()
    sessions_before = set(store.list("_uploads"))

    assert purge_uploads(uploads, timedelta(hours=168, minutes=30), now=week_later, dry_run=True) == [old]
    assert set(store.list("_uploads")) == sessions_before  # a dry run deletes nothing

    assert purge_uploads(uploads, timedelta(hours=168, minutes=30), now=week_later) == [old]
    with pytest.raises(BlobUploadUnknown):
        uploads.status(REPO, old)
    assert uploads.status(REPO, fresh).size == 0
    assert purge_uploads(uploads, timedelta(hours=168, minutes=30), now=week_later) == []  # idempotent
    assert purge_uploads(uploads, timedelta(0), now=week_later) == [fresh]


def test_mount_links_a_blob_from_another_repository(uploads: UploadSessions, registry: Registry) -> None:
    digest = upload(uploads, "lib/base", b"base layer")

    # Mounting from where it is linked links it here with its size.
    assert uploads.mount(REPO, digest, "lib/base") == len(b"base layer")
    assert registry_view(registry).blob_size(REPO, digest) == len(b"base layer")

    # From a repository that does not have it: nothing.
    assert uploads.mount("lib/third", digest, "lib/empty") is None
    assert registry_view(registry).blob_size("lib/third", digest) is None


def test_blob_digest_helpers_agree() -> None:
    # The content address the uploads use is the digest's algorithm, first two hex, and hex.
    d = Digest.of(b"x")
    assert blob_key(str(d)) == f"blobs/sha256/{d.hex[:2]}/{d.hex}"
