"""Managing access tokens needs the password: a token cannot list or revoke its owner's tokens.

Regression test for issue 7, item 3: a read-only access token limited to one repository could
list and revoke every other token of its owner (`GET|DELETE /api/v0/accounts/{user}/tokens…`).
"""

from __future__ import annotations

from tests.inprocess.auth_support import ADMIN, basic, create_user, ok
from tests.inprocess.conftest import InProcessServer

USER, PASSWORD = "tom", "tom-password"


def test_an_access_token_cannot_list_or_revoke_its_owners_tokens(server: InProcessServer) -> None:
    create_user(server, USER, PASSWORD, role="read-write")
    with server.client(None) as client:
        tokens = {}
        for name, scope, repositories in (("limited", "read-only", [f"{USER}/app"]), ("ci", "read-write", []),
                                          ("full", "admin", [])):
            created = ok(client.post(f"/api/v0/accounts/{USER}/tokens", headers=basic(USER, PASSWORD),
                                     json={"name": name, "scope": scope, "repositories": repositories}), 201)
            tokens[name] = created.json()
        limited, full = tokens["limited"]["token"], tokens["full"]["token"]
        ci_id = tokens["ci"]["id"]

        for secret in (limited, full):  # even an admin-scoped token: management needs the password
            for headers in (basic(USER, secret), {"Authorization": f"Bearer {secret}"}):
                r = client.get(f"/api/v0/accounts/{USER}/tokens", headers=headers)
                assert r.status_code == 403, r.text
                assert r.headers["content-type"] == "application/problem+json"
                r = client.delete(f"/api/v0/accounts/{USER}/tokens/{ci_id}", headers=headers)
                assert r.status_code == 403, r.text

        # Nothing was revoked; the password still manages them, and so does a global admin.
        rows = ok(client.get(f"/api/v0/accounts/{USER}/tokens", headers=basic(USER, PASSWORD)), 200).json()
        assert not any(row["revoked"] for row in rows["tokens"])
        ok(client.get(f"/api/v0/accounts/{USER}/tokens", headers=basic(*ADMIN)), 200)
        ok(client.delete(f"/api/v0/accounts/{USER}/tokens/{ci_id}", headers=basic(USER, PASSWORD)), 204)
        rows = ok(client.get(f"/api/v0/accounts/{USER}/tokens", headers=basic(USER, PASSWORD)), 200).json()
        assert [row["id"] for row in rows["tokens"] if row["revoked"]] == [ci_id]
