"""Mark: the live set folded from the log up to a position, on in-memory stores."""

from __future__ import annotations

from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.gc.mark import mark
from tests.unit.gc_fixtures import env, index_manifest, marked, push_image, registry, sha256, store, upload, uploads  # noqa: F401

REPO = "engineering/barca"


def test_tagged_manifest_keeps_config_and_layers(registry: Registry, uploads: UploadSessions) -> None:
    # lona and neymar share a base layer; each has a layer of its own.
    lona, lona_blobs = push_image(registry, uploads, REPO, "lona", b"base", b"lona-only", config=b'{"a":1}')
    neymar, neymar_blobs = push_image(registry, uploads, REPO, "neymar", b"base", b"neymar-only", config=b'{"b":2}')

    live = marked(registry).live(delete_untagged=False)
    assert set(lona_blobs) | set(neymar_blobs) <= set(live)
    shared = sha256(b"base")
    assert {h.manifest for h in live[shared]} == {lona, neymar}
    assert {h.via for h in live[lona_blobs[2]]} == {"tag:lona"}


def test_deleted_tag_leaves_untagged_manifest_live_unless_policy(registry: Registry, uploads: UploadSessions) -> None:
    lona, lona_blobs = push_image(registry, uploads, REPO, "lona", b"base", b"lona-only", config=b'{"a":1}')
    push_image(registry, uploads, REPO, "neymar", b"base", b"neymar-only", config=b'{"b":2}')
    registry.delete_tag(REPO, "lona")
    marker = marked(registry)

    # Untagged but not deleted: still live by default, held as "untagged".
    assert [h.via for h in marker.live(delete_untagged=False)[lona_blobs[2]]] == ["untagged"]
    # With deleteUntagged, lona's own blobs go; the shared base stays (neymar holds it).
    live = marker.live(delete_untagged=True)
    assert lona_blobs[0] not in live and lona_blobs[2] not in live
    assert sha256(b"base") in live
    # The cause cited for lona's layer is the tag delete.
    cause = marker.last_change(lona_blobs[2])
    assert cause is not None and cause.what == f"tag {REPO}:lona deleted"


def test_deleted_manifest_and_repository(registry: Registry, uploads: UploadSessions) -> None:
    digest, blobs = push_image(registry, uploads, REPO, "lona", b"x1", config=b"{\"x\":1}")
    other, other_blobs = push_image(registry, uploads, "engineering/madrid", "v1", b"y1")
    registry.delete_manifest(REPO, digest)
    marker = marked(registry)
    live = marker.live(delete_untagged=False)
    assert not set(blobs) & set(live)
    assert set(other_blobs) <= set(live)

    registry.delete_repository("engineering/madrid")
    marker = marked(registry)
    assert marker.live(delete_untagged=False) == {}
    cause = marker.last_change(other_blobs[1])
    assert cause is not None and cause.position > 0
    assert marker.links_of(other_blobs[1]) == []


def test_index_children_and_referrers_are_live(registry: Registry, uploads: UploadSessions) -> None:
    amd64, amd_blobs = push_image(registry, uploads, REPO, None, b"amd64-layer", config=b'{"arch":"amd64"}')
    arm64, arm_blobs = push_image(registry, uploads, REPO, None, b"arm64-layer", config=b'{"arch":"arm64"}')
    body = index_manifest(amd64, arm64)
    registry.push_manifest(REPO, "multi", None, body)
    index = sha256(body)
    # A signature whose subject is the index.
    sig_blob = upload(uploads, REPO, b"signature")
    from tests.unit.gc_fixtures import image_manifest

    subject = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index, "size": len(body)}
    sig = image_manifest(sig_blob, sig_blob, subject=subject)
    registry.push_manifest(REPO, sha256(sig), None, sig)

    live = marked(registry).live(delete_untagged=True)
    assert set(amd_blobs) | set(arm_blobs) | {sig_blob} <= set(live)
    assert {h.via for h in live[amd_blobs[1]]} == {f"index:{index}"}
    assert {h.via for h in live[sig_blob]} == {f"subject:{index}"}

    # Untag the index: with deleteUntagged nothing of it stays.
    registry.delete_tag(REPO, "multi")
    assert marked(registry).live(delete_untagged=True) == {}


def test_mark_is_a_function_of_the_position(registry: Registry, uploads: UploadSessions) -> None:
    _, blobs = push_image(registry, uploads, REPO, "lona", b"early")
    position = registry.recorder.max_notification_id()
    registry.delete_tag(REPO, "lona")
    push_image(registry, uploads, REPO, "later", b"late")

    # Folding up to the earlier position gives the earlier answer, whatever came after.
    early = mark(registry.recorder, registry.mapper, position)
    assert set(early.live(delete_untagged=True)) == set(blobs)
    assert early.live(delete_untagged=True) == mark(registry.recorder, registry.mapper, position).live(True)
    # What came after P is "touched after P" for the later push's blobs only.
    now = marked(registry)
    assert now.touched_after(position, sha256(b"late"))
    assert not now.touched_after(position, sha256(b"early"))


def test_linked_blob_without_manifest_is_not_live(registry: Registry, uploads: UploadSessions) -> None:
    digest = upload(uploads, REPO, b"dangling")
    marker = marked(registry)
    assert digest not in marker.live(delete_untagged=False)
    cause = marker.last_change(digest)
    assert cause is not None and "linked" in cause.what
    assert marker.links_of(digest) == [REPO] and marker.size_of(digest) == len(b"dangling")
