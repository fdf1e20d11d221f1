"""`/api/v0/accounts/{user}/tokens`: access tokens, and signing in with them (Basic or Bearer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.api_v0_support import API, events, make_org, make_user, problem, unique


def test_a_user_makes_uses_lists_and_revokes_a_token(shared_server) -> None:
    name, password = make_user(shared_server)
    tokens = f"{API}/accounts/{name}/tokens"
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with shared_server.client(auth=(name, password)) as user:
        r = user.post(tokens, json={"name": "ci", "scope": "admin", "expiresAt": expires})
        assert r.status_code == 201, r.text
        created = r.json()
        secret = created.pop("token")
        assert secret.startswith(f"dyt_{created['id']}_")
        assert created["scope"] == "admin" and created["repositories"] == [] and created["revoked"] is False
        listed = user.get(tokens).json()["tokens"]
        assert listed == [created] and secret not in user.get(tokens).text
    with shared_server.client(auth=(name, secret)) as basic:
        assert basic.get(f"{API}/accounts/{name}").status_code == 200
    with shared_server.client(auth=None) as bearer:
        headers = {"Authorization": f"Bearer {secret}"}
        assert bearer.get(f"{API}/accounts/{name}", headers=headers).status_code == 200
        org = unique("org")
        assert bearer.post(f"{API}/accounts", json={"type": "organization", "name": org}, headers=headers) \
            .status_code == 201
        problem(bearer.post(tokens, json={"name": "more"}, headers=headers), 403)  # a token mints no tokens
        problem(bearer.patch(f"{API}/accounts/{name}", json={"password": "x"}, headers=headers), 403)
    made = [e for e in events(shared_server) if e["topic"] == "dockyard.Organization.Created" and e["name"] == org]
    assert made[0]["actor"] == name and made[0]["token"] == created["id"]
    with shared_server.client(auth=(name, password)) as user:
        assert user.delete(f"{tokens}/{created['id']}").status_code == 204
        assert user.get(tokens).json()["tokens"][0]["revoked"] is True
    with shared_server.client(auth=None) as bearer:
        problem(bearer.get(f"{API}/accounts", headers={"Authorization": f"Bearer {secret}"}), 401)
    with shared_server.client(auth=(name, secret)) as basic:
        problem(basic.get(f"{API}/accounts"), 401)


def test_only_the_user_makes_tokens_and_admins_may_list_and_revoke(shared_server) -> None:
    owner, other = make_user(shared_server), make_user(shared_server, "read-write")
    tokens = f"{API}/accounts/{owner[0]}/tokens"
    with shared_server.client(auth=owner) as user:
        token = user.post(tokens, json={"name": "ci"}).json()
    with shared_server.client(auth=other) as client:
        problem(client.post(tokens, json={"name": "impostor"}), 403)
        problem(client.get(tokens), 403)
        problem(client.delete(f"{tokens}/{token['id']}"), 403)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.get(tokens), 401)
    with shared_server.client() as admin:
        problem(admin.post(tokens, json={"name": "impostor"}), 403)
        assert [t["id"] for t in admin.get(tokens).json()["tokens"]] == [token["id"]]
        assert admin.delete(f"{tokens}/{token['id']}").status_code == 204
        problem(admin.delete(f"{API}/accounts/{other[0]}/tokens/{token['id']}"), 404)  # not other's token
        problem(admin.get(f"{API}/accounts/{unique('ghost')}/tokens"), 404)


def test_a_read_only_token_changes_no_accounts(shared_server) -> None:
    user = make_user(shared_server)
    org = make_org(shared_server, user)
    with shared_server.client(auth=user) as client:
        secret = client.post(f"{API}/accounts/{user[0]}/tokens", json={"name": "ro"}).json()["token"]
    with shared_server.client(auth=(user[0], secret)) as token:
        assert token.get(f"{API}/accounts/{org}/teams").status_code == 200
        problem(token.post(f"{API}/accounts/{org}/teams", json={"name": "core"}), 403)
        problem(token.post(f"{API}/accounts", json={"type": "organization", "name": unique("o")}), 403)
        problem(token.post(f"{API}/repositories/{user[0]}", json={"name": "r"}), 403)
    with shared_server.client(auth=user) as client:
        assert [t["name"] for t in client.get(f"{API}/accounts/{org}/teams").json()["teams"]] == ["owners"]


def test_bad_token_requests_change_nothing(shared_server) -> None:
    user = make_user(shared_server)
    tokens = f"{API}/accounts/{user[0]}/tokens"
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    with shared_server.client(auth=user) as client:
        problem(client.post(tokens, json={"name": "x", "scope": "root"}), 422)
        problem(client.post(tokens, json={"name": ""}), 422)
        problem(client.post(tokens, json={"name": "x", "expiresAt": "tomorrow"}), 422)
        problem(client.post(tokens, json={"name": "x", "expiresAt": past}), 400)
        problem(client.post(tokens, json={"name": "x", "repositories": ["Not/Valid"]}), 400)
        problem(client.delete(f"{tokens}/0123456789abcdef"), 404)
        assert client.get(tokens).json() == {"tokens": []}
    with shared_server.client(auth=None) as anonymous:
        for header in ("Bearer dyt_0123456789abcdef_nope", "Bearer not-a-dyt-token", "Digest abc", "Basic !!!"):
            problem(anonymous.get(f"{API}/accounts", headers={"Authorization": header}), 401)
