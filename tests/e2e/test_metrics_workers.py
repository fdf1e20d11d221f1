"""`/metrics` of a `dockyard serve --workers 2`: whichever worker answers a scrape, it reports
the requests of both (prometheus-client's multiprocess mode, in a folder serve empties at start).
The counting itself is tested in process (tests/inprocess/test_metrics.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN_PASSWORD
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e
BLOB_ROUTE = "/v2/{name:path}/blobs/{digest}"


def requests_total(text: str, route: str, method: str, status: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "dockyard_http_requests_total"
               and s.labels == {"route": route, "method": method, "status": status})


def test_every_worker_reports_the_requests_of_all(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"left over by an earlier run")  # serve empties it
    server = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD, workers=2,
                            extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    server.start()
    try:
        data = os.urandom(1000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with server.client() as admin:
            assert admin.post("/api/v0/accounts", json={"type": "organization", "name": "metrics"}).status_code == 201
            r = admin.post("/v2/metrics/probe/blobs/uploads/", params={"digest": digest}, content=data)
            assert r.status_code == 201, r.text
            before = admin.get("/metrics").text
            pulls = 40
            # New connections each time, so both workers take some of them.
            for _ in range(pulls):
                with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD)) as fresh:
                    assert fresh.get(f"/v2/metrics/probe/blobs/{digest}").status_code == 200
            # Every scrape, whichever worker answers it, sees all of them.
            for _ in range(4):
                with httpx.Client(base_url=server.url) as fresh:
                    after = fresh.get("/metrics").text
                assert (requests_total(after, BLOB_ROUTE, "GET", "200")
                        - requests_total(before, BLOB_ROUTE, "GET", "200")) == pulls
        files = {p.name for p in metrics_dir.iterdir()}
        assert "counter_99999.db" not in files
        assert len({name.rsplit("_", 1)[1] for name in files if name.startswith("counter_")}) == 2, files
    finally:
        server.stop()
