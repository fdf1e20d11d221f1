"""SIGKILL in the middle of concurrent pushes, then a restart on the same data (DESIGN.md rule 3).

Pushers run side by side: httpx threads that stream every blob slowly in one chunked PATCH (so
the kill lands mid-upload), and skopeo processes. After the kill and restart:
- every push that was acknowledged (201 on its manifest PUT, or skopeo exiting 0) is served
  byte for byte, by tag and by digest;
- anything else is either wholly there or not there: a manifest or blob of an unacknowledged
  push is 404 or exactly its bytes, never a prefix; every committed blob file hashes to its name;
  every tag the registry lists resolves to a manifest whose blobs are all served;
- an upload session cut off by the kill resumes from the size the server reports and finishes;
- the server takes new pushes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import (
    Layout,
    Skopeo,
    assert_same_image,
    assert_served,
    blob_files,
    get_manifest,
    make_image,
    push_layout,
    sha256,
)
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

HTTP_PUSHERS = 3
SKOPEO_PUSHERS = 2
IMAGES_PER_SKOPEO_PUSHER = 8
PIECE = 64 * 1024


@dataclass
class Cut:
    """An upload session a pusher was writing to when the server died."""

    repository: str
    location: str
    data: bytes


@dataclass
class Pushes:
    attempted: list[tuple[str, str, Layout]] = field(default_factory=list)
    acked: list[tuple[str, str, Layout]] = field(default_factory=list)
    cut: list[Cut] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for repo, _, _ in self.acked if repo.startswith(prefix))


def slowly(data: bytes) -> Iterator[bytes]:
    """The body as a chunked stream that takes a while: the kill should find it half sent."""
    for i in range(0, len(data), PIECE):
        time.sleep(0.01)
        yield data[i:i + PIECE]


def http_pusher(server: DockyardServer, number: int, base: Path, pushes: Pushes, stop: threading.Event) -> None:
    repo = f"admin/crash-http-{number}"
    with server.client() as http:
        i = 0
        while not stop.is_set():
            layout = make_image(base / f"http-{number}-{i}", [16 * 1024 + i, 600_000 + 1000 * number],
                                seed=f"crash-{number}-{i}", tag=f"t{i}", use_gzip=False)
            with pushes.lock:
                pushes.attempted.append((repo, layout.tag, layout))
            location = None
            try:
                for digest in layout.referenced():
                    location = http.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
                    location = http.patch(location, content=slowly(layout.blob(digest))).headers["location"]
                    done = http.put(location, params={"digest": digest})
                    location = None
                    if done.status_code != 201:
                        raise AssertionError(f"blob PUT answered {done.status_code}: {done.text}")
                r = http.put(f"/v2/{repo}/manifests/{layout.tag}", content=layout.manifest_bytes,
                             headers={"Content-Type": layout.manifest["mediaType"]})
                if r.status_code != 201:
                    raise AssertionError(f"manifest PUT answered {r.status_code}: {r.text}")
            except httpx.TransportError:
                if location is not None:
                    with pushes.lock:
                        pushes.cut.append(Cut(repo, location, layout.blob(digest)))
                return
            except Exception as exc:  # reported by the test, not lost in the thread
                with pushes.lock:
                    pushes.errors.append(f"{repo}:{layout.tag}: {exc!r}")
                return
            with pushes.lock:
                pushes.acked.append((repo, layout.tag, layout))
            i += 1


def staller(server: DockyardServer, pushes: Pushes, stop: threading.Event) -> None:
    """One upload that is certainly mid-PATCH at the kill: half the blob is in, the rest hangs."""
    repo, data = "admin/crash-stalled", bytes(range(256)) * 6000
    half = len(data) // 2

    def hang() -> Iterator[bytes]:
        yield data[half:half + PIECE]
        stop.wait()
        yield data[half + PIECE:]

    with server.client() as http:
        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        location = http.patch(location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"}).headers["location"]
        with pushes.lock:
            pushes.cut.append(Cut(repo, location, data))
        try:
            http.patch(location, content=hang())
        except httpx.TransportError:
            return
    with pushes.lock:
        pushes.errors.append("the stalled PATCH survived the kill")


def skopeo_pusher(skopeo: Skopeo, number: int, layouts: list[Layout], pushes: Pushes,
                  stop: threading.Event) -> None:
    repo = f"admin/crash-skopeo-{number}"
    for layout in layouts:
        if stop.is_set():
            return
        with pushes.lock:
            pushes.attempted.append((repo, layout.tag, layout))
        if skopeo.copy(layout.ref, skopeo.docker(repo, layout.tag), check=False).returncode != 0:
            return
        with pushes.lock:
            pushes.acked.append((repo, layout.tag, layout))


def assert_all_or_nothing(http: httpx.Client, repository: str, layout: Layout) -> None:
    """An unacknowledged push: each of its parts is absent or served whole, and a served
    manifest has all its blobs."""
    manifest = get_manifest(http, repository, layout.digest)
    assert manifest.status_code in (200, 404), manifest.text
    if manifest.status_code == 200:
        assert_served(http, repository, layout)
    for digest in layout.referenced():
        r = http.get(f"/v2/{repository}/blobs/{digest}")
        assert r.status_code in (200, 404), r.text
        if r.status_code == 200:
            assert r.content == layout.blob(digest)


def assert_tags_consistent(http: httpx.Client, repository: str) -> list[str]:
    """Every tag listed resolves to a manifest whose blobs are all served and hash right."""
    r = http.get(f"/v2/{repository}/tags/list")
    if r.status_code == 404:
        return []
    tags = r.json()["tags"]
    for tag in tags:
        m = get_manifest(http, repository, tag)
        assert m.status_code == 200, m.text
        assert sha256(m.content) == m.headers["docker-content-digest"]
        body = m.json()
        for descriptor in [body["config"], *body["layers"]]:
            b = http.get(f"/v2/{repository}/blobs/{descriptor['digest']}")
            assert b.status_code == 200, b.text
            assert sha256(b.content) == descriptor["digest"]
    return tags


def resume(http: httpx.Client, cut: Cut) -> None:
    """Continue a session the kill interrupted from where the server says it stands."""
    digest = sha256(cut.data)
    blob = http.get(f"/v2/{cut.repository}/blobs/{digest}")
    status = http.get(cut.location)
    if blob.status_code == 200:  # the kill came after the PUT had committed the blob: all of it
        assert blob.content == cut.data
        assert status.status_code == 404
        return
    assert blob.status_code == 404, blob.text
    if status.status_code == 404:  # the kill came during the PUT, before the blob was linked
        return
    assert status.status_code == 204, status.text
    end = int(status.headers["range"].split("-")[1])
    location = cut.location
    # "0-0" is a session of 0 or 1 bytes; whatever it holds is a prefix of what was sent.
    for size in [end + 1] if end else [0, 1]:
        assert size <= len(cut.data)
        if size == len(cut.data):
            break
        r = http.patch(location, content=cut.data[size:], headers={"Content-Range": f"{size}-{len(cut.data) - 1}"})
        if r.status_code != 416:
            assert r.status_code == 202, r.text
            location = r.headers["location"]
            break
    done = http.put(location, params={"digest": digest})
    assert done.status_code == 201, done.text
    assert http.get(f"/v2/{cut.repository}/blobs/{digest}").content == cut.data


def test_sigkill_during_concurrent_pushes(server: DockyardServer, tmp_path) -> None:
    skopeo = Skopeo(server, tmp_path / "skopeo")
    layouts = [[make_image(tmp_path / f"skopeo-{n}-{i}", ["32K", 400_000 + 7 * i], seed=f"crash-s{n}-{i}",
                           tag=f"s{i}") for i in range(IMAGES_PER_SKOPEO_PUSHER)] for n in range(SKOPEO_PUSHERS)]
    pushes, stop = Pushes(), threading.Event()
    threads = [threading.Thread(target=http_pusher, args=(server, n, tmp_path, pushes, stop))
               for n in range(HTTP_PUSHERS)]
    threads.append(threading.Thread(target=staller, args=(server, pushes, stop)))
    threads += [threading.Thread(target=skopeo_pusher, args=(skopeo, n, layouts[n], pushes, stop))
                for n in range(SKOPEO_PUSHERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (pushes.count("admin/crash-http") < 4 or pushes.count("admin/crash-skopeo") < 2):
        time.sleep(0.05)
    server.kill()
    stop.set()
    for t in threads:
        t.join(60)
        assert not t.is_alive()

    assert pushes.errors == []
    acked = list(pushes.acked)
    unacked = [p for p in pushes.attempted if p not in acked]
    assert pushes.count("admin/crash-http") >= 4 and pushes.count("admin/crash-skopeo") >= 2, "pushes too slow"
    assert unacked, "the kill should have caught pushes in flight"
    assert any(cut.repository == "admin/crash-stalled" for cut in pushes.cut)

    server.start()

    with server.client() as http:
        for repo, tag, layout in acked:
            assert_served(http, repo, layout, tag)
            assert_served(http, repo, layout, layout.digest)
        for repo, _tag, layout in unacked:
            assert_all_or_nothing(http, repo, layout)
        for digest, path in blob_files(server):
            assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
        listed = 0
        for repo in sorted({repo for repo, _, _ in pushes.attempted}):
            tags = assert_tags_consistent(http, repo)
            assert {tag for r, tag, _ in acked if r == repo} <= set(tags)
            listed += len(tags)
        assert listed >= len(acked)
        for cut in pushes.cut:
            resume(http, cut)

    # An acknowledged skopeo push reads back identical through skopeo too.
    repo, tag, layout = next(p for p in acked if p[0].startswith("admin/crash-skopeo"))
    back = Layout(tmp_path / "back", tag)
    skopeo.copy(skopeo.docker(repo, tag), back.ref)
    assert_same_image(layout, back)

    # And the server keeps taking pushes, into old and new repositories.
    fresh = make_image(tmp_path / "fresh", ["8K", "300K"], seed="crash-fresh", tag="after")
    skopeo.copy(fresh.ref, skopeo.docker("admin/crash-skopeo-0", "after"))
    skopeo.copy(fresh.ref, skopeo.docker("admin/crash-after", "after"))
    with server.client() as http:
        assert_served(http, "admin/crash-skopeo-0", fresh, "after")
        assert_served(http, "admin/crash-after", fresh, "after")
        repo, tag, layout = unacked[0]  # the push the kill cut off, again from the start
        r = push_layout(http, repo, layout)
        assert r.status_code == 201, r.text
        assert_served(http, repo, layout, tag)
