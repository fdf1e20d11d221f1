"""A repository lives in the namespace of an existing account (issue 7, item 1: namespace takeover).

Before the rule, an admin's push created `ghost/img` with no account `ghost`; any user then
created organisation `ghost` and became admin of what was there. Now a push (upload, mount,
manifest) into a namespace that is no account is refused with `NameUnknown` naming it, and no
account — user or organisation, managed or a directory user's first login — is created over a
namespace that holds repositories, live or soft-deleted (made before the rule).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from dockyard.bootstrap import registry_on, views
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.errors import Conflict, NameUnknown
from dockyard.domain.manifest_format import OCI_INDEX, OCI_MANIFEST
from dockyard.domain.repository import Repository
from dockyard.storage.memory import MemoryStore
from tests.on_registry import identity_view, registry_view


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """An empty registry on a private in-memory SQLite database (no account, no repository)."""
    env = event_store_env(str(tmp_path), None)
    env["SQLITE_DBNAME"] = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
    app = registry_on(env)
    yield app
    app.close()


@pytest.fixture
def identity(registry: Registry) -> Identity:
    return Identity(registry, *views(registry))


@pytest.fixture
def uploads(registry: Registry) -> UploadSessions:
    return UploadSessions(MemoryStore(), registry, registry_view(registry))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload(uploads: UploadSessions, repository: str, data: bytes) -> str:
    upload_id = uploads.start(repository)
    append = uploads.append(repository, upload_id, None)
    append.write(data)
    append.close()
    uploads.finish(repository, upload_id, sha256(data))
    return sha256(data)


EMPTY_INDEX = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})


def manifest(config: str, size: int) -> bytes:
    return orjson.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": size}, "layers": []})


def test_a_push_into_a_namespace_that_is_no_account_is_refused(registry: Registry, uploads: UploadSessions) -> None:
    # An upload into `ghost/img` is refused before a session (or a byte) exists, naming `ghost`.
    with pytest.raises(NameUnknown) as refused:
        uploads.start("ghost/img")
    assert refused.value.detail == {"namespace": "ghost"} and "'ghost'" in refused.value.message
    # So is each other way a push creates a repository: a blob link (mount, finished upload) and a manifest.
    with pytest.raises(NameUnknown):
        registry.link_blob("ghost/img", sha256(b"{}"), 2)
    with pytest.raises(NameUnknown):
        registry.push_manifest("ghost/img", "latest", OCI_INDEX, EMPTY_INDEX)  # references nothing
    # A name with no namespace at all belongs to no account either.
    with pytest.raises(NameUnknown):
        uploads.start("busybox")

    # Nothing was stored.
    assert registry_view(registry).namespace_repositories("ghost") == []
    assert registry_view(registry).catalog(None, None) == []


def test_a_push_into_an_account_namespace_creates_the_repository(registry: Registry, identity: Identity,
                                                                 uploads: UploadSessions) -> None:
    identity.create_organization("team", "admin")
    identity.create_user("gordon", "hash", "none")
    for repository in ("team/busybox", "gordon/tools/app"):
        config = upload(uploads, repository, b"{}")
        registry.push_manifest(repository, "latest", OCI_MANIFEST, manifest(config, 2))
    assert registry_view(registry).catalog(None, None) == ["gordon/tools/app", "team/busybox"]


def test_a_deleted_repository_is_pushed_again_only_under_an_account(registry: Registry, identity: Identity,
                                                                    uploads: UploadSessions) -> None:
    identity.create_organization("team", "admin")
    upload(uploads, "team/app", b"{}")
    registry.delete_repository("team/app")
    upload(uploads, "team/app", b"{}")  # recreated: its namespace is an account
    assert registry_view(registry).repository_exists("team/app")


@pytest.mark.parametrize("deleted", [False, True], ids=["live", "soft-deleted"])
@pytest.mark.parametrize("kind", ["organization", "user", "directory user"])
def test_no_account_is_created_over_a_namespace_holding_repositories(registry: Registry, identity: Identity,
                                                                     deleted: bool, kind: str) -> None:
    # A repository made before the rule, in a namespace that is no account.
    registry.save(Repository(name="ghost/img"))
    if deleted:
        registry.delete_repository("ghost/img")

    create = {
        "organization": lambda: identity.create_organization("ghost", "mallory"),
        "user": lambda: identity.create_user("ghost", "hash", "none"),
        # What a directory user's first login does (`Accounts._verify_ldap`).
        "directory user": lambda: identity.create_user("ghost", "", "none", source="ldap"),
    }[kind]
    with pytest.raises(Conflict) as refused:
        create()
    assert refused.value.detail == {"name": "ghost", "repositories": ["ghost/img"]}
    assert identity_view(registry).account("ghost") is None

    # A name that merely starts the same is another namespace.
    identity.create_organization("ghost-town", "mallory")
    identity.create_user("ghost.user", "hash", "none")
