"""`GET /api/v0/events`: the audit trail projection through the management API — filters,
cursor paging with a `Link` header, JSONL/CSV streams, and who may read what. Every read waits
for the trail to reach the log's head by position (`waitFor`), never by sleeping."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio


def head(dockyard: Dockyard) -> int:
    return dockyard.services.registry.recorder.max_notification_id() or 0


async def test_a_push_is_answered_who_when_where(dockyard: Dockyard) -> None:
    alice = await dockyard.user(role="none")
    async with dockyard.client(alice) as as_alice:
        digest = await dockyard.push(as_alice, f"{alice[0]}/app", "v1")
    r = await dockyard.client().get(f"{API}/events", params={"repository": f"{alice[0]}/app", "action": "tag.moved",
                                                             "waitFor": head(dockyard)})
    assert r.status_code == 200, r.text
    [moved] = r.json()["events"]
    assert moved["actor"] == alice[0] and moved["tag"] == "v1" and moved["digest"] == digest
    assert moved["namespace"] == alice[0] and moved["clientAddress"] == "127.0.0.1"
    assert moved["recordedAt"].endswith("Z") and moved["details"]["previous"] is None
    r = await dockyard.client().get(f"{API}/events", params={"actor": alice[0], "action": "manifest.pushed"})
    [pushed] = r.json()["events"]
    assert pushed["digest"] == digest and "payload" not in pushed["details"]
    # No secret reaches the trail: a user's creation carries no password hash.
    r = await dockyard.client().get(f"{API}/events", params={"action": "user.created", "namespace": alice[0]})
    [created] = r.json()["events"]
    assert created["actor"] == "admin" and "passwordHash" not in created["details"]
    assert "password_hash" not in created["details"]


async def test_pages_follow_the_link_and_streams_give_the_whole_result(dockyard: Dockyard) -> None:
    org = await dockyard.org()
    for i in range(5):
        await dockyard.team(org, f"t{i}")
    wait = {"waitFor": head(dockyard)}
    client = dockyard.client()
    # Step 1: pages of 2, following `Link: <...>; rel="next"` to the end.
    seen: list[int] = []
    url: str | None = f"{API}/events?namespace={org}&limit=2&waitFor={wait['waitFor']}"
    while url is not None:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        seen += [e["position"] for e in r.json()["events"]]
        link = r.headers.get("link")
        url = link[1:link.index(">")] if link else None
        assert (link is None) == (r.json()["nextCursor"] is None)
    assert len(seen) == 1 + 2 + 5 and seen == sorted(seen)  # org.created, owners team + its member, 5 teams
    # Step 2: the same result as JSON lines and as CSV.
    r = await client.get(f"{API}/events", params={"namespace": org, "format": "jsonl"})
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert [orjson.loads(line)["position"] for line in r.text.splitlines()] == seen
    r = await client.get(f"{API}/events", params={"namespace": org, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["position"]) for row in rows] == seen
    assert {row["action"] for row in rows} == {"organization.created", "team.created", "team.member_added"}
    # Step 3: `after` is the cursor; `since`/`until` bound the time.
    r = await client.get(f"{API}/events", params={"namespace": org, "after": seen[3]})
    assert [e["position"] for e in r.json()["events"]] == seen[4:]
    r = await client.get(f"{API}/events", params={"namespace": org, "until": "2000-01-01T00:00:00Z"})
    assert r.json()["events"] == []
    r = await client.get(f"{API}/events", params={"namespace": org, "since": "2000-01-01T00:00:00+00:00"})
    assert len(r.json()["events"]) == len(seen)


async def test_who_reads_what(dockyard: Dockyard, anon_client) -> None:  # noqa: ANN001
    owner = await dockyard.user(role="none")
    member = await dockyard.user(role="none")
    outsider = await dockyard.user(role="read-write")
    org = await dockyard.org(owner=owner)
    await dockyard.team(org, "frontend", members=[member[0]], owner=owner)
    async with dockyard.client(member) as as_member:
        await as_member.get(f"{API}/accounts/{org}")  # a read: records nothing
    async with dockyard.client(outsider) as as_outsider:
        await dockyard.push(as_outsider, f"{outsider[0]}/tool", "1")
    wait = {"waitFor": head(dockyard)}

    async def actions(auth) -> set[tuple[str, str]]:  # noqa: ANN001
        r = await dockyard.client(auth).get(f"{API}/events", params={**wait, "limit": 1000})
        assert r.status_code == 200, r.text
        return {(e["actor"], e["action"]) for e in r.json()["events"]}

    everything = await actions(("admin", ""))
    assert ("admin", "user.created") in everything and (outsider[0], "manifest.pushed") in everything
    # The org owner: their own actions and everything in their organisation, nothing else.
    as_owner = await actions(owner)
    assert (owner[0], "team.member_added") in as_owner and (owner[0], "organization.created") in as_owner
    assert all(actor == owner[0] for actor, _ in as_owner)
    assert not any(actor == outsider[0] for actor, _ in as_owner)
    # A plain user: only their own actions.
    assert {a for a, _ in await actions(outsider)} == {outsider[0]}
    assert await actions(member) == set()  # they only read
    # Anonymous callers are asked to sign in.
    assert (await anon_client.get(f"{API}/events")).status_code == 401


async def test_bad_filters_are_problems(dockyard: Dockyard) -> None:
    client = dockyard.client()
    r = await client.get(f"{API}/events", params={"since": "yesterday"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"{API}/events", params={"limit": 0})).status_code == 422
    assert (await client.get(f"{API}/events", params={"cursor": "%%%"})).status_code == 400
    assert (await client.get(f"{API}/events", params={"format": "xml"})).status_code == 422


async def test_the_public_key_verifies_the_signed_checkpoints(dockyard: Dockyard, anon_client) -> None:  # noqa: ANN001
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from dockyard.projections import chain

    await dockyard.user()
    read_side = dockyard.services.read_side
    assert read_side.wait("checkpoints", head(dockyard))
    r = await anon_client.get(f"{API}/audit/public-key")  # public: an auditor fetches it once
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-pem-file"
    registry = dockyard.services.registry
    dialect, datastore = registry.dialect, registry.recorder.datastore
    verdict = chain.verify(chain.read_events(dialect, datastore, registry.recorder.events_table_name),
                           chain.read_chain(dialect, datastore), chain.read_checkpoints(dialect, datastore),
                           load_pem_public_key(r.content))
    assert verdict.intact and verdict.checkpoints >= 1 and verdict.events == head(dockyard)


async def test_projections_status_for_admins(dockyard: Dockyard) -> None:
    alice = await dockyard.user()
    assert dockyard.services.read_side.wait("audit", head(dockyard))
    r = await dockyard.client().get(f"{API}/projections")
    assert r.status_code == 200, r.text
    status = {p["name"]: p for p in r.json()["projections"]}
    assert set(status) >= {"registry", "identity", "audit", "checkpoints"}
    assert status["audit"]["head"] == head(dockyard) and status["audit"]["rows"] == status["audit"]["position"]
    assert status["audit"]["lagEvents"] == 0 and status["audit"]["kind"] == "followed"
    assert status["registry"]["state"] == "inline"
    async with dockyard.client(alice) as as_alice:
        assert (await as_alice.get(f"{API}/projections")).status_code == 403


async def _until(predicate, what: str, timeout: float = 30.0) -> None:  # noqa: ANN001
    """Poll `predicate` with a growing pause (a wait for a condition, not a timed assertion)."""
    import anyio

    deadline, pause = anyio.current_time() + timeout, 0.01
    while not predicate():
        assert anyio.current_time() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(pause)
        pause = min(pause * 2, 0.2)


async def test_admins_retry_a_failed_projection_now(dockyard: Dockyard, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit trail fails on an event (a fault injected); status shows it failed at that
    position with its error and next try, an hour away; the fault removed, an admin's retry makes
    the runner fold the event at once, exactly once, without a restart."""
    read_side = dockyard.services.read_side
    runner = read_side.runners["audit"]
    assert read_side.wait("audit", head(dockyard))
    r = await dockyard.client().post(f"{API}/projections/audit/retry")
    assert r.status_code == 409 and "has not failed" in r.json()["detail"]  # following: nothing to retry
    assert (await dockyard.client().post(f"{API}/projections/nosuch/retry")).status_code == 404
    assert (await dockyard.client().post(f"{API}/projections/registry/retry")).status_code == 409
    monkeypatch.setattr(runner, "retry_initial", 3600.0)
    monkeypatch.setattr(runner, "retry_max", 3600.0)
    monkeypatch.setattr(runner, "takeover_interval", 0.01)
    apply = runner.projection.apply

    def faulty(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("injected: the disk under the audit table is full")

    monkeypatch.setattr(runner.projection, "apply", faulty)
    before = head(dockyard)
    alice = await dockyard.user()
    stuck_at = head(dockyard)
    await _until(lambda: runner.state == "failed" and read_side.positions.get("audit")["retry_at"], "the failure")
    r = await dockyard.client().get(f"{API}/projections")
    [audit] = [p for p in r.json()["projections"] if p["name"] == "audit"]
    assert audit["state"].startswith("failed at ") and before < int(audit["state"].split()[-1]) <= stuck_at
    assert "disk under the audit table" in audit["error"] and audit["position"] < stuck_at
    assert datetime.fromisoformat(audit["retryAt"]) - datetime.now(UTC) > timedelta(minutes=50)
    async with dockyard.client(alice) as as_alice:
        assert (await as_alice.post(f"{API}/projections/audit/retry")).status_code == 403
    monkeypatch.setattr(runner.projection, "apply", apply)  # the cause goes away
    r = await dockyard.client().post(f"{API}/projections/audit/retry")
    assert r.status_code == 202, r.text
    assert r.json()["name"] == "audit" and r.json()["error"] is not None  # the runner has not tried yet
    await _until(lambda: read_side.positions.position("audit") >= stuck_at, "the retried fold")
    r = await dockyard.client().get(f"{API}/events", params={"action": "user.created", "namespace": alice[0]})
    assert len(r.json()["events"]) == 1  # folded exactly once
    [audit] = [p for p in (await dockyard.client().get(f"{API}/projections")).json()["projections"]
               if p["name"] == "audit"]
    assert audit["error"] is None and audit["retryAt"] is None and not audit["state"].startswith("failed")


async def test_lockouts_and_directory_first_logins_say_from_where(dockyard: Dockyard) -> None:
    """Rule 6 before authentication: a lock-out is recorded as `anonymous` from the caller's address."""
    victim = await dockyard.user()
    async with dockyard.client((victim[0], "wrong")) as guessing:
        for _ in range(5):
            assert (await guessing.get(f"{API}/accounts")).status_code == 401
    r = await dockyard.client().get(f"{API}/events", params={"action": "login_guard.throttled",
                                                             "waitFor": head(dockyard)})
    [throttled] = r.json()["events"]
    assert throttled["actor"] == "anonymous" and throttled["clientAddress"] == "127.0.0.1"
    assert throttled["details"]["user"] == victim[0]
