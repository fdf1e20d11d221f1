"""A webhook's delivery state and history, on both backends (PostgreSQL through the `postgres`
fixture): the backoff of a down receiver survives a restart (a fresh runner on the same
database waits it out and goes on doubling it), and the history keeps the latest attempts and
every failed one whose event is not delivered yet, paged with a cursor and a `Link` header.
The app's own runner is stopped; the test drives a runner pass by pass on the app's clock."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from dockyard.api.settings import Settings
from dockyard.projections.webhook_delivery import WebhookDelivery
from tests.conftest import BACKENDS
from tests.inprocess.conftest import API, Dockyard, inprocess_settings
from tests.inprocess.test_webhooks import SECRET, events_of
from tests.webhook_receiver import Receiver, running

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    if request.param == "postgres":
        return inprocess_settings(database_url=request.getfixturevalue("postgres").create())
    return inprocess_settings()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running()


def fresh_runner(dockyard: Dockyard, history: int = 500) -> WebhookDelivery:
    """What a restarted server builds: a new delivery runner on the same database (nothing in
    memory). The app's own runner is stopped first, so the test drives this one pass by pass."""
    svc = dockyard.services
    svc.webhook_delivery.stop()
    return WebhookDelivery(svc.registry, svc.read_side, svc.secrets, svc.registry_view, svc.identity_view,
                           clock=dockyard.clock, history=history)


async def subscribed(dockyard: Dockyard, receiver: Receiver, repository: str) -> str:
    r = await dockyard.client().post(f"{API}/webhooks", json={
        "url": receiver.url, "events": ["push"], "repository": repository, "secret": SECRET})
    assert r.status_code == 201, r.text
    hook: str = r.json()["id"]
    return hook


async def folded(dockyard: Dockyard) -> None:
    """Wait until the audit trail (what the runner follows) has folded the whole log."""
    head = dockyard.services.registry.recorder.max_notification_id() or 0
    assert await anyio.to_thread.run_sync(dockyard.services.read_side.wait, "audit", head, 20.0)


async def test_backoff_survives_a_restart(dockyard: Dockyard, receiver: Receiver) -> None:
    org = await dockyard.org()
    client = dockyard.client()
    hook = await subscribed(dockyard, receiver, f"{org}/app")
    runner = fresh_runner(dockyard)
    receiver.stop()  # the receiver is down
    await dockyard.push(client, f"{org}/app", "v1")
    await folded(dockyard)
    assert await anyio.to_thread.run_sync(runner.deliver_due)  # attempt 1 fails: retry in 1 s
    state = runner.states()[hook]
    assert state.attempts == 1 and state.next_attempt_ms == int((dockyard.clock() + 1) * 1000)

    # Restarted: the new runner knows the backoff. Not due yet, so nothing is sent...
    runner = fresh_runner(dockyard)
    assert not await anyio.to_thread.run_sync(runner.deliver_due)
    dockyard.clock.advance(1)  # ...due now: attempt 2 fails, and the backoff doubles (not back to 1 s)
    assert await anyio.to_thread.run_sync(runner.deliver_due)
    runner = fresh_runner(dockyard)
    assert runner.states()[hook].attempts == 2
    dockyard.clock.advance(1.5)
    assert not await anyio.to_thread.run_sync(runner.deliver_due)  # 2 s after attempt 2, not 1
    receiver.start()
    dockyard.clock.advance(0.5)
    assert await anyio.to_thread.run_sync(runner.deliver_due)  # the receiver is back: delivered, once
    assert [e["target"]["tag"] for e in events_of(receiver)] == ["v1"]
    assert runner.states()[hook].attempts == 0
    r = await client.get(f"{API}/webhooks/{hook}/deliveries")
    assert [d["status"] for d in r.json()["deliveries"]] == [200, None, None]


async def test_the_history_keeps_the_latest_and_every_failure_not_yet_delivered(
        dockyard: Dockyard, receiver: Receiver) -> None:
    org = await dockyard.org()
    client = dockyard.client()
    hook = await subscribed(dockyard, receiver, f"{org}/app")
    deliveries = f"{API}/webhooks/{hook}/deliveries"
    runner = fresh_runner(dockyard, history=3)
    for tag in ("v1", "v2", "v3", "v4", "v5"):
        await dockyard.push(client, f"{org}/app", tag)
    await folded(dockyard)
    await anyio.to_thread.run_sync(runner.deliver_due)
    rows = (await client.get(deliveries)).json()["deliveries"]
    assert len(receiver.received) == 5 and [d["status"] for d in rows] == [200] * 3  # the latest 3 kept

    receiver.stop()
    await dockyard.push(client, f"{org}/app", "v6")
    await folded(dockyard)
    for _ in range(4):  # four failed attempts at v6: none pruned while v6 is not delivered
        assert await anyio.to_thread.run_sync(runner.deliver_due)
        dockyard.clock.advance(3600)
    rows = (await client.get(deliveries)).json()["deliveries"]
    assert [d["status"] for d in rows] == [None] * 4
    receiver.start()
    assert await anyio.to_thread.run_sync(runner.deliver_due)
    rows = (await client.get(deliveries)).json()["deliveries"]
    assert [d["status"] for d in rows] == [200, None, None]  # delivered: back to the latest 3
    assert len({d["position"] for d in rows}) == 1

    # Paged with a cursor and a Link header, newest first, nothing repeated or skipped.
    r = await client.get(deliveries, params={"limit": 2})
    first = r.json()["deliveries"]
    assert len(first) == 2 and r.headers["link"].endswith('rel="next"')
    r = await client.get(r.headers["link"].split(";")[0].strip("<>"))
    assert "link" not in r.headers and r.json()["nextCursor"] is None
    assert [d["id"] for d in first + r.json()["deliveries"]] == [d["id"] for d in rows]
    assert (await client.get(deliveries, params={"cursor": "bm90LWpzb24"})).status_code == 400
