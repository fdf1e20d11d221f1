"""`/api/v0/accounts`: users and organisations, through a real server on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.integration.api_v0_support import API, accounts, events, make_org, make_user, problem, unique


def test_admin_creates_a_user_who_can_then_sign_in(shared_server) -> None:
    name = unique("gordon")
    with shared_server.client() as admin:
        r = admin.post(f"{API}/accounts", json={"type": "user", "name": name, "password": "pw1-long-enough", "role": "read-write"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert {k: created[k] for k in ("name", "type", "role", "active", "source")} == {
            "name": name, "type": "user", "role": "read-write", "active": True, "source": "managed"}
        assert "password" not in r.text and "passwordHash" not in created
        assert admin.get(f"{API}/accounts/{name}").json() == created
        listed = admin.get(f"{API}/accounts", params={"type": "user"}).json()["accounts"]
        assert created in listed and all(a["type"] == "user" for a in listed)
    with shared_server.client(auth=(name, "pw1-long-enough")) as user:
        assert user.get(f"{API}/accounts/{name}").status_code == 200


def test_only_global_admins_create_users(shared_server) -> None:
    before = accounts(shared_server)
    plain = make_user(shared_server, role="read-write")
    new = {"type": "user", "name": unique("x"), "password": "pw-12345", "role": "admin"}
    with shared_server.client(auth=plain) as user:
        problem(user.post(f"{API}/accounts", json=new), 403)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.post(f"{API}/accounts", json=new), 401)
        problem(anonymous.get(f"{API}/accounts"), 401)
    with shared_server.client(auth=(plain[0], "wrong")) as wrong:
        problem(wrong.get(f"{API}/accounts"), 401)
    with shared_server.client(auth=("nobody-at-all", "x")) as unknown:
        problem(unknown.get(f"{API}/accounts"), 401)
    names = {a["name"] for a in accounts(shared_server)}
    assert new["name"] not in names and names == {a["name"] for a in before} | {plain[0]}


def test_any_signed_in_user_creates_an_organisation_and_owns_it(shared_server) -> None:
    user = make_user(shared_server)
    org = unique("engineering")
    with shared_server.client(auth=user) as client:
        r = client.post(f"{API}/accounts", json={"type": "organization", "name": org})
        assert r.status_code == 201, r.text
        assert r.json()["type"] == "organization" and r.json()["name"] == org
        assert "role" not in r.json()
        owners = client.get(f"{API}/accounts/{org}/teams/owners").json()
        assert owners["members"] == [user[0]]
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.post(f"{API}/accounts", json={"type": "organization", "name": unique("o")}), 401)


def test_bad_account_requests_change_nothing(shared_server) -> None:
    user = make_user(shared_server)
    org = make_org(shared_server, user)
    before = accounts(shared_server)
    with shared_server.client() as admin:
        def post(body: dict) -> dict:
            return admin.post(f"{API}/accounts", json=body)

        assert problem(post({"type": "user", "name": user[0], "password": "pw-12345"}), 409)["context"] == {"name": user[0]}
        problem(post({"type": "user", "name": org, "password": "pw-12345"}), 409)  # an organisation has the name
        problem(post({"type": "organization", "name": user[0]}), 409)  # a user has the name
        problem(post({"type": "organization", "name": org}), 409)
        assert problem(post({"type": "user", "name": "Bad Name!", "password": "pw-12345"}), 400)["type"] \
            == "urn:dockyard:problem:invalid-request"
        problem(post({"type": "organization", "name": "-dash"}), 400)
        problem(post({"type": "user", "name": unique("e"), "password": ""}), 400)
        invalid = problem(post({"type": "user", "name": unique("r"), "password": "pw-12345", "role": "superuser"}), 422)
        assert invalid["errors"] and "superuser" not in str(invalid["errors"])  # inputs are not echoed
        problem(post({"type": "robot", "name": unique("t")}), 422)
        problem(post({"type": "user", "name": unique("m")}), 422)  # no password
        problem(admin.post(f"{API}/accounts", content=b"{not json", headers={"Content-Type": "application/json"}),
                422)
        problem(admin.get(f"{API}/accounts/{unique('missing')}"), 404)
    assert accounts(shared_server) == before


def test_role_active_and_password_changes(shared_server) -> None:
    name, password = make_user(shared_server, role="read-only")
    other = make_user(shared_server)
    with shared_server.client(auth=(name, password)) as user:
        problem(user.patch(f"{API}/accounts/{name}", json={"role": "admin"}), 403)
        problem(user.patch(f"{API}/accounts/{name}", json={"active": False}), 403)
        problem(user.patch(f"{API}/accounts/{other[0]}", json={"password": "hijack"}), 403)
        problem(user.patch(f"{API}/accounts/{name}", json={"password": ""}), 400)
        problem(user.patch(f"{API}/accounts/{name}", json={"role": "root"}), 422)
        assert user.get(f"{API}/accounts/{name}").json()["role"] == "read-only"  # unchanged
        r = user.patch(f"{API}/accounts/{name}", json={"password": "new-password"})
        assert r.status_code == 200, r.text
    with shared_server.client(auth=(name, password)) as old:
        problem(old.get(f"{API}/accounts/{name}"), 401)  # the remembered login is forgotten at once
    with shared_server.client(auth=other) as still:
        assert still.get(f"{API}/accounts/{other[0]}").status_code == 200  # other's password unchanged
    with shared_server.client() as admin:
        r = admin.patch(f"{API}/accounts/{name}", json={"role": "read-write", "password": "admin-set"})
        assert r.status_code == 200 and r.json()["role"] == "read-write"
        assert admin.patch(f"{API}/accounts/{name}", json={"active": False}).json()["active"] is False
        with shared_server.client(auth=(name, "admin-set")) as inactive:
            problem(inactive.get(f"{API}/accounts"), 401)
        assert admin.patch(f"{API}/accounts/{name}", json={"active": True}).json()["active"] is True
        org = make_org(shared_server, other)
        problem(admin.patch(f"{API}/accounts/{org}", json={"role": "admin"}), 404)
        problem(admin.patch(f"{API}/accounts/{unique('none')}", json={"active": False}), 404)
    with shared_server.client(auth=(name, "admin-set")) as back:
        assert back.get(f"{API}/accounts/{name}").json()["role"] == "read-write"


def test_delete_deactivates_a_user(shared_server) -> None:
    name, password = make_user(shared_server)
    plain = make_user(shared_server)
    with shared_server.client(auth=plain) as user:
        problem(user.delete(f"{API}/accounts/{name}"), 403)
    with shared_server.client(auth=(name, password)) as victim:
        assert victim.get(f"{API}/accounts").status_code == 200
    with shared_server.client() as admin:
        assert admin.delete(f"{API}/accounts/{name}").status_code == 204
        assert admin.get(f"{API}/accounts/{name}").json()["active"] is False
        problem(admin.delete(f"{API}/accounts/{unique('ghost')}"), 404)
    with shared_server.client(auth=(name, password)) as victim:
        problem(victim.get(f"{API}/accounts"), 401)


def test_the_last_active_admin_stays(shared_server) -> None:
    with shared_server.client() as admin:
        for account in accounts(shared_server):  # leave `admin` the only active global admin
            if account["type"] == "user" and account["role"] == "admin" and account["name"] != "admin":
                assert admin.patch(f"{API}/accounts/{account['name']}", json={"role": "none"}).status_code == 200
        problem(admin.delete(f"{API}/accounts/admin"), 409)
        problem(admin.patch(f"{API}/accounts/admin", json={"role": "read-write"}), 409)
        problem(admin.patch(f"{API}/accounts/admin", json={"active": False}), 409)
        assert admin.get(f"{API}/accounts/admin").json()["role"] == "admin"
        second = make_user(shared_server, role="admin")
        assert admin.patch(f"{API}/accounts/{second[0]}", json={"role": "none"}).status_code == 200


def test_events_say_who_and_from_where(shared_server) -> None:
    user = make_user(shared_server)
    org = make_org(shared_server, user)
    created = [e for e in events(shared_server) if e["topic"] == "dockyard.Organization.Created" and e.get("name") == org]
    assert len(created) == 1
    assert created[0]["actor"] == user[0] and created[0]["client_address"] == "127.0.0.1"
    made = [e for e in events(shared_server) if e["topic"] == "dockyard.User.Created" and e.get("name") == user[0]]
    assert made[0]["actor"] == "admin" and made[0]["client_address"] == "127.0.0.1"
    assert user[1] not in str(made[0])  # only the hash is recorded


def test_repeated_wrong_passwords_are_throttled(shared_server) -> None:
    name, password = make_user(shared_server)
    with shared_server.client(auth=(name, "wrong")) as wrong:
        for _ in range(5):
            problem(wrong.get(f"{API}/accounts/{name}"), 401)
        throttled = problem(wrong.get(f"{API}/accounts/{name}"), 429)
        assert throttled["type"] == "urn:dockyard:problem:too-many-requests"
    with shared_server.client(auth=(name, password)) as right:  # locked out from this address for a while
        r = right.get(f"{API}/accounts/{name}")
        problem(r, 429)
        assert int(r.headers["retry-after"]) > 0
