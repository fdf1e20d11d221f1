"""The pull path reads the read model from the event loop without a thread hop (SQLite in a file:
on the loop's own connection; PostgreSQL: psycopg's asynchronous pool), and still sees every
write at once, whichever process made it: a tag pushed, moved or deleted through one app is
answered so by the other at its next request (read-your-writes across processes), on both
backends.

Two in-process apps on one database are two processes on one log: each has its own loop, its
own connections and its own caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.api import read_threads
from tests.clock import Clock
from tests.conftest import ADMIN_PASSWORD, database_url_for
from tests.inprocess.auth_support import basic
from tests.inprocess.conftest import InProcessServer, inprocess_settings
from tests.integration.oci_client import OCI_MANIFEST, image, push

REPO = "admin/app"


@pytest.fixture
def two(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[InProcessServer]]:
    settings = inprocess_settings(database_url=database_url_for(backend, request), data_dir=str(tmp_path),
                                  storage=None)
    with ExitStack() as stack:
        servers = []
        for _ in range(2):
            server = InProcessServer(settings, Clock())
            server.start()
            stack.callback(server.stop)
            servers.append(server)
        yield servers


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls that went to a read thread."""
    seen: list[str] = []
    hop = read_threads.read_in_thread

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__qualname__", repr(fn)))
        return await hop(fn, *args, **kwargs)

    for module in ("read_threads", "app", "auth.guard", "auth.routes", "v2.manifests", "v2.tags", "v2.base",
                   "v2.blobs", "v2.referrers"):
        monkeypatch.setattr(f"dockyard.api.{module}.read_in_thread", counted, raising=False)
    return seen


def _get(client: httpx.Client, path: str, **headers: str) -> httpx.Response:
    return client.get(path, headers={"Accept": OCI_MANIFEST, **headers})


def test_a_tag_pushed_moved_or_deleted_through_one_process_is_read_so_at_once_by_the_other(
        two: list[InProcessServer]) -> None:
    one, other = two
    with one.client() as writer, other.client() as reader:
        # Given a tag the reading process has already answered
        first = push(writer, REPO, image(), "v1")
        assert _get(reader, f"/v2/{REPO}/manifests/v1").headers["Docker-Content-Digest"] == first.digest
        assert reader.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1"]
        # When the writing process moves it, adds a tag and deletes another, each is read at once
        second = push(writer, REPO, image(), "v1")
        assert _get(reader, f"/v2/{REPO}/manifests/v1").headers["Docker-Content-Digest"] == second.digest
        assert _get(reader, f"/v2/{REPO}/manifests/{second.digest}").status_code == 200
        push(writer, REPO, image(), "v2")
        assert reader.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1", "v2"]
        assert writer.delete(f"/v2/{REPO}/manifests/v2").status_code == 202
        assert reader.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1"]
        assert _get(reader, f"/v2/{REPO}/manifests/v2").status_code == 404
        assert writer.delete(f"/v2/{REPO}/manifests/{second.digest}").status_code == 202
        assert _get(reader, f"/v2/{REPO}/manifests/v1").status_code == 404
        assert _get(reader, f"/v2/{REPO}/manifests/{second.digest}").status_code == 404
        assert _get(reader, f"/v2/{REPO}/manifests/{first.digest}").status_code == 200


def test_a_pull_with_a_cached_token_makes_no_thread_hop(two: list[InProcessServer], hops: list[str]) -> None:
    one, _ = two
    with one.client() as admin, one.client(None) as anonymous:
        pushed = push(admin, REPO, image(), "v1")
        token = anonymous.get("/auth/token", params={"service": "dockyard", "scope": f"repository:{REPO}:pull"},
                              headers=basic("admin", ADMIN_PASSWORD)).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        hops.clear()
        # The token was cached as it was issued: the GETs below read only the read model
        assert anonymous.get(f"/v2/{REPO}/manifests/v1", headers={"Accept": OCI_MANIFEST, **bearer}).status_code == 200
        assert anonymous.get(f"/v2/{REPO}/manifests/{pushed.digest}", headers=bearer).status_code == 200
        assert anonymous.get(f"/v2/{REPO}/manifests/nope", headers=bearer).status_code == 404
        assert anonymous.get(f"/v2/{REPO}/tags/list", headers=bearer).json()["tags"] == ["v1"]
        assert anonymous.get("/v2/admin/none/tags/list", headers=bearer).status_code == 401
    assert hops == []


def test_postgresql_reads_on_the_loop_answer_unavailable_while_the_database_is_away_then_recover() -> None:
    # As the library's pool under the thread path (commands.database): a 503, never a 500.
    import asyncio
    from types import SimpleNamespace

    from dockyard.domain.errors import Unavailable
    from dockyard.projections.dialect import POSTGRES
    from dockyard.projections.loop_reads import LoopReads
    from dockyard.projections.registry_queries import Read
    from tests.pg_cluster import PrivateCluster

    one = Read("SELECT 1 AS one", {}, lambda rows: rows[0]["one"])
    cluster = PrivateCluster()
    try:
        cluster.start()
        library_pool = SimpleNamespace(conninfo=cluster.url, kwargs={"connect_timeout": 3})
        reads = LoopReads(SimpleNamespace(pool=library_pool), POSTGRES, offload=None)  # type: ignore[arg-type]

        async def scenario() -> None:
            # Given reads that opened the loop's connections
            assert await asyncio.gather(*(reads.run(one) for _ in range(6))) == [1] * 6
            # When the server goes away, each read answers Unavailable: an idle connection that
            # died, then a connect refused, then at once for a moment
            cluster.stop()
            for _ in range(3):
                with pytest.raises(Unavailable):
                    await reads.run(one)
            # Once it is back, reads answer again by themselves
            cluster.start()
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                try:
                    assert await reads.run(one) == 1
                    break
                except Unavailable:
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.2)
            assert await asyncio.gather(*(reads.run(one) for _ in range(6))) == [1] * 6
            await reads.close()

        asyncio.run(scenario())
    finally:
        cluster.destroy()
