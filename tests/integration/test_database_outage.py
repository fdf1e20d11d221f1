"""Issue 7, item 5: PostgreSQL goes away while Dockyard serves, then comes back.

Before: requests waited minutes (10 library retries, each up to 30 s for a pool connection; a
streaming blob PUT more than 120 s) and `/healthz` said ok. Now every request answers 503
within seconds with an OCI error (`UNAVAILABLE`) or an RFC 9457 problem, `/readyz` says the
database is unavailable, and Dockyard recovers by itself once the database is back.

The cluster is a private one (tests/pg_cluster.py) that this test stops and starts; the
client's 30 s timeout is the bound: a request that hangs fails the test.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.integration.oci_client import image, push, random_bytes, sha256
from tests.pg_cluster import PrivateCluster
from tests.server import DockyardServer

BOUND = 30.0  # s: every answer while the database is away comes well within this


@pytest.fixture
def cluster() -> PrivateCluster:
    pg = PrivateCluster()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


def _until_ready(client: httpx.Client, deadline_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while True:
        r = client.get("/readyz")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_postgres_away_answers_503_and_recovers(cluster: PrivateCluster, tmp_path) -> None:
    server = DockyardServer(tmp_path / "data", cluster.url, ADMIN_PASSWORD)
    server.start()
    try:
        with server.client() as admin, httpx.Client(base_url=server.url, timeout=BOUND) as anonymous:
            admin.timeout = httpx.Timeout(BOUND)
            pushed = push(admin, "admin/app", image(), "v1")
            r = anonymous.get("/readyz")
            assert r.status_code == 200 and r.json() == {"status": "ready",
                                                          "checks": {"database": "ok", "storage": "ok"}}
            location = admin.post("/v2/admin/app/blobs/uploads/").headers["location"]

            cluster.stop()

            r = admin.get(f"/v2/admin/app/manifests/{pushed.digest}")
            assert r.status_code == 503, r.text
            assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
            r = admin.get("/v2/admin/app/tags/list")
            assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE", r.text
            blob = random_bytes(2 << 20)  # a blob streamed onto the session opened before
            r = admin.put(location, params={"digest": sha256(blob)}, content=blob)
            assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE", r.text
            r = admin.get("/api/v0/accounts")
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json", r.text
            assert r.json()["status"] == 503 and r.json()["type"] == "urn:dockyard:problem:unavailable"

            r = anonymous.get("/readyz")  # no credentials needed, nothing leaked
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable", "checks": {"database": "unavailable", "storage": "ok"}}
            assert anonymous.get("/healthz").status_code == 200  # the process itself is alive

            cluster.start()

            assert _until_ready(anonymous).status_code == 200
            r = admin.get(f"/v2/admin/app/manifests/{pushed.digest}", headers={"Accept": pushed.media_type})
            assert r.status_code == 200 and r.content == pushed.body
            push(admin, "admin/app", image(), "v2")
            # The projections that follow the log (audit trail, checkpoints) follow it again.
            deadline = time.monotonic() + 30
            while True:
                rows = admin.get("/api/v0/projections").json()["projections"]
                following = [row for row in rows if row["kind"] == "followed"]
                if all(row["state"] == "caught up" for row in following) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert following and all(row["state"] == "caught up" for row in following), rows
        log = server.log()
        assert "Exception in ASGI application" not in log and "unhandled error" not in log
    finally:
        server.stop()
