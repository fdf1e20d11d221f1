"""The registry read model: what the pull path and access checks read.

Tables: repositories, tags, manifests (with their exact bytes), blob_links. They are
written by `projections.inline.apply` in the same transaction as the events that change them (the
recorder's `_insert_events` hook, see `dockyard.commands.persistence`), so a 201 is visible to
every later request (DESIGN.md rule 1); and `rebuild` replays the log through the same
`apply`, so dropping and rebuilding gives identical rows (rule 5).

`apply` reads only the events: no clock, no storage, no other table.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson

from dockyard.domain.blob_link import BlobLink
from dockyard.domain.manifest import Manifest
from dockyard.domain.repository import Repository
from dockyard.domain.tag import Tag
from dockyard.projections.dialect import Dialect

TABLES = ("repositories", "tags", "manifests", "blob_links")


def create_statements(d: Dialect) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS repositories (name TEXT PRIMARY KEY, visibility TEXT NOT NULL, "
        "description TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL, "
        "deleted INTEGER NOT NULL)",
        # Listings and search start a reader's few repositories from here (`projections.readable`).
        "CREATE INDEX IF NOT EXISTS repositories_visibility ON repositories (visibility)",
        "CREATE TABLE IF NOT EXISTS tags (repository TEXT NOT NULL, tag TEXT NOT NULL, "
        "digest TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, "
        "PRIMARY KEY (repository, tag))",
        "CREATE INDEX IF NOT EXISTS tags_digest ON tags (repository, digest)",
        f"CREATE TABLE IF NOT EXISTS manifests (repository TEXT NOT NULL, digest TEXT NOT NULL, "
        f"media_type TEXT NOT NULL, size {d.bigint} NOT NULL, body {d.blob} NOT NULL, subject TEXT, "
        f"artifact_type TEXT, annotations TEXT NOT NULL, pushed_at TEXT NOT NULL, "
        f"deleted INTEGER NOT NULL, PRIMARY KEY (repository, digest))",
        "CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repository, subject)",
        f"CREATE TABLE IF NOT EXISTS blob_links (repository TEXT NOT NULL, digest TEXT NOT NULL, "
        f"size {d.bigint} NOT NULL, linked_at TEXT NOT NULL, PRIMARY KEY (repository, digest))",
        "CREATE INDEX IF NOT EXISTS blob_links_digest ON blob_links (digest)",
    ]


def _ts(event: Any) -> str:
    return event.timestamp.isoformat()


def _repository_created(e: Repository.Created) -> tuple[str, dict[str, Any]]:
    return (
        "INSERT INTO repositories (name, visibility, description, created_at, created_by, deleted) "
        "VALUES (%(name)s, %(visibility)s, %(description)s, %(at)s, %(actor)s, 0) "
        "ON CONFLICT (name) DO UPDATE SET visibility = excluded.visibility, "
        "description = excluded.description, created_at = excluded.created_at, "
        "created_by = excluded.created_by, deleted = 0",
        {"name": e.name, "visibility": e.visibility, "description": e.description,
         "at": _ts(e), "actor": e.actor},
    )


def _repository_deleted(e: Any) -> tuple[str, dict[str, Any]]:
    return "UPDATE repositories SET deleted = 1 WHERE name = %(name)s", {"name": e.name}


def _repository_restored(e: Any) -> tuple[str, dict[str, Any]]:
    return "UPDATE repositories SET deleted = 0 WHERE name = %(name)s", {"name": e.name}


def _tag_moved(e: Any) -> tuple[str, dict[str, Any]]:
    return (
        "INSERT INTO tags (repository, tag, digest, updated_at, updated_by) "
        "VALUES (%(repository)s, %(tag)s, %(digest)s, %(at)s, %(actor)s) "
        "ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, "
        "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        {"repository": e.repository, "tag": e.name, "digest": e.digest, "at": _ts(e), "actor": e.actor},
    )


def _tag_deleted(e: Any) -> tuple[str, dict[str, Any]]:
    return (
        "DELETE FROM tags WHERE repository = %(repository)s AND tag = %(tag)s",
        {"repository": e.repository, "tag": e.name},
    )


def _manifest_pushed(e: Any) -> tuple[str, dict[str, Any]]:
    return (
        "INSERT INTO manifests (repository, digest, media_type, size, body, subject, artifact_type, "
        "annotations, pushed_at, deleted) VALUES (%(repository)s, %(digest)s, %(media_type)s, %(size)s, "
        "%(body)s, %(subject)s, %(artifact_type)s, %(annotations)s, %(at)s, 0) "
        "ON CONFLICT (repository, digest) DO UPDATE SET media_type = excluded.media_type, "
        "size = excluded.size, body = excluded.body, subject = excluded.subject, "
        "artifact_type = excluded.artifact_type, annotations = excluded.annotations, "
        "pushed_at = excluded.pushed_at, deleted = 0",
        {"repository": e.repository, "digest": e.digest, "media_type": e.media_type, "size": e.size,
         "body": base64.b64decode(e.payload), "subject": e.subject, "artifact_type": e.artifact_type,
         "annotations": orjson.dumps(e.annotations, option=orjson.OPT_SORT_KEYS).decode(),
         "at": _ts(e)},
    )


def _manifest_deleted(e: Any) -> tuple[str, dict[str, Any]]:
    return (
        "UPDATE manifests SET deleted = 1 WHERE repository = %(repository)s AND digest = %(digest)s",
        {"repository": e.repository, "digest": e.digest},
    )


def _blob_linked(e: Any) -> tuple[str, dict[str, Any]]:
    return (
        "INSERT INTO blob_links (repository, digest, size, linked_at) "
        "VALUES (%(repository)s, %(digest)s, %(size)s, %(at)s) "
        "ON CONFLICT (repository, digest) DO UPDATE SET size = excluded.size, linked_at = excluded.linked_at",
        {"repository": e.repository, "digest": e.digest, "size": e.size, "at": _ts(e)},
    )


def _blob_unlinked(e: Any) -> tuple[str, dict[str, Any]]:
    return (
        "DELETE FROM blob_links WHERE repository = %(repository)s AND digest = %(digest)s",
        {"repository": e.repository, "digest": e.digest},
    )


def _visibility_changed(e: Any) -> tuple[str, dict[str, Any]]:
    return "UPDATE repositories SET visibility = %(v)s WHERE name = %(name)s", {"name": e.name, "v": e.visibility}


def _description_changed(e: Any) -> tuple[str, dict[str, Any]]:
    return "UPDATE repositories SET description = %(v)s WHERE name = %(name)s", {"name": e.name, "v": e.description}


# Event class -> the statement it folds into. Events not listed change nothing here.
_FOLDS: dict[type, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    Repository.Created: _repository_created,
    Repository.Deleted: _repository_deleted,
    Repository.Restored: _repository_restored,
    Tag.Moved: _tag_moved,
    Tag.Deleted: _tag_deleted,
    Manifest.Pushed: _manifest_pushed,
    Manifest.Deleted: _manifest_deleted,
    BlobLink.Linked: _blob_linked,
    BlobLink.Unlinked: _blob_unlinked,
    Repository.VisibilityChanged: _visibility_changed,
    Repository.DescriptionChanged: _description_changed,
}




def _single(fold: Callable[[Any], tuple[str, dict[str, Any]]]) -> Callable[[Any], list[tuple[str, dict[str, Any]]]]:
    """Adapt a one-statement fold to the list-returning shape `projections.inline` applies."""
    return lambda event: [fold(event)]


FOLDS = {cls: _single(fold) for cls, fold in _FOLDS.items()}
