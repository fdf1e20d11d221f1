"""The DTR 1.4 lab, Tasks 3 and 4, end to end against the real server.

Task 3 through the management API `/api/v0` (as admin): users gordon (admin), orca
(read-write), moby (read-only), ahab (none); organisation engineering; teams core (gordon,
orca) and frontend (gordon, moby, ahab); private repositories engineering/barca (team core
read-only) and engineering/madrid (team frontend read-write).

Task 4 with skopeo, signed in as each user in turn: pull and push barca and madrid exactly as
DESIGN.md's access table says. A refused operation fails in skopeo, and the server's own answer
is checked with httpx through the Docker token flow as that user (401/403 with an OCI error
body, and a token that does not grant the action). Finally the catalog and the search show
ahab madrid and not barca.

The helpers here are shared with `test_ldap_scenario.py` (the same scenario in LDAP mode).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.clients import Layout, Skopeo, assert_same_image, get_manifest, make_image
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

ORG = "engineering"
BARCA = f"{ORG}/barca"
MADRID = f"{ORG}/madrid"
ROLES = {"gordon": "admin", "orca": "read-write", "moby": "read-only", "ahab": "none"}
TEAMS = {"core": ("gordon", "orca"), "frontend": ("gordon", "moby", "ahab")}
GRANTS = {"barca": ("core", "read-only"), "madrid": ("frontend", "read-write")}

# DESIGN.md "Access model": user -> (pull barca, push barca, pull madrid, push madrid, sees barca)
TABLE: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    "gordon": (True, True, True, True, True),
    "orca": (True, True, True, True, True),
    "moby": (True, False, True, True, True),
    "ahab": (False, False, True, True, False),
}
USERS = tuple(TABLE)


def managed_password(user: str) -> str:
    return f"{user}-managed-pw"


# -- the management API ------------------------------------------------------------------------


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    expected = statuses or (200, 201, 204)
    assert response.status_code in expected, (
        f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}")
    return response


def create_lab_accounts(server: DockyardServer, password=managed_password) -> None:
    """Lab Task 3, all through /api/v0 as admin."""
    with server.client() as api:
        for user, role in ROLES.items():
            ok(api.post("/api/v0/accounts", json={"type": "user", "name": user, "password": password(user),
                                                  "role": role}))
        ok(api.post("/api/v0/accounts", json={"type": "organization", "name": ORG}))
        for team, members in TEAMS.items():
            ok(api.post(f"/api/v0/accounts/{ORG}/teams", json={"name": team}))
            for member in members:
                ok(api.put(f"/api/v0/accounts/{ORG}/teams/{team}/members/{member}"))
        for repo, (team, level) in GRANTS.items():
            ok(api.post(f"/api/v0/repositories/{ORG}", json={"name": repo, "visibility": "private",
                                                             "description": f"the lab's {repo}"}))
            ok(api.put(f"/api/v0/repositories/{ORG}/{repo}/teamAccess/{team}", json={"accessLevel": level}))
        # What the API stored is what the lab set up.
        for user, role in ROLES.items():
            body = ok(api.get(f"/api/v0/accounts/{user}"), 200).json()
            assert body["name"] == user
            assert body["role"] == role, body


@dataclass
class Lab:
    server: DockyardServer
    workdir: Path
    lona: Layout  # orca's push to barca:lona (lab Task 4 step 5)
    madrid_base: Layout  # already in madrid before the users try it
    images: dict[str, Layout] = field(default_factory=dict)  # what each user tries to push

    def skopeo(self, user: str, password: str, home: str) -> Skopeo:
        return Skopeo(self.server, self.workdir / "clients" / home, user=user, password=password)


def seed_lab(server: DockyardServer, workdir: Path) -> Lab:
    """Images: barca:lona pushed by orca (read-write global role), madrid:base by admin."""
    images = workdir / "images"
    lab = Lab(server, workdir,
              lona=make_image(images / "lona", ["4K", "32K"], seed="lab-lona", tag="lona"),
              madrid_base=make_image(images / "madrid", ["8K", "16K"], seed="lab-madrid", tag="base"))
    for user in USERS:
        lab.images[user] = make_image(images / user, ["2K", "24K"], seed=f"lab-push-{user}", tag=user)
    orca = lab.skopeo("orca", managed_password("orca"), "seed-orca")
    orca.login()
    orca.copy(lab.lona.ref, orca.docker(BARCA, "lona"))
    admin = lab.skopeo("admin", server.admin_password, "seed-admin")
    admin.copy(lab.madrid_base.ref, admin.docker(MADRID, "base"))
    return lab


# -- the Docker token flow, as a client does it --------------------------------------------------


def parse_challenge(header: str) -> dict[str, str]:
    assert header.lower().startswith("bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class FlowResult:
    response: httpx.Response  # the answer to the retried request
    granted: frozenset[str]  # the actions the token grants on the challenged scope
    token: str


def token_flow(server: DockyardServer, user: str, password: str, method: str, path: str,
               **kwargs: Any) -> FlowResult:
    """`method path` as a Docker client sends it: without credentials first, then to the realm
    of the Bearer challenge with Basic credentials for the challenged scope, then again with
    the token."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        first = http.request(method, path, **kwargs)
        assert first.status_code == 401, f"{method} {path} without credentials: {first.status_code} {first.text}"
        challenge = parse_challenge(first.headers["www-authenticate"])
        params = {"service": challenge["service"]}
        if "scope" in challenge:
            params["scope"] = challenge["scope"]
        issued = http.get(challenge["realm"], params=params, auth=(user, password))
        assert issued.status_code == 200, f"token for {user}: {issued.status_code} {issued.text}"
        token = issued.json()["token"]
        granted: frozenset[str] = frozenset()
        if "scope" in challenge:
            kind, rest = challenge["scope"].split(":", 1)
            name = rest.rsplit(":", 1)[0]
            for entry in jwt_claims(token).get("access", []):
                if entry["type"] == kind and entry["name"] == name:
                    granted |= frozenset(entry["actions"])
        retried = http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return FlowResult(retried, granted, token)


def assert_oci_refusal(response: httpx.Response, statuses: tuple[int, ...] = (401, 403)) -> str:
    """A refusal with an OCI error body; the error code."""
    assert response.status_code in statuses, f"{response.status_code}: {response.text}"
    errors = response.json()["errors"]
    assert errors and errors[0]["code"] in {"UNAUTHORIZED", "DENIED"}, errors
    assert errors[0]["message"]
    return errors[0]["code"]


def refused_pull(server: DockyardServer, user: str, password: str, repository: str, tag: str) -> None:
    """The server refuses `user` a pull of `repository:tag`: by token, and with HTTP Basic."""
    flow = token_flow(server, user, password, "GET", f"/v2/{repository}/manifests/{tag}")
    assert "pull" not in flow.granted
    assert_oci_refusal(flow.response)
    with server.client((user, password)) as http:
        assert_oci_refusal(get_manifest(http, repository, tag))
        assert_oci_refusal(http.get(f"/v2/{repository}/tags/list"))


def refused_push(server: DockyardServer, user: str, password: str, repository: str) -> None:
    """The server refuses `user` to start an upload to `repository`: by token, and with Basic."""
    flow = token_flow(server, user, password, "POST", f"/v2/{repository}/blobs/uploads/")
    assert "push" not in flow.granted
    assert_oci_refusal(flow.response)
    with server.client((user, password)) as http:
        assert_oci_refusal(http.post(f"/v2/{repository}/blobs/uploads/"))


def granted_actions(server: DockyardServer, user: str, password: str, repository: str) -> frozenset[str]:
    """What the token service grants `user` on `repository` when asked for pull and push."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        challenge = parse_challenge(http.get("/v2/").headers["www-authenticate"])
        issued = http.get(challenge["realm"], auth=(user, password), params={
            "service": challenge["service"], "scope": f"repository:{repository}:pull,push"})
        assert issued.status_code == 200, issued.text
        actions: frozenset[str] = frozenset()
        for entry in jwt_claims(issued.json()["token"]).get("access", []):
            if entry["name"] == repository:
                actions |= frozenset(entry["actions"])
        return actions


def catalog_as(server: DockyardServer, user: str, password: str) -> list[str]:
    """`/v2/_catalog` through the token flow as `user` (every page)."""
    flow = token_flow(server, user, password, "GET", "/v2/_catalog")
    assert flow.response.status_code == 200, flow.response.text
    return flow.response.json()["repositories"]


def repository_names(body: Any) -> set[str]:
    """`namespace/name` of each repository in a /api/v0/repositories answer."""
    items = body["repositories"] if isinstance(body, dict) else body
    names = set()
    for item in items:
        if "namespace" in item and "/" not in item["name"]:
            names.add(f"{item['namespace']}/{item['name']}")
        else:
            names.add(item.get("fullName") or item["name"])
    return names


def search_as(server: DockyardServer, user: str, password: str, text: str) -> set[str]:
    with server.client((user, password)) as api:
        return repository_names(ok(api.get("/api/v0/repositories", params={"search": text}), 200).json())


def actions(pull: bool, push: bool) -> frozenset[str]:
    return frozenset({"pull"} if pull else ()) | frozenset({"push"} if push else ())


def check_table_row(lab: Lab, user: str, password: str, run: str) -> None:
    """One row of DESIGN.md's table for `user`, through skopeo (login, copy --creds) and httpx."""
    pull_barca, push_barca, pull_madrid, push_madrid, sees_barca = TABLE[user]
    server = lab.server
    skopeo = lab.skopeo(user, password, f"{run}-{user}")
    skopeo.login()
    image = lab.images[user]
    (lab.workdir / run / user).mkdir(parents=True, exist_ok=True)

    # The token service grants exactly what the table says.
    assert granted_actions(server, user, password, BARCA) == actions(pull_barca, push_barca), f"{user} on barca"
    assert granted_actions(server, user, password, MADRID) == actions(pull_madrid, push_madrid), f"{user} on madrid"

    tag = f"{run}-{user}"
    for repository, seeded, may_pull, may_push in ((BARCA, lab.lona, pull_barca, push_barca),
                                                   (MADRID, lab.madrid_base, pull_madrid, push_madrid)):
        where = lab.workdir / run / user / repository.replace("/", "_")
        # pull
        pulled = Layout(where.with_suffix(".pulled"), "pulled")
        result = skopeo.copy(skopeo.docker(repository, seeded.tag), pulled.ref, check=False)
        if may_pull:
            assert result.returncode == 0, result.stderr
            assert_same_image(seeded, pulled)
        else:
            assert result.returncode != 0, f"{user} pulled {repository}:\n{result.stdout}"
            refused_pull(server, user, password, repository, seeded.tag)
        # push, then read it back as that user
        result = skopeo.copy(image.ref, skopeo.docker(repository, tag), check=False)
        with server.client() as admin:
            stored = get_manifest(admin, repository, tag)
        if may_push:
            assert result.returncode == 0, result.stderr
            assert stored.status_code == 200 and stored.content == image.manifest_bytes
            back = Layout(where.with_suffix(".back"), "back")
            skopeo.copy(skopeo.docker(repository, tag), back.ref)
            assert_same_image(image, back)
        else:
            assert result.returncode != 0, f"{user} pushed to {repository}:\n{result.stdout}"
            assert re.search(r"unauthori[sz]ed|denied|authentication required", result.stderr, re.I), result.stderr
            assert stored.status_code == 404, stored.text
            refused_push(server, user, password, repository)

    # sees barca (catalog, search); madrid is visible to all four
    catalog = catalog_as(server, user, password)
    assert MADRID in catalog
    assert (BARCA in catalog) is sees_barca, catalog
    found = search_as(server, user, password, ORG)
    assert MADRID in found
    assert (BARCA in found) is sees_barca, found


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(shared_server: DockyardServer, tmp_path_factory) -> Lab:
    create_lab_accounts(shared_server)
    return seed_lab(shared_server, tmp_path_factory.mktemp(f"lab-{shared_server.backend}"))


@pytest.mark.parametrize("user", USERS)
def test_lab_table(lab: Lab, user: str) -> None:
    check_table_row(lab, user, managed_password(user), "managed")


def test_ahab_sees_madrid_not_barca(lab: Lab) -> None:
    server, password = lab.server, managed_password("ahab")
    catalog = catalog_as(server, "ahab", password)
    assert MADRID in catalog and BARCA not in catalog
    with server.client(("ahab", password)) as http:  # HTTP Basic sees the same
        basic = ok(http.get("/v2/_catalog"), 200).json()["repositories"]
    assert basic == catalog
    for text in ("engineering", "madrid", "barca", "ba"):
        found = search_as(server, "ahab", password, text)
        assert BARCA not in found, (text, found)
    assert MADRID in search_as(server, "ahab", password, "madrid")
    with server.client(("ahab", password)) as http:  # nor can ahab list barca's tags
        assert_oci_refusal(http.get(f"/v2/{BARCA}/tags/list"))
    # ...while an admin sees both
    assert {BARCA, MADRID} <= search_as(server, "admin", server.admin_password, "engineering")


def test_wrong_password_is_refused(lab: Lab) -> None:
    skopeo = lab.skopeo("moby", "not-mobys-password", "wrong-moby")
    assert skopeo.login(check=False).returncode != 0
    with lab.server.client(("moby", "not-mobys-password")) as http:
        r = http.get("/v2/")
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_the_audit_trail_answers_the_lab_questions(lab: Lab) -> None:
    """Who pushed engineering/barca:lona, when and from where; who created team frontend and added
    ahab — through /api/v0/events and through `dockyard audit query` on the same data."""
    server = lab.server
    with server.client() as api:
        head = max(p["head"] for p in ok(api.get("/api/v0/projections"), 200).json()["projections"])
        wait = {"waitFor": head}
        moved = ok(api.get("/api/v0/events", params={**wait, "repository": BARCA, "action": "tag.moved"}), 200)
        [pushed] = [e for e in moved.json()["events"] if e["tag"] == "lona"]
        assert pushed["actor"] == "orca" and pushed["clientAddress"] == "127.0.0.1" and pushed["recordedAt"]
        teams = ok(api.get("/api/v0/events", params={**wait, "namespace": ORG, "action": "team.created"}), 200)
        [frontend] = [e for e in teams.json()["events"] if e["details"]["name"] == "frontend"]
        added = ok(api.get("/api/v0/events", params={**wait, "namespace": ORG, "action": "team.member_added"}), 200)
        [ahab] = [e for e in added.json()["events"] if e["details"]["user"] == "ahab"
                  and e["details"]["team"] == "frontend"]
        assert frontend["actor"] == ahab["actor"] == "admin"
    where = ["--database-url", server.database_url] if server.database_url else ["--data-dir", str(server.data_dir)]
    out = subprocess.run([sys.executable, "-m", "dockyard", "audit", "query", "--repository", BARCA, "--action",
                          "tag.moved", *where], capture_output=True, text=True, timeout=120, check=True).stdout
    [line] = [line.split("\t") for line in out.splitlines() if f"{BARCA}:lona@" in line]
    assert line[2:5] == ["orca", "127.0.0.1", "tag.moved"] and line[1] == pushed["recordedAt"]
