"""Settings > General through `/api/v0/settings/general`: the domain name, an event per change."""

from __future__ import annotations

import httpx
import pytest

from tests.inprocess.conftest import Dockyard

pytestmark = pytest.mark.anyio
PATH = "/api/v0/settings/general"


async def test_an_admin_sets_the_domain_name_and_the_log_records_it(dockyard: Dockyard,
                                                                     client: httpx.AsyncClient) -> None:
    assert (await client.get(PATH)).json() == {"domainName": ""}
    answer = await client.put(PATH, json={"domainName": "Registry.Example.COM:5443"})
    assert answer.status_code == 200 and answer.json() == {"domainName": "registry.example.com:5443"}
    assert (await client.get(PATH)).json() == {"domainName": "registry.example.com:5443"}
    changed = [e for e in dockyard.events() if e["topic"] == "dockyard.GeneralSettings.DomainNameChanged"]
    assert changed[-1]["domain_name"] == "registry.example.com:5443" and changed[-1]["actor"] == "admin"
    await client.put(PATH, json={"domainName": "registry.example.com:5443"})  # the same again: no event
    assert len([e for e in dockyard.events() if e["topic"].endswith("DomainNameChanged")]) == 1


@pytest.mark.parametrize("bad", ["https://registry.example.com", "registry example", "-bad.example", "host:99999",
                                 "a/b"])
async def test_what_is_not_a_host_name_is_refused_with_a_problem(client: httpx.AsyncClient, bad: str) -> None:
    answer = await client.put(PATH, json={"domainName": bad})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "domain name" in answer.json()["detail"]
    assert (await client.get(PATH)).json() == {"domainName": ""}


async def test_only_admins_change_it(dockyard: Dockyard) -> None:
    alice = await dockyard.user(role="read-write")
    async with dockyard.client(alice) as as_alice:
        assert (await as_alice.put(PATH, json={"domainName": "x.example"})).status_code == 403
        assert (await as_alice.get(PATH)).status_code == 200


async def test_the_token_realm_names_the_domain_name(client: httpx.AsyncClient, anon_client: httpx.AsyncClient) -> None:
    assert (await client.put(PATH, json={"domainName": "registry.example.test:5443"})).status_code == 200
    r = await anon_client.get("/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="http://registry.example.test:5443/auth/token"')
