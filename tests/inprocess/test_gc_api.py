"""GC through `/api/v0` in process: the policy as an event with its next run, cron errors as
problems, a run that explains itself, the runs listed, 409 while one runs, admins only."""

from __future__ import annotations

import httpx
import pytest

from dockyard.projections.runner import Leadership
from dockyard.storage import blob_key
from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio


async def test_gc_settings_are_an_event_with_the_next_run(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    r = await client.get(f"{API}/settings/gc")
    assert r.status_code == 200 and r.json() == {"schedule": None, "deleteUntagged": False, "graceHours": 1.0,
                                                 "nextRun": None}
    # The lab's six fields, seconds first: every day at midnight.
    r = await client.put(f"{API}/settings/gc", json={"schedule": "0 0 0 * * *", "deleteUntagged": False,
                                                     "graceHours": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["schedule"] == "0 0 0 * * *" and body["nextRun"].endswith("T00:00:00Z")
    changed = [e for e in dockyard.events() if e["topic"] == "dockyard.GcSettings.Changed"]
    assert changed[-1]["schedule"] == "0 0 0 * * *" and changed[-1]["actor"] == "admin"
    # Five fields (minute first) too: 03:30 every day.
    r = await client.put(f"{API}/settings/gc", json={"schedule": "30 3 * * *", "graceHours": 0.5})
    assert r.status_code == 200 and r.json()["nextRun"].endswith("T03:30:00Z")


@pytest.mark.parametrize(("schedule", "named"), [
    ("0 0 25 * * *", "hour"), ("* * *", "5 or 6 fields"), ("0 0 0 * * funday", "day_of_week"),
    ("61 0 * * *", "minute")])
async def test_invalid_cron_is_a_problem_naming_what_is_wrong(client: httpx.AsyncClient, schedule: str,
                                                              named: str) -> None:
    r = await client.put(f"{API}/settings/gc", json={"schedule": schedule})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert named in r.json()["detail"]
    assert (await client.get(f"{API}/settings/gc")).json()["schedule"] is None  # nothing recorded


async def test_negative_grace_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.put(f"{API}/settings/gc", json={"graceHours": -1})
    assert r.status_code == 422


async def test_run_explains_deletes_and_is_listed(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    keep = await dockyard.push(client, f"{org}/app", "keep")
    gone = await dockyard.push(client, f"{org}/app", "gone")
    r = await client.delete(f"/v2/{org}/app/manifests/{gone}")
    assert r.status_code == 202
    await client.put(f"{API}/settings/gc", json={"graceHours": 0})
    dockyard.clock.advance(60)  # GC's clock is the test's (started with it); the events are stamped now

    # Dry run with explanations: the deleted image's blobs would go, citing the delete.
    r = await client.post(f"{API}/gc/run", json={"dryRun": True, "explain": True})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["dryRun"] and report["candidates"] == 2 and report["deleted"] == 0
    going = [b for b in report["blobs"] if b["action"] == "delete"]
    assert {b["reason"]["unreferencedSince"]["actor"] for b in going} == {"admin"}
    kept = [b for b in report["blobs"] if b["action"] == "keep"]
    assert {h["via"] for b in kept for h in b["reason"]["holders"]} == {"tag:keep"}
    assert {h["manifest"] for b in kept for h in b["reason"]["holders"]} == {keep}

    # The real run deletes them; the store no longer has them; the run is listed.
    r = await client.post(f"{API}/gc/run")
    assert r.status_code == 200 and r.json()["deleted"] == 2 and "blobs" not in r.json()
    store = dockyard.services.store
    assert not any(store.exists(blob_key(b["digest"])) for b in going)
    runs = (await client.get(f"{API}/gc/runs")).json()
    assert [run["dryRun"] for run in runs[:2]] == [False, True]
    assert runs[0]["state"] == "done" and runs[0]["deleted"] == 2 and runs[0]["bytesFreed"] > 0
    # The kept image still pulls.
    r = await client.get(f"/v2/{org}/app/manifests/keep",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200
    for layer in r.json()["layers"]:
        assert (await client.get(f"/v2/{org}/app/blobs/{layer['digest']}")).status_code == 200


async def test_second_run_while_one_runs_is_409(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    running = Leadership(dockyard.services.registry, "gc")
    assert running.try_acquire()
    try:
        r = await client.post(f"{API}/gc/run")
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    finally:
        running.release()
    assert (await client.post(f"{API}/gc/run")).status_code == 200


async def test_gc_is_for_global_admins(dockyard: Dockyard) -> None:
    user = await dockyard.user(role="read-write")
    async with dockyard.client(user) as as_user:
        for method, path in (("GET", "/settings/gc"), ("PUT", "/settings/gc"), ("POST", "/gc/run"),
                             ("GET", "/gc/runs")):
            r = await as_user.request(method, f"{API}{path}", json={} if method != "GET" else None)
            assert r.status_code == 403, (method, path, r.text)
