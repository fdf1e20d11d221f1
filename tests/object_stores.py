"""Real object-store servers for tests (testinfra.md sections 3-5), one process per session.

Each class starts its server on free ports, makes fresh buckets or containers, and gives the
`DOCKYARD_STORAGE` URL and the credentials (as environment variables) a Dockyard process or
`open_store` needs. A missing server program skips for a developer and fails in CI
(`tests.conftest.missing`).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import free_port


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: server did not answer within {timeout} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class MotoS3:
    """moto's S3 server (no authentication: any key is accepted)."""

    ACCESS_KEY = SECRET_KEY = "testing"

    @staticmethod
    def available() -> str | None:
        """None when it can run here, else what is missing."""
        return None if importlib.util.find_spec("moto.server") else "moto[server] (pip, the `test` extra)"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, auth: bool = False) -> None:
        """`auth=True`: signatures are checked after the first calls (moto's auth mode): the
        readiness probe, then three that make a user, its policy and its access key."""
        log = self.workdir / "moto.log"
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"} if auth else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115 - owned by the process
        _wait_http(self.endpoint, self.process, log)

    def stop(self) -> None:
        _stop(self.process)

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def client(self):  # noqa: ANN201 - minio.Minio
        from minio import Minio

        return Minio(f"127.0.0.1:{self.port}", access_key=self.ACCESS_KEY, secret_key=self.SECRET_KEY,
                     secure=False, region="us-east-1")

    def new_bucket(self) -> str:
        bucket = "dockyard-" + uuid.uuid4().hex[:16]
        self.client().make_bucket(bucket)
        return bucket

    def empty_bucket(self, bucket: str) -> None:
        """Drop every object, and every multipart upload left open, so moto's memory stays small."""
        from minio.deleteobjects import DeleteObject

        client = self.client()
        names = [o.object_name for o in client.list_objects(bucket, recursive=True)]
        for _ in client.remove_objects(bucket, (DeleteObject(n) for n in names)):
            pass
        for upload in client._list_multipart_uploads(bucket).uploads:
            client._abort_multipart_upload(bucket, upload.object_name, upload.upload_id)

    def url(self, bucket: str, prefix: str = "", **params: str) -> str:
        query = "&".join([f"endpoint={self.endpoint}", "region=us-east-1"] + [f"{k}={v}" for k, v in params.items()])
        return f"s3://{bucket}{'/' + prefix if prefix else ''}?{query}"


AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")  # Azurite's well-known development account key


class Azurite:
    """Azurite's blob service, in memory (npm `azurite@3.35.0`, installed by scripts/test.sh)."""

    @classmethod
    def available(cls) -> str | None:
        return None if cls.program() else "azurite (npm azurite@3.35.0 under .venv/azurite; scripts/test.sh installs it)"

    @staticmethod
    def program() -> Path | None:
        root = Path(__file__).resolve().parent.parent
        for candidate in (os.environ.get("AZURITE_BLOB"), root / ".venv/azurite/node_modules/.bin/azurite-blob"):
            if candidate and Path(candidate).exists():
                return Path(candidate)
        return None

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/devstoreaccount1"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.workdir / "azurite.log"
        # --disableTelemetry: no outside traffic; --skipApiVersionCheck: the SDK is newer (testinfra.md).
        self.process = subprocess.Popen(
            [str(self.program()), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
            cwd=self.workdir, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        _wait_http(f"http://127.0.0.1:{self.port}/", self.process, log)

    def stop(self) -> None:
        _stop(self.process)

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
                f"BlobEndpoint={self.endpoint};")

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string()}

    def service(self):  # noqa: ANN201 - azure.storage.blob.BlobServiceClient
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string())

    def new_container(self) -> str:
        name = "dockyard-" + uuid.uuid4().hex[:16]
        self.service().create_container(name)
        return name

    def drop_container(self, name: str) -> None:
        self.service().delete_container(name)

    def url(self, container: str, prefix: str = "", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"azure://{container}{'/' + prefix if prefix else ''}{'?' + query if query else ''}"


_BUILD_RINGS = """
import sys
from swift.common.ring import RingBuilder
for spec in sys.argv[2:]:
    server, port = spec.split(":")
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "sdb1", "weight": 1})
    builder.rebalance()
    builder.get_ring().save(f"{sys.argv[1]}/{server}.ring.gz")
"""


class Swift:
    """A single-node OpenStack Swift (Debian's packages) with tempauth, on free ports
    (testinfra.md section 5): proxy, object, container and account servers and memcached."""

    USER, KEY = "test:tester", "testing"
    PROGRAMS = ("swift-proxy-server", "swift-object-server", "swift-container-server",
                "swift-account-server", "memcached")

    @classmethod
    def available(cls) -> str | None:
        import shutil

        absent = [p for p in cls.PROGRAMS if shutil.which(p) is None]
        return f"{', '.join(absent)} (apt: swift swift-proxy swift-object swift-account swift-container memcached)" \
            if absent else None

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {name: free_port() for name in ("proxy", "object", "container", "account", "memcached")}
        self.auth_url = f"http://127.0.0.1:{self.ports['proxy']}/auth/v1.0"
        self.processes: list[subprocess.Popen[bytes]] = []

    def _configure(self) -> None:
        d = self.workdir
        (d / "node/sdb1").mkdir(parents=True, exist_ok=True)
        (d / "swift.conf").write_text("[swift-hash]\nswift_hash_path_suffix = t\nswift_hash_path_prefix = t\n"
                                      "[storage-policy:0]\nname = gold\ndefault = yes\n")
        # The three rings in one Debian python3 (where Swift lives): nine swift-ring-builder runs took ~12 s here.
        rings = subprocess.Popen(["/usr/bin/python3", "-c", _BUILD_RINGS, str(d)] + [
            f"{server}:{self.ports[server]}" for server in ("object", "container", "account")])
        for server in ("object", "container", "account"):
            (d / f"{server}-server.conf").write_text(
                f"[DEFAULT]\nswift_dir = {d}\ndevices = {d}/node\nmount_check = false\ndisable_fallocate = true\n"
                f"bind_ip = 127.0.0.1\nbind_port = {self.ports[server]}\nworkers = 0\nlog_level = WARNING\n"
                f"[pipeline:main]\npipeline = {server}-server\n[app:{server}-server]\nuse = egg:swift#{server}\n")
        filters = ["catch_errors", "gatekeeper", "healthcheck", "proxy_logging", "listing_formats", "bulk",
                   "tempurl", "slo", "dlo", "copy"]
        (d / "proxy-server.conf").write_text(
            f"[DEFAULT]\nswift_dir = {d}\nbind_ip = 127.0.0.1\nbind_port = {self.ports['proxy']}\nworkers = 0\n"
            "log_level = WARNING\n[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy_logging "
            "cache listing_formats bulk tempurl slo dlo tempauth copy proxy_logging proxy-server\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\nallow_account_management = true\naccount_autocreate = true\n"
            "[filter:tempauth]\nuse = egg:swift#tempauth\nuser_admin_admin = admin .admin .reseller_admin\n"
            f"user_test_tester = {self.KEY} .admin\n"
            f"[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:{self.ports['memcached']}\n"
            + "".join(f"[filter:{f}]\nuse = egg:swift#{f}\n" for f in filters))
        if rings.wait(120) != 0:
            raise RuntimeError("building the Swift rings failed")

    def start(self) -> None:
        self._configure()
        d, log = self.workdir, self.workdir / "swift.log"
        commands = [["memcached", "-l", "127.0.0.1", "-p", str(self.ports["memcached"]), "-U", "0", "-u", "root",
                     "-m", "32"]]
        commands += [[f"swift-{s}-server", str(d / f"{s}-server.conf")] for s in ("object", "container", "account", "proxy")]
        for command in commands:
            self.processes.append(subprocess.Popen(command, stdout=open(log, "ab"),  # noqa: SIM115
                                                   stderr=subprocess.STDOUT))
        _wait_http(f"http://127.0.0.1:{self.ports['proxy']}/healthcheck", self.processes[-1], log)

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)

    @property
    def env(self) -> dict[str, str]:
        return {"ST_AUTH": self.auth_url, "ST_USER": self.USER, "ST_KEY": self.KEY}

    def connection(self):  # noqa: ANN201 - swiftclient.client.Connection
        from swiftclient.client import Connection

        return Connection(authurl=self.auth_url, user=self.USER, key=self.KEY, auth_version="1")

    def new_container(self) -> str:
        name = "dockyard-" + uuid.uuid4().hex[:16]
        self.connection().put_container(name)
        return name

    def drop_container(self, name: str) -> None:
        connection = self.connection()
        for obj in connection.get_container(name, full_listing=True)[1]:
            connection.delete_object(name, obj["name"])
        connection.delete_container(name)

    def url(self, container: str, prefix: str = "", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"swift://{container}{'/' + prefix if prefix else ''}{'?' + query if query else ''}"


def with_env(env: dict[str, str]):  # noqa: ANN201 - a context manager
    """Set environment variables for the duration of a `with` block."""
    from contextlib import contextmanager

    @contextmanager
    def manager():  # noqa: ANN202
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return manager()


def _session_server(kind: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.conftest import missing

    if reason := kind.available():
        missing(reason)
    server = kind(tmp_path_factory.mktemp(kind.__name__.lower()))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """One moto S3 server for the session; tests make their own buckets."""
    yield from _session_server(MotoS3, tmp_path_factory)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite blob service for the session; tests make their own containers."""
    yield from _session_server(Azurite, tmp_path_factory)


@pytest.fixture(scope="session")
def swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swift]:
    """One single-node Swift for the session; tests make their own containers."""
    yield from _session_server(Swift, tmp_path_factory)


def one_line_error(url: str, env: dict[str, str]) -> str:
    """The message of the `StorageConfigError` that opening `url` with `env` raises: one line."""
    from dockyard.storage import StorageConfigError, open_store

    with with_env(env), pytest.raises(StorageConfigError) as info:
        open_store(url)
    message = str(info.value)
    assert "\n" not in message
    return message
