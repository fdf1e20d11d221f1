"""GC through `/api/v0` in process: the policy as an event with its next run, cron errors as
problems, a run started with 202 and polled at its Location, explaining itself, the runs listed
(a dead one as abandoned), 409 while one runs, admins only."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from dockyard.domain.gc_run import GcRun
from dockyard.projections.runner import Leadership
from dockyard.storage import blob_key
from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio


async def run_gc(client: httpx.AsyncClient, **order: Any) -> dict[str, Any]:
    """POST /gc/run (202 at once), then poll its Location until the run ends; the final view."""
    r = await client.post(f"{API}/gc/run", json=order)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert r.json()["state"] == "running" and r.headers["location"].startswith(f"{API}/gc/runs/{run_id}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = await client.get(r.headers["location"])
        assert view.status_code == 200, view.text
        if view.json()["state"] != "running":
            return view.json()
        await asyncio.sleep(0.02)
    raise AssertionError(f"GC run {run_id} still running after 60 s")


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
    report = await run_gc(client, dryRun=True, explain=True)
    assert report["state"] == "done" and report["dryRun"] and report["candidates"] == 2 and report["deleted"] == 0
    going = [b for b in report["blobs"] if b["action"] == "delete"]
    assert {b["reason"]["unreferencedSince"]["actor"] for b in going} == {"admin"}
    kept = [b for b in report["blobs"] if b["action"] == "keep"]
    assert {h["via"] for b in kept for h in b["reason"]["holders"]} == {"tag:keep"}
    assert {h["manifest"] for b in kept for h in b["reason"]["holders"]} == {keep}

    # The real run deletes them; the store no longer has them; the run is listed.
    report = await run_gc(client)
    assert report["deleted"] == 2 and "blobs" not in report
    store = dockyard.services.store
    assert not any(store.exists(blob_key(b["digest"])) for b in going)
    # Every event of the run, recorded in the background, names who started it.
    recorded = [e for e in dockyard.events() if e["topic"].startswith("dockyard.GcRun.")]
    assert {e["actor"] for e in recorded} == {"admin"} and len(recorded) == 2 + 2 + 2  # 2 dry, 2 + 2 real
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
    assert (await run_gc(client))["state"] == "done"


async def test_run_answers_202_with_a_location_at_once(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    # A long operation: the answer comes when the run has begun, not when it ends.
    r = await client.post(f"{API}/gc/run", json={"dryRun": True})
    assert r.status_code == 202, r.text
    assert r.json() == {"id": r.json()["id"], "state": "running", "dryRun": True}
    assert r.headers["location"] == f"{API}/gc/runs/{r.json()['id']}"
    assert (await client.get(f"{API}/gc/runs/not-a-run")).status_code == 404


async def test_a_run_whose_process_died_is_shown_abandoned(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    # A run that started and never finished: its process died (no lock is held for it).
    registry = dockyard.services.registry
    dead = GcRun(position=1, dry_run=False, grace_seconds=0.0, delete_untagged=False)
    registry.save(dead)
    # While some process holds the GC lock the open run may be that one: it shows as running.
    holder = Leadership(registry, "gc")
    assert holder.try_acquire()
    try:
        assert (await client.get(f"{API}/gc/runs")).json()[0]["state"] == "running"
    finally:
        holder.release()
    # With the lock free it is abandoned, recorded once as an event (no event is ever changed).
    runs = (await client.get(f"{API}/gc/runs")).json()
    assert runs[0]["id"] == str(dead.id) and runs[0]["state"] == "abandoned" and runs[0]["errors"]
    assert (await client.get(f"{API}/gc/runs/{dead.id}")).json()["state"] == "abandoned"
    assert [e["topic"] for e in dockyard.events()].count("dockyard.GcRun.Abandoned") == 1


async def test_the_gc_tab_shows_a_dead_run_abandoned(dockyard: Dockyard) -> None:
    dead = GcRun(position=1, dry_run=False, grace_seconds=0.0, delete_untagged=False)
    dockyard.services.registry.save(dead)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app), base_url="http://testserver") as page:
        form = (await page.get("/login")).text
        token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
        signed = await page.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token})
        assert signed.status_code == 303, signed.text
        tab = await page.get("/settings/gc")
    assert tab.status_code == 200 and "abandoned" in tab.text


async def test_gc_is_for_global_admins(dockyard: Dockyard) -> None:
    user = await dockyard.user(role="read-write")
    async with dockyard.client(user) as as_user:
        for method, path in (("GET", "/settings/gc"), ("PUT", "/settings/gc"), ("POST", "/gc/run"),
                             ("GET", "/gc/runs")):
            r = await as_user.request(method, f"{API}{path}", json={} if method != "GET" else None)
            assert r.status_code == 403, (method, path, r.text)
