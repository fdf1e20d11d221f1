"""`/api/v0/accounts/{org}/teams`: teams and members, managed by owners and global admins."""

from __future__ import annotations

from tests.integration.api_v0_support import API, make_org, make_user, problem, unique


def test_owner_manages_teams_and_members(shared_server) -> None:
    owner, gordon, orca = make_user(shared_server), make_user(shared_server), make_user(shared_server)
    org = make_org(shared_server, owner)
    teams = f"{API}/accounts/{org}/teams"
    with shared_server.client(auth=owner) as client:
        r = client.post(teams, json={"name": "core", "description": "Core team"})
        assert r.status_code == 201, r.text
        assert r.json() == {"organization": org, "name": "core", "description": "Core team", "members": []}
        assert client.put(f"{teams}/core/members/{gordon[0]}").json()["members"] == [gordon[0]]
        assert client.put(f"{teams}/core/members/{orca[0]}").status_code == 200
        assert client.put(f"{teams}/core/members/{orca[0]}").json()["members"] == sorted([gordon[0], orca[0]])
        listed = client.get(teams).json()["teams"]
        assert [t["name"] for t in listed] == ["core", "owners"]
        assert client.delete(f"{teams}/core/members/{orca[0]}").status_code == 204
        assert client.get(f"{teams}/core").json()["members"] == [gordon[0]]
        assert client.post(teams, json={"name": "frontend"}).status_code == 201
        assert client.delete(f"{teams}/frontend").status_code == 204
        problem(client.get(f"{teams}/frontend"), 404)
    with shared_server.client(auth=gordon) as member:  # any signed-in user may read
        assert member.get(f"{teams}/core").json()["members"] == [gordon[0]]


def test_global_admin_manages_any_organisation(shared_server) -> None:
    owner, user = make_user(shared_server), make_user(shared_server)
    org = make_org(shared_server, owner)
    with shared_server.client() as admin:
        assert admin.post(f"{API}/accounts/{org}/teams", json={"name": "ops"}).status_code == 201
        assert admin.put(f"{API}/accounts/{org}/teams/owners/members/{user[0]}").status_code == 200
        assert admin.delete(f"{API}/accounts/{org}/teams/owners/members/{owner[0]}").status_code == 204
        assert admin.get(f"{API}/accounts/{org}/teams/owners").json()["members"] == [user[0]]


def test_only_owners_and_admins_manage_teams(shared_server) -> None:
    owner, member, outsider = make_user(shared_server), make_user(shared_server), make_user(shared_server, "read-write")
    org = make_org(shared_server, owner)
    teams = f"{API}/accounts/{org}/teams"
    with shared_server.client(auth=owner) as client:
        client.post(teams, json={"name": "core"})
        client.put(f"{teams}/core/members/{member[0]}")
    for caller in (member, outsider):  # a team member is no owner; a global read-write role manages nothing
        with shared_server.client(auth=caller) as client:
            problem(client.post(teams, json={"name": unique("t")}), 403)
            problem(client.put(f"{teams}/core/members/{outsider[0]}"), 403)
            problem(client.delete(f"{teams}/core/members/{member[0]}"), 403)
            problem(client.delete(f"{teams}/core"), 403)
            problem(client.put(f"{teams}/owners/members/{caller[0]}"), 403)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.get(teams), 401)
        problem(anonymous.post(teams, json={"name": unique("t")}), 401)
    with shared_server.client(auth=owner) as client:
        assert [t["name"] for t in client.get(teams).json()["teams"]] == ["core", "owners"]
        assert client.get(f"{teams}/core").json()["members"] == [member[0]]
        assert client.get(f"{teams}/owners").json()["members"] == [owner[0]]


def test_bad_team_requests_change_nothing(shared_server) -> None:
    owner, user = make_user(shared_server), make_user(shared_server)
    org = make_org(shared_server, owner)
    teams = f"{API}/accounts/{org}/teams"
    with shared_server.client(auth=owner) as client:
        client.post(teams, json={"name": "core"})
        client.put(f"{teams}/core/members/{user[0]}")
        problem(client.post(teams, json={"name": "core"}), 409)
        problem(client.post(teams, json={"name": "owners"}), 409)
        problem(client.post(teams, json={"name": "Bad Team"}), 400)
        problem(client.post(teams, json={"description": "no name"}), 422)
        problem(client.post(f"{API}/accounts/{unique('nosuchorg')}/teams", json={"name": "x"}), 404)
        problem(client.post(f"{API}/accounts/{owner[0]}/teams", json={"name": "x"}), 404)  # a user, not an org
        problem(client.get(f"{API}/accounts/{unique('nosuchorg')}/teams"), 404)
        problem(client.put(f"{teams}/core/members/{unique('nobody')}"), 404)
        problem(client.put(f"{teams}/core/members/{org}"), 404)  # an organisation is not a user
        problem(client.put(f"{teams}/{unique('noteam')}/members/{user[0]}"), 404)
        problem(client.delete(f"{teams}/core/members/{owner[0]}"), 404)  # not a member of core
        assert problem(client.delete(f"{teams}/owners/members/{owner[0]}"), 409)["type"] \
            == "urn:dockyard:problem:conflict"
        problem(client.delete(f"{teams}/owners"), 409)
        problem(client.delete(f"{teams}/{unique('noteam')}"), 404)
        assert [t["name"] for t in client.get(teams).json()["teams"]] == ["core", "owners"]
        assert client.get(f"{teams}/core").json()["members"] == [user[0]]
        assert client.get(f"{teams}/owners").json()["members"] == [owner[0]]
        # With a second owner, the first may leave.
        assert client.put(f"{teams}/owners/members/{user[0]}").status_code == 200
        assert client.delete(f"{teams}/owners/members/{owner[0]}").status_code == 204
    with shared_server.client(auth=user) as new_owner:
        assert new_owner.get(f"{teams}/owners").json()["members"] == [user[0]]
        problem(new_owner.delete(f"{teams}/owners/members/{user[0]}"), 409)
