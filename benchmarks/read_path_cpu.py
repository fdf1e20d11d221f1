#!/usr/bin/env python3
"""CPU per request on the pull path, in process: what a change to the request path saves, in a
figure that a shared machine's load disturbs far less than req/s over HTTP.

    .venv/bin/python benchmarks/read_path_cpu.py [--repos 50] [--gets 3000] [--rounds 3]
        [--database-url postgresql://postgres@127.0.0.1:5432] [--count] [--loop uvloop|asyncio]

Builds the app from its composition root (`create_app`, lifespan run; SQLite in a temp dir, or
PostgreSQL with --database-url: a URL naming no database gets a fresh one, dropped at the end;
memory blobs, token auth, logging as `dockyard serve` sets it up at --log-level, into /dev/null),
pushes one image per repository, then times, with 8 concurrent callers on the app's ASGI
interface (no sockets, no HTTP parser):
  manifest_get  GET /v2/<repo>/manifests/<tag> with a registry JWT (cached after its first use)
  token_dance   per repository what bench.py's tags_list does: GET tags/list without
                credentials (401), GET /auth/token with Basic, GET tags/list with the new JWT
Prints one JSON line per round: µs of process CPU (all threads) and of wall time per operation;
with --count also the SQL statements executed and the connections checked out (PostgreSQL: one
round trip per statement) per operation, and per request kind in one extra line.
The followed projections and webhook delivery are stopped once the data is pushed, so that the
CPU figure is the requests' own.
Run it with PYTHONPATH pointing at an exported tree to measure another commit (read_ab.sh does).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from dockyard.api.app import create_app
from dockyard.api.settings import Settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_database import drop_database, fresh_database  # noqa: E402

PASSWORD = "bench-password-1"
BASIC = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


async def call(app: Any, method: str, target: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    """One request on the ASGI interface: (status, body, response headers)."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 5000)}
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"], out["headers"]


async def push(client: httpx.AsyncClient, repo: str, tag: str) -> None:
    config = json.dumps({"os": "linux", "architecture": "amd64", "repo": repo}).encode()
    layer = hashlib.sha256(repo.encode()).digest() * 128
    digests = []
    for blob in (config, layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = await client.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        r = await client.put(r.headers["location"], params={"digest": digest}, content=blob)
        assert r.status_code == 201, r.text
        digests.append((digest, len(blob)))
    manifest = {"schemaVersion": 2, "mediaType": ACCEPT,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": digests[0][0], "size": digests[0][1]},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": digests[1][0], "size": digests[1][1]}]}
    r = await client.put(f"/v2/{repo}/manifests/{tag}", content=json.dumps(manifest).encode(),
                         headers={"content-type": ACCEPT})
    assert r.status_code == 201, r.text


class Counter:
    """Counts SQL statements (psycopg cursor executes, sqlite3 executes through the library's
    cursor) and PostgreSQL pool checkouts, process-wide, while `on`."""

    def __init__(self) -> None:
        self.statements = self.checkouts = 0
        self.on = False

    def install(self) -> None:
        import psycopg
        import psycopg_pool

        counter = self
        execute, getconn = psycopg.Cursor.execute, psycopg_pool.ConnectionPool.getconn

        def counted_execute(cur: Any, *args: Any, **kwargs: Any) -> Any:
            if counter.on:
                counter.statements += 1
            return execute(cur, *args, **kwargs)

        def counted_getconn(pool: Any, *args: Any, **kwargs: Any) -> Any:
            if counter.on:
                counter.checkouts += 1
            return getconn(pool, *args, **kwargs)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg_pool.ConnectionPool.getconn = counted_getconn  # type: ignore[method-assign]

    def take(self) -> tuple[int, int]:
        out = (self.statements, self.checkouts)
        self.statements = self.checkouts = 0
        return out


COUNTER = Counter()


async def timed(label: str, ops: int, work: Any) -> dict[str, Any]:
    COUNTER.take()
    c0, t0 = time.process_time(), time.perf_counter()
    await work()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    statements, checkouts = COUNTER.take()
    out = {"op": label, "ops": ops, "cpu_us_per_op": round(cpu / ops * 1e6, 1),
           "wall_us_per_op": round(wall / ops * 1e6, 1)}
    if COUNTER.on:
        out.update(statements_per_op=round(statements / ops, 2), checkouts_per_op=round(checkouts / ops, 2))
    return out


def configure_logging(level: str) -> None:
    """As `dockyard serve` does (cli.py): Dockyard's and uvicorn's loggers at `level`, one stream
    handler with `ComponentFormatter`, here writing to /dev/null."""
    from dockyard.api import log_format

    # The handler class `dockyard serve` installs (cli.py), where this tree has one.
    handler_class = getattr(log_format, "BackgroundStreamHandler", logging.StreamHandler)
    handler = handler_class(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(log_format.ComponentFormatter("text"))
    for name in ("dockyard", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repos", type=int, default=50)
    p.add_argument("--gets", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--label", default="")
    p.add_argument("--database-url", default=None, help="PostgreSQL (no database name: a fresh one)")
    p.add_argument("--count", action="store_true", help="count SQL statements and pool checkouts (PostgreSQL)")
    p.add_argument("--log-level", default="info", help="DOCKYARD_LOG_LEVEL as `dockyard serve` takes it (info, "
                   "the default users run; benchmarks/run.sh serves at warning)")
    p.add_argument("--only", choices=["manifest_get", "token_dance"], default=None, help="time one operation only")
    p.add_argument("--profile", default=None, help="write a cProfile of the timed rounds to this file")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the event loop (dockyard serve: uvloop)")
    a = p.parse_args()
    configure_logging(a.log_level)
    url, made = fresh_database(a.database_url)
    if a.count:
        COUNTER.install()
    try:
        await run(a, url)
    finally:
        drop_database(a.database_url, made)


async def run(a: argparse.Namespace, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=data, storage="memory://", admin_password=PASSWORD,
                            upload_purge_interval_hours=0, database_url=url)
        app = create_app(settings)
        async with LifespanManager(app):
            app.state.services.accounts.ensure_admin(PASSWORD)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         auth=("admin", PASSWORD)) as client:
                r = await client.post("/api/v0/accounts", json={"type": "organization", "name": "bench"})
                assert r.status_code == 201, r.text
                repos = [f"bench/r{i:03d}" for i in range(a.repos)]
                for repo in repos:
                    await push(client, repo, "v1")
            # The followed projections and webhook delivery poll in background threads whose CPU
            # grows with wall time (which a loaded machine stretches); neither serves these reads.
            app.state.services.read_side.stop()
            app.state.services.webhook_delivery.stop()
            service = settings.token_service
            scopes = "&".join(f"scope=repository:{r}:pull" for r in repos)
            status, body, _ = await call(app, "GET", f"/auth/token?service={service}&{scopes}",
                                         {"authorization": BASIC})
            assert status == 200, body
            bearer = {"authorization": "Bearer " + json.loads(body)["token"], "accept": ACCEPT}

            async def gets() -> None:
                async def caller(k: int) -> None:
                    for i in range(a.gets // 8):
                        status, _, _ = await call(app, "GET", f"/v2/{repos[(i + k) % len(repos)]}/manifests/v1",
                                                  bearer)
                        assert status == 200
                await asyncio.gather(*(caller(k) for k in range(8)))

            async def dances() -> None:
                for repo in repos:
                    status, _, _ = await call(app, "GET", f"/v2/{repo}/tags/list", {})
                    assert status == 401
                    status, body, _ = await call(
                        app, "GET", f"/auth/token?service={service}&scope=repository:{repo}:pull",
                        {"authorization": BASIC})
                    assert status == 200, body
                    token = json.loads(body)["token"]
                    status, _, _ = await call(app, "GET", f"/v2/{repo}/tags/list", {"authorization": "Bearer " + token})
                    assert status == 200

            await gets()  # warm-up: caches, first-use imports
            await dances()
            if a.count:  # per request kind, one dance per repository (the caches as in a round)
                COUNTER.on = True
                kinds: dict[str, list[int]] = {}
                for repo in repos:
                    for kind, target, hdrs in (
                            ("tags_list_401", f"/v2/{repo}/tags/list", {}),
                            ("auth_token", f"/auth/token?service={service}&scope=repository:{repo}:pull",
                             {"authorization": BASIC})):
                        COUNTER.take()
                        status, body, _ = await call(app, "GET", target, hdrs)
                        kinds.setdefault(kind, []).extend(COUNTER.take())
                    COUNTER.take()
                    token = json.loads(body)["token"]
                    await call(app, "GET", f"/v2/{repo}/tags/list", {"authorization": "Bearer " + token})
                    kinds.setdefault("tags_list_jwt", []).extend(COUNTER.take())
                    await call(app, "GET", f"/v2/{repo}/manifests/v1", bearer)
                    kinds.setdefault("manifest_get", []).extend(COUNTER.take())
                print(json.dumps({"label": a.label, "per_request": {
                    k: {"statements": round(sum(v[0::2]) / len(repos), 2),
                        "checkouts": round(sum(v[1::2]) / len(repos), 2)} for k, v in kinds.items()}}), flush=True)
            profiler = None
            if a.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            for r in range(a.rounds):
                if a.only != "token_dance":
                    result = await timed("manifest_get", a.gets // 8 * 8, gets)
                    print(json.dumps({"label": a.label, "round": r + 1, **result}), flush=True)
                if a.only != "manifest_get":
                    result = await timed("token_dance", len(repos), dances)
                    print(json.dumps({"label": a.label, "round": r + 1, **result}), flush=True)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(a.profile)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    # The event loop `dockyard serve` runs (uvicorn with loop="uvloop"), unless --loop asyncio: the
    # loop's cost of socket waits (PostgreSQL's round trips on the loop) differs between the two.
    if "--loop" in sys.argv and sys.argv[sys.argv.index("--loop") + 1:][:1] == ["asyncio"]:
        asyncio.run(main())
    else:
        import uvloop

        uvloop.run(main())
