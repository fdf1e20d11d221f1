"""The real `docker` CLI against the real server: login, push and pull by tag and by digest, and
the DTR lab's Task 4 as orca, moby and ahab (../shared/seed/dtr-1.4-lab.md; DESIGN.md's table).

A private Docker Engine per test session (Debian's `docker.io`: `/usr/sbin/dockerd` with the vfs
storage driver and no networking of its own, and its matching `/usr/bin/docker`), started by the
`dockerd` fixture in a short /tmp directory (containerd's socket path must stay under 108
characters) and stopped at the end. Each user has their own `DOCKER_CONFIG`, so logins never
overwrite each other. 127.0.0.0/8 is an insecure registry for dockerd by default: plain HTTP.

No network: the image is made with `mkimage.py` as an OCI layout, turned into a `docker load`
archive by skopeo. docker pushes its own (gzip) layers, so what stays fixed between what was
loaded, pushed and pulled is the image ID, the digest of the config.

Without docker.io a developer's run skips this module; with CI=true it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing, require_tool
from tests.e2e.clients import get_manifest, make_image, sha256
from tests.e2e.test_lab_scenario import BARCA, MADRID, TABLE, create_lab_accounts, managed_password
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"  # Debian's CLI, matching the daemon's API (another `docker` may be on PATH)
DOCKERD = "/usr/sbin/dockerd"
TIMEOUT = 180
REFUSED = re.compile(r"denied|unauthori[sz]ed|authentication required", re.I)
# `docker login` stores the refresh token the registry returned (its "identity token") and the
# daemon presents that same token for every later push and pull, never a rotated one. Refresh
# tokens rotate on use, and a spent one ends its family (issue 7, item 2) — except the docker
# CLI's (`client_id=docker`), which stays the same (domain/refresh_token.py). Every test here
# logs in once per user; a refusal naming a spent refresh token would be that bug back.
SPENT_IDENTITY_TOKEN = "invalid refresh token"


def refused(result: subprocess.CompletedProcess[str]) -> bool:
    """docker failed with an access refusal — not with the spent-identity-token bug above."""
    output = result.stdout + result.stderr
    assert SPENT_IDENTITY_TOKEN not in output, output
    return result.returncode != 0 and REFUSED.search(output) is not None


@pytest.fixture(scope="session")
def dockerd() -> Iterator[str]:
    """A private dockerd for the session; its `DOCKER_HOST`."""
    if not (os.access(DOCKER, os.X_OK) and os.access(DOCKERD, os.X_OK)):
        missing("docker.io (/usr/sbin/dockerd and /usr/bin/docker)")
    root = Path(tempfile.mkdtemp(prefix="dy-docker-"))
    host = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [DOCKERD, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile",
         str(root / "pid"), "-H", host, "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false",
         "--bridge=none"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"dockerd exited {process.returncode}:\n{(root / 'dockerd.log').read_text()}")
            info = subprocess.run([DOCKER, "-H", host, "info"], capture_output=True, timeout=30)
            if info.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"dockerd did not answer in 60 s:\n{(root / 'dockerd.log').read_text()}")
            time.sleep(0.2)
        yield host
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


class Docker:
    """The docker CLI as one user: own `DOCKER_CONFIG` under `home`, the session's daemon."""

    def __init__(self, host: str, server: DockyardServer, home: Path, user: str, password: str) -> None:
        self.server, self.user, self.password = server, user, password
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CONFIG": str(home)}

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, *args], input=stdin, capture_output=True, text=True, env=self.env,
                                timeout=TIMEOUT)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} as {self.user} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def ref(self, repository: str, reference: str) -> str:
        sep = "@" if reference.startswith("sha256:") else ":"
        return f"{self.server.host}/{repository}{sep}{reference}"

    def login(self, password: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("login", "-u", self.user, "--password-stdin", self.server.host,
                        stdin=self.password if password is None else password, check=check)

    def push(self, ref: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("push", ref, check=check)

    def pushed_digest(self, result: subprocess.CompletedProcess[str]) -> str:
        """The manifest digest `docker push` reports (`TAG: digest: sha256:… size: N`)."""
        found = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", result.stdout)
        assert found, result.stdout
        return found.group(1)

    def pull(self, ref: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("pull", ref, check=check)

    def image_id(self, ref: str) -> str:
        return self.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def forget(self, *refs: str) -> None:
        """Remove these names from the daemon (so that a pull must fetch from the registry)."""
        self.run("rmi", "--force", *refs, check=False)


@pytest.fixture(scope="module")
def local_image(dockerd: str, tmp_path_factory) -> tuple[str, str]:
    """An image in the daemon, made offline: (its local name, its image ID = config digest)."""
    skopeo = require_tool("skopeo")
    work = tmp_path_factory.mktemp("docker-image")
    layout = make_image(work / "layout", ["4K", "64K"], seed="docker-cli", tag="v1", use_gzip=True)
    archive = work / "image.tar"
    subprocess.run([skopeo, "copy", "--quiet", layout.ref, f"docker-archive:{archive}:local/dockyard-app:v1"],
                   check=True, capture_output=True, timeout=TIMEOUT)
    env = {**os.environ, "DOCKER_HOST": dockerd}
    subprocess.run([DOCKER, "load", "-i", str(archive)], check=True, capture_output=True, env=env, timeout=TIMEOUT)
    image_id = subprocess.run([DOCKER, "image", "inspect", "--format", "{{.Id}}", "local/dockyard-app:v1"],
                              check=True, capture_output=True, text=True, env=env, timeout=60).stdout.strip()
    assert image_id == sha256(layout.config_bytes)
    return "local/dockyard-app:v1", image_id


def docker_as(dockerd: str, server: DockyardServer, home: Path, user: str, password: str) -> Docker:
    return Docker(dockerd, server, home / f"config-{user}", user, password)


def test_login_push_and_pull_by_tag_and_by_digest(dockerd: str, shared_server: DockyardServer,
                                                  local_image: tuple[str, str], tmp_path: Path) -> None:
    name, image_id = local_image
    docker = docker_as(dockerd, shared_server, tmp_path, "admin", shared_server.admin_password)

    # login: a wrong password is refused, the right one stored in this user's own config only
    wrong = docker.login(password="not-the-password", check=False)
    assert refused(wrong), wrong
    assert "Login Succeeded" in docker.login().stdout
    assert shared_server.host in (tmp_path / "config-admin" / "config.json").read_text()

    # push by tag (into admin's own namespace): the registry serves the manifest docker names
    by_tag = docker.ref("admin/docker-app", "v1")
    docker.run("tag", name, by_tag)
    digest = docker.pushed_digest(docker.push(by_tag))
    with shared_server.client() as http:
        served = get_manifest(http, "admin/docker-app", "v1")
    assert served.status_code == 200, served.text
    assert served.headers["docker-content-digest"] == digest == sha256(served.content)
    assert served.json()["config"]["digest"] == image_id

    # pull by tag and by digest, each into a daemon that no longer holds the image under that name
    docker.forget(by_tag)
    docker.pull(by_tag)
    assert docker.image_id(by_tag) == image_id
    by_digest = docker.ref("admin/docker-app", digest)
    docker.forget(by_tag)
    pulled = docker.pull(by_digest)
    assert digest in pulled.stdout
    assert docker.image_id(by_digest) == image_id

    # logout: the credentials are gone, and a private repository is refused without them
    docker.run("logout", shared_server.host)
    docker.forget(by_digest)
    anonymous = docker.pull(by_tag, check=False)
    assert refused(anonymous), anonymous


@pytest.fixture(scope="module")
def lab(dockerd: str, shared_server: DockyardServer, local_image: tuple[str, str],
        tmp_path_factory) -> dict[str, Docker]:
    """Lab Task 3 (users, organisation engineering first, teams, barca and madrid) through /api/v0;
    each lab user's docker, logged in; barca:seed and madrid:seed pushed by admin with docker."""
    create_lab_accounts(shared_server)
    home = tmp_path_factory.mktemp("docker-lab")
    admin = docker_as(dockerd, shared_server, home, "admin", shared_server.admin_password)
    admin.login()
    for repository in (BARCA, MADRID):
        admin.run("tag", local_image[0], admin.ref(repository, "seed"))
        admin.push(admin.ref(repository, "seed"))
    users = {}
    for user in ("orca", "moby", "ahab"):
        users[user] = docker_as(dockerd, shared_server, home, user, managed_password(user))
        assert "Login Succeeded" in users[user].login().stdout
    return users


def assert_tag(server: DockyardServer, repository: str, tag: str, present: bool) -> None:
    with server.client() as http:
        status = get_manifest(http, repository, tag).status_code
    assert status == (200 if present else 404), f"{repository}:{tag} -> {status}"


def test_lab_task_4_as_the_lab_says(lab: dict[str, Docker], shared_server: DockyardServer,
                                    local_image: tuple[str, str]) -> None:
    name, image_id = local_image
    orca, moby, ahab = lab["orca"], lab["moby"], lab["ahab"]

    # Steps 4-5: orca (read-write on everything) tags busybox as barca:lona and pushes it.
    lona = orca.ref(BARCA, "lona")
    orca.run("tag", name, lona)
    lona_digest = orca.pushed_digest(orca.push(lona))
    assert_tag(shared_server, BARCA, "lona", True)

    # Step 7: moby (read-only on everything) pulls it.
    moby.forget(lona)
    pulled = moby.pull(lona)
    assert lona_digest in pulled.stdout
    assert moby.image_id(lona) == image_id

    # Step 8: moby tags barca:latest and pushes: refused.
    latest = moby.ref(BARCA, "latest")
    moby.run("tag", name, latest)
    pushed = moby.push(latest, check=False)
    assert refused(pushed), pushed
    assert_tag(shared_server, BARCA, "latest", False)

    # Step 11: ahab (no global role, team frontend) pushes madrid:latest: it works.
    madrid = ahab.ref(MADRID, "latest")
    ahab.run("tag", name, madrid)
    ahab.pushed_digest(ahab.push(madrid))
    assert_tag(shared_server, MADRID, "latest", True)

    # Step 12: ahab pushes barca:lona: refused, and lona is still orca's image.
    ahab.run("tag", name, lona)
    pushed = ahab.push(lona, check=False)
    assert refused(pushed), pushed
    with shared_server.client() as http:
        assert get_manifest(http, BARCA, "lona").headers["docker-content-digest"] == lona_digest


@pytest.mark.parametrize("user", ["orca", "moby", "ahab"])
def test_lab_table_through_docker(lab: dict[str, Docker], shared_server: DockyardServer,
                                  local_image: tuple[str, str], user: str) -> None:
    """DESIGN.md's row for `user`: pull and push on barca and madrid, each as the table says."""
    name, image_id = local_image
    docker = lab[user]
    pull_barca, push_barca, pull_madrid, push_madrid, _ = TABLE[user]
    for repository, may_pull, may_push in ((BARCA, pull_barca, push_barca), (MADRID, pull_madrid, push_madrid)):
        seed = docker.ref(repository, "seed")
        docker.forget(seed)
        pulled = docker.pull(seed, check=False)
        if may_pull:
            assert pulled.returncode == 0, pulled.stderr
            assert docker.image_id(seed) == image_id
        else:
            assert refused(pulled), f"{user} pulled {repository}: {pulled}"
        tag = f"table-{user}"
        docker.run("tag", name, docker.ref(repository, tag))
        pushed = docker.push(docker.ref(repository, tag), check=False)
        if may_push:
            assert pushed.returncode == 0, pushed.stderr
        else:
            assert refused(pushed), f"{user} pushed to {repository}: {pushed}"
        assert_tag(shared_server, repository, tag, may_push)


def test_one_login_serves_several_commands(dockerd: str, shared_server: DockyardServer,
                                           local_image: tuple[str, str], tmp_path: Path) -> None:
    """As a user works: `docker login` once, then push, then pull (each presents the stored login)."""
    docker = docker_as(dockerd, shared_server, tmp_path, "admin", shared_server.admin_password)
    docker.login()
    ref = docker.ref("admin/one-login", "v1")
    docker.run("tag", local_image[0], ref)
    docker.run("push", ref)
    docker.forget(ref)
    pulled = docker.run("pull", ref, check=False)
    assert pulled.returncode == 0, pulled.stderr
