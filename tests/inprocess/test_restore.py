"""Restore (`POST …/tags/{tag}/restore`, `POST …/restore`): new events bring a moved or deleted
tag, or a deleted repository with its grants, back; refused naming the blobs GC removed."""

from __future__ import annotations

import hashlib
import json

import pytest

from dockyard.storage import blob_key
from tests.inprocess.conftest import API, Dockyard, image_parts
from tests.inprocess.test_tag_history import named_user
from tests.inprocess.test_webhooks import put_image

pytestmark = pytest.mark.anyio
BARCA = f"{API}/repositories/engineering/barca"


def head(dockyard: Dockyard) -> int:
    return dockyard.services.registry.recorder.max_notification_id() or 0


async def test_a_moved_then_deleted_tag_comes_back_as_of_an_instant(dockyard: Dockyard) -> None:
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    first = await dockyard.push(admin, "engineering/barca", "lona")
    first_bytes = (await admin.get("/v2/engineering/barca/manifests/lona")).content
    before_move = head(dockyard)
    second = await dockyard.push(admin, "engineering/barca", "lona")
    assert (await admin.delete(f"{BARCA}/tags/lona")).status_code == 204
    assert (await admin.get("/v2/engineering/barca/manifests/lona")).status_code == 404
    tags_then = (await admin.get(f"{BARCA}/tags", params={"at": str(before_move)})).json()["tags"]
    assert [t["digest"] for t in tags_then] == [first]

    r = await admin.post(f"{BARCA}/tags/lona/restore", json={"at": str(before_move)})
    assert r.status_code == 200, r.text
    assert r.json()["digest"] == first
    pulled = await admin.get("/v2/engineering/barca/manifests/lona")
    assert pulled.status_code == 200 and pulled.content == first_bytes
    # By digest: back to the second; the history shows each step, restores included.
    assert (await admin.post(f"{BARCA}/tags/lona/restore", json={"digest": second})).status_code == 200
    steps = (await admin.get(f"{BARCA}/tags/lona/history")).json()["steps"]
    assert [(s["action"], s["digest"]) for s in steps] == [
        ("pushed", first), ("moved", second), ("deleted", second), ("pushed", first), ("moved", second)]
    # A body with neither or both is a 422; a digest never pushed here is a 404.
    assert (await admin.post(f"{BARCA}/tags/lona/restore", json={})).status_code == 422
    r = await admin.post(f"{BARCA}/tags/lona/restore", json={"digest": "sha256:" + "0" * 64})
    assert r.status_code == 404


async def test_restore_needs_the_delete_s_rights(dockyard: Dockyard) -> None:
    moby = await named_user(dockyard, "moby", "read-only")
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    digest = await dockyard.push(admin, "engineering/barca", "lona")
    assert (await admin.delete(f"{BARCA}/tags/lona")).status_code == 204
    async with dockyard.client(moby) as as_moby:
        r = await as_moby.post(f"{BARCA}/tags/lona/restore", json={"digest": digest})
        assert r.status_code == 403
        assert (await admin.delete(BARCA)).status_code == 204
        assert (await as_moby.post(f"{BARCA}/restore")).status_code == 403


async def test_a_deleted_repository_comes_back_with_its_tags_and_grants(dockyard: Dockyard) -> None:
    ahab = await named_user(dockyard, "ahab")
    await dockyard.org(name="engineering")
    await dockyard.team("engineering", "crew", members=["ahab"])
    admin = dockyard.client()
    madrid = f"{API}/repositories/engineering/madrid"
    v1 = await dockyard.push(admin, "engineering/madrid", "v1")
    v2 = await dockyard.push(admin, "engineering/madrid", "v2")
    assert (await admin.patch(madrid, json={"visibility": "public", "description": "the capital"})).status_code == 200
    await dockyard.grant("engineering/madrid", "crew", "read-write")

    async def ahab_access() -> str:
        r = await admin.get(f"{API}/accounts/ahab/access", params={"repository": "engineering/madrid"})
        return r.json()["accessLevel"]

    assert await ahab_access() == "read-write"
    assert (await admin.delete(madrid)).status_code == 204
    assert await ahab_access() == "none"
    r = await admin.post(f"{madrid}/restore")
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == {"v1": v1, "v2": v2} and r.json()["teamAccess"] == {"crew": "read-write"}
    assert await ahab_access() == "read-write"
    repo = (await admin.get(madrid)).json()
    assert (repo["visibility"], repo["description"]) == ("public", "the capital")
    async with dockyard.client(ahab) as as_ahab:
        assert (await as_ahab.get("/v2/engineering/madrid/manifests/v2")).status_code == 200
    # Restoring a live repository is a conflict.
    assert (await admin.post(f"{madrid}/restore")).status_code == 409


async def test_refused_naming_the_blobs_gc_removed(dockyard: Dockyard) -> None:
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    digest = await dockyard.push(admin, "engineering/barca", "lona")
    manifest = (await admin.get("/v2/engineering/barca/manifests/lona")).json()
    layer = manifest["layers"][0]["digest"]
    assert (await admin.delete(f"{BARCA}/tags/lona")).status_code == 204
    dockyard.services.store.delete(blob_key(layer))  # what a GC sweep does to an unreferenced blob
    before = head(dockyard)
    r = await admin.post(f"{BARCA}/tags/lona/restore", json={"digest": digest})
    assert r.status_code == 409 and layer in r.json()["detail"], r.text
    assert head(dockyard) == before  # nothing recorded


async def test_an_index_comes_back_with_its_child_manifests(dockyard: Dockyard) -> None:
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    children = []
    for arch in ("amd64", "arm64"):
        parts = image_parts(arch)
        digest = "sha256:" + hashlib.sha256(parts[2]).hexdigest()
        await put_image(admin, "engineering/barca", digest, parts)  # by digest, untagged
        children.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                         "size": len(parts[2])})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": children}).encode()
    r = await admin.put("/v2/engineering/barca/manifests/multi", content=index,
                        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert r.status_code == 201, r.text
    assert (await admin.delete(BARCA)).status_code == 204
    r = await admin.post(f"{BARCA}/restore")
    assert r.status_code == 200, r.text
    assert (await admin.get("/v2/engineering/barca/manifests/multi")).content == index
    for child in children:
        assert (await admin.get(f"/v2/engineering/barca/manifests/{child['digest']}")).status_code == 200
