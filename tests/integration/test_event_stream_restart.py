"""The change feed and webhook delivery across a server restart: a real `dockyard serve` process, a client reading
`/api/v0/events/stream` over a socket, the server stopped and started again on the same
database, and the client reconnecting with `Last-Event-ID` — it gets every later event exactly
once, in log order; and a webhook receiver that was down across the restart gets every push after
its subscription once, in order, signed. (Filters, visibility, live following, backoff:
tests/inprocess/test_event_stream.py and test_webhooks.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD, database_url_for
from tests.integration.oci_client import image, push
from tests.server import DockyardServer
from tests.webhook_receiver import Receiver, verified_events

ADMIN = ("admin", ADMIN_PASSWORD)
SECRET = "restart-secret-0123456789"


def until(check: Any, bound: float = 30.0) -> None:
    """Poll `check()` until true, at most `bound` seconds (the delivery runner is another process)."""
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.05)


def read_feed(client: httpx.Client, count: int, last_event_id: str | None = None,
              **params: str) -> list[tuple[int, dict[str, Any]]]:
    """The first `count` messages of the feed, as (id, event)."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    got: list[tuple[int, dict[str, Any]]] = []
    event_id, data = None, None
    with client.stream("GET", "/api/v0/events/stream", params=params, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data = orjson.loads(line[5:].strip())
            elif line == "" and data is not None:
                got.append((event_id or 0, data))
                event_id, data = None, None
                if len(got) == count:
                    break
    return got


def make_teams(client: httpx.Client, org: str, names: list[str]) -> None:
    for name in names:
        r = client.post(f"/api/v0/accounts/{org}/teams", json={"name": name})
        assert r.status_code == 201, r.text


def test_the_feed_resumes_across_a_restart_with_no_gap_or_duplicate(backend: str, request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    srv = DockyardServer(tmp_path / "data", database_url_for(backend, request), ADMIN_PASSWORD)
    srv.start()
    receiver = Receiver()
    receiver.start()
    try:
        with srv.client(auth=ADMIN) as client:
            r = client.post("/api/v0/accounts", json={"type": "organization", "name": "feedorg"})
            assert r.status_code == 201, r.text
            r = client.post("/api/v0/webhooks", json={"url": receiver.url, "events": ["push"],
                                                      "namespace": "feedorg", "secret": SECRET})
            assert r.status_code == 201, r.text
            hook = r.json()["id"]
            pushed = [push(client, "feedorg/app", image(), "v1").digest]
            until(lambda: len(receiver.received) == 1)
            receiver.stop()  # down from here until after the restart
            pushed.append(push(client, "feedorg/app", image(), "v2").digest)
            until(lambda: any(d["status"] is None for d in client.get(
                f"/api/v0/webhooks/{hook}/deliveries").json()["deliveries"]))
            make_teams(client, "feedorg", ["a1", "a2", "a3"])
            # the organisation's `owners` team, a1, a2
            first = read_feed(client, 3, namespace="feedorg", action="team.created")
            assert [e["action"] for _, e in first] == ["team.created"] * 3
            last_seen = first[1][0]  # the client saw two of them when the server went away
        srv.stop()
        receiver.start()
        srv.start()
        with srv.client(auth=ADMIN) as client:
            pushed.append(push(client, "feedorg/app", image(), "v3").digest)
            until(lambda: len(receiver.received) == 3)
            make_teams(client, "feedorg", ["b1", "b2"])
            # a2, a3, b1, b2
            resumed = read_feed(client, 4, last_event_id=str(last_seen), namespace="feedorg", action="team.created")
            expected = [e["position"] for e in client.get("/api/v0/events", params={
                "namespace": "feedorg", "action": "team.created", "after": last_seen,
                "waitFor": resumed[-1][0]}).json()["events"]]
        ids = [i for i, _ in resumed]
        assert ids == expected and ids[0] == first[2][0]  # a2 was sent, but not seen before the restart
        assert len(set(ids)) == len(ids) and ids == sorted(ids) and all(i > last_seen for i in ids)
        assert all(e["position"] == i for i, e in resumed)
        sent = verified_events(receiver, SECRET)
        assert [(e["action"], e["target"]["tag"], e["target"]["digest"]) for e in sent] == [
            ("push", "v1", pushed[0]), ("push", "v2", pushed[1]), ("push", "v3", pushed[2])]
        assert len({e["id"] for e in sent}) == 3
    finally:
        receiver.stop()
        srv.stop()
