"""The OAuth2 form of the token endpoint answers each refusal with its own status (issue 7,
item 9: every domain error used to become 429 TOOMANYREQUESTS)."""

from __future__ import annotations

import httpx

from dockyard.commands.accounts import MAX_FAILURES
from dockyard.domain.auth_settings import AuthSettings
from tests.inprocess.auth_support import create_user
from tests.inprocess.conftest import InProcessServer


def password_grant(client: httpx.Client, user: str, password: str) -> httpx.Response:
    return client.post("/auth/token", data={"grant_type": "password", "service": "dockyard", "client_id": "tests",
                                            "username": user, "password": password})


def test_a_misconfigured_directory_is_a_400_not_a_429(server: InProcessServer) -> None:
    create_user(server, "ldapuser", "ldapuser-pw")
    # An LDAP URL of the wrong scheme (stored before the commands checked it, so saved here on the
    # aggregate itself): the directory refuses to connect with InvalidRequest, which is no throttling.
    registry = server.services.registry
    settings = registry.load(AuthSettings, AuthSettings.create_id()) or AuthSettings()
    settings.change("ldap", {"url": "http://directory.invalid"}, False)
    registry.save(settings)
    with server.client(None) as client:
        r = password_grant(client, "ldapuser", "whatever")
    assert r.status_code == 400, r.text
    error = r.json()["errors"][0]
    assert "ldap://" in error["message"] and error["detail"] == {"url": "http://directory.invalid"}


def test_throttling_is_a_429_with_retry_after(server: InProcessServer) -> None:
    create_user(server, "starbuck", "starbuck-pw")
    with server.client(None) as client:
        for _ in range(MAX_FAILURES):
            assert password_grant(client, "starbuck", "wrong").status_code == 401
        r = password_grant(client, "starbuck", "starbuck-pw")
    assert r.status_code == 429, r.text
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(r.headers["retry-after"]) > 0


def test_an_unknown_grant_type_is_a_400(server: InProcessServer) -> None:
    with server.client(None) as client:
        r = client.post("/auth/token", data={"grant_type": "client_credentials", "service": "dockyard"})
    assert r.status_code == 400, r.text
