"""Issue 12 end to end with skopeo on a real server: `engineering/barca:lona` pushed, moved to
another image, deleted; its history lists each step with actor and address; `?at=` before the
move answers the first digest; restoring the tag to that instant brings it back and skopeo
pulls it byte-identical. A deleted repository comes back with its grants: ahab's access to
madrid after the restore is what it was before the delete, and ahab pulls it again; search
finds madrid for ahab and never barca (on both backends: pg_trgm and FTS5)."""

from __future__ import annotations

import pytest

from tests.e2e.clients import Layout, Skopeo, assert_same_image, make_image

pytestmark = pytest.mark.e2e
BARCA = "engineering/barca"
MADRID = "engineering/madrid"
API = "/api/v0/repositories"


def test_a_tag_pushed_moved_deleted_then_restored_to_before_the_move(server, tmp_path) -> None:
    first = make_image(tmp_path / "first", ["32K", "16K"], seed="lona-1", tag="lona")
    second = make_image(tmp_path / "second", ["32K", "8K"], seed="lona-2", tag="lona")
    admin = server.client()
    assert admin.post("/api/v0/accounts", json={"type": "organization", "name": "engineering"}).status_code == 201
    skopeo = Skopeo(server, tmp_path / "skopeo")
    skopeo.copy(first.ref, skopeo.docker(BARCA, "lona"))
    skopeo.copy(second.ref, skopeo.docker(BARCA, "lona"))
    assert admin.delete(f"{API}/{BARCA}/tags/lona").status_code == 204

    r = admin.get(f"{API}/{BARCA}/tags/lona/history")
    assert r.status_code == 200, r.text
    steps = r.json()["steps"]
    assert [(s["action"], s["digest"]) for s in steps] == [
        ("pushed", first.digest), ("moved", second.digest), ("deleted", second.digest)]
    assert all(s["actor"] == "admin" and s["clientAddress"] == "127.0.0.1" for s in steps)

    before_move = str(steps[0]["position"])
    tags = admin.get(f"{API}/{BARCA}/tags", params={"at": before_move}).json()["tags"]
    assert [(t["name"], t["digest"]) for t in tags] == [("lona", first.digest)]
    r = admin.post(f"{API}/{BARCA}/tags/lona/restore", json={"at": before_move})
    assert r.status_code == 200 and r.json()["digest"] == first.digest, r.text

    pulled = Layout(tmp_path / "pulled", "lona")
    skopeo.copy(skopeo.docker(BARCA, "lona"), pulled.ref)
    assert_same_image(first, pulled)
    steps = admin.get(f"{API}/{BARCA}/tags/lona/history").json()["steps"]
    assert [s["action"] for s in steps] == ["pushed", "moved", "deleted", "pushed"]


def test_a_deleted_repository_is_restored_with_its_grants(server, tmp_path) -> None:
    image = make_image(tmp_path / "madrid", ["16K"], seed="madrid", tag="v1")
    admin = server.client()
    assert admin.post("/api/v0/accounts", json={"type": "organization", "name": "engineering"}).status_code == 201
    r = admin.post("/api/v0/accounts", json={"type": "user", "name": "ahab", "password": "ahab-password",
                                             "role": "none"})
    assert r.status_code == 201, r.text
    assert admin.post("/api/v0/accounts/engineering/teams", json={"name": "crew"}).status_code == 201
    assert admin.put("/api/v0/accounts/engineering/teams/crew/members/ahab").status_code == 200
    skopeo = Skopeo(server, tmp_path / "skopeo")
    skopeo.copy(image.ref, skopeo.docker(MADRID, "v1"))
    assert admin.put(f"{API}/{MADRID}/teamAccess/crew", json={"accessLevel": "read-only"}).status_code == 200

    def ahab_access() -> str:
        r = admin.get("/api/v0/accounts/ahab/access", params={"repository": MADRID})
        assert r.status_code == 200, r.text
        return r.json()["accessLevel"]

    before = ahab_access()
    assert before == "read-only"
    assert admin.delete(f"{API}/{MADRID}").status_code == 204
    assert ahab_access() == "none"
    r = admin.post(f"{API}/{MADRID}/restore")
    assert r.status_code == 200, r.text
    assert ahab_access() == before

    # Search (the followed projection, the readable set in SQL): ahab finds madrid, never barca.
    r = admin.post(f"{API}/engineering", json={"name": "barca", "description": "madrid's rival"})
    assert r.status_code == 201, r.text
    found = admin.get("/api/v0/search", params={"q": "madrid"}).json()["repositories"]
    assert [h["fullName"] for h in found] == [MADRID, BARCA]  # the exact name first, then a word
    with server.client(auth=("ahab", "ahab-password")) as ahab:
        found = ahab.get("/api/v0/search", params={"q": "madrid"}).json()["repositories"]
        assert [(h["fullName"], h["accessLevel"]) for h in found] == [(MADRID, "read-only")]
        assert [h["fullName"] for h in ahab.get("/api/v0/search").json()["repositories"]] == [MADRID]

    as_ahab = Skopeo(server, tmp_path / "ahab", user="ahab", password="ahab-password")
    pulled = Layout(tmp_path / "pulled", "v1")
    as_ahab.copy(as_ahab.docker(MADRID, "v1"), pulled.ref)
    assert_same_image(image, pulled)
