"""Rebuild is deterministic (DESIGN.md rule 5): dropping the read models and replaying the log
gives exactly the rows the registry wrote inline, on SQLite and on PostgreSQL.

The history is made through the real application (uploads on the filesystem store, pushes,
tag moves, deletes, unlinks, an index, a referrer, identity changes) so that every fold runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from dockyard.bootstrap import registry_on, views
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.actor import Actor, current_actor
from dockyard.domain.manifest_format import DOCKER_MANIFEST_LIST, OCI_MANIFEST
from dockyard.projections import inline, rebuild, registry_view
from dockyard.projections.rebuild import rebuild_registry_view
from dockyard.storage.filesystem import FilesystemStore
from tests.conftest import database_url_for
from tests.on_registry import identity_view


@pytest.fixture
def place(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None]:
    """A data directory, and a fresh PostgreSQL database when the backend is PostgreSQL."""
    return tmp_path / "data", database_url_for(backend, request)


@pytest.fixture
def registry(place: tuple[Path, str | None]) -> Iterator[Registry]:
    data_dir, database_url = place
    app = registry_on(event_store_env(str(data_dir), database_url))
    yield app
    app.close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


SIZES: dict[str, int] = {}  # digest -> size of what `upload` stored, for the manifests' descriptors


def upload(uploads: UploadSessions, repository: str, data: bytes) -> str:
    SIZES[sha256(data)] = len(data)
    upload_id = uploads.start(repository)
    for start in range(0, len(data), 7):  # in several PATCHes
        append = uploads.append(repository, upload_id, start)
        append.write(data[start:start + 7])
        append.close()
    uploads.finish(repository, upload_id, sha256(data))
    return sha256(data)


def image(config: str, *layers: str, **extra: Any) -> bytes:
    return orjson.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                   "size": SIZES[config]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": SIZES[d]}
                   for d in layers],
        **extra,
    }, option=orjson.OPT_INDENT_2)


def make_history(registry: Registry, data_dir: Path) -> None:
    """A varied history, acting as different people from different addresses."""
    uploads = UploadSessions(FilesystemStore(str(data_dir / "blobs")), registry, views(registry)[0])
    identity = Identity(registry, *views(registry))

    def as_(name: str, address: str) -> Any:
        return current_actor.set(Actor(name, address))

    token = as_("admin", "192.0.2.1")
    try:
        # Accounts and an organisation with teams, members and grants.
        identity.create_user("gordon", "hash-g", "admin")
        identity.create_user("moby", "hash-m", "read-only")
        identity.create_user("ahab", "hash-a", "none")
        identity.update_user("moby", role="read-write", password_hash="hash-m2")
        identity.update_user("ahab", active=False)
        identity.create_organization("engineering", "gordon")
        identity.create_team("engineering", "core", "the core team")
        identity.create_team("engineering", "frontend")
        identity.create_team("engineering", "interns")
        identity.add_member("engineering", "core", "moby")
        identity.add_member("engineering", "frontend", "ahab")
        identity.add_member("engineering", "frontend", "moby")
        identity.remove_member("engineering", "frontend", "moby")
        identity.create_repository("engineering", "barca", "private", "FC Barcelona")
        identity.create_repository("engineering", "madrid")
        identity.grant_team_access("engineering/barca", "core", "read-only")
        identity.grant_team_access("engineering/madrid", "frontend", "read-write")
        identity.grant_team_access("engineering/madrid", "interns", "read-only")
        identity.grant_team_access("engineering/barca", "core", "read-write")  # level changed
        identity.delete_team("engineering", "interns")  # its grant goes with it
        identity.update_repository("engineering/madrid", visibility="public", description="Real Madrid")
        identity.change_auth_settings("managed", {}, False)
        tokens = AccessTokens(registry, identity_view(registry))
        tokens.create("gordon", "ci", "read-write", datetime.now(UTC) + timedelta(days=30), ["engineering/barca"])
        revoked = tokens.create("gordon", "old", "read-only", None, [])
        tokens.revoke("gordon", revoked.token_id)
    finally:
        current_actor.reset(token)

    token = as_("gordon", "10.0.0.7")
    try:
        # Blobs, in pieces; one mounted into a second repository.
        config = upload(uploads, "engineering/barca", b"{}")
        layers = [upload(uploads, "engineering/barca", f"layer {i} of barca".encode()) for i in range(4)]
        uploads.mount("engineering/madrid", layers[0], "engineering/barca")
        upload(uploads, "engineering/madrid", b"{}")

        # Pushes and tag moves: v1 -> v2 -> v3 on `latest`, older tags left behind.
        v1, v2, v3 = image(config, layers[0]), image(config, layers[0], layers[1]), image(config, layers[2])
        registry.push_manifest("engineering/barca", "latest", OCI_MANIFEST, v1)
        registry.push_manifest("engineering/barca", "1.0", OCI_MANIFEST, v1)
        registry.push_manifest("engineering/barca", "latest", OCI_MANIFEST, v2)
        registry.push_manifest("engineering/barca", "2.0", OCI_MANIFEST, v2)
        registry.push_manifest("engineering/barca", "latest", OCI_MANIFEST, v3)

        # An index (Docker manifest list) over v2 and v3.
        index = orjson.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256(v2), "size": len(v2),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(v3), "size": len(v3),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ]})
        registry.push_manifest("engineering/barca", "multi", DOCKER_MANIFEST_LIST, index)

        # A referrer: a signature naming v3 as its subject, pushed by digest.
        signature = image(config, layers[3], artifactType="application/vnd.example.signature",
                          subject={"mediaType": OCI_MANIFEST, "digest": sha256(v3), "size": len(v3)},
                          annotations={"org.example.signer": "gordon", "created": "2026-11-26"})
        registry.push_manifest("engineering/barca", sha256(signature), OCI_MANIFEST, signature)

        # Deletes: a tag, a manifest with its tag, a blob link.
        registry.delete_tag("engineering/barca", "2.0")
        registry.delete_manifest("engineering/barca", sha256(v1))  # takes `1.0` with it
        registry.delete_blob("engineering/barca", layers[0])

        # madrid gets an image too, is soft-deleted with all it holds, then made again by a push
        # (whose blobs must be uploaded again: the delete unlinked them).
        registry.push_manifest("engineering/madrid", "latest", OCI_MANIFEST, image(config, layers[0]))
        identity.delete_repository("engineering/madrid")
        upload(uploads, "engineering/madrid", b"{}")
        upload(uploads, "engineering/madrid", b"layer 0 of barca")
        registry.push_manifest("engineering/madrid", "again", OCI_MANIFEST, image(config, layers[0]))

        # A repository that stays deleted, and one in gordon's own namespace.
        registry.link_blob("gordon/scratch", config, 2)
        identity.delete_repository("gordon/scratch")
        registry.link_blob("gordon/tools", config, 2, "mount:engineering/barca")
    finally:
        current_actor.reset(token)


def snapshot(registry: Registry) -> dict[str, list[tuple[Any, ...]]]:
    return {table: views(registry)[0].table_rows(table) for table in inline.TABLES}


def event_count(registry: Registry) -> int:
    return registry.recorder.max_notification_id() or 0


def test_rebuild_gives_identical_rows(registry: Registry, place: tuple[Path, str | None],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, database_url = place

    # A varied history is made; the read models are written inline as it happens.
    make_history(registry, data_dir)
    before = snapshot(registry)

    # Every registry-view table and every identity table has rows (each fold ran).
    assert set(registry_view.TABLES) <= set(before)
    for table, rows in before.items():
        assert rows, f"no rows in {table}: the history does not exercise it"
    # Some of what the history did, as the read model shows it.
    assert views(registry)[0].list_tags("engineering/barca", None, None) == ["latest", "multi"]
    assert views(registry)[0].catalog(None, None) == ["engineering/barca", "engineering/madrid", "gordon/tools"]
    repositories = {row[0]: row for row in before["repositories"]}
    assert repositories["gordon/scratch"][-1] == 1  # deleted
    assert repositories["engineering/madrid"][1:3] == ("private", "")  # made again by a push: a new repository
    assert views(registry)[0].list_tags("engineering/madrid", None, None) == ["again"]

    # The read models are damaged: rows removed, a row altered, a stray row added.
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute("DELETE FROM tags WHERE tag = 'latest'")
        cursor.execute("DELETE FROM team_members")
        cursor.execute("UPDATE manifests SET deleted = 1")
        cursor.execute(registry.dialect.sql(
            "INSERT INTO blob_links (repository, digest, size, linked_at) VALUES (%(r)s, %(d)s, 1, 'x')"),
            {"r": "stray/repo", "d": sha256(b"stray")})
    assert snapshot(registry) != before

    # Rebuilding replays the whole log and gives back exactly the rows written inline.
    replayed = rebuild_registry_view(registry)
    assert replayed == event_count(registry)
    after = snapshot(registry)
    for table in inline.TABLES:
        assert after[table] == before[table], table
    if database_url:  # every row was replaced: so were the planner's statistics
        with registry.dialect.reading(registry.recorder.datastore) as cursor:
            cursor.execute("SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%(t)s) "
                           "AND last_analyze IS NOT NULL", {"t": list(inline.TABLES)})
            assert sorted(r["relname"] for r in cursor.fetchall()) == sorted(inline.TABLES)

    # Rebuilding again, reading the log in pages of 7 events, changes nothing.
    monkeypatch.setattr(rebuild, "PAGE", 7)
    assert rebuild_registry_view(registry) == replayed
    assert snapshot(registry) == before


def test_cli_rebuild(registry: Registry, place: tuple[Path, str | None]) -> None:
    data_dir, database_url = place
    make_history(registry, data_dir)
    before = snapshot(registry)
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute("DELETE FROM repositories")

    # An admin runs `dockyard projections rebuild` against the same data (and database).
    command = [sys.executable, "-m", "dockyard", "projections", "rebuild", "--data-dir", str(data_dir)]
    if database_url:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    # It says how many events it replayed, and the rows are back as they were.
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"registry view rebuilt from {event_count(registry)} events"
    assert snapshot(registry) == before


def test_online_rebuild_while_appending_equals_a_locked_replay(registry: Registry,
                                                               place: tuple[Path, str | None]) -> None:
    """`projections rebuild registry`: fresh tables while the old ones serve, then a swap; pushes
    go on throughout, and the rows equal a replay of the whole log under the lock."""
    import threading

    from dockyard.domain.repository import Repository
    from dockyard.projections.rebuild import rebuild_inline_online

    data_dir, _ = place
    make_history(registry, data_dir)
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute("DELETE FROM repositories")  # damage the served rows: the rebuild restores them
    stop, written = threading.Event(), []

    def writer() -> None:
        while not stop.is_set():
            registry.save(*[Repository(name=f"during/r{len(written)}-{i}") for i in range(20)])
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        monkeypatch_page = rebuild.PAGE
        rebuild.PAGE = 7  # many small pages, so appends interleave with the bulk
        try:
            assert rebuild_inline_online(registry) >= event_count(registry) - 20 * len(written) - 20
        finally:
            rebuild.PAGE = monkeypatch_page
    finally:
        stop.set()
        thread.join()
    assert written
    online = snapshot(registry)
    assert rebuild_registry_view(registry) == event_count(registry)
    assert snapshot(registry) == online
