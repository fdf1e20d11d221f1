"""Refresh tokens (OAuth2 `access_type=offline` on POST /auth/token) end when the credentials
behind them change, rotate on every use, and a rotated one used again ends its whole family.

Regression tests for issue 7, item 2: a password change (by the user or an admin), a
deactivation (even if the user is reactivated) and a role change end every refresh token issued
before; the state is in the event log, so it holds after a restart and across processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.inprocess.auth_support import ADMIN, basic, create_user, events, ok, process
from tests.inprocess.conftest import InProcessServer

USER, PASSWORD = "kara", "kara-password"
SCOPE = f"repository:{USER}/app:pull"


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    """An anonymous client of a fresh app where USER exists (requests say who they are)."""
    create_user(server, USER, PASSWORD)
    with server.client(None) as c:
        yield c


def password_grant(client: httpx.Client, user: str = USER, password: str = PASSWORD,
                   client_id: str = "tests") -> str:
    r = ok(client.post("/auth/token", data={
        "grant_type": "password", "service": "dockyard", "client_id": client_id, "username": user,
        "password": password, "access_type": "offline", "scope": SCOPE}), 200)
    return r.json()["refresh_token"]


def refresh_grant(client: httpx.Client, refresh_token: str, client_id: str = "tests") -> httpx.Response:
    return client.post("/auth/token", data={
        "grant_type": "refresh_token", "service": "dockyard", "client_id": client_id,
        "refresh_token": refresh_token, "scope": SCOPE})


def assert_refused(client: httpx.Client, refresh_token: str) -> None:
    r = refresh_grant(client, refresh_token)
    assert r.status_code == 401, r.text
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_refresh_rotates_and_the_old_token_stops_working(client: httpx.Client) -> None:
    first = password_grant(client)
    r = ok(refresh_grant(client, first), 200)
    second = r.json()["refresh_token"]
    assert second != first
    assert r.json()["access_token"]
    # The new one works (and rotates again); the old one is spent.
    third = ok(refresh_grant(client, second), 200).json()["refresh_token"]
    assert third not in (first, second)


def test_reuse_of_a_rotated_token_ends_the_whole_family(client: httpx.Client, server: InProcessServer) -> None:
    stolen = password_grant(client)
    current = ok(refresh_grant(client, stolen), 200).json()["refresh_token"]
    other_session = password_grant(client)  # another login: another family, unaffected

    assert_refused(client, stolen)  # a spent token presented again: theft
    assert_refused(client, current)  # ... so the legitimate holder's newer token ends too
    ok(refresh_grant(client, other_session), 200)

    ended = [e for e in events(server, "dockyard.RefreshTokenFamily.") if type(e).__name__ == "Ended"]
    assert len(ended) == 1 and ended[0].reason == "reuse"
    assert ended[0].actor == USER and ended[0].client_address == "127.0.0.1"


def test_the_docker_clis_identity_token_serves_every_command_until_the_credentials_change(
        client: httpx.Client, server: InProcessServer) -> None:
    """`docker login` keeps the first refresh token and presents it for every command: a family
    started by `client_id=docker` does not rotate (no Rotated event, no reuse verdict), and still
    ends with the user's credentials."""
    identity = password_grant(client, client_id="docker")
    for _ in range(3):
        r = ok(refresh_grant(client, identity, client_id="docker"), 200)
        assert r.json()["access_token"]
    kinds = [type(e).__name__ for e in events(server, "dockyard.RefreshTokenFamily.")]
    assert kinds == ["Created"]
    ok(client.patch(f"/api/v0/accounts/{USER}", headers=basic(*ADMIN), json={"password": "kara-new-password"}))
    assert_refused(client, identity)


@pytest.mark.parametrize("by", ["user", "admin"])
def test_a_password_change_ends_refresh_tokens_issued_before(client: httpx.Client, by: str) -> None:
    before = password_grant(client)
    who = (USER, PASSWORD) if by == "user" else ADMIN
    ok(client.patch(f"/api/v0/accounts/{USER}", headers=basic(*who), json={"password": "kara-new-password"}))
    assert_refused(client, before)
    after = password_grant(client, password="kara-new-password")
    ok(refresh_grant(client, after), 200)


def test_deactivation_ends_refresh_tokens_and_reactivation_does_not_revive_them(client: httpx.Client) -> None:
    before = password_grant(client)
    ok(client.patch(f"/api/v0/accounts/{USER}", headers=basic(*ADMIN), json={"active": False}))
    assert_refused(client, before)
    ok(client.patch(f"/api/v0/accounts/{USER}", headers=basic(*ADMIN), json={"active": True}))
    assert_refused(client, before)
    ok(refresh_grant(client, password_grant(client)), 200)


def test_a_role_change_ends_refresh_tokens(client: httpx.Client) -> None:
    before = password_grant(client)
    ok(client.patch(f"/api/v0/accounts/{USER}", headers=basic(*ADMIN), json={"role": "read-only"}))
    assert_refused(client, before)


def test_refresh_state_holds_across_processes_and_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with process(data) as p1, p1.client(None) as one:
        create_user(p1, USER, PASSWORD)
        first = password_grant(one)
        second = ok(refresh_grant(one, first), 200).json()["refresh_token"]
        with process(data) as p2, p2.client(None) as two:  # another process on the same log
            assert_refused(two, first)  # spent on process one: reuse, the family ends
            assert_refused(one, second)
        third = password_grant(one)
    with process(data) as restarted, restarted.client(None) as client:
        third = ok(refresh_grant(client, third), 200).json()["refresh_token"]
        ok(client.patch(f"/api/v0/accounts/{USER}", headers=basic(*ADMIN), json={"password": "new-pw-1"}))
    with process(data) as restarted, restarted.client(None) as client:
        assert_refused(client, third)


def test_family_events_say_who_and_from_where(client: httpx.Client, server: InProcessServer) -> None:
    refresh_grant(client, password_grant(client))
    family = events(server, "dockyard.RefreshTokenFamily.")
    assert [type(e).__name__ for e in family] == ["Created", "Rotated"]
    assert all(e.actor == USER and e.client_address == "127.0.0.1" for e in family)
