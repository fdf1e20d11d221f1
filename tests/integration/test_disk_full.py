"""Issue 7, item 7: the disk under the data directory fills up.

Before: 500 `UNKNOWN`, and the failed upload's partial data stayed until the 7-day purge, so
every later write failed too. Now: 507 `STORAGE_FULL` with a clear message, the failed
session and its data are gone, reads keep working, and writes work again as soon as space
returns. For real: the data directory (SQLite and blobs) is a 24 MiB tmpfs, filled by files
the test then deletes. Needs root (mount); SQLite only: the blob path is the same on both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, missing
from tests.integration.oci_client import image, push, random_bytes, sha256
from tests.server import DockyardServer

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        missing(f"a tmpfs mount (needs root): {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _sessions(data: Path) -> list[str]:
    uploads = data / "blobs" / "_uploads"
    return sorted(os.listdir(uploads)) if uploads.exists() else []


def test_a_full_disk_answers_507_drops_the_upload_and_recovers(small_disk: Path) -> None:
    data = small_disk / "data"
    server = DockyardServer(data, None, ADMIN_PASSWORD)
    server.start()
    try:
        with server.client() as admin:
            pushed = push(admin, "admin/app", image(), "v1")
            filler = small_disk / "filler"
            with open(filler, "wb") as f:  # leave ~3 MiB free
                f.write(b"\0" * (_free(small_disk) - 3 * MiB))
            blob = random_bytes(6 * MiB)

            # A monolithic upload: 507, and nothing of it stays.
            r = admin.post("/v2/admin/app/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
            assert r.status_code == 507, r.text
            error = r.json()["errors"][0]
            assert error["code"] == "STORAGE_FULL" and "storage is full" in error["message"]
            assert _sessions(data) == []
            assert _free(small_disk) > 2 * MiB

            # A chunked upload: the session that hit the full disk is gone too.
            r = admin.post("/v2/admin/app/blobs/uploads/")
            assert r.status_code == 202
            location = r.headers["location"]
            r = admin.patch(location, content=blob, headers={"Content-Range": f"0-{len(blob) - 1}"})
            assert r.status_code == 507 and r.json()["errors"][0]["code"] == "STORAGE_FULL", r.text
            assert admin.get(location).status_code == 404
            assert _sessions(data) == []

            # Reads keep working.
            r = admin.get(f"/v2/admin/app/manifests/v1", headers={"Accept": pushed.media_type})
            assert r.status_code == 200 and r.content == pushed.body
            for digest in pushed.doc["layers"][0]["digest"], pushed.doc["config"]["digest"]:
                assert admin.get(f"/v2/admin/app/blobs/{digest}").status_code == 200
            assert admin.get("/v2/admin/app/tags/list").json()["tags"] == ["v1"]

            # Not a byte left: the event log (SQLite, on the same disk) cannot grow either.
            with open(small_disk / "filler2", "wb", buffering=0) as f:  # unbuffered: close() has nothing left to flush
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            tagged = [admin.put(f"/v2/admin/app/manifests/t{i}", content=pushed.body,
                                headers={"Content-Type": pushed.media_type}) for i in range(20)]
            assert {r.status_code for r in tagged} <= {201, 507}
            full = [r for r in tagged if r.status_code == 507]
            assert full and full[0].json()["errors"][0]["code"] == "STORAGE_FULL", [r.text for r in tagged]
            assert admin.get("/v2/admin/app/manifests/v1", headers={"Accept": pushed.media_type}).status_code == 200
            (small_disk / "filler2").unlink()

            # Space returns: the same upload goes through, and a push with it.
            filler.unlink()
            r = admin.post("/v2/admin/app/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
            assert r.status_code == 201, r.text
            push(admin, "admin/app", image(), "v2")
        assert "Traceback" not in server.log()
    finally:
        server.stop()
