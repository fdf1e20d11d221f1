"""`/metrics`: scraped and parsed with prometheus-client's own parser before and after pushes,
pulls, a failed sign-in and a GC run; each counter moves by exactly what was done."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.inprocess.conftest import API, Dockyard, image_parts

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MANIFEST_ROUTE = "/v2/{name:path}/manifests/{reference}"
OCI = "application/vnd.oci.image.manifest.v1+json"


async def scrape(client: httpx.AsyncClient) -> Samples:
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_counters_move_by_what_was_done(dockyard: Dockyard, client: httpx.AsyncClient,
                                              anon_client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    scraper = dockyard.client(None)  # /metrics needs no credentials
    before = await scrape(scraper)

    # Three images pushed (two blobs by monolithic POST and one manifest PUT each), five pulls.
    pushed_bytes = 0
    for i in range(3):
        config, layer, manifest = image_parts(f"v{i}")
        pushed_bytes += len(config) + len(layer) + len(manifest)
        for data in (config, layer):
            r = await client.post(f"/v2/{org}/app/blobs/uploads/", content=data,
                                  params={"digest": "sha256:" + hashlib.sha256(data).hexdigest()})
            assert r.status_code == 201
        r = await client.put(f"/v2/{org}/app/manifests/v{i}", content=manifest, headers={"Content-Type": OCI})
        assert r.status_code == 201
    pulled = b""
    for _ in range(5):
        r = await client.get(f"/v2/{org}/app/manifests/v0", headers={"Accept": OCI})
        assert r.status_code == 200
        pulled += r.content
    r = await client.get(f"/v2/{org}/app/manifests/nope", headers={"Accept": OCI})
    assert r.status_code == 404
    # One refused sign-in.
    async with dockyard.client(("admin", "wrong-password")) as wrong:
        assert (await wrong.get(f"{API}/accounts")).status_code == 401
    after = await scrape(scraper)

    requests = "dockyard_http_requests_total"
    assert moved(before, after, requests, route="/v2/{name:path}/blobs/uploads/", method="POST", status="201") == 6
    assert moved(before, after, requests, route=MANIFEST_ROUTE, method="PUT", status="201") == 3
    assert moved(before, after, requests, route=MANIFEST_ROUTE, method="GET", status="200") == 5
    assert moved(before, after, requests, route=MANIFEST_ROUTE, method="GET", status="404") == 1
    # The scrape before this one is counted under its own route (the one in progress is not yet).
    assert moved(before, after, requests, route="/metrics", method="GET", status="200") == 1
    histogram = "dockyard_http_request_duration_seconds_count"
    assert moved(before, after, histogram, route=MANIFEST_ROUTE, method="GET") == 6
    assert moved(before, after, "dockyard_http_request_duration_seconds_bucket", route=MANIFEST_ROUTE,
                 method="GET", le="+Inf") == 6
    # Bodies: at least what the pushes sent and the pulls got (the rest: the 404's and admin's JSON).
    assert moved(before, after, "dockyard_http_received_bytes_total") == pushed_bytes
    assert moved(before, after, "dockyard_http_sent_bytes_total") >= len(pulled)
    assert moved(before, after, "dockyard_failed_logins_total") == 1
    # Management API routes are labelled with their full template too.
    assert moved(before, after, requests, route=f"{API}/accounts", method="GET", status="401") == 1
    # Events: the log's head, as the API's own view of it says.
    head = dockyard.services.read_side.head()
    assert value(after, "dockyard_events_appended_total") == head
    assert moved(before, after, "dockyard_events_appended_total") > 0
    assert any(name == "dockyard_projection_lag_events" for name, _ in after)

    # A path no route matches is counted under one bounded label, never its own path.
    await anon_client.get("/no/such/path/abc123")
    later = await scrape(scraper)
    assert moved(after, later, requests, route="<unmatched>", method="GET", status="404") == 1
    assert not any("abc123" in dict(labels).get("route", "") for _, labels in later)


async def test_uploads_in_progress_and_gc(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    scraper = dockyard.client(None)
    before = await scrape(scraper)
    r = await client.post(f"/v2/{org}/app/blobs/uploads/")
    assert r.status_code == 202
    during = await scrape(scraper)
    assert moved(before, during, "dockyard_uploads_in_progress") == 1
    assert (await client.delete(r.headers["Location"])).status_code == 204
    assert value(await scrape(scraper), "dockyard_uploads_in_progress") == value(before, "dockyard_uploads_in_progress")

    gone = await dockyard.push(client, f"{org}/app", "gone")
    assert (await client.delete(f"/v2/{org}/app/manifests/{gone}")).status_code == 202
    await client.put(f"{API}/settings/gc", json={"graceHours": 0})
    dockyard.clock.advance(60)
    r = await client.post(f"{API}/gc/run")
    assert r.status_code == 202
    for _ in range(3000):  # a long operation: poll its Location until it ends
        if (await client.get(r.headers["Location"])).json()["state"] != "running":
            break
        await asyncio.sleep(0.01)
    freed = (await client.get(f"{API}/gc/runs")).json()[0]["bytesFreed"]
    after = await scrape(scraper)
    assert moved(before, after, "dockyard_gc_runs_total", outcome="done") == 1
    assert moved(before, after, "dockyard_gc_freed_bytes_total") == freed > 0
