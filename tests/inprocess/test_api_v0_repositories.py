"""`/api/v0/repositories`: repositories, team access and tags, with the lab's access scenario
(DESIGN.md "Access model"), through a real server on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.integration.api_v0_support import API, events, make_org, make_user, problem, push_image, unique

REPOS = f"{API}/repositories"


@dataclass
class Lab:
    org: str
    gordon: tuple[str, str]
    orca: tuple[str, str]
    moby: tuple[str, str]
    ahab: tuple[str, str]
    owner: tuple[str, str]

    @property
    def barca(self) -> str:
        return f"{self.org}/barca"

    @property
    def madrid(self) -> str:
        return f"{self.org}/madrid"


@pytest.fixture
def lab(shared_server) -> Lab:
    """The lab's Task 3 through the API: users, the organisation, teams, repositories, grants."""
    users = {name: make_user(shared_server, role, unique(name)) for name, role in
             (("gordon", "admin"), ("orca", "read-write"), ("moby", "read-only"), ("ahab", "none"))}
    owner = make_user(shared_server)
    org = make_org(shared_server, owner, unique("engineering"))
    with shared_server.client(auth=owner) as client:
        for team, members in (("core", ("gordon", "orca")), ("frontend", ("gordon", "moby", "ahab"))):
            assert client.post(f"{API}/accounts/{org}/teams", json={"name": team}).status_code == 201
            for member in members:
                assert client.put(f"{API}/accounts/{org}/teams/{team}/members/{users[member][0]}").status_code == 200
        for repo, team, level in (("barca", "core", "read-only"), ("madrid", "frontend", "read-write")):
            r = client.post(f"{REPOS}/{org}", json={"name": repo, "visibility": "private"})
            assert r.status_code == 201, r.text
            r = client.put(f"{REPOS}/{org}/{repo}/teamAccess/{team}", json={"accessLevel": level})
            assert r.status_code == 200 and r.json() == {"team": team, "accessLevel": level}
    return Lab(org, users["gordon"], users["orca"], users["moby"], users["ahab"], owner)


def test_the_lab_scenario_reads_as_the_lab_says(shared_server, lab: Lab) -> None:
    expected = {  # user: (level on barca, level on madrid); "none" = the repository does not exist for them
        lab.gordon: ("admin", "admin"), lab.orca: ("read-write", "read-write"),
        lab.moby: ("read-only", "read-write"), lab.ahab: ("none", "read-write"),
    }
    with shared_server.client() as admin:
        missing = problem(admin.get(f"{REPOS}/{lab.org}/{unique('nothing')}"), 404)
    for user, (barca, madrid) in expected.items():
        with shared_server.client(auth=user) as client:
            r = client.get(f"{REPOS}/{lab.madrid}")
            assert r.status_code == 200 and r.json()["accessLevel"] == madrid
            assert r.json()["fullName"] == lab.madrid and r.json()["visibility"] == "private"
            r = client.get(f"{REPOS}/{lab.barca}")
            if barca == "none":
                hidden = problem(r, 404)
                assert {k: hidden[k] for k in ("type", "title", "status", "detail")} == \
                    {k: missing[k] for k in ("type", "title", "status", "detail")}
            else:
                assert r.json()["accessLevel"] == barca
            found = [x["fullName"] for x in client.get(REPOS, params={"search": lab.org}).json()["repositories"]]
            assert found == ([lab.barca] if barca != "none" else []) + [lab.madrid]
            in_namespace = [x["fullName"] for x in client.get(f"{REPOS}/{lab.org}").json()["repositories"]]
            assert in_namespace == found
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.get(f"{REPOS}/{lab.madrid}"), 404)
        assert anonymous.get(REPOS, params={"search": lab.org}).json() == {"repositories": []}


def test_creating_repositories(shared_server, lab: Lab) -> None:
    user = make_user(shared_server)
    with shared_server.client(auth=user) as client:
        r = client.post(f"{REPOS}/{user[0]}", json={"name": "mine", "visibility": "public", "description": "d"})
        assert r.status_code == 201, r.text
        assert r.json() == {"namespace": user[0], "name": "mine", "fullName": f"{user[0]}/mine",
                            "visibility": "public", "description": "d", "createdAt": r.json()["createdAt"],
                            "accessLevel": "admin"}
        problem(client.post(f"{REPOS}/{lab.org}", json={"name": unique("r")}), 403)  # not an owner
        problem(client.post(f"{REPOS}/{lab.ahab[0]}", json={"name": unique("r")}), 403)  # someone else's
    with shared_server.client(auth=lab.orca) as client:  # a global read-write role creates nothing
        problem(client.post(f"{REPOS}/{lab.org}", json={"name": unique("r")}), 403)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.post(f"{REPOS}/{user[0]}", json={"name": unique("r")}), 401)
        assert anonymous.get(f"{REPOS}/{user[0]}/mine").json()["accessLevel"] == "read-only"  # public
    with shared_server.client(auth=lab.gordon) as admin:
        name = unique("r")
        assert admin.post(f"{REPOS}/{lab.org}", json={"name": name}).status_code == 201
        before = admin.get(f"{REPOS}/{lab.org}").json()
        problem(admin.post(f"{REPOS}/{lab.org}", json={"name": "barca"}), 409)
        problem(admin.post(f"{REPOS}/{lab.org}", json={"name": "Bad Name"}), 400)
        problem(admin.post(f"{REPOS}/{lab.org}", json={"name": "a/b"}), 400)
        problem(admin.post(f"{REPOS}/{lab.org}", json={"name": unique("r"), "visibility": "secret"}), 422)
        problem(admin.post(f"{REPOS}/{unique('nons')}", json={"name": "x"}), 404)
        assert admin.get(f"{REPOS}/{lab.org}").json() == before
        assert admin.get(f"{REPOS}/{lab.barca}").json()["visibility"] == "private"


def test_changing_and_deleting_needs_admin_on_the_repository(shared_server, lab: Lab) -> None:
    name = unique("r")
    full = f"{lab.org}/{name}"
    with shared_server.client(auth=lab.owner) as owner:
        assert owner.post(f"{REPOS}/{lab.org}", json={"name": name}).status_code == 201
        owner.put(f"{REPOS}/{full}/teamAccess/frontend", json={"accessLevel": "read-write"})
    with shared_server.client(auth=lab.ahab) as ahab:  # read-write through frontend: not enough
        problem(ahab.patch(f"{REPOS}/{full}", json={"visibility": "public"}), 403)
        problem(ahab.delete(f"{REPOS}/{full}"), 403)
        problem(ahab.patch(f"{REPOS}/{lab.barca}", json={"description": "x"}), 404)  # cannot read it
        problem(ahab.delete(f"{REPOS}/{lab.barca}"), 404)
    with shared_server.client(auth=lab.orca) as orca:
        problem(orca.patch(f"{REPOS}/{full}", json={"description": "x"}), 403)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.patch(f"{REPOS}/{full}", json={"description": "x"}), 401)
    with shared_server.client(auth=lab.owner) as owner:
        problem(owner.patch(f"{REPOS}/{full}", json={"visibility": "everyone"}), 422)
        assert owner.get(f"{REPOS}/{full}").json()["visibility"] == "private"
        r = owner.patch(f"{REPOS}/{full}", json={"visibility": "public", "description": "now public"})
        assert r.status_code == 200 and r.json()["visibility"] == "public" and r.json()["description"] == "now public"
    with shared_server.client(auth=None) as anonymous:
        assert anonymous.get(f"{REPOS}/{full}").json()["description"] == "now public"
    with shared_server.client(auth=lab.owner) as owner:
        assert owner.delete(f"{REPOS}/{full}").status_code == 204
        problem(owner.get(f"{REPOS}/{full}"), 404)
        problem(owner.delete(f"{REPOS}/{full}"), 404)
        assert full not in [x["fullName"] for x in owner.get(REPOS, params={"search": name}).json()["repositories"]]



def test_a_deleted_repository_comes_back_empty(shared_server, lab: Lab) -> None:
    """Deleting a repository deletes what is in it (each as its own event): pushing to the name
    again, or creating it again, starts a new, empty, private repository with no grants."""
    name = unique("again")
    full = f"{lab.org}/{name}"
    with shared_server.client(auth=lab.owner) as owner:
        assert owner.post(f"{REPOS}/{lab.org}", json={"name": name, "visibility": "public",
                                                       "description": "old"}).status_code == 201
        owner.put(f"{REPOS}/{full}/teamAccess/frontend", json={"accessLevel": "read-write"})
        old = push_image(owner, full, "old")
        layers = [d["digest"] for d in owner.get(f"/v2/{full}/manifests/old").json()["layers"]]
        assert owner.delete(f"{REPOS}/{full}").status_code == 204

        new = push_image(owner, full, "new")  # a push makes it again
        assert owner.get(f"/v2/{full}/tags/list").json()["tags"] == ["new"]
        assert owner.get(f"/v2/{full}/manifests/{old}").status_code == 404
        assert owner.get(f"/v2/{full}/blobs/{layers[0]}").status_code == 404
        assert owner.get(f"/v2/{full}/manifests/{new}").status_code == 200
        row = owner.get(f"{REPOS}/{full}").json()
        assert (row["visibility"], row["description"]) == ("private", "")
        assert owner.get(f"{REPOS}/{full}/teamAccess").json()["teamAccess"] == []
    with shared_server.client(auth=lab.ahab) as ahab:  # frontend's old grant is gone
        problem(ahab.get(f"{REPOS}/{full}"), 404)

    kinds = [(e["topic"], e.get("name") or e.get("digest")) for e in events(shared_server, 40)
             if e.get("repository") == full]
    assert ("dockyard.Tag.Deleted", "old") in kinds
    assert ("dockyard.Manifest.Deleted", old) in kinds
    assert ("dockyard.BlobLink.Unlinked", layers[0]) in kinds

    with shared_server.client(auth=lab.owner) as owner:  # created again in the API: empty too
        assert owner.delete(f"{REPOS}/{full}").status_code == 204
        assert owner.post(f"{REPOS}/{lab.org}", json={"name": name}).status_code == 201
        assert owner.get(f"/v2/{full}/tags/list").json()["tags"] == []

def test_team_access(shared_server, lab: Lab) -> None:
    name = unique("r")
    full = f"{lab.org}/{name}"
    access = f"{REPOS}/{full}/teamAccess"
    with shared_server.client(auth=lab.owner) as owner:
        owner.post(f"{REPOS}/{lab.org}", json={"name": name})
        assert owner.get(access).json() == {"repository": full, "teamAccess": []}
    with shared_server.client(auth=lab.ahab) as ahab:
        problem(ahab.get(access), 404)  # cannot read the repository yet
    with shared_server.client(auth=lab.owner) as owner:
        assert owner.put(f"{access}/frontend", json={"accessLevel": "read-only"}).status_code == 200
        assert owner.put(f"{access}/core", json={"accessLevel": "admin"}).status_code == 200
        assert owner.get(access).json()["teamAccess"] == [
            {"team": "core", "accessLevel": "admin"}, {"team": "frontend", "accessLevel": "read-only"}]
    with shared_server.client(auth=lab.ahab) as ahab:
        assert ahab.get(f"{REPOS}/{full}").json()["accessLevel"] == "read-only"
        problem(ahab.put(f"{access}/frontend", json={"accessLevel": "admin"}), 403)
        problem(ahab.delete(f"{access}/frontend"), 403)
    with shared_server.client(auth=lab.orca) as orca:  # admin through core
        assert orca.put(f"{access}/frontend", json={"accessLevel": "read-write"}).status_code == 200
    with shared_server.client(auth=lab.owner) as owner:
        before = owner.get(access).json()
        problem(owner.put(f"{access}/{unique('noteam')}", json={"accessLevel": "read-only"}), 404)
        problem(owner.put(f"{access}/frontend", json={"accessLevel": "write"}), 422)
        problem(owner.put(f"{access}/frontend", json={}), 422)
        problem(owner.delete(f"{access}/owners"), 404)  # never granted
        problem(owner.put(f"{REPOS}/{lab.org}/{unique('gone')}/teamAccess/core", json={"accessLevel": "admin"}), 404)
        assert owner.get(access).json() == before
        assert owner.delete(f"{access}/frontend").status_code == 204
        assert owner.get(access).json()["teamAccess"] == [{"team": "core", "accessLevel": "admin"}]
    with shared_server.client(auth=lab.ahab) as ahab:
        problem(ahab.get(f"{REPOS}/{full}"), 404)  # the grant is gone, and with it the repository


def test_tags(shared_server, lab: Lab) -> None:
    with shared_server.client(auth=lab.ahab) as ahab:  # pushes to madrid through frontend (read-write)
        digest = push_image(ahab, lab.madrid, "latest")
        push_image(ahab, lab.madrid, "v1")
        tags = ahab.get(f"{REPOS}/{lab.madrid}/tags").json()
        assert tags["repository"] == lab.madrid
        latest = next(t for t in tags["tags"] if t["name"] == "latest")
        assert latest["digest"] == digest and latest["updatedBy"] == lab.ahab[0]
        problem(ahab.get(f"{REPOS}/{lab.barca}/tags"), 404)
    with shared_server.client(auth=None) as anonymous:
        problem(anonymous.get(f"{REPOS}/{lab.madrid}/tags"), 404)
        problem(anonymous.delete(f"{REPOS}/{lab.madrid}/tags/v1"), 401)
    with shared_server.client(auth=lab.orca) as orca:
        push_image(orca, lab.barca, "lona")
    with shared_server.client(auth=lab.moby) as moby:  # read-only on barca
        assert [t["name"] for t in moby.get(f"{REPOS}/{lab.barca}/tags").json()["tags"]] == ["lona"]
        problem(moby.delete(f"{REPOS}/{lab.barca}/tags/lona"), 403)
    with shared_server.client(auth=lab.ahab) as ahab:
        problem(ahab.delete(f"{REPOS}/{lab.barca}/tags/lona"), 404)
        problem(ahab.delete(f"{REPOS}/{lab.madrid}/tags/{unique('none')}"), 404)
        assert [t["name"] for t in ahab.get(f"{REPOS}/{lab.madrid}/tags").json()["tags"]] == ["latest", "v1"]
        assert ahab.delete(f"{REPOS}/{lab.madrid}/tags/v1").status_code == 204
        assert [t["name"] for t in ahab.get(f"{REPOS}/{lab.madrid}/tags").json()["tags"]] == ["latest"]
        assert ahab.get(f"/v2/{lab.madrid}/manifests/v1").status_code == 404
    with shared_server.client(auth=lab.gordon) as gordon:
        assert [t["name"] for t in gordon.get(f"{REPOS}/{lab.barca}/tags").json()["tags"]] == ["lona"]
