"""The lab's Task 7 end to end with skopeo: soft delete, then garbage collection (hard delete).

`engineering/barca:lona` and `:neymar` share their two base layers. Deleting the tag `lona`
(the lab's trash can, `DELETE /api/v0/.../tags/lona`) takes it from the tags list; the
repository stays and every byte stays on disk. GC, with the lab's schedule recorded and
`deleteUntagged` on, then removes lona's own config and layer from storage; the shared layers
and `neymar` pull back byte for byte, and the run and each deleted blob are in the log.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.clients import Layout, Skopeo, assert_same_image, blob_files, events, make_image

pytestmark = pytest.mark.e2e
REPO = "engineering/barca"


def test_soft_delete_then_gc_removes_only_what_lona_alone_used(server, tmp_path) -> None:
    # Same seed and first two layer sizes: the base layers are identical, the third differs.
    lona = make_image(tmp_path / "lona", ["64K", "32K", "16K"], seed="barca", tag="lona")
    neymar = make_image(tmp_path / "neymar", ["64K", "32K", "8K"], seed="barca", tag="neymar")
    shared = set(lona.referenced()) & set(neymar.referenced())
    own = set(lona.referenced()) - shared
    assert len(shared) == 2 and len(own) == 2  # two base layers; lona's config and top layer

    admin = server.client()
    r = admin.post("/api/v0/accounts", json={"type": "organization", "name": "engineering"})
    assert r.status_code == 201, r.text
    skopeo = Skopeo(server, tmp_path / "skopeo")
    skopeo.copy(lona.ref, skopeo.docker(REPO, "lona"))
    skopeo.copy(neymar.ref, skopeo.docker(REPO, "neymar"))
    assert sorted(skopeo.list_tags(REPO)) == ["lona", "neymar"]

    # Soft delete: lona leaves the tags list, the repository stays, its bytes stay on disk.
    r = admin.delete(f"/api/v0/repositories/{REPO}/tags/lona")
    assert r.status_code == 204, r.text
    assert skopeo.list_tags(REPO) == ["neymar"]
    assert admin.get(f"/api/v0/repositories/{REPO}").status_code == 200
    on_disk = {digest for digest, _ in blob_files(server)}
    assert set(lona.referenced()) <= on_disk

    # The lab's schedule (every day at midnight), soft-deleted images collected, no grace period.
    r = admin.put("/api/v0/settings/gc", json={"schedule": "0 0 0 * * *", "deleteUntagged": True,
                                               "graceHours": 0})
    assert r.status_code == 200 and r.json()["nextRun"].endswith("T00:00:00Z"), r.text

    # Hard delete: run GC now, with explanations.
    # A long operation: 202 with the run's id at once, then poll its Location.
    r = admin.post("/api/v0/gc/run", json={"explain": True})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/v0/gc/runs/{r.json()['id']}?explain=true"
    deadline = time.monotonic() + 120
    while (report := admin.get(r.headers["location"]).json())["state"] == "running":
        assert time.monotonic() < deadline, "GC still running after 120 s"
        time.sleep(0.1)
    assert report["state"] == "done" and report["deleted"] == 2 and report["errors"] == []
    explained = {b["digest"]: b for b in report["blobs"]}
    for digest in own:
        assert explained[digest]["action"] == "delete"
        assert explained[digest]["reason"]["unreferencedSince"]["what"] == f"tag {REPO}:lona deleted"
    for digest in shared:
        assert {h["via"] for h in explained[digest]["reason"]["holders"]} == {"tag:neymar"}

    on_disk = {digest for digest, _ in blob_files(server)}
    assert not own & on_disk
    assert shared <= on_disk and set(neymar.referenced()) <= on_disk

    # neymar (and so the shared layers) pull back byte for byte; lona is gone.
    pulled = Layout(tmp_path / "pulled", "neymar")
    skopeo.copy(skopeo.docker(REPO, "neymar"), pulled.ref)
    assert_same_image(neymar, pulled)
    assert skopeo.copy(skopeo.docker(REPO, "lona"), f"oci:{tmp_path / 'gone'}:x", check=False).returncode != 0

    # The run and each deleted blob are in the log.
    log = events(server, 200)
    collected = [e for e in log if e["topic"] == "dockyard.GcRun.BlobCollected"]
    assert {e["digest"] for e in collected} == own
    assert all(e["actor"] == "admin" for e in collected)
    finished = [e for e in log if e["topic"] == "dockyard.GcRun.Finished"]
    assert finished and finished[-1]["deleted"] == 2 and finished[-1]["bytes_freed"] == report["bytesFreed"]
    runs = admin.get("/api/v0/gc/runs").json()
    assert runs[0]["state"] == "done" and runs[0]["deleted"] == 2
