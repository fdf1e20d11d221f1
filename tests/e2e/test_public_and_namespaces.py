"""Public repositories are pullable by anyone, anonymous clients included; pushing to a
repository that does not exist creates it (private) only where the pusher may create.

DESIGN.md "Access model": `R` public → read-only for everyone; users create repositories in
their own namespace, organisation owners in their organisation's, global admins anywhere.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.clients import Layout, Skopeo, make_image

pytestmark = pytest.mark.e2e


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, response.text
    return response


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Layout:
    return make_image(tmp_path_factory.mktemp("public-image") / "img", ["4K", "64K"], seed="public")


@pytest.fixture(scope="module")
def world(shared_server):
    with shared_server.client() as admin:
        for name, role in (("pat", "read-write"), ("nia", "none")):
            _ok(admin.post("/api/v0/accounts", json={"type": "user", "name": name, "password": f"{name}-password",
                                                      "role": role}))
        _ok(admin.post("/api/v0/accounts", json={"type": "organization", "name": "opensource"}))
        _ok(admin.post("/api/v0/repositories/opensource", json={"name": "tools", "visibility": "public",
                                                                "description": "for everyone"}))
        _ok(admin.post("/api/v0/repositories/opensource", json={"name": "secret", "visibility": "private"}))
    return shared_server


def test_anyone_pulls_a_public_repository_and_nobody_anonymous_pushes(world, image, tmp_path) -> None:
    # The admin pushes an image into the public repository and into a private one.
    admin = Skopeo(world, tmp_path / "admin")
    admin.copy(f"oci:{image.path}:{image.tag}", admin.docker("opensource/tools", "v1"))
    admin.copy(f"oci:{image.path}:{image.tag}", admin.docker("opensource/secret", "v1"))

    # skopeo with no credentials at all pulls the public one, byte for byte.
    anonymous = Skopeo(world, tmp_path / "anonymous", user="", password="")
    anonymous.copy(anonymous.docker("opensource/tools", "v1"), f"oci:{tmp_path / 'back'}:v1", creds=False)
    assert Layout(tmp_path / "back", "v1").manifest_bytes == image.manifest_bytes

    # The private one does not exist for it, and it cannot push anywhere.
    refused = anonymous.copy(anonymous.docker("opensource/secret", "v1"), f"oci:{tmp_path / 'no'}:v1",
                             creds=False, check=False)
    assert refused.returncode != 0
    refused = anonymous.copy(f"oci:{image.path}:{image.tag}", anonymous.docker("opensource/tools", "v2"),
                             creds=False, check=False)
    assert refused.returncode != 0

    # Over HTTP: the anonymous token grants pull on the public repository and nothing more.
    token = httpx.get(world.url + "/auth/token", params={
        "service": "dockyard", "scope": ["repository:opensource/tools:pull,push",
                                         "repository:opensource/secret:pull"]}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{world.url}/v2/opensource/tools/manifests/v1", headers=bearer).status_code == 200
    denied = httpx.get(f"{world.url}/v2/opensource/secret/manifests/v1", headers=bearer)
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    # Without any credentials the public repository answers directly; the private one challenges.
    assert httpx.get(f"{world.url}/v2/opensource/tools/tags/list").json()["tags"] == ["v1"]
    challenged = httpx.get(f"{world.url}/v2/opensource/secret/tags/list")
    assert challenged.status_code == 401
    assert 'scope="repository:opensource/secret:pull"' in challenged.headers["www-authenticate"]

    # A signed-in user with no role may pull the public repository, not push to it.
    with httpx.Client(base_url=world.url, auth=("nia", "nia-password")) as nia:
        assert nia.get("/v2/opensource/tools/manifests/v1").status_code == 200
        pushed = nia.post("/v2/opensource/tools/blobs/uploads/")
        assert pushed.status_code == 403
        assert pushed.json()["errors"][0]["code"] == "DENIED"


def test_pushing_creates_a_private_repository_only_where_the_pusher_may_create(world, image, tmp_path) -> None:
    # pat (global read-write) pushes into its own namespace: the repository appears, private.
    pat = Skopeo(world, tmp_path / "pat", user="pat", password="pat-password")
    pat.copy(f"oci:{image.path}:{image.tag}", pat.docker("pat/app", "v1"))
    with world.client() as admin:
        repo = _ok(admin.get("/api/v0/repositories/pat/app")).json()
        assert repo["visibility"] == "private"
        # ... and nia, with no role, cannot see it.
        assert httpx.get(f"{world.url}/api/v0/repositories/pat/app", auth=("nia", "nia-password")).status_code == 404

    # Read-write on every existing repository is not a right to create them elsewhere.
    refused = pat.copy(f"oci:{image.path}:{image.tag}", pat.docker("opensource/newthing", "v1"), check=False)
    assert refused.returncode != 0
    refused = pat.copy(f"oci:{image.path}:{image.tag}", pat.docker("nia/app", "v1"), check=False)
    assert refused.returncode != 0
    with world.client() as admin:
        assert admin.get("/api/v0/repositories/opensource/newthing").status_code == 404
        assert "opensource/newthing" not in admin.get("/v2/_catalog").json()["repositories"]
        assert "nia/app" not in admin.get("/v2/_catalog").json()["repositories"]


def test_a_push_into_a_namespace_that_is_no_account_is_refused_and_cannot_be_taken_over(world, image,
                                                                                         tmp_path) -> None:
    """Issue 7, item 1: an admin's push into `ghost/…` (no account `ghost`) used to create private
    repositories that whoever created organisation `ghost` next would own."""
    admin = Skopeo(world, tmp_path / "admin")
    refused = admin.copy(f"oci:{image.path}:{image.tag}", admin.docker("ghost/img", "v1"), check=False)
    # skopeo shows the registry's answer: NAME_UNKNOWN ("name unknown: …"), naming the missing account.
    assert refused.returncode != 0
    assert "name unknown" in refused.stderr and "no user or organisation 'ghost'" in refused.stderr, refused.stderr
    with world.client() as api:
        assert "ghost/img" not in api.get("/v2/_catalog").json()["repositories"]
        # So `ghost` is free to become an account, and nothing comes with it; pat makes it and pushes.
        with httpx.Client(base_url=world.url, auth=("pat", "pat-password")) as pat_api:
            _ok(pat_api.post("/api/v0/accounts", json={"type": "organization", "name": "ghost"}))
        assert _ok(api.get("/api/v0/repositories/ghost")).json()["repositories"] == []
    pat = Skopeo(world, tmp_path / "pat", user="pat", password="pat-password")
    pat.copy(f"oci:{image.path}:{image.tag}", pat.docker("ghost/img", "v1"))
