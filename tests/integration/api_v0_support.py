"""Helpers for the `/api/v0/` integration tests: unique names, accounts made through the API,
problem-document checks, the event log read with `dockyard events tail`, a tiny image push."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx

from tests.server import DockyardServer

API = "/api/v0"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem document with `status`; return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["title"] and isinstance(body["detail"], str)
    if status == 401:
        assert response.headers["www-authenticate"] == 'Basic realm="dockyard"'
    return body


def make_user(server: DockyardServer, role: str = "none", name: str | None = None) -> tuple[str, str]:
    """A new user (made by admin through the API); returns (name, password) for Basic auth."""
    name = name or unique("u")
    password = f"{name}-pw"
    with server.client() as admin:
        r = admin.post(f"{API}/accounts", json={"type": "user", "name": name, "password": password, "role": role})
    assert r.status_code == 201, r.text
    return name, password


def make_org(server: DockyardServer, owner: tuple[str, str], name: str | None = None) -> str:
    name = name or unique("org")
    with server.client(auth=owner) as client:
        r = client.post(f"{API}/accounts", json={"type": "organization", "name": name})
    assert r.status_code == 201, r.text
    return name


def accounts(server: DockyardServer) -> list[dict[str, Any]]:
    with server.client() as admin:
        r = admin.get(f"{API}/accounts")
    assert r.status_code == 200, r.text
    return r.json()["accounts"]


def events(server: DockyardServer, n: int = 50) -> list[dict[str, Any]]:
    """The last `n` events of the log, as `dockyard events tail` prints them (an in-process
    server, tests.inprocess.conftest.InProcessServer, reads its own log the same way)."""
    if hasattr(server, "events"):
        return server.events(n)
    cmd = [sys.executable, "-m", "dockyard", "events", "tail", "-n", str(n)]
    cmd += ["--database-url", server.database_url] if server.database_url else ["--data-dir", str(server.data_dir)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def push_image(client: httpx.Client, repository: str, tag: str) -> str:
    """Push a one-layer image over `/v2/` with the client's credentials; returns the manifest digest."""
    def blob(data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = client.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return {"digest": digest, "size": len(data)}

    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode())
    layer = blob(uuid.uuid4().bytes * 64)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
    }).encode()
    r = client.put(f"/v2/{repository}/manifests/{tag}", content=manifest,
                   headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()
