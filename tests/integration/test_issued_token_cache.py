"""A registry JWT goes into its issuing process's cache of verified tokens as it is issued, and
carries the role its issue confirmed, so that no process reads the user again for it within
RECHECK_SECONDS of its issue; rights removed, revocations and deactivations made by another
process still reach it within RECHECK_SECONDS (issue 7 item 4), in both processes, on both
backends.

Two in-process apps on one database are two processes on one log: each has its own caches and
its own connections. The clock is the test's (tokens' issue, expiry and recheck): nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from dockyard.api.auth import RECHECK_SECONDS
from tests.clock import Clock
from tests.conftest import database_url_for
from tests.inprocess.auth_support import ADMIN, basic, ok
from tests.inprocess.conftest import InProcessServer, inprocess_settings

REPO = "eng/app"
PUBLIC_REPO = "eng/pub"


@dataclass
class Pair:
    one: InProcessServer  # issues the tokens
    two: InProcessServer  # makes the changes
    clock: Clock
    decodes: dict[str, int]  # ES256 verifications per process
    reads: dict[str, int]  # reads of a token's principal (`Accounts.principal_of`) per process

    def admin(self, method: str, url: str, **kwargs: Any) -> None:
        with self.two.client(None) as c:
            ok(c.request(method, url, headers=basic(*ADMIN), **kwargs))

    def token(self, user: str | None, repository: str = REPO) -> dict[str, str]:
        with self.one.client(None) as c:
            r = ok(c.get("/auth/token", headers=basic(user, f"{user}-password") if user else {},
                         params={"service": "dockyard", "scope": f"repository:{repository}:pull"}), 200)
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def tags(self, server: InProcessServer, bearer: dict[str, str], repository: str = REPO) -> int:
        with server.client(None) as c:
            return c.get(f"/v2/{repository}/tags/list", headers=bearer).status_code


def _counted(name: str, server: InProcessServer, decodes: dict[str, int], reads: dict[str, int]) -> None:
    tokens, accounts = server.services.auth.tokens, server.services.accounts
    decode, principal_of = tokens._decode, accounts.principal_of

    def counted_decode(*args: Any, **kwargs: Any) -> Any:
        decodes[name] += 1
        return decode(*args, **kwargs)

    def counted_read(*args: Any, **kwargs: Any) -> Any:
        reads[name] += 1
        return principal_of(*args, **kwargs)

    tokens._decode = counted_decode  # type: ignore[method-assign]
    accounts.principal_of = counted_read  # type: ignore[method-assign]


@pytest.fixture
def pair(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    monkeypatch.setattr("dockyard.commands.accounts.PasswordHasher",
                        lambda **_: PasswordHasher.from_parameters(CHEAPEST))
    settings = inprocess_settings(database_url=database_url_for(backend, request), data_dir=str(tmp_path))
    clock = Clock()
    with ExitStack() as stack:
        servers = []
        for _ in range(2):
            server = InProcessServer(settings, clock)
            server.start()
            stack.callback(server.stop)
            servers.append(server)
        p = Pair(servers[0], servers[1], clock, {"one": 0, "two": 0}, {"one": 0, "two": 0})
        _counted("one", p.one, p.decodes, p.reads)
        _counted("two", p.two, p.decodes, p.reads)
        for name, role in (("tina", "none"), ("moby", "read-only")):
            p.admin("POST", "/api/v0/accounts", json={"type": "user", "name": name, "password": f"{name}-password",
                                                      "role": role})
        p.admin("POST", "/api/v0/accounts", json={"type": "organization", "name": "eng"})
        p.admin("POST", "/api/v0/accounts/eng/teams", json={"name": "dev"})
        p.admin("PUT", "/api/v0/accounts/eng/teams/dev/members/tina")
        p.admin("POST", "/api/v0/repositories/eng", json={"name": "app", "visibility": "private"})
        p.admin("POST", "/api/v0/repositories/eng", json={"name": "pub", "visibility": "public"})
        p.admin("PUT", f"/api/v0/repositories/{REPO}/teamAccess/dev", json={"accessLevel": "read-only"})
        yield p


def test_a_token_issued_here_is_used_without_a_verify_here_and_without_a_read_anywhere(pair: Pair) -> None:
    for user, repository in (("tina", REPO), ("moby", REPO), (None, PUBLIC_REPO)):
        bearer = pair.token(user, repository)
        assert pair.tags(pair.one, bearer, repository) == 200
        assert pair.decodes["one"] == 0, user  # answered from the cache the issue filled
        before = pair.decodes["two"]
        assert pair.tags(pair.two, bearer, repository) == 200  # another process verifies it...
        assert pair.decodes["two"] == before + 1
    assert pair.reads == {"one": 0, "two": 0}  # ...and takes the user as the issue read them
    tina = pair.token("tina")
    assert pair.tags(pair.one, tina) == 200 and pair.tags(pair.two, tina) == 200
    pair.clock.advance(RECHECK_SECONDS + 0.5)
    for server in (pair.one, pair.two):  # checked again past the recheck, still good: read now
        assert pair.tags(server, tina) == 200
    assert pair.reads == {"one": 1, "two": 1}


def test_a_recheck_reads_the_principal_and_policy_again_without_verifying_the_signature_again(pair: Pair) -> None:
    # Given a token each process has answered (the issuer from its issue, the other by a verify)
    tina = pair.token("tina")
    assert pair.tags(pair.one, tina) == 200 and pair.tags(pair.two, tina) == 200
    assert pair.decodes == {"one": 0, "two": 1}
    for rounds in (1, 2, 3):
        # When its recheck comes, each process reads who it is and what it may now...
        pair.clock.advance(RECHECK_SECONDS + 0.5)
        for server in (pair.one, pair.two):
            assert pair.tags(server, tina) == 200
        assert pair.reads == {"one": rounds, "two": rounds}
        # ...but does not check the ES256 signature of the same bytes again
        assert pair.decodes == {"one": 0, "two": 1}
    # A right removed is still seen at the next recheck; an expired token is still refused
    pair.admin("DELETE", "/api/v0/accounts/eng/teams/dev/members/tina")
    pair.clock.advance(RECHECK_SECONDS + 0.5)
    assert pair.tags(pair.one, tina) in (401, 403) and pair.tags(pair.two, tina) in (401, 403)
    moby = pair.token("moby")
    assert pair.tags(pair.two, moby) == 200
    pair.clock.advance(24 * 3600)
    assert pair.tags(pair.one, moby) == 401 and pair.tags(pair.two, moby) == 401


REMOVALS: dict[str, tuple[str | None, str, Callable[[Pair], None]]] = {
    "team removal": ("tina", REPO, lambda p: p.admin("DELETE", "/api/v0/accounts/eng/teams/dev/members/tina")),
    "team access revoked": ("tina", REPO, lambda p: p.admin("DELETE", f"/api/v0/repositories/{REPO}/teamAccess/dev")),
    "role lowered": ("moby", REPO, lambda p: p.admin("PATCH", "/api/v0/accounts/moby", json={"role": "none"})),
    "deactivated": ("tina", REPO, lambda p: p.admin("PATCH", "/api/v0/accounts/tina", json={"active": False})),
    "made private": (None, PUBLIC_REPO, lambda p: p.admin("PATCH", f"/api/v0/repositories/{PUBLIC_REPO}",
                                                          json={"visibility": "private"})),
}


@pytest.mark.parametrize("used_in", ["issuer", "other"])
@pytest.mark.parametrize("removal", sorted(REMOVALS))
def test_a_change_in_another_process_reaches_a_token_issued_here_within_the_recheck(
        pair: Pair, removal: str, used_in: str) -> None:
    user, repository, remove = REMOVALS[removal]
    bearer = pair.token(user, repository)
    server = pair.one if used_in == "issuer" else pair.two  # the change is made in `two`
    assert pair.tags(server, bearer, repository) == 200
    remove(pair)
    pair.clock.advance(RECHECK_SECONDS + 0.5)
    assert pair.tags(server, bearer, repository) == 401, removal


def test_a_token_for_a_user_deactivated_since_the_sign_in_is_not_cached(pair: Pair) -> None:
    # Process one remembers tina's sign-in; process two deactivates her. A token process one
    # issues on the remembered sign-in is not taken as verified: its first use reads her again.
    pair.token("tina")
    pair.admin("PATCH", "/api/v0/accounts/tina", json={"active": False})
    with pair.one.client(None) as c:
        r = c.get("/auth/token", headers=basic("tina", "tina-password"),
                  params={"service": "dockyard", "scope": f"repository:{REPO}:pull"})
    if r.status_code == 401:  # the remembered sign-in was already read again (a slow machine)
        return
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    assert pair.tags(pair.one, bearer) == 401
    assert pair.tags(pair.two, bearer) == 401  # no role in it: the other process reads her too


def test_the_cache_of_verified_tokens_is_bounded_expired_ones_going_first(
        pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dockyard.api.auth.tokens.VERIFIED_TOKENS_MAX", 10)
    ttl = pair.one.services.auth.tokens.settings.token_ttl_seconds
    # Step 1: two tokens that expire, then nine live ones: the eleventh entry evicts the two
    # expired ones only, and every live token is still answered from the cache (no ES256 verify).
    expired = [pair.token("tina"), pair.token("moby")]
    pair.clock.advance(ttl + 1)
    live = [pair.token(user) for user in ("tina", "moby", "tina") * 3]
    for bearer in live:
        assert pair.tags(pair.one, bearer) == 200
    assert pair.decodes["one"] == 0
    assert all(pair.tags(pair.one, bearer) == 401 for bearer in expired)
    # Step 2: more live tokens than the bound: the first issued (the longest unchecked) are
    # forgotten and verified again when they come back; the last issued is still remembered.
    decodes = pair.decodes["one"]
    more = [pair.token(user) for user in ("tina", "moby") * 2]
    assert pair.tags(pair.one, more[-1]) == 200 and pair.decodes["one"] == decodes
    assert pair.tags(pair.one, live[0]) == 200 and pair.decodes["one"] == decodes + 1
