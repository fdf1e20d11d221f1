"""`dockyard backup` while the registry serves, `dockyard restore` into a new place: the restored
registry passes `dockyard audit verify` and serves every image whose blobs are present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, database_url_for
from tests.e2e.clients import Layout, Skopeo, assert_same_image, make_image
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e


def dockyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_backup_restore_verify_and_pull(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    blobs = f"file://{tmp_path / 'blobs'}"
    server = DockyardServer(tmp_path / "data", database_url_for(backend, request), ADMIN_PASSWORD,
                            extra_env={"DOCKYARD_STORAGE": blobs})
    server.start()
    try:
        skopeo = Skopeo(server, tmp_path / "skopeo")
        image = make_image(tmp_path / "img", ["4K", "64K"], seed="backup", tag="v1")
        skopeo.copy(image.ref, skopeo.docker("admin/kept", "v1"))
        where = ["--database-url", server.database_url] if server.database_url else ["--data-dir", str(server.data_dir)]
        made = dockyard("backup", *where, str(tmp_path / "backup"))  # online: the server keeps running
        assert made.returncode == 0, made.stderr
        report = json.loads(made.stdout)
        listed = (tmp_path / "backup" / "blobs.txt").read_text().split()
        assert report["blobs"] == len(listed) and set(listed) == set(image.referenced())  # config, layers
    finally:
        server.stop()

    target_url = database_url_for(backend, request)
    target = ["--database-url", target_url] if target_url else ["--data-dir", str(tmp_path / "restored")]
    restored = dockyard("restore", *target, "--storage", blobs, str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["missingBlobs"] == []
    if target_url:  # a dump carries no planner statistics: the restore gathers them
        import psycopg

        with psycopg.connect(target_url) as conn:
            never = conn.execute("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NULL").fetchall()
        assert never == []
    again = dockyard("restore", *target, "--storage", blobs, str(tmp_path / "backup"))
    assert again.returncode == 2 and "restore" in again.stderr  # never over an existing registry

    verified = dockyard("audit", "verify", *target)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    second = DockyardServer(tmp_path / "restored", target_url, ADMIN_PASSWORD, extra_env={"DOCKYARD_STORAGE": blobs})
    second.start()
    try:
        skopeo = Skopeo(second, tmp_path / "skopeo2")
        back = tmp_path / "back"
        skopeo.copy(skopeo.docker("admin/kept", "v1"), f"oci:{back}:v1")
        assert_same_image(image, Layout(back, "v1"))
    finally:
        second.stop()
