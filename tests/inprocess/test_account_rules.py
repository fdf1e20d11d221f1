"""The account rules through `/api/v0` (issue 7, items 9 and 10): the last active admin (409
problem), the password policy (400 problem, configurable, stated in `/openapi.json`), and the LDAP
URL scheme stated there too. The rules themselves are tested in tests/unit/test_management_rules.py."""

from __future__ import annotations

import httpx
import pytest

from tests.inprocess.conftest import API, Dockyard, inprocess_settings

pytestmark = pytest.mark.anyio


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(dockyard: Dockyard,
                                                                      client: httpx.AsyncClient) -> None:
    for attempt in (client.patch(f"{API}/accounts/admin", json={"role": "none"}),
                    client.patch(f"{API}/accounts/admin", json={"active": False}),
                    client.delete(f"{API}/accounts/admin")):
        body = problem(await attempt, 409)
        assert body["detail"] == "the last active global admin cannot be demoted or deactivated"
    assert (await client.get(f"{API}/accounts/admin")).json()["role"] == "admin"

    # With a second admin, the first may step down; the second is then the last.
    gordon = await dockyard.user(role="admin")
    assert (await client.patch(f"{API}/accounts/admin", json={"role": "read-write"})).status_code == 200
    async with dockyard.client(gordon) as as_gordon:
        problem(await as_gordon.delete(f"{API}/accounts/{gordon[0]}"), 409)


async def test_passwords_shorter_than_the_policy_are_refused(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    for password in ("", "seven77"):
        refused = await client.post(f"{API}/accounts", json={"type": "user", "name": "gordon", "password": password})
        assert problem(refused, 400)["detail"] == "the password must be at least 8 characters long"
        assert "seven77" not in refused.text  # the rule, never the password
    assert (await client.get(f"{API}/accounts/gordon")).status_code == 404  # nothing half-stored

    user = await dockyard.user()
    async with dockyard.client(user) as as_user:
        problem(await as_user.patch(f"{API}/accounts/{user[0]}", json={"password": "short"}), 400)
        ok = await as_user.patch(f"{API}/accounts/{user[0]}", json={"password": "a-long-new-one"})
        assert ok.status_code == 200, ok.text
    async with dockyard.client((user[0], "a-long-new-one")) as again:
        assert (await again.get(f"{API}/accounts/{user[0]}")).status_code == 200


async def test_openapi_states_the_password_policy_and_the_ldap_url_scheme(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert schemas["NewUser"]["properties"]["password"]["minLength"] == 8
    assert schemas["AccountChange"]["properties"]["password"]["minLength"] == 8
    assert schemas["LdapSettings"]["properties"]["url"]["pattern"] == "^ldaps?://"
    # ... and the rule holds where the schema says it does.
    body = problem(await client.put(f"{API}/settings/auth", json={"mode": "ldap", "ldap": {
        "url": "http://directory.example"}}), 422)
    assert "ldap://" in str(body)


class TestAConfiguredPolicy:
    @pytest.fixture
    def settings(self):  # DOCKYARD_PASSWORD_MIN_LENGTH=12
        return inprocess_settings(password_min_length=12)

    async def test_twelve_characters(self, client: httpx.AsyncClient) -> None:
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
        assert schemas["NewUser"]["properties"]["password"]["minLength"] == 12
        new = {"type": "user", "name": "gordon"}
        body = problem(await client.post(f"{API}/accounts", json={**new, "password": "eleven-char"}), 400)
        assert body["detail"] == "the password must be at least 12 characters long"
        assert (await client.post(f"{API}/accounts", json={**new, "password": "twelve-chars"})).status_code == 201
