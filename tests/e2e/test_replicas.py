"""Two `dockyard serve` replicas on one PostgreSQL and one blob store behind a real HAProxy
(Debian's package, deploy/haproxy.cfg with local addresses): a skopeo push whose requests
alternate between them, a replica killed with the client's next push and pull still served,
and the compose file that describes that shape validated by a compose implementation."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, require_tool
from tests.e2e.clients import Layout, Skopeo, assert_same_image, make_image
from tests.server import DockyardServer, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


class Balancer:
    """HAProxy in front of `servers`, with the project's configuration and local addresses."""

    def __init__(self, servers: list[DockyardServer], workdir: Path) -> None:
        self.binary = require_tool("haproxy")
        self.port = free_port()
        config = (ROOT / "deploy" / "haproxy.cfg").read_text()
        config = config.replace("bind :5000", f"bind 127.0.0.1:{self.port}")
        config = re.sub(r"    server dockyard\d .*\n", "", config)
        config += "".join(f"    server dockyard{i + 1} {s.host} check inter 500ms fall 1 rise 1\n"
                          for i, s in enumerate(servers))
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run([self.binary, "-c", "-f", str(self.config)], check=True, capture_output=True)
        self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://{self.host}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class _Via(DockyardServer):
    """What the skopeo helper needs of a server (host, password), pointed at the balancer."""

    def __init__(self, balancer: Balancer) -> None:  # noqa: D107 — not started: an address only
        self.balancer = balancer
        self.admin_password = ADMIN_PASSWORD
        self.tls = False

    @property
    def host(self) -> str:
        return self.balancer.host


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[DockyardServer], Balancer]]:
    database_url = request.getfixturevalue("postgres").create()
    blobs = f"file://{tmp_path / 'blobs'}"
    servers = [DockyardServer(tmp_path / f"replica{i}", database_url, ADMIN_PASSWORD,
                              extra_env={"DOCKYARD_STORAGE": blobs, "DOCKYARD_REPLICA_NAME": f"replica{i}"})
               for i in range(2)]
    for server in servers:
        server.start()
    balancer = Balancer(servers, tmp_path)
    balancer.start()
    yield servers, balancer
    balancer.stop()
    for server in servers:
        server.stop()


def v2_lines(server: DockyardServer, repository: str, replica: str) -> list[str]:
    """The access lines for `repository` that `replica` logged, read through `server`."""
    with server.client() as admin:
        lines = admin.get("/api/v0/logs", params={"component": "api", "limit": 1000}).json()["lines"]
    return [line for line in lines if f"/v2/{repository}/" in line and f" {replica} " in line]


def test_a_request_served_by_one_replica_is_in_the_logs_read_through_the_other(replicas) -> None:
    """Every replica gathers its recent lines in the shared database, each tagged with its name:
    read through replica1 (plain, then followed live), replica0's access lines are there."""
    servers, _ = replicas
    with servers[0].client() as on_a:
        assert on_a.get("/v2/admin/served-by-a/tags/list").status_code == 404
    deadline = time.monotonic() + 30  # lines are written in batches, about every second
    while not (seen := v2_lines(servers[1], "admin/served-by-a", "replica0")):
        assert time.monotonic() < deadline, "replica0's line never reached replica1's logs"
        time.sleep(0.2)
    assert " api " in seen[0] and "GET /v2/admin/served-by-a/tags/list 404" in seen[0]

    # Followed through replica1 (PostgreSQL: woken by replica0's NOTIFY), a new line from replica0.
    with servers[1].client() as on_b, on_b.stream("GET", "/api/v0/logs", timeout=60, params={
            "component": "api", "follow": "true", "seconds": 60}) as events:
        assert events.status_code == 200
        with servers[0].client() as on_a:
            assert on_a.get("/v2/admin/followed-from-a/tags/list").status_code == 404
        for line in events.iter_lines():
            if line.startswith("data: ") and "/v2/admin/followed-from-a/" in line:
                assert " replica0 " in line
                break
        else:
            raise AssertionError("the follow ended without replica0's line")


def test_a_push_alternates_and_a_pull_survives_a_dead_replica(replicas, tmp_path: Path) -> None:
    servers, balancer = replicas
    skopeo = Skopeo(_Via(balancer), tmp_path / "skopeo")
    image = make_image(tmp_path / "img", ["4K", "64K", "256K"], seed="replicas", tag="v1")
    skopeo.copy(image.ref, skopeo.docker("admin/replicated", "v1"))
    # Both replicas served part of that one push (each line names the replica that served it).
    # Each is asked for its own lines: a reader writes its own process's buffered lines first,
    # while another replica's reach the shared table only with its next batch (about a second).
    served = [v2_lines(servers[i], "admin/replicated", f"replica{i}") for i in range(2)]
    assert all(served), served

    # One replica dies (SIGKILL, no goodbye): the balancer's health check takes it out; a
    # request that was sent to it is sent again to the other (retries, redispatch).
    servers[0].kill()
    back = tmp_path / "back"
    skopeo.copy(skopeo.docker("admin/replicated", "v1"), f"oci:{back}:v1")
    assert_same_image(image, Layout(back, "v1"))
    second = make_image(tmp_path / "img2", ["8K", "128K"], seed="replicas-2", tag="v2")
    skopeo.copy(second.ref, skopeo.docker("admin/replicated", "v2"))
    assert skopeo.list_tags("admin/replicated") == ["v1", "v2"]


def test_the_compose_file_is_valid(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose") or require_tool("podman-compose")
    env = {"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "p" * 12, "MINIO_ROOT_PASSWORD": "m" * 12,
           "DOCKYARD_ADMIN_PASSWORD": "a" * 12}
    out = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for service in ("haproxy", "dockyard1", "dockyard2", "postgres", "minio"):
        assert f"  {service}:" in out.stdout
    assert "/readyz" in out.stdout
    # Without the secrets, it refuses (none is written in the file).
    refused = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                             env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode != 0


def _push(skopeo: Skopeo, source: str, target: str) -> subprocess.Popen[str]:
    return subprocess.Popen([skopeo.binary, "copy", "--retry-times=5", "--preserve-digests", "--dest-tls-verify=false",
                             f"--dest-creds={skopeo.creds}", source, target],
                            env=skopeo.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# What a client may see when the replica serving its request dies mid-request: the balancer
# cannot resend a request whose body it already streamed, so it answers 502 (or the connection
# drops). Anything else (a 500, a digest error) would be Dockyard's fault.
_KILLED_MID_REQUEST = re.compile(r"502 Bad Gateway|503 Service Unavailable|connection reset|EOF")


def test_a_replica_killed_mid_push_and_the_client_retry_succeeds(replicas, tmp_path: Path) -> None:
    servers, balancer = replicas
    skopeo = Skopeo(_Via(balancer), tmp_path / "skopeo")
    image = make_image(tmp_path / "img", ["4M", "4M", "4M", "4M"], seed="mid-push", tag="v1")
    target = skopeo.docker("admin/midpush", "v1")
    push = _push(skopeo, image.ref, target)
    try:
        # Once the first replica has taken part of this push, SIGKILL it.
        deadline = time.monotonic() + 60
        while not any("blobs/uploads" in line for line in v2_lines(servers[0], "admin/midpush", "replica0")):
            assert push.poll() is None, "the push ended before a replica was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert push.poll() is None, "the push ended before a replica was killed"
        servers[0].kill()
        output, _ = push.communicate(timeout=300)
    finally:
        if push.poll() is None:
            push.kill()
    if push.returncode != 0:
        # skopeo retries what failed to connect, not a chunk the balancer answered 502 for (a
        # request killed while its body streamed); docker retries such a layer by itself. Either
        # way the client's retry must succeed on the surviving replica, reusing what was stored.
        assert _KILLED_MID_REQUEST.search(output), output
        retry = _push(skopeo, image.ref, target)
        output, _ = retry.communicate(timeout=300)
        assert retry.returncode == 0, output
    back = tmp_path / "back"
    skopeo.copy(skopeo.docker("admin/midpush", "v1"), f"oci:{back}:v1")
    assert_same_image(image, Layout(back, "v1"))
