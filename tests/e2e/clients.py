"""Helpers for the end-to-end tests: real clients (skopeo, podman, httpx) against a real server.

- `make_image` writes a deterministic OCI image layout with `mkimage.py` (the benchmark tool).
- `Skopeo` and `Podman` run the installed binaries with `--tls-verify=false`, credentials, and
  state kept in the test's temporary directory (auth file; podman's storage, run and tmp dirs),
  so nothing lands in root's global `/run/containers` or `/var/lib/containers/storage`.
- `Layout`, `assert_same_image` compare OCI layouts byte for byte.
- `push_layout`, `assert_served`, `blob_files` check what the registry serves and stores.
- `events` reads the server's event log through `dockyard events tail`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import require_tool
from tests.e2e import mkimage  # a verbatim copy of the shared /work/shared/bench/mkimage.py
from tests.server import DockyardServer

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
INDEX = "application/vnd.oci.image.index.v1+json"
CLIENT_TIMEOUT = 120


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- images ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """An OCI image layout on disk with one tagged image."""

    path: Path
    tag: str

    @property
    def ref(self) -> str:
        """The skopeo/podman name of the image: `oci:PATH:TAG`."""
        return f"oci:{self.path}:{self.tag}"

    def blob(self, digest: str) -> bytes:
        return (self.path / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    @property
    def digest(self) -> str:
        """The manifest digest `index.json` names for `tag`."""
        index = json.loads((self.path / "index.json").read_text())
        for entry in index["manifests"]:
            if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == self.tag:
                return entry["digest"]
        raise AssertionError(f"{self.path} has no image tagged {self.tag!r}: {index}")

    @property
    def manifest_bytes(self) -> bytes:
        return self.blob(self.digest)

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_bytes)

    @property
    def config_bytes(self) -> bytes:
        return self.blob(self.manifest["config"]["digest"])

    def referenced(self) -> list[str]:
        """Config and layer digests, in manifest order (for an index: the manifests' digests)."""
        m = self.manifest
        if m.get("mediaType") == INDEX:
            return [entry["digest"] for entry in m["manifests"]]
        return [m["config"]["digest"], *(layer["digest"] for layer in m["layers"])]


def make_image(directory: Path, layers: Iterable[str | int], seed: str, tag: str = "latest",
               use_gzip: bool = True) -> Layout:
    """A deterministic OCI layout (`mkimage.py`): one tar layer per size (`"4K"`, `"1M"`, bytes)."""
    sizes = [size if isinstance(size, int) else mkimage.parse_size(size) for size in layers]
    digest = mkimage.make_image(str(directory), sizes, seed, tag, use_gzip)
    layout = Layout(Path(directory), tag)
    assert layout.digest == digest
    return layout


def make_index(directory: Path, images: dict[str, Layout], tag: str) -> Layout:
    """An OCI layout whose `tag` is an image index over `images` (architecture -> single image)."""
    blobs = Path(directory) / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    entries = []
    for architecture, image in images.items():
        for path in (image.path / "blobs" / "sha256").iterdir():
            shutil.copyfile(path, blobs / path.name)
        entries.append({"mediaType": image.manifest["mediaType"], "digest": image.digest,
                        "size": len(image.manifest_bytes), "platform": {"architecture": architecture, "os": "linux"}})
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}, sort_keys=True).encode()
    (blobs / sha256(body).split(":", 1)[1]).write_bytes(body)
    ref = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "manifests": [{"mediaType": INDEX, "digest": sha256(body), "size": len(body),
                                                 "annotations": ref}]}
    (Path(directory) / "index.json").write_text(json.dumps(index))
    (Path(directory) / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return Layout(Path(directory), tag)


def assert_same_image(expected: Layout, actual: Layout) -> None:
    """The two layouts hold the same image byte for byte: manifest, config and every layer."""
    assert actual.digest == expected.digest
    assert actual.manifest_bytes == expected.manifest_bytes
    assert sha256(actual.manifest_bytes) == actual.digest
    for digest in expected.referenced():
        data = actual.blob(digest)
        assert data == expected.blob(digest), f"blob {digest} differs"
        assert sha256(data) == digest


def assert_layers_match_diff_ids(config: bytes, layers: list[bytes]) -> None:
    """Each layer (gzip or plain tar) uncompresses to the diff_id the config names for it."""
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    assert len(layers) == len(diff_ids)
    for data, diff_id in zip(layers, diff_ids, strict=True):
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        assert sha256(raw) == diff_id


# -- command-line clients ------------------------------------------------------------------------


def run(cmd: list[str], *, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class _Client:
    """A registry client binary with its own auth file under `home`."""

    tool = ""

    def __init__(self, server: DockyardServer, home: Path, user: str = "admin",
                 password: str | None = None) -> None:
        self.binary = require_tool(self.tool)
        self.server = server
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.password = server.admin_password if password is None else password
        self.authfile = self.home / "auth.json"
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.authfile)}

    @property
    def creds(self) -> str:
        return f"{self.user}:{self.password}"

    def ref(self, repository: str, reference: str = "latest") -> str:
        """`HOST:PORT/REPO:TAG` or `HOST:PORT/REPO@DIGEST`."""
        sep = "@" if reference.startswith("sha256:") else ":"
        return f"{self.server.host}/{repository}{sep}{reference}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([self.binary, *self.global_args(), *args], check=check, env=self.env)

    def global_args(self) -> list[str]:
        return []

    def login(self, password: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        pw = self.password if password is None else password
        return self.run("login", "--tls-verify=false", "-u", self.user, "-p", pw, self.server.host, check=check)

    def logout(self) -> subprocess.CompletedProcess[str]:
        return self.run("logout", self.server.host)


class Skopeo(_Client):
    tool = "skopeo"

    def docker(self, repository: str, reference: str = "latest") -> str:
        return "docker://" + self.ref(repository, reference)

    def copy(self, source: str, destination: str, *extra: str, creds: bool = True, check: bool = True,
             preserve_digests: bool = True) -> subprocess.CompletedProcess[str]:
        """`skopeo copy` between `oci:…` and `docker://…` names, TLS off and credentials on registry
        sides; `--preserve-digests` unless the copy is meant to convert (`--format`)."""
        args = ["copy", *(["--preserve-digests"] if preserve_digests else []), *extra]
        for side, name in (("src", source), ("dest", destination)):
            if name.startswith("docker://"):
                args.append(f"--{side}-tls-verify=false")
                if creds:
                    args.append(f"--{side}-creds={self.creds}")
        return self.run(*args, source, destination, check=check)

    def _registry_args(self, creds: bool) -> list[str]:
        return ["--tls-verify=false", *([f"--creds={self.creds}"] if creds else [])]

    def inspect_raw(self, name: str, creds: bool = True) -> bytes:
        return self.run("inspect", "--raw", *self._registry_args(creds), name).stdout.encode()

    def list_tags(self, repository: str, creds: bool = True, check: bool = True) -> list[str] | None:
        result = self.run("list-tags", *self._registry_args(creds), "docker://" + f"{self.server.host}/{repository}",
                          check=check)
        return json.loads(result.stdout)["Tags"] if result.returncode == 0 else None

    def delete(self, name: str, creds: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("delete", *self._registry_args(creds), name)


class Podman(_Client):
    """podman with its own vfs storage, run root and tmp dir (root's default storage stays untouched).

    podman refuses a run root longer than 50 characters, so that one lives in a short /tmp
    directory which `close()` removes.
    """

    tool = "podman"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runroot = Path(tempfile.mkdtemp(prefix="dy-podman-"))

    def global_args(self) -> list[str]:
        return ["--root", str(self.home / "storage"), "--runroot", str(self.runroot),
                "--tmpdir", str(self.home / "tmp"), "--storage-driver", "vfs", "--events-backend", "none"]

    def close(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)

    def push(self, image: str, destination: str) -> str:
        """Push a local image to the registry; the digest of the manifest the registry accepted."""
        digestfile = self.home / "pushed-digest"
        self.run("push", "--tls-verify=false", f"--digestfile={digestfile}", image, destination)
        return digestfile.read_text().strip()

    def pull(self, name: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("pull", "--tls-verify=false", name, check=check)

    def image_id(self, name: str) -> str:
        """`sha256:<hex>` of the image's config (what podman shows as the image ID)."""
        return "sha256:" + self.run("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self.run("image", "inspect", name).stdout)[0]

    def remove_all(self) -> None:
        self.run("rmi", "--all", "--force")
        assert self.run("images", "--quiet").stdout.strip() == ""


# -- the distribution API ------------------------------------------------------------------------


def get_manifest(client: httpx.Client, repository: str, reference: str) -> httpx.Response:
    return client.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})


def push_blob(client: httpx.Client, repository: str, data: bytes | Iterable[bytes], digest: str) -> httpx.Response:
    """POST a session, stream `data` in one PATCH (chunked when an iterable), PUT with the digest."""
    start = client.post(f"/v2/{repository}/blobs/uploads/")
    assert start.status_code == 202, start.text
    patch = client.patch(start.headers["location"], content=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert patch.status_code == 202, patch.text
    return client.put(patch.headers["location"], params={"digest": digest})


def push_layout(client: httpx.Client, repository: str, layout: Layout, tag: str | None = None) -> httpx.Response:
    """Push every blob of `layout`, then its manifest under `tag`; the manifest PUT's response."""
    for digest in layout.referenced():
        r = push_blob(client, repository, layout.blob(digest), digest)
        assert r.status_code == 201, r.text
    return client.put(f"/v2/{repository}/manifests/{tag or layout.tag}", content=layout.manifest_bytes,
                      headers={"Content-Type": layout.manifest["mediaType"]})


def assert_served(client: httpx.Client, repository: str, layout: Layout, reference: str | None = None) -> None:
    """The registry serves `layout`'s manifest (by `reference`, default its digest) and blobs unchanged."""
    r = get_manifest(client, repository, reference or layout.digest)
    assert r.status_code == 200, r.text
    assert r.content == layout.manifest_bytes
    assert r.headers["docker-content-digest"] == layout.digest
    for digest in layout.referenced():
        b = client.get(f"/v2/{repository}/blobs/{digest}")
        assert b.status_code == 200, b.text
        assert b.content == layout.blob(digest)


def blob_files(server: DockyardServer) -> Iterator[tuple[str, Path]]:
    """Every committed blob in the filesystem store: (digest its path names, path)."""
    root = server.data_dir / "blobs" / "blobs"
    for path in root.glob("*/*/*"):
        if path.is_file() and not path.name.startswith(".tmp-"):
            yield f"{path.parent.parent.name}:{path.name}", path


# -- the event log -------------------------------------------------------------------------------


def events(server: DockyardServer, n: int = 1000) -> list[dict[str, Any]]:
    """The last `n` events of the server's log, via `dockyard events tail` on the same data."""
    cmd = [sys.executable, "-m", "dockyard", "events", "tail", "-n", str(n), "--data-dir", str(server.data_dir)]
    if server.database_url:
        cmd += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    out = run(cmd, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
