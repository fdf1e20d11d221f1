"""`/api/v0/settings/auth`: the auth mode and LDAP settings (global admins), the bind password
kept out of the log and out of responses, the LDAP connection test, and auth mode `none`."""

from __future__ import annotations

import time

import httpx

from tests.integration.api_v0_support import API, events, make_user, problem, unique
from tests.server import free_port

AUTH = f"{API}/settings/auth"


def _ldap(port: int, **extra: object) -> dict[str, object]:
    return {"url": f"ldap://127.0.0.1:{port}", "bindDn": "cn=admin,dc=example,dc=org",
            "userBaseDn": "ou=people,dc=example,dc=org", "userFilter": "(objectClass=inetOrgPerson)",
            "usernameAttribute": "uid", "startTls": False, **extra}


def test_admin_changes_auth_settings_and_the_bind_password_stays_secret(shared_server) -> None:
    secret = unique("bind-secret-")
    port = free_port()
    with shared_server.client() as admin:
        assert admin.get(AUTH).json()["mode"] == "managed"
        r = admin.put(AUTH, json={"mode": "managed", "ldap": _ldap(port, bindPassword=secret)})
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["ldap"]["bindPasswordSet"] is True and view["ldap"]["url"] == f"ldap://127.0.0.1:{port}"
        assert secret not in r.text and "bindPassword" not in view["ldap"]
        assert admin.get(AUTH).json() == view
        # Mode only: the LDAP settings and the stored password are kept.
        assert admin.put(AUTH, json={"mode": "managed"}).json() == view
        assert admin.put(AUTH, json={"mode": "managed", "ldap": _ldap(port)}).json()["ldap"]["bindPasswordSet"]
    changes = [e for e in events(shared_server) if e["topic"] == "dockyard.AuthSettings.Changed"]
    assert changes and all(e["actor"] == "admin" and e["client_address"] == "127.0.0.1" for e in changes)
    assert changes[-3]["bind_password_changed"] is True and changes[-1]["bind_password_changed"] is False
    assert secret not in str(events(shared_server, 500))


def test_only_global_admins_see_or_change_auth_settings(shared_server) -> None:
    with shared_server.client() as admin:
        before = admin.get(AUTH).json()
    user = make_user(shared_server, "read-write")
    with shared_server.client(auth=user) as client:
        problem(client.get(AUTH), 403)
        problem(client.put(AUTH, json={"mode": "none"}), 403)
        problem(client.post(f"{AUTH}/ldap/test"), 403)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.get(AUTH), 401)
        problem(anonymous.put(AUTH, json={"mode": "none"}), 401)
    with shared_server.client() as admin:
        assert admin.get(AUTH).json() == before


def test_bad_auth_settings_change_nothing(shared_server) -> None:
    with shared_server.client() as admin:
        before = admin.get(AUTH).json()
        secret = unique("never-stored-")
        problem(admin.put(AUTH, json={"mode": "kerberos"}), 422)
        problem(admin.put(AUTH, json={"mode": "ldap", "ldap": {"url": "", "bindPassword": secret}}), 400)
        invalid = problem(admin.put(AUTH, json={"mode": "ldap", "ldap": {"url": "http://x", "bindPassword": secret}}),
                          422)
        assert secret not in str(invalid)
        problem(admin.put(AUTH, json={"mode": "ldap", "ldap": {"url": "ldap://x", "surprise": 1}}), 422)
        assert admin.get(AUTH).json() == before
    assert secret not in str(events(shared_server, 200))


def test_ldap_connection_test(shared_server) -> None:
    closed = free_port()
    with shared_server.client() as admin:
        r = admin.post(f"{AUTH}/ldap/test", json=_ldap(closed, bindPassword="x"))
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is False and r.json()["error"]
        admin.put(AUTH, json={"mode": "managed", "ldap": _ldap(closed, bindPassword="stored")})
        stored = admin.post(f"{AUTH}/ldap/test")
        assert stored.status_code == 200 and stored.json()["ok"] is False
        problem(admin.post(f"{AUTH}/ldap/test", json={"url": "http://not-ldap"}), 422)


def _wait_for_status(client: httpx.Client, path: str, status: int) -> None:
    """Each server process reads the auth mode at most once a second: wait for it (bounded)."""
    deadline = time.monotonic() + 10
    while client.get(path).status_code != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}"
        time.sleep(0.1)


def test_auth_mode_none_lets_everyone_do_everything(shared_server) -> None:
    with shared_server.client() as admin:
        assert admin.put(AUTH, json={"mode": "none"}).json()["mode"] == "none"
    try:
        org = unique("open")
        with shared_server.client(auth=None) as anonymous:
            _wait_for_status(anonymous, f"{API}/accounts", 200)
            r = anonymous.post(f"{API}/accounts", json={"type": "organization", "name": org})
            assert r.status_code == 201, r.text
            assert anonymous.post(f"{API}/repositories/{org}", json={"name": "app"}).status_code == 201
            assert anonymous.get(f"{API}/repositories/{org}/app").json()["accessLevel"] == "admin"
        made = [e for e in events(shared_server) if e["topic"] == "dockyard.Organization.Created" and e["name"] == org]
        assert made[0]["actor"] == "anonymous"
        with shared_server.client(auth=(unique("nobody"), "wrong password")) as wrong:
            problem(wrong.get(f"{API}/accounts"), 401)  # wrong credentials are still wrong
    finally:
        with shared_server.client() as admin:
            assert admin.put(AUTH, json={"mode": "managed"}).status_code == 200
    with shared_server.client(auth=None) as anonymous:
        _wait_for_status(anonymous, f"{API}/accounts", 401)
        problem(anonymous.get(f"{API}/accounts"), 401)
