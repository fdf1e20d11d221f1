"""Abandoned upload sessions are purged: by `dockyard uploads purge`, and on a timer by every
serving process (DOCKYARD_UPLOAD_PURGE_*), as Distribution's upload purging does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, database_url_for
from tests.integration.oci_client import assert_error, push_blob, random_bytes, unique_repo
from tests.server import DockyardServer


def start_upload(client: httpx.Client, repo: str) -> str:
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    r = client.patch(r.headers["location"], content=b"part of a layer",
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    return r.headers["location"]


@pytest.fixture
def started(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    servers: list[DockyardServer] = []

    def start(**env: str) -> DockyardServer:
        srv = DockyardServer(tmp_path / f"data{len(servers)}", database_url_for(backend, request), ADMIN_PASSWORD,
                             extra_env=env)
        servers.append(srv)
        srv.start()
        return srv

    yield start
    for srv in servers:
        srv.stop()


def test_cli_purge(started) -> None:
    srv = started()
    repo = unique_repo("purge")
    with srv.client(auth=("admin", ADMIN_PASSWORD)) as client:
        session = start_upload(client, repo)
        data = random_bytes(500)
        digest = push_blob(client, repo, data)  # finished uploads are blobs, not sessions

        command = [sys.executable, "-m", "dockyard", "uploads", "purge", "--data-dir", str(srv.data_dir)]
        if srv.database_url:
            command += ["--database-url", srv.database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        dry = subprocess.run([*command, "--dry-run", "--older-than-hours", "0"], capture_output=True, text=True,
                             env=env, timeout=60, check=True)
        assert dry.stdout.split() == [session.rsplit("/", 1)[1]]
        assert client.get(session).status_code == 204  # a dry run deletes nothing

        kept = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=True)
        assert kept.stdout == ""  # the default age (a week) keeps a fresh session
        assert client.get(session).status_code == 204

        subprocess.run([*command, "--older-than-hours", "0"], capture_output=True, env=env, timeout=60, check=True)
        assert_error(client.get(session), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(client.patch(session, content=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_serving_process_purges_on_a_timer(started) -> None:
    # Every 0.0005 h (1.8 s), sessions older than 0 h: any session goes at the next pass.
    srv = started(DOCKYARD_UPLOAD_PURGE_INTERVAL_HOURS="0.0005", DOCKYARD_UPLOAD_PURGE_AGE_HOURS="0")
    with srv.client(auth=("admin", ADMIN_PASSWORD)) as client:
        session = start_upload(client, unique_repo("timer"))
        deadline = time.monotonic() + 60
        while client.get(session).status_code == 204 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert_error(client.get(session), 404, "BLOB_UPLOAD_UNKNOWN")
        assert "purged 1 abandoned upload session" in srv.log()
