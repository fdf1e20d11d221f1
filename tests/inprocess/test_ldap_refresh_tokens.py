"""A directory user's refresh tokens end when the directory changes their password.

Dockyard never sees a password the directory changes (no event of ours), so the credentials
epoch that ends a managed user's refresh tokens does not move. A refresh grant for a directory
user asks the directory when the entry last changed (`modifyTimestamp`); a change at or after
the family's start ends the family (`RefreshTokenFamily.Ended`, reason `directory-changed`).
With the directory away, the grant answers 503 and ends nothing. A real slapd (tests/ldap_server.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.inprocess.auth_support import ok
from tests.inprocess.conftest import InProcessServer
from tests.inprocess.test_refresh_tokens import assert_refused, password_grant, refresh_grant
from tests.ldap_server import ADMIN_DN, ADMIN_PASSWORD, PEOPLE_DN, LdapServer, password_of

USER = "moby"


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[LdapServer]:
    server = LdapServer(tmp_path / "slapd")
    server.start()
    # The directory stamps changes to the second, and a change in the second a family starts
    # counts as after it (the safe side): sign-ins start a second after the entries were made.
    time.sleep(1.1)
    yield server
    server.stop()


@pytest.fixture
def client(server: InProcessServer, directory: LdapServer) -> Iterator[httpx.Client]:
    """An anonymous client of a fresh app in `ldap` mode against `directory`."""
    with server.client() as admin:
        ok(admin.put("/api/v0/settings/auth", json={"mode": "ldap", "ldap": {
            "url": directory.url, "bindDn": ADMIN_DN, "bindPassword": ADMIN_PASSWORD, "userBaseDn": PEOPLE_DN,
            "userFilter": "(objectClass=inetOrgPerson)", "usernameAttribute": "uid", "startTls": False}}))
    with server.client(None) as c:
        yield c


def _families_ended(server: InProcessServer) -> list[str]:
    registry = server.services.registry
    return [registry.mapper.to_domain_event(n).reason
            for n in registry.recorder.select_notifications(start=1, limit=100_000)
            if n.topic == "dockyard.RefreshTokenFamily.Ended"]


def test_a_directory_password_change_ends_the_refresh_tokens_issued_before(
        server: InProcessServer, client: httpx.Client, directory: LdapServer) -> None:
    token = password_grant(client, USER, password_of(USER))
    token = ok(refresh_grant(client, token), 200).json()["refresh_token"]  # unchanged entry: refreshes
    directory.set_password(USER, "a-new-directory-password")
    assert_refused(client, token)
    assert _families_ended(server) == ["directory-changed"]
    # Signing in with the new password starts a family that refreshes (a second after the change).
    time.sleep(1.1)
    fresh = password_grant(client, USER, "a-new-directory-password")
    ok(refresh_grant(client, fresh), 200)


def test_a_user_removed_from_the_directory_refreshes_no_more(
        server: InProcessServer, client: httpx.Client, directory: LdapServer) -> None:
    token = password_grant(client, USER, password_of(USER))
    directory.delete_user(USER)
    assert_refused(client, token)
    assert _families_ended(server) == ["directory-changed"]


def test_with_the_directory_away_a_refresh_answers_503_and_ends_nothing(
        server: InProcessServer, client: httpx.Client, directory: LdapServer) -> None:
    token = password_grant(client, USER, password_of(USER))
    directory.stop()
    r = refresh_grant(client, token)
    assert r.status_code == 503, r.text
    assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert _families_ended(server) == []
    directory.start()  # the same entries, loaded afresh: changed after the family started
    assert_refused(client, token)
    assert _families_ended(server) == ["directory-changed"]
