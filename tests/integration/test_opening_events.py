"""A new tag, manifest or blob link is one event (its `Moved`/`Pushed`/`Linked` at version 1);
logs written before, where each began with a bare `Created`, still load and project the same.

The same varied history (`test_rebuild.make_history`: pushes, moves, an index, a referrer,
deletes, a repository deleted and pushed to again, mounts) is made three times through the real
application, on SQLite and on PostgreSQL: in the old shape (every new aggregate made by calling
its class, as the code before did: `Created` then its first event, under the stored topics
`dockyard.Tag.Created`, ...), in the new shape, and mixed (every other new aggregate in the old
shape). The clock is fixed so the three runs' events carry the same times. The aggregates, the
registry view's rows, GC mark's live set and the audit trail (but for the old shape's `*.created`
rows) come out the same for all three, and rebuilding the registry view over the mixed log gives
the rows written inline.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.domain import CanCreateTimestamp

from dockyard.bootstrap import registry_on, views
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.blob_link import BlobLink
from dockyard.domain.manifest import Manifest
from dockyard.domain.manifest_format import OCI_MANIFEST
from dockyard.domain.tag import Tag
from dockyard.gc.mark import mark
from dockyard.projections import rebuild, registry_view
from dockyard.projections.audit_trail import COLUMNS, AuditTrail
from dockyard.projections.rebuild import rebuild_inline_online, rebuild_registry_view
from dockyard.projections.runner import ProjectionRunner
from dockyard.storage.filesystem import FilesystemStore
from tests.conftest import database_url_for
from tests.integration.test_rebuild import SIZES, image, make_history, sha256, upload

KINDS = {"dockyard.Tag": Tag, "dockyard.Manifest": Manifest, "dockyard.BlobLink": BlobLink}
OPENED = ("dockyard.Tag.Created", "dockyard.Manifest.Created", "dockyard.BlobLink.Created")
FIXED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event at the same instant, so runs of the same history carry the same times."""
    monkeypatch.setattr(CanCreateTimestamp, "create_timestamp", staticmethod(lambda: FIXED))


@pytest.fixture
def new_registry(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Makes registries, each on its own data directory and (PostgreSQL) database."""
    made: list[Registry] = []

    def make(name: str) -> tuple[Registry, Path]:
        data_dir = tmp_path / name
        app = registry_on(event_store_env(str(data_dir), database_url_for(backend, request)))
        made.append(app)
        return app, data_dir

    yield make
    for app in made:
        app.close()


def write_old_shape(monkeypatch: pytest.MonkeyPatch, every: int = 1) -> None:
    """From now on every `every`-th new tag, manifest or blob link is made as before this change:
    by calling its class, which records `Created`, then its first `Moved`/`Pushed`/`Linked`."""
    count = itertools.count()
    for cls in KINDS.values():
        unborn = cls.unborn

        def made(kind: Any, _unborn: Any = unborn, **kwargs: Any) -> Any:
            return kind(**kwargs) if next(count) % every == 0 else _unborn(**kwargs)

        monkeypatch.setattr(cls, "unborn", classmethod(made))


def topics(app: Registry) -> list[str]:
    return [n.topic for n in app.recorder.select_notifications(0, 100_000)]


def aggregates(app: Registry) -> dict[Any, dict[str, Any]]:
    """Every tag, manifest and blob link in the log, loaded: its class and its own attributes."""
    ids = {n.originator_id for n in app.recorder.select_notifications(0, 100_000)
           if n.topic.rsplit(".", 1)[0] in KINDS}
    loaded = {}
    for aggregate_id in ids:
        aggregate = app.repository.get(aggregate_id)
        loaded[aggregate_id] = {"class": type(aggregate).__name__, "created_on": aggregate.created_on,
                                **{k: v for k, v in vars(aggregate).items() if not k.startswith("_")}}
    return loaded


def view_rows(app: Registry) -> dict[str, list[tuple[Any, ...]]]:
    return {table: views(app)[0].table_rows(table) for table in registry_view.TABLES}


def live_sets(app: Registry) -> dict[bool, dict[str, list[tuple[str, str, str]]]]:
    """GC mark's live blobs at the log's head, with each holder's repository, manifest and reason
    (not its position: the old shape's positions are further along)."""
    marker = mark(app.recorder, app.mapper, app.recorder.max_notification_id() or 0)
    return {policy: {digest: sorted((h.repository, h.manifest, h.via) for h in holders)
                     for digest, holders in marker.live(delete_untagged=policy).items()}
            for policy in (False, True)}


def audit_rows(app: Registry) -> list[dict[str, Any]]:
    """The audit trail of the registry's objects (repositories, tags, manifests, blob links), in
    log order, without positions. (Accounts' and tokens' rows are left out: the history gives a
    token an expiry read from the wall clock.)"""
    ProjectionRunner(app, AuditTrail()).catch_up()
    with app.dialect.reading(app.recorder.datastore) as cursor:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events ORDER BY position")
        rows = [dict(r) for r in cursor.fetchall()]
    kept = ("repository.", "tag.", "manifest.", "blob_link.")
    return [{k: v for k, v in r.items() if k != "position"} for r in rows if r["action"].startswith(kept)]


@pytest.mark.usefixtures("fixed_clock")
def test_old_new_and_mixed_logs_load_and_project_the_same(new_registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The history in the new shape: no bare `Created` for a tag, manifest or blob link.
    new, new_dir = new_registry("new")
    make_history(new, new_dir)
    assert not set(OPENED) & set(topics(new))

    # The same history as the code before this change wrote it.
    with monkeypatch.context() as patch:
        write_old_shape(patch)
        old, old_dir = new_registry("old")
        make_history(old, old_dir)
    old_topics = topics(old)
    created = sum(old_topics.count(t) for t in OPENED)
    assert created > 20 and all(t in old_topics for t in OPENED)
    # Each `Created` was an event more, and the rest of the log is the same events in the same order.
    assert len(old_topics) == len(topics(new)) + created
    assert [t for t in old_topics if t not in OPENED] == topics(new)

    # And mixed: every other new aggregate in the old shape.
    with monkeypatch.context() as patch:
        write_old_shape(patch, every=2)
        mixed, mixed_dir = new_registry("mixed")
        make_history(mixed, mixed_dir)
    mixed_created = sum(topics(mixed).count(t) for t in OPENED)
    assert 0 < mixed_created < created

    # The same aggregates load from all three logs (their versions aside), ...
    loaded = aggregates(new)
    assert len(loaded) == created
    assert aggregates(old) == loaded
    assert aggregates(mixed) == loaded
    # ... the registry view holds the same rows, ...
    rows = view_rows(new)
    assert all(rows.values())
    assert view_rows(old) == rows
    assert view_rows(mixed) == rows
    # ... GC marks the same blobs live, for the same reasons, ...
    live = live_sets(new)
    assert live[False] and live[True]
    assert live_sets(old) == live
    assert live_sets(mixed) == live
    # ... and the audit trail is the same but for the old shape's `*.created` rows (what an
    # auditor no longer sees for a new object: its first `tag.moved`, `manifest.pushed` or
    # `blob_link.linked` says the same, by the same actor, from the same address).
    trail = audit_rows(new)
    opened = ("tag.created", "manifest.created", "blob_link.created")
    assert not [r for r in trail if r["action"] in opened]
    old_trail = audit_rows(old)
    assert len([r for r in old_trail if r["action"] in opened]) == created
    assert [r for r in old_trail if r["action"] not in opened] == trail
    assert [r for r in audit_rows(mixed) if r["action"] not in opened] == trail
    # A new tag's first move names no previous digest, as its first move after `Created` did.
    first_moves = [orjson.loads(r["details"])["previous"] for r in trail if r["action"] == "tag.moved"]
    assert None in first_moves

    # Rebuilding the registry view over the mixed log gives the rows written inline, whether
    # by the replay under the lock or the online rebuild, and in pages that split the old pairs.
    with mixed.recorder.datastore.transaction(commit=True) as cursor:
        for table in registry_view.TABLES:
            cursor.execute(f"DELETE FROM {table}")
    assert rebuild_registry_view(mixed) == len(topics(mixed))
    assert view_rows(mixed) == rows
    monkeypatch.setattr(rebuild, "PAGE", 3)
    rebuild_registry_view(mixed)
    assert view_rows(mixed) == rows
    rebuild_inline_online(mixed)
    assert view_rows(mixed) == rows


def test_an_old_aggregate_takes_new_events_as_before(new_registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # An image pushed by the code before: its tag, manifest and links each began with `Created`.
    app, data_dir = new_registry("app")
    Identity(app, *views(app)).create_organization("lib", "admin")
    uploads = UploadSessions(FilesystemStore(str(data_dir / "blobs")), app, views(app)[0])
    repo = "lib/app"
    with monkeypatch.context() as patch:
        write_old_shape(patch)
        config, layer = upload(uploads, repo, b"{}"), upload(uploads, repo, b"layer one")
        first = image(config, layer)
        app.push_manifest(repo, "latest", OCI_MANIFEST, first)
    tag_id, manifest_id = Tag.create_id(repo, "latest"), Manifest.create_id(repo, sha256(first))
    link_id = BlobLink.create_id(repo, layer)

    def log(aggregate_id: Any) -> list[tuple[str, int]]:
        return [(type(e).__name__, e.originator_version) for e in app.repository.event_store.get(aggregate_id)]

    assert log(tag_id) == [("Created", 1), ("Moved", 2)]
    assert log(manifest_id) == [("Created", 1), ("Pushed", 2)]
    assert log(link_id) == [("Created", 1), ("Linked", 2)]

    # Today's code moves the tag, deletes the manifest and pushes it again, unlinks the layer and
    # links it again: each a next version of the old log.
    second = image(config)
    app.push_manifest(repo, "latest", OCI_MANIFEST, second)
    app.delete_manifest(repo, sha256(first))
    app.push_manifest(repo, "again", OCI_MANIFEST, first)
    app.delete_blob(repo, layer)
    upload(uploads, repo, b"layer one")
    assert log(tag_id) == [("Created", 1), ("Moved", 2), ("Moved", 3)]
    assert log(manifest_id) == [("Created", 1), ("Pushed", 2), ("Deleted", 3), ("Pushed", 4)]
    assert log(link_id) == [("Created", 1), ("Linked", 2), ("Unlinked", 3), ("Linked", 4)]
    assert app.repository.get(tag_id).digest == sha256(second)
    assert app.repository.get(manifest_id).present and app.repository.get(link_id).linked
    # The new tag `again` is one event.
    assert log(Tag.create_id(repo, "again")) == [("Moved", 1)]


@pytest.fixture
def two_processes(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Registry, Registry]]:
    """Two registries on one database, as two server processes."""
    url = database_url_for(backend, request)
    apps = [registry_on(event_store_env(str(tmp_path), url)) for _ in range(2)]
    yield apps[0], apps[1]
    for app in apps:
        app.close()


def test_two_processes_making_the_same_tag_conflict_on_version_1(two_processes: tuple[Registry, Registry],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Both load the tag (none yet) before either saves (a barrier holds them there): both write
    its first `Moved` at version 1, the second save conflicts, and its command is re-run on top."""
    ours, theirs = two_processes
    Identity(ours, *views(ours)).create_organization("lib", "admin")
    repo = "lib/race"
    for data in (b"{}", b"ours", b"theirs"):
        SIZES[sha256(data)] = len(data)
        ours.link_blob(repo, sha256(data), len(data))
    bodies = {"ours": image(sha256(b"{}"), sha256(b"ours")), "theirs": image(sha256(b"{}"), sha256(b"theirs"))}
    barrier = threading.Barrier(2)
    tag_loads = {"ours": 0, "theirs": 0}
    for name, app in (("ours", ours), ("theirs", theirs)):
        def load(cls: type, aggregate_id: Any, _name: str = name, _real: Any = app.load) -> Any:
            aggregate = _real(cls, aggregate_id)
            if cls is Tag:
                tag_loads[_name] += 1
                if tag_loads[_name] == 1:
                    barrier.wait(timeout=30)
            return aggregate

        monkeypatch.setattr(app, "load", load)
    outcomes: dict[str, BaseException | None] = {}

    def push(name: str, app: Registry) -> None:
        try:
            app.push_manifest(repo, "latest", OCI_MANIFEST, bodies[name])
            outcomes[name] = None
        except BaseException as exc:  # reported below
            outcomes[name] = exc

    threads = [threading.Thread(target=push, args=(n, a)) for n, a in (("ours", ours), ("theirs", theirs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # Both pushes went through; one of them loaded the tag again after its conflict.
    assert outcomes == {"ours": None, "theirs": None}
    assert sorted(tag_loads.values()) == [1, 2]
    events = list(ours.repository.event_store.get(Tag.create_id(repo, "latest")))
    assert [(type(e).__name__, e.originator_version) for e in events] == [("Moved", 1), ("Moved", 2)]
    assert events[0].previous is None and events[1].previous == events[0].digest != events[1].digest
    assert views(theirs)[0].tag_digest(repo, "latest") == events[1].digest
    # The loser's manifest, rolled back with its conflicting save, was pushed by the re-run.
    for body in bodies.values():
        assert views(ours)[0].manifest_by_digest(repo, sha256(body)) is not None
