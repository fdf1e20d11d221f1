"""The server starts on each backend, answers the version check, and issues tokens."""

from __future__ import annotations


def test_version_check_needs_credentials(shared_server) -> None:
    with shared_server.client(auth=None) as anonymous:
        r = anonymous.get("/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="')
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    with shared_server.client() as admin:
        r = admin.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
