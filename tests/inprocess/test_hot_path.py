"""`/v2/` and `/auth/token` requests that match a hot route take the short way through the app
(api/hot_path.py, public FastAPI and Starlette API only): the same answers, headers, metrics and
access lines as the whole way."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dockyard.api import errors
from dockyard.api.hot_path import ROUTE_KEY, DockyardApp
from tests.inprocess.conftest import BASE_URL, Dockyard, _auth

pytestmark = pytest.mark.anyio
OCI = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ROUTE = "/v2/{name:path}/manifests/{reference}"


def _requests(org: str) -> list[tuple[str, str, dict[str, str], Any]]:
    """(method, path, headers, auth): hits, OCI errors, 401s, 405, 404s under /v2/ and off it."""
    admin, nobody = ("admin", ""), None
    return [
        ("GET", f"/v2/{org}/app/manifests/v1", {"Accept": OCI}, admin),
        ("HEAD", f"/v2/{org}/app/manifests/v1", {"Accept": OCI}, admin),
        ("GET", f"/v2/{org}/app/manifests/nope", {"Accept": OCI}, admin),  # 404 MANIFEST_UNKNOWN
        ("GET", f"/v2/{org}/app/manifests/v1", {"Accept": OCI}, nobody),  # 401 with a challenge
        ("GET", f"/v2/{org}/app/tags/list", {}, admin),
        ("GET", "/v2/", {}, admin),
        ("GET", "/v2/", {}, nobody),
        ("GET", "/v2/_catalog", {}, admin),
        ("GET", f"/v2/{org}/NotAName!/manifests/v1", {}, admin),  # NAME_INVALID
        ("POST", f"/v2/{org}/app/manifests/v1", {}, admin),  # no such method: the router's 405
        ("GET", "/v2/no-such-route", {}, admin),  # no hot route: the router's answer
        ("GET", "/auth/token?service=dockyard", {}, admin),
        ("GET", "/auth/nothing", {}, admin),
        ("GET", "/healthz", {}, nobody),  # not under the prefixes
    ]


def _comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    body = r.content if not r.request.url.path.startswith("/auth/token") or r.status_code != 200 else b"<token>"
    headers = sorted((k, v) for k, v in r.headers.items() if k not in ("date", "content-length") or body != b"<token>")
    return r.status_code, body, headers


async def _answers(dockyard: Dockyard, org: str) -> list[tuple[int, bytes, list[tuple[str, str]]]]:
    out = []
    for method, path, headers, auth in _requests(org):
        async with dockyard.client(auth) as c:
            out.append(_comparable(await c.request(method, path, headers=headers)))
    return out


def _counts(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("dockyard_http_requests_total", "dockyard_http_request_duration_seconds_count")}


async def test_same_answers_metrics_and_lines_the_short_way_and_the_whole_way(
        dockyard: Dockyard, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    app = dockyard.app
    assert isinstance(app, DockyardApp)
    org = await dockyard.org()
    await dockyard.push(client, f"{org}/app", "v1")
    served: list[str] = []
    handle = type(app.router.routes[0]).handle

    async def spy(route: Any, scope: Any, receive: Any, send: Any) -> None:
        served.append("hot" if ROUTE_KEY in scope else "whole")
        await handle(route, scope, receive, send)

    runs = {}
    with caplog.at_level(logging.INFO, logger="dockyard.api.access"):
        for way in ("hot", "whole"):
            app.build_hot_path()
            if way == "whole":
                app.hot_routes = []  # every request the whole way, as before this module
            scraper = dockyard.client(None)
            before = _counts((await scraper.get("/metrics")).text)
            caplog.clear()
            served.clear()
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(type(app.router.routes[0]), "handle", spy)
                answers = await _answers(dockyard, org)
            after = _counts((await scraper.get("/metrics")).text)
            moved = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
            moved = {k: v for k, v in moved.items() if dict(k[1]).get("route") != "/metrics"}
            lines = [r.getMessage().rsplit(" ", 3)[0] for r in caplog.records if r.name == "dockyard.api.access"]
            runs[way] = (answers, moved, [line.rsplit(" ", 1)[0] for line in lines], list(served))
    hot, whole = runs["hot"], runs["whole"]
    assert hot[0] == whole[0]  # status, body, every header
    assert hot[1] == whole[1]  # request counts by route, method and status; latency counts
    assert hot[2] == whole[2], (hot[2], whole[2])
    assert len([line for line in hot[2] if "/metrics" not in line]) == len(_requests(org))  # one line each
    # The hits took the short way (10 of the 14 match a hot route fully), none the whole way.
    assert hot[3].count("hot") == 10 and "hot" not in whole[3]
    assert any(dict(k[1]).get("route") == MANIFEST_ROUTE and dict(k[1]).get("status") == "200" for k in hot[1])


async def test_an_unexpected_error_is_a_500_unknown_and_counted(dockyard: Dockyard, client: httpx.AsyncClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    org = await dockyard.org()
    await dockyard.push(client, f"{org}/app", "v1")
    from dockyard.api.v2 import manifests

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    route = next(r for r in dockyard.app.router.routes if getattr(r, "path", "") == MANIFEST_ROUTE
                 and "GET" in getattr(r, "methods", ()))
    monkeypatch.setattr(manifests, "read", broken)
    scraper = dockyard.client(None)
    before = _counts((await scraper.get("/metrics")).text)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app, raise_app_exceptions=False),
                                 base_url=BASE_URL, auth=_auth(("admin", ""))) as c:
        r = await c.get(f"/v2/{org}/app/manifests/v1", headers={"Accept": OCI})
    assert r.status_code == 500 and r.json()["errors"][0]["code"] == "UNKNOWN", r.text
    after = _counts((await scraper.get("/metrics")).text)
    key = ("dockyard_http_requests_total", frozenset({("route", MANIFEST_ROUTE), ("method", "GET"),
                                                      ("status", "500")}))
    assert after.get(key, 0) - before.get(key, 0) == 1
    assert route is not None and errors.OCI_ERRORS


def test_the_short_way_uses_no_private_name_of_fastapi_or_starlette() -> None:
    # A short way that read FastAPI's private attributes broke on the oldest FastAPI we allow
    # (423cade, reverted): this one builds from public classes, methods and attributes only.
    import ast
    import inspect

    from dockyard.api import hot_path

    tree = ast.parse(inspect.getsource(hot_path))
    private = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")]
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if alias.name.startswith("_")]
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module != "__future__" and any(part.startswith("_") for part in (node.module or "").split("."))]
    assert (private, imported, modules) == ([], [], [])
