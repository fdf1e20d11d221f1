"""Webhooks (`/api/v0/webhooks`) against a real HTTP receiver (a threaded `http.server` on the
loopback): every event after the subscription arrives once acknowledged, in log order, in
Distribution's envelope, signed with the secret — also after the receiver was down for a while
(the delivery runner retries with backoff on the app's clock, which the test moves). Who may
subscribe, the secret never answered nor logged, the delivery history and redelivery."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.inprocess.conftest import API, Dockyard, image_parts, inprocess_settings
from tests.webhook_receiver import Receiver, running, verified_events

pytestmark = pytest.mark.anyio
SECRET = "a-secret-of-sixteen-or-more"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running()


async def until(check: Any, what: str, bound: float = 20.0) -> None:
    """Poll `check()` (bounded) — the delivery runner works in its own thread."""
    with anyio.fail_after(bound):
        while not check():
            await anyio.sleep(0.05)
    assert check(), what


def events_of(receiver: Receiver) -> list[dict[str, Any]]:
    return verified_events(receiver, SECRET)


async def test_a_receiver_that_was_down_gets_everything_in_order(dockyard: Dockyard, receiver: Receiver) -> None:
    olive = await dockyard.user()
    ahab = await dockyard.user()
    org = await dockyard.org(owner=olive)
    as_olive = dockyard.client(olive)
    before = await dockyard.push(as_olive, f"{org}/app", "v0")  # before the subscription: never sent
    body = {"url": receiver.url, "events": ["push", "delete"], "namespace": org, "secret": SECRET}
    r = await dockyard.client(ahab).post(f"{API}/webhooks", json=body)
    assert r.status_code == 403, r.text
    r = await as_olive.post(f"{API}/webhooks", json={**body, "secret": "short"})
    assert r.status_code == 422 or r.status_code == 400
    r = await as_olive.post(f"{API}/webhooks", json=body)
    assert r.status_code == 201, r.text
    hook = r.json()
    assert "secret" not in hook and hook["owner"] == olive[0] and hook["namespace"] == org
    assert SECRET not in str(dockyard.events(200))
    assert (await dockyard.client(ahab).get(f"{API}/webhooks/{hook['id']}")).status_code == 404
    assert [h["id"] for h in (await as_olive.get(f"{API}/webhooks")).json()["webhooks"]] == [hook["id"]]

    first = await dockyard.push(as_olive, f"{org}/app", "v1")
    await until(lambda: len(receiver.received) == 1, "the first push is delivered")

    receiver.stop()
    second = await dockyard.push(as_olive, f"{org}/app", "v2")
    r = await as_olive.delete(f"{API}/repositories/{org}/app/tags/v1")
    assert r.status_code in (200, 204), r.text
    deliveries = f"{API}/webhooks/{hook['id']}/deliveries"

    async def failed() -> bool:
        rows = (await as_olive.get(deliveries)).json()["deliveries"]
        return any(d["status"] is None for d in rows)

    with anyio.fail_after(20):
        while not await failed():
            await anyio.sleep(0.05)
    receiver.start()
    dockyard.clock.advance(3600)  # past any backoff: the runner retries on the app's clock
    await until(lambda: len(receiver.received) == 3, "everything after the subscription, once receiver is back")

    sent = events_of(receiver)
    assert [(e["action"], e["target"]["tag"], e["target"]["digest"]) for e in sent] == [
        ("push", "v1", first), ("push", "v2", second), ("delete", "v1", first)]
    assert before not in {e["target"]["digest"] for e in sent}  # v0 was pushed before the subscription
    assert len({e["id"] for e in sent}) == 3
    assert all(e["target"]["repository"] == f"{org}/app" and e["actor"]["name"] == olive[0] for e in sent)
    assert all(e["request"]["addr"] == "127.0.0.1" for e in sent)

    history = (await as_olive.get(deliveries)).json()["deliveries"]
    assert {d["status"] for d in history} >= {200, None}
    acknowledged = [d for d in history if d["status"] == 200]
    assert sorted(d["position"] for d in acknowledged) == sorted({d["position"] for d in acknowledged})
    r = await as_olive.post(f"{deliveries}/{acknowledged[-1]['id']}/redeliver")
    assert r.status_code == 200 and r.json()["status"] == 200 and r.json()["redelivery"] is True
    assert len(receiver.received) == 4 and events_of(receiver)[3]["id"] == sent[0]["id"]

    assert (await dockyard.client(ahab).delete(f"{API}/webhooks/{hook['id']}")).status_code == 404
    assert (await as_olive.delete(f"{API}/webhooks/{hook['id']}")).status_code == 204
    assert (await as_olive.get(f"{API}/webhooks")).json()["webhooks"] == []


async def test_nothing_is_sent_about_what_the_owner_cannot_read(dockyard: Dockyard, receiver: Receiver) -> None:
    gordon = await dockyard.user(role="admin")
    org = await dockyard.org()
    client = dockyard.client()
    for name, visibility in (("hidden", "private"), ("shown", "public")):
        r = await client.post(f"{API}/repositories/{org}", json={"name": name, "visibility": visibility})
        assert r.status_code == 201, r.text
    r = await dockyard.client(gordon).post(f"{API}/webhooks", json={
        "url": receiver.url, "events": ["push"], "namespace": org, "secret": SECRET})
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    # Gordon is no longer an admin: what he cannot read now is not sent on his subscription.
    r = await client.patch(f"{API}/accounts/{gordon[0]}", json={"role": "none"})
    assert r.status_code == 200, r.text
    await dockyard.push(client, f"{org}/hidden", "v1")
    shown = await dockyard.push(client, f"{org}/shown", "v1")
    await until(lambda: len(receiver.received) == 1, "the public repository's push")
    [event] = events_of(receiver)
    assert event["target"]["repository"] == f"{org}/shown" and event["target"]["digest"] == shown
    # Delivered in log order, so the private push before it was passed over, not merely late:
    # the only attempt is the public one.
    r = await client.get(f"{API}/webhooks/{hook}/deliveries")
    assert [d["status"] for d in r.json()["deliveries"]] == [200]


async def put_image(client: httpx.AsyncClient, repository: str, reference: str,
                    parts: tuple[bytes, bytes, bytes]) -> str:
    """Upload an image's config and layer, then PUT its manifest under `reference` (a tag or its
    digest); returns the manifest's digest."""
    config, layer, manifest = parts
    for data in (config, layer):
        r = await client.post(f"/v2/{repository}/blobs/uploads/", content=data,
                              params={"digest": "sha256:" + hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
    r = await client.put(f"/v2/{repository}/manifests/{reference}", content=manifest,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


async def test_one_push_notification_per_push_by_tag_or_by_digest(dockyard: Dockyard, receiver: Receiver) -> None:
    org = await dockyard.org()
    client = dockyard.client()
    repository = f"{org}/app"
    await dockyard.push(client, repository, "v0")
    r = await client.post(f"{API}/webhooks", json={"url": receiver.url, "events": ["push"], "repository": repository,
                                                   "secret": SECRET})
    assert r.status_code == 201, r.text
    tagged, by_digest = image_parts("tagged"), image_parts("by-digest")
    first = await put_image(client, repository, "v1", tagged)  # a new manifest and a tag: one notification
    digest = "sha256:" + hashlib.sha256(by_digest[2]).hexdigest()
    assert await put_image(client, repository, digest, by_digest) == digest  # no tag: one notification
    assert await put_image(client, repository, "v2", by_digest) == digest  # the same manifest tagged: one more
    await put_image(client, repository, "v1", tagged)  # the same bytes under the same tag: nothing recorded
    await dockyard.push(client, repository, "v3")  # ...so the next one received is this
    await until(lambda: len(receiver.received) == 4, "one notification per push that changed something")

    sent = events_of(receiver)
    assert [(e["action"], e["target"].get("tag"), e["target"]["digest"]) for e in sent[:3]] == [
        ("push", "v1", first), ("push", None, digest), ("push", "v2", digest)]
    assert sent[3]["target"]["tag"] == "v3"
    for event, manifest in zip(sent, (tagged[2], by_digest[2], by_digest[2]), strict=False):
        target = event["target"]
        assert target["size"] == target["length"] == len(manifest)
        assert target["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert target["repository"] == repository
        assert target["url"].endswith(f"/v2/{repository}/manifests/{target['digest']}")
        assert event["actor"] == {"name": "admin"} and event["request"]["addr"] == "127.0.0.1"
        assert set(event["request"]) >= {"addr", "host"} and "addr" in event["source"]



@pytest.mark.parametrize("settings", [inprocess_settings(webhook_history=7)])
async def test_the_history_setting_reaches_the_runner(dockyard: Dockyard) -> None:
    assert dockyard.services.webhook_delivery.history == 7
