"""Server time per portal page with many repositories and users (issue 10's benchmark).

Fills a fresh registry through the write side (the same commands the API calls: users,
organisations, teams, repositories, grants; no raw SQL), then renders each page many times
in-process (the app from `create_app`, driven through `httpx.ASGITransport`, so the figure is
the server's time without a network) and prints the median and p95 per page.

    .venv/bin/python benchmarks/portal_pages.py                       # 10,000 repos, 1,000 users, SQLite
    .venv/bin/python benchmarks/portal_pages.py --database-url postgresql://postgres@127.0.0.1:5432   # a fresh DB
    .venv/bin/python benchmarks/portal_pages.py --repositories 1000 --users 100 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time

import httpx
from asgi_lifespan import LifespanManager
from bench_database import drop_database, fresh_database

from dockyard.api.app import create_app
from dockyard.api.settings import Settings
from dockyard.api.v0.paging import encode_cursor

PASSWORD = "bench-password-1"


def fill(services, repositories: int, users: int) -> None:
    """`users` users (one of them, `reader`, in a team granted a few hundred repositories) and
    `repositories` repositories spread over 20 organisations, through the commands."""
    identity = services.identity
    digest = services.accounts.hash_password(PASSWORD)  # argon2 once; every user gets this hash
    for i in range(users):
        identity.create_user(f"user{i:05d}", digest, "none")
    identity.create_user("reader", digest, "none")
    orgs = [f"org{i:02d}" for i in range(20)]
    for org in orgs:
        identity.create_organization(org, "admin")
        identity.create_team(org, "readers")
        identity.add_member(org, "readers", "reader")
    for i in range(repositories):
        org = orgs[i % len(orgs)]
        name = f"repo{i:06d}"
        identity.create_repository(org, name, "public" if i % 50 == 0 else "private", f"repository number {i}")
        if i % 40 == 0:  # `reader` can read ~1 in 40 (a few hundred of 10,000), plus the public ones
            identity.grant_team_access(f"{org}/{name}", "readers", "read-only")


async def sign_in(client: httpx.AsyncClient, user: str) -> None:
    form = (await client.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
    answer = await client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303, answer.text


async def time_page(client: httpx.AsyncClient, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = await client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url, made = fresh_database(args.database_url)
    try:
        await fill_and_time(args, url)
    finally:
        drop_database(args.database_url, made)


async def fill_and_time(args: argparse.Namespace, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=data, database_url=url, storage="memory://",
                            admin_password=PASSWORD, upload_purge_interval_hours=0)
        app = create_app(settings)
        async with LifespanManager(app):
            services = app.state.services
            services.accounts.ensure_admin(PASSWORD)
            started = time.perf_counter()
            await asyncio.to_thread(fill, services, args.repositories, args.users)
            print(f"filled {args.repositories} repositories and {args.users} users "
                  f"in {time.perf_counter() - started:.1f} s", flush=True)
            pages = {
                "admin": ["/repositories", "/repositories?after=org10/repo005000", "/repositories?q=repo0042",
                          "/users", "/users?after=user00500", "/organizations", "/organizations/org07",
                          "/organizations/org07?tab=teams", "/organizations/org07/teams/readers",
                          "/organizations/org07/teams/new", "/repositories/new", "/repositories/org03/repo000003",
                          "/settings/auth", "/settings/gc", "/audit", "/logs", "/webhooks", "/tokens"],
                "reader": ["/repositories", "/repositories?after=org10/repo005000", "/organizations/org07",
                           "/repositories/org00/repo000000", "/repositories/new", "/organizations/org07/teams/readers"],
            }
            # The same listings through /api/v0 (Basic credentials, remembered after the first).
            deep = encode_cursor("org10/repo005000")
            api = {"admin": ["/api/v0/repositories?limit=50", f"/api/v0/repositories?limit=50&cursor={deep}"],
                   "reader": ["/api/v0/repositories?limit=50", f"/api/v0/repositories?limit=50&cursor={deep}",
                              "/api/v0/repositories/org07?limit=50"]}
            print(f"{'who':7} {'page':42} {'median ms':>10} {'p95 ms':>8}")
            for who, paths in [*pages.items(), *api.items()]:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                             auth=(who, PASSWORD)) as client:
                    if not paths[0].startswith("/api/"):
                        await sign_in(client, who)
                    for path in paths:
                        times = sorted(await time_page(client, path, args.rounds))
                        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                        print(f"{who:7} {path:42} {statistics.median(times):10.1f} {p95:8.1f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
