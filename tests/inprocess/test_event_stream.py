"""`GET /api/v0/events/stream`: the change feed as Server-Sent Events — `id:` is the log position,
`Last-Event-ID` resumes with no gap and no duplicate, live events arrive as the audit projection
folds them, and the filters and visibility are those of `/api/v0/events`. (Across a real server
restart: tests/integration/test_event_stream_restart.py.)"""

from __future__ import annotations

import anyio
import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import API, Dockyard
from tests.inprocess.sse_support import read_sse

pytestmark = pytest.mark.anyio
ADMIN = ("admin", ADMIN_PASSWORD)
STREAM = f"{API}/events/stream"


def head(dockyard: Dockyard) -> int:
    return dockyard.services.registry.recorder.max_notification_id() or 0


async def test_live_events_arrive_in_order_and_resume_after_last_event_id(dockyard: Dockyard) -> None:
    org = await dockyard.org()
    # The trail follows the log a few milliseconds behind: wait until it has folded the org.
    assert (await dockyard.client().get(f"{API}/events", params={"waitFor": head(dockyard)})).status_code == 200
    status, first = await read_sse(dockyard.app, STREAM, ADMIN, None, {"namespace": org, "follow": "false"})
    assert status == 200 and first
    ids = [int(m.id or 0) for m in first]
    assert ids == sorted(ids) and all(orjson.loads(m.data)["position"] == int(m.id or 0) for m in first)
    # Live: a reader connected before the teams exist receives them as the trail folds them.
    async def make_teams() -> None:
        for i in range(3):
            await dockyard.team(org, f"t{i}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(make_teams)
        status, live = await read_sse(dockyard.app, STREAM, ADMIN, 3, {"namespace": org, "action": "team.created"},
                                      headers={"Last-Event-ID": str(ids[-1])})
    assert [orjson.loads(m.data)["action"] for m in live] == ["team.created"] * 3
    live_ids = [int(m.id or 0) for m in live]
    assert live_ids == sorted(live_ids) and live_ids[0] > ids[-1]
    # Resume after the first live one: exactly the other two, no duplicate, no gap.
    status, rest = await read_sse(dockyard.app, STREAM, ADMIN, None,
                                  {"namespace": org, "action": "team.created", "follow": "false"},
                                  headers={"Last-Event-ID": str(live_ids[0])})
    assert [int(m.id or 0) for m in rest] == live_ids[1:]
    # The whole feed without filters, from zero, matches /api/v0/events position for position.
    r = await dockyard.client().get(f"{API}/events", params={"limit": 500, "waitFor": head(dockyard)})
    _, everything = await read_sse(dockyard.app, STREAM, ADMIN, None, {"follow": "false"})
    assert [int(m.id or 0) for m in everything] == [e["position"] for e in r.json()["events"]]


async def test_each_caller_sees_what_events_shows_them(dockyard: Dockyard) -> None:
    olive = await dockyard.user()
    ahab = await dockyard.user()
    org = await dockyard.org(owner=olive)
    await dockyard.team(org, "core", owner=olive)
    async with dockyard.client(ahab) as as_ahab:
        await dockyard.push(as_ahab, f"{ahab[0]}/own", "v1")
    position = head(dockyard)
    assert (await dockyard.client().get(f"{API}/events", params={"waitFor": position})).status_code == 200
    for caller in (olive, ahab, ADMIN):
        listed = (await dockyard.client(caller).get(f"{API}/events", params={"limit": 500})).json()["events"]
        _, streamed = await read_sse(dockyard.app, STREAM, caller, None, {"follow": "false"})
        assert [int(m.id or 0) for m in streamed] == [e["position"] for e in listed], caller[0]
    _, olives = await read_sse(dockyard.app, STREAM, olive, None, {"follow": "false"})
    assert {orjson.loads(m.data)["namespace"] for m in olives} >= {org}
    assert all(orjson.loads(m.data)["namespace"] != ahab[0] for m in olives)  # ahab's push is not olive's
    _, ahabs = await read_sse(dockyard.app, STREAM, ahab, None, {"follow": "false"})
    assert ahabs and all(orjson.loads(m.data)["actor"] == ahab[0] for m in ahabs)
    status, _ = await read_sse(dockyard.app, STREAM, None, None, {"follow": "false"})
    assert status == 401
    status, _ = await read_sse(dockyard.app, STREAM, ADMIN, None, {"follow": "false"},
                               headers={"Last-Event-ID": "not-a-position"})
    assert status == 400
