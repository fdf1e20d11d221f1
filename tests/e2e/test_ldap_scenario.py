"""The DTR lab's scenario with the auth mode switched to LDAP, against a real OpenLDAP slapd.

The lab's accounts, organisation, teams and grants are made in managed mode (managed passwords
`<user>-managed-pw`), then `PUT /api/v0/settings/auth` switches to the directory (passwords
`<user>pass`). Then: directory passwords work and the managed ones do not; the initial admin
still signs in with its managed password; the access table comes out the same (organisations,
teams and grants survive the switch); a directory user unknown to Dockyard appears on first
login with role `none`; the bind password is never given back; switching back to managed
restores the managed passwords.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.clients import events
from tests.e2e.test_lab_scenario import (
    BARCA,
    MADRID,
    USERS,
    Lab,
    catalog_as,
    check_table_row,
    create_lab_accounts,
    granted_actions,
    managed_password,
    ok,
    seed_lab,
)
from tests.ldap_server import ADMIN_DN, ADMIN_PASSWORD, PEOPLE_DN, LdapServer, password_of
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

NEWCOMER = "ishmael"  # in the directory, never created in Dockyard


def ldap_settings(directory: LdapServer) -> dict[str, object]:
    return {"url": directory.url, "bindDn": ADMIN_DN, "bindPassword": ADMIN_PASSWORD,
            "userBaseDn": PEOPLE_DN, "userFilter": "(objectClass=inetOrgPerson)",
            "usernameAttribute": "uid", "startTls": False}


def set_mode(server: DockyardServer, mode: str, ldap: dict[str, object] | None = None) -> httpx.Response:
    body: dict[str, object] = {"mode": mode}
    if ldap is not None:
        body["ldap"] = ldap
    with server.client() as api:
        return ok(api.put("/api/v0/settings/auth", json=body), 200)


def signs_in(server: DockyardServer, user: str, password: str) -> int:
    """The status of `GET /v2/` with HTTP Basic."""
    with server.client((user, password)) as http:
        return http.get("/v2/").status_code


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> LdapServer:
    slapd = LdapServer(tmp_path_factory.mktemp("slapd"), users=(*USERS, NEWCOMER))
    slapd.start()
    yield slapd
    slapd.stop()


@pytest.fixture(scope="module")
def ldap_lab(shared_server: DockyardServer, directory: LdapServer, tmp_path_factory) -> Lab:
    create_lab_accounts(shared_server)
    lab = seed_lab(shared_server, tmp_path_factory.mktemp(f"ldap-lab-{shared_server.backend}"))
    for user in USERS:  # managed mode: the managed passwords work, the directory's do not
        assert signs_in(shared_server, user, managed_password(user)) == 200
    assert signs_in(shared_server, "moby", password_of("moby")) == 401
    lab.switch_answer = set_mode(shared_server, "ldap", ldap_settings(directory))  # type: ignore[attr-defined]
    return lab


def test_auth_settings_never_return_the_bind_password(ldap_lab: Lab, directory: LdapServer) -> None:
    server = ldap_lab.server
    put_answer: httpx.Response = ldap_lab.switch_answer  # type: ignore[attr-defined]
    with server.client() as api:
        got = ok(api.get("/api/v0/settings/auth"), 200)
    for answer in (put_answer, got):
        body = answer.json()
        assert body["mode"] == "ldap"
        assert body["ldap"]["url"] == directory.url
        assert body["ldap"]["bindDn"] == ADMIN_DN
        assert body["ldap"]["userBaseDn"] == PEOPLE_DN
        assert body["ldap"]["usernameAttribute"] == "uid"
        assert "bindPassword" not in body["ldap"]
        assert ADMIN_PASSWORD not in answer.text
    # ...nor does the event log, and a non-admin may not read the settings at all
    assert ADMIN_PASSWORD not in json.dumps(events(server, 2000))
    with server.client(("moby", password_of("moby"))) as http:
        assert http.get("/api/v0/settings/auth").status_code == 403
    # Changing other LDAP settings without a bindPassword keeps the stored one: logins still work.
    kept = {k: v for k, v in ldap_settings(directory).items() if k != "bindPassword"}
    set_mode(server, "ldap", kept)
    with server.client() as api:
        assert api.get("/api/v0/settings/auth").json()["ldap"].get("bindPasswordSet") is True
    assert signs_in(server, "orca", password_of("orca")) == 200


@pytest.mark.parametrize("user", USERS)
def test_directory_passwords_replace_managed_ones(ldap_lab: Lab, directory: LdapServer, user: str) -> None:
    server = ldap_lab.server
    assert directory.can_bind(user, password_of(user))
    skopeo = ldap_lab.skopeo(user, password_of(user), f"ldap-login-{user}")
    skopeo.login()
    with server.client((user, password_of(user))) as api:
        assert ok(api.get(f"/api/v0/accounts/{user}"), 200).json()["name"] == user
    # The managed password is dead in LDAP mode (even right after being used in managed mode).
    old = ldap_lab.skopeo(user, managed_password(user), f"ldap-old-{user}")
    assert old.login(check=False).returncode != 0
    with server.client((user, managed_password(user))) as http:
        r = http.get("/v2/")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_initial_admin_keeps_its_managed_password(ldap_lab: Lab) -> None:
    server = ldap_lab.server
    assert signs_in(server, "admin", server.admin_password) == 200
    with server.client() as api:
        assert ok(api.get("/api/v0/settings/auth"), 200).json()["mode"] == "ldap"
    admin = ldap_lab.skopeo("admin", server.admin_password, "ldap-admin")
    admin.login()
    assert {BARCA, MADRID} <= set(catalog_as(server, "admin", server.admin_password))
    assert signs_in(server, "admin", "not-the-admin-password") == 401


@pytest.mark.parametrize("user", USERS)
def test_lab_table_in_ldap_mode(ldap_lab: Lab, user: str) -> None:
    check_table_row(ldap_lab, user, password_of(user), "ldap")


def test_directory_user_appears_on_first_login_with_role_none(ldap_lab: Lab, directory: LdapServer) -> None:
    server = ldap_lab.server
    with server.client() as api:
        assert api.get(f"/api/v0/accounts/{NEWCOMER}").status_code == 404
        assert api.get("/api/v0/accounts/nobody-in-ldap").status_code == 404
    assert signs_in(server, NEWCOMER, "wrong-password") == 401
    assert signs_in(server, "nobody-in-ldap", "whatever") == 401
    with server.client() as api:  # a failed login creates nobody
        assert api.get(f"/api/v0/accounts/{NEWCOMER}").status_code == 404
        assert api.get("/api/v0/accounts/nobody-in-ldap").status_code == 404

    skopeo = ldap_lab.skopeo(NEWCOMER, password_of(NEWCOMER), "ldap-newcomer")
    skopeo.login()
    with server.client() as api:
        account = ok(api.get(f"/api/v0/accounts/{NEWCOMER}"), 200).json()
    assert account["type"] == "user" and account["role"] == "none", account
    assert account.get("source") == "ldap", account
    created = [e for e in events(server, 2000) if e["topic"] == "dockyard.User.Created" and e["name"] == NEWCOMER]
    assert len(created) == 1 and created[0]["role"] == "none"
    # Rule 6: the account's creation says who (the directory user) and from where (skopeo's address).
    assert created[0]["actor"] == NEWCOMER and created[0]["client_address"] == "127.0.0.1"

    # Role none, no teams: the organisation's private repositories do not exist for them...
    catalog = catalog_as(server, NEWCOMER, password_of(NEWCOMER))
    assert BARCA not in catalog and MADRID not in catalog
    assert granted_actions(server, NEWCOMER, password_of(NEWCOMER), MADRID) == frozenset()
    # ...but their own namespace is theirs.
    image = ldap_lab.images["ahab"]
    skopeo.copy(image.ref, skopeo.docker(f"{NEWCOMER}/first", "v1"))
    assert f"{NEWCOMER}/first" in catalog_as(server, NEWCOMER, password_of(NEWCOMER))
    # A second login finds the account, it does not make another one.
    assert signs_in(server, NEWCOMER, password_of(NEWCOMER)) == 200
    assert len([e for e in events(server, 2000)
                if e["topic"] == "dockyard.User.Created" and e["name"] == NEWCOMER]) == 1


def test_switching_back_to_managed_restores_managed_passwords(ldap_lab: Lab, directory: LdapServer) -> None:
    server = ldap_lab.server
    try:
        answer = set_mode(server, "managed").json()
        assert answer["mode"] == "managed"
        for user in USERS:
            assert signs_in(server, user, managed_password(user)) == 200, user
            assert signs_in(server, user, password_of(user)) == 401, user
        assert signs_in(server, "admin", server.admin_password) == 200
        # The directory-made user has no managed password: no way in.
        assert signs_in(server, NEWCOMER, password_of(NEWCOMER)) == 401
        # Organisations, teams and grants survived both switches: the same table again.
        for user in USERS:
            check_table_row(ldap_lab, user, managed_password(user), "managed-again")
    finally:
        set_mode(server, "ldap", ldap_settings(directory))
