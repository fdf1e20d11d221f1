"""The aggregates: who-and-where on every event, stable stored topics, and the small rules
(a tag re-pointed at the same digest records nothing, linking twice is a no-op, ...)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import orjson
import pytest
from eventsourcing.domain import CanMutateAggregate, OriginatorVersionError, ProgrammingError
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

import dockyard.domain
from dockyard.commands.persistence import OrjsonTranscoder, RegistryMapper
from dockyard.domain.actor import SYSTEM, Actor, current_actor
from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.blob_link import BlobLink
from dockyard.domain.errors import InvalidRequest
from dockyard.domain.manifest import Manifest
from dockyard.domain.repository import PUBLIC, Repository
from dockyard.domain.tag import Tag

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

# Every stored event topic. A stored event's name never changes (STYLE.md section 3): renaming
# or moving a class must keep its topic, and a new event class must be added here on purpose.
STORED_TOPICS = {
    "dockyard.GcRun": ["Abandoned", "BlobCollected", "Created", "Finished", "Started"],
    "dockyard.GcSettings": ["Changed", "Created"],
    "dockyard.GeneralSettings": ["Created", "DomainNameChanged"],
    "dockyard.StorageSettings": ["Changed", "Created"],
    "dockyard.AccessToken": ["Created", "Revoked"],
    "dockyard.AuditChain": ["Created"],
    "dockyard.AuthSettings": ["Changed", "Created"],
    "dockyard.BlobLink": ["Created", "Linked", "Unlinked"],
    "dockyard.LoginGuard": ["Created", "Throttled"],
    "dockyard.Manifest": ["Created", "Deleted", "Pushed"],
    "dockyard.Organization": ["Created"],
    "dockyard.RefreshTokenFamily": ["Created", "Ended", "Rotated"],
    "dockyard.Repository": ["Created", "Deleted", "DescriptionChanged", "Restored", "TeamAccessGranted",
                            "TeamAccessRevoked", "VisibilityChanged"],
    "dockyard.Tag": ["Created", "Deleted", "Moved"],
    "dockyard.Team": ["Created", "Deleted", "MemberAdded", "MemberRemoved", "Recreated"],
    "dockyard.User": ["Activated", "Created", "Deactivated", "PasswordChanged", "RoleChanged"],
    "dockyard.Webhook": ["Created", "Deleted"],
}


@pytest.fixture
def as_gordon() -> Iterator[Actor]:
    """Act as the API does for a request by gordon, from 10.0.0.7, with access token tok-1."""
    actor = Actor("gordon", "10.0.0.7", "tok-1")
    token = current_actor.set(actor)
    yield actor
    current_actor.reset(token)


def aggregate_classes() -> list[type[RegistryAggregate]]:
    """Every aggregate defined in `dockyard.domain`."""
    found = []
    for info in pkgutil.iter_modules(dockyard.domain.__path__):
        module = importlib.import_module(f"dockyard.domain.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, RegistryAggregate) and obj is not RegistryAggregate
                    and obj.__module__ == module.__name__):
                found.append(obj)
    return found


def event_classes(cls: type) -> dict[str, type]:
    return {name: obj for name, obj in vars(cls).items()
            if isinstance(obj, type) and issubclass(obj, CanMutateAggregate) and name != "Event"}


# -- topics --------------------------------------------------------------------------------------


def test_every_event_has_its_stable_explicit_topic() -> None:
    # The aggregates found in the domain package, and their events, are exactly the listed ones.
    found = {cls.TOPIC: sorted(event_classes(cls)) for cls in aggregate_classes()}
    assert found == STORED_TOPICS

    for cls in aggregate_classes():
        # The aggregate's topic is explicit, not derived from its module path...
        assert cls.__dict__["TOPIC"] == get_topic(cls)
        assert resolve_topic(cls.TOPIC) is cls
        # ...and each event's is `<aggregate topic>.<event name>`, and resolves back to the class.
        for name, event_cls in event_classes(cls).items():
            assert event_cls.TOPIC == f"{cls.TOPIC}.{name}"
            assert get_topic(event_cls) == event_cls.TOPIC
            assert resolve_topic(event_cls.TOPIC) is event_cls
            # Every event says who and from where.
            assert issubclass(event_cls, RegistryAggregate.Event)


def test_stored_events_carry_the_explicit_topic() -> None:
    # What reaches the event store names the explicit topic, not `module:Class`: a new tag's
    # log is one `Moved` at version 1...
    mapper = Mapper(transcoder=OrjsonTranscoder())
    tag = Tag.unborn(repository="lib/app", name="latest")
    tag.point_at(D1)
    stored = [mapper.to_stored_event(e) for e in tag.collect_events()]
    assert [(s.topic, s.originator_version) for s in stored] == [("dockyard.Tag.Moved", 1)]
    # ...with the very fields a later `Moved` stores (no `originator_topic`, as `Created` has).
    assert "originator_topic" not in orjson.loads(stored[0].state)

    # The old shape, which logs written before hold, under the same topics.
    old = Tag(repository="lib/app", name="latest")
    old.point_at(D1)
    stored = [mapper.to_stored_event(e) for e in old.collect_events()]
    assert [s.topic for s in stored] == ["dockyard.Tag.Created", "dockyard.Tag.Moved"]



def test_a_manifest_pushed_before_by_digest_existed_reads_as_pushed_by_tag() -> None:
    # Class version 2 added `by_digest`; a version 1 event (stored without it) comes back False,
    # so a webhook never tells of an old push by tag twice.
    mapper = RegistryMapper(transcoder=OrjsonTranscoder())
    manifest = Manifest(repository="lib/app", digest=D2)
    manifest.push(repository="lib/app", digest=D2, media_type="application/vnd.oci.image.manifest.v1+json",
                  size=2, payload=Manifest.encode_payload(b"{}"), blobs=[], manifests=[], subject=None,
                  artifact_type=None, annotations={}, by_digest=True)
    stored = mapper.to_stored_event(manifest.collect_events()[1])
    assert mapper.to_domain_event(stored).by_digest is True
    state = orjson.loads(stored.state)
    del state["by_digest"], state["class_version"]
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state))
    assert mapper.to_domain_event(old).by_digest is False


# -- who and from where --------------------------------------------------------------------------


def test_events_carry_actor_address_and_token(as_gordon: Actor) -> None:
    # gordon pushes: a tag is set, a blob linked, a manifest pushed and deleted.
    tag = Tag.unborn(repository="lib/app", name="latest")
    tag.point_at(D1)
    link = BlobLink.unborn(repository="lib/app", digest=D1)
    link.link(10, "upload")
    manifest = Manifest.unborn(repository="lib/app", digest=D2)
    manifest.push(repository="lib/app", digest=D2, media_type="application/vnd.oci.image.manifest.v1+json",
                  size=2, payload=Manifest.encode_payload(b"{}"), blobs=[D1], manifests=[], subject=None,
                  artifact_type=None, annotations={})
    manifest.delete()

    # Every one of their events says gordon, his address and his token.
    events = [*tag.collect_events(), *link.collect_events(), *manifest.collect_events()]
    assert len(events) == 4
    for e in events:
        assert (e.actor, e.client_address, e.token) == ("gordon", "10.0.0.7", "tok-1")


def test_without_a_request_the_actor_is_system() -> None:
    # The CLI and background jobs act as `system` from `local`, with no token.
    assert current_actor.get() == SYSTEM
    repo = Repository(name="lib/app")
    (created,) = repo.collect_events()
    assert (created.actor, created.client_address, created.token) == ("system", "local", None)


def test_actor_is_fixed_when_the_event_happens() -> None:
    # An event triggered while gordon acts...
    token = current_actor.set(Actor("gordon", "10.0.0.7"))
    try:
        tag = Tag.unborn(repository="lib/app", name="latest")
        tag.point_at(D1)
    finally:
        current_actor.reset(token)

    # ...still says gordon after the request ended, and after a round trip through the stored
    # form read back while someone else acts (decoding must not stamp the reader).
    mapper = RegistryMapper(transcoder=OrjsonTranscoder())
    token = current_actor.set(Actor("auditor", "192.0.2.1", "tok-9"))
    try:
        for e in tag.collect_events():
            assert e.actor == "gordon"
            decoded = mapper.to_domain_event(mapper.to_stored_event(e))
            assert type(decoded) is type(e)
            assert (decoded.actor, decoded.client_address, decoded.token) == ("gordon", "10.0.0.7", None)
            assert decoded.timestamp == e.timestamp
            assert decoded.originator_id == e.originator_id
    finally:
        current_actor.reset(token)


# -- ids -----------------------------------------------------------------------------------------


def test_ids_come_from_names() -> None:
    # The same names give the same id, so creating twice is a version conflict in the store.
    assert Tag.create_id("lib/app", "latest") == Tag.unborn(repository="lib/app", name="latest").id
    assert Tag.create_id("lib/app", "latest") == Tag(repository="lib/app", name="latest").id
    assert Manifest.create_id("lib/app", D1) == Manifest.unborn(repository="lib/app", digest=D1).id
    assert BlobLink.create_id("lib/app", D1) == BlobLink.unborn(repository="lib/app", digest=D1).id
    assert Tag.create_id("lib/app", "latest") == name_id("tag", "lib/app", "latest")
    # Kinds and the split between parts keep ids apart.
    assert Tag.create_id("lib/app", D1) != Manifest.create_id("lib/app", D1) != BlobLink.create_id("lib/app", D1)
    assert name_id("tag", "ab", "c") != name_id("tag", "a", "bc")
    assert Repository.create_id("lib/app") == Repository(name="lib/app").id


# -- Tag -----------------------------------------------------------------------------------------


def test_tag_point_at_records_moves_with_the_previous_digest() -> None:
    tag = Tag.unborn(repository="lib/app", name="latest")
    assert (tag.digest, tag.version, tag.pending_events) == (None, 0, [])

    # The first push points it; the event names no previous digest.
    assert tag.point_at(D1) is True
    # Re-pushing the same digest records nothing.
    assert tag.point_at(D1) is False
    # Moving it names where it was.
    assert tag.point_at(D2) is True
    assert tag.digest == D2

    first, moved = tag.collect_events()
    assert isinstance(first, Tag.Moved) and first.originator_version == 1
    assert (first.digest, first.previous) == (D1, None)
    assert (moved.digest, moved.previous) == (D2, D1)
    assert (moved.repository, moved.name) == ("lib/app", "latest")


def test_tag_delete_keeps_the_digest_and_is_idempotent() -> None:
    tag = Tag.unborn(repository="lib/app", name="latest")
    tag.point_at(D1)
    tag.collect_events()

    tag.delete()
    tag.delete()  # already gone: nothing more
    (deleted,) = tag.collect_events()
    assert isinstance(deleted, Tag.Deleted)
    assert deleted.digest == D1
    assert tag.digest is None

    # A deleted tag can be pushed again.
    assert tag.point_at(D1) is True
    (moved,) = tag.collect_events()
    assert moved.previous is None


def replay(events: list) -> object:
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


def test_tag_replays_to_the_same_state() -> None:
    # Reconstructing from its events gives the same tag (what loading from the store does),
    # whether its log opens with `Moved` or, as logs written before did, with `Created`.
    for tag in (Tag.unborn(repository="lib/app", name="latest"), Tag(repository="lib/app", name="latest")):
        tag.point_at(D1)
        tag.point_at(D2)
        replayed = replay(tag.collect_events())
        assert isinstance(replayed, Tag)
        assert vars(replayed) == vars(tag)
        assert (replayed.digest, replayed.repository, replayed.name) == (D2, "lib/app", "latest")
    assert replayed.version == 3 and tag.version == 3  # the old shape: Created, Moved, Moved


def test_an_unborn_aggregate_records_only_its_opening_event_first() -> None:
    # Unborn: nothing recorded, and nothing to record for what changes nothing.
    tag = Tag.unborn(repository="lib/app", name="latest")
    link = BlobLink.unborn(repository="lib/app", digest=D1)
    manifest = Manifest.unborn(repository="lib/app", digest=D2)
    tag.delete()
    link.unlink()
    manifest.delete()
    assert tag.collect_events() == link.collect_events() == manifest.collect_events() == []

    # Any other first event is refused: its log could not be replayed.
    with pytest.raises(ProgrammingError):
        tag._deleted("lib/app", "latest", D1)
    # Only aggregates with an opening event can be unborn.
    with pytest.raises(ProgrammingError):
        Repository.unborn(name="lib/app")

    # An opening event replays only as version 1 of a log.
    tag.point_at(D1)
    tag.point_at(D2)
    _, second = tag.collect_events()
    with pytest.raises(OriginatorVersionError):
        second.mutate(None)


# -- BlobLink ------------------------------------------------------------------------------------


def test_blob_link_twice_is_a_no_op() -> None:
    link = BlobLink.unborn(repository="lib/app", digest=D1)
    assert link.linked is False

    link.link(1234, "upload")
    link.link(1234, "mount:lib/other")  # already linked: nothing recorded
    (linked,) = link.collect_events()
    assert isinstance(linked, BlobLink.Linked)
    assert (linked.repository, linked.digest, linked.size, linked.source) == ("lib/app", D1, 1234, "upload")
    assert link.linked and link.size == 1234


def test_blob_unlink_and_link_again() -> None:
    for link, opening in ((BlobLink.unborn(repository="lib/app", digest=D1), []),
                          (BlobLink(repository="lib/app", digest=D1), ["Created"])):  # the old shape
        link.unlink()  # never linked: nothing
        link.link(5, "upload")
        link.unlink()
        link.unlink()  # already unlinked: nothing
        link.link(5, "mount:lib/base")
        events = link.collect_events()
        assert [type(e).__name__ for e in events] == [*opening, "Linked", "Unlinked", "Linked"]
        assert link.linked
        assert vars(replay(events)) == vars(link)


# -- Manifest ------------------------------------------------------------------------------------


def test_manifest_push_carries_bytes_and_references() -> None:
    body = b'{"schemaVersion":2,  "odd": "spacing"}'
    manifest = Manifest.unborn(repository="lib/app", digest=D2)
    assert manifest.present is False

    manifest.push(repository="lib/app", digest=D2, media_type="application/vnd.oci.image.manifest.v1+json",
                  size=len(body), payload=Manifest.encode_payload(body), blobs=[D1], manifests=[],
                  subject=D1, artifact_type="application/vnd.example", annotations={"k": "v"})
    assert manifest.present is True

    (pushed,) = manifest.collect_events()
    # The event holds the exact bytes (base64) and every fact downstream needs.
    assert Manifest.decode_payload(pushed.payload) == body
    assert (pushed.digest, pushed.size, pushed.blobs, pushed.subject) == (D2, len(body), [D1], D1)
    assert (pushed.artifact_type, pushed.annotations) == ("application/vnd.example", {"k": "v"})


def test_manifest_delete_and_push_again() -> None:
    args = dict(repository="lib/app", digest=D2, media_type="m", size=2, payload=Manifest.encode_payload(b"{}"),
                blobs=[], manifests=[], subject=None, artifact_type=None, annotations={})
    for manifest, opening in ((Manifest.unborn(repository="lib/app", digest=D2), []),
                              (Manifest(repository="lib/app", digest=D2), ["Created"])):  # the old shape
        manifest.push(**args)
        manifest.delete()
        assert manifest.present is False
        manifest.push(**args)
        assert manifest.present is True
        events = manifest.collect_events()
        assert [type(e).__name__ for e in events] == [*opening, "Pushed", "Deleted", "Pushed"]
        assert vars(replay(events)) == vars(manifest)


def test_payload_round_trips_any_bytes() -> None:
    for body in (b"", b"\x00\xff binary", "{\"\u00e9\": 1}".encode()):
        assert Manifest.decode_payload(Manifest.encode_payload(body)) == body


# -- Repository ----------------------------------------------------------------------------------


def test_repository_changes_record_only_real_changes() -> None:
    repo = Repository(name="engineering/barca")
    assert (repo.visibility, repo.deleted, repo.namespace) == ("private", False, "engineering")

    repo.set_visibility("private")  # unchanged: nothing
    repo.set_visibility(PUBLIC)
    repo.set_description("")  # unchanged: nothing
    repo.set_description("FC Barcelona")
    repo.grant("core", "read-only")
    repo.grant("core", "read-only")  # unchanged: nothing
    assert repo.revoke("frontend") is False
    assert repo.revoke("core") is True
    repo.grant("frontend", "read-write")
    repo.delete()  # revokes the remaining grant first
    repo.delete()  # already deleted: nothing
    repo.recreate()  # as a new repository: private, no description, no grants

    kinds = [type(e).__name__ for e in repo.collect_events()]
    assert kinds == ["Created", "VisibilityChanged", "DescriptionChanged", "TeamAccessGranted",
                     "TeamAccessRevoked", "TeamAccessGranted", "TeamAccessRevoked", "Deleted", "Restored",
                     "VisibilityChanged", "DescriptionChanged"]
    assert (repo.visibility, repo.description, repo.team_access, repo.deleted) == ("private", "", {}, False)
    repo.recreate(PUBLIC, "again")  # live already: only the settings change
    assert [type(e).__name__ for e in repo.collect_events()] == ["VisibilityChanged", "DescriptionChanged"]


def test_repository_refuses_bad_visibility_and_levels() -> None:
    repo = Repository(name="engineering/barca")
    with pytest.raises(InvalidRequest):
        repo.set_visibility("secret")
    with pytest.raises(InvalidRequest):
        repo.grant("core", "none")
    assert [type(e).__name__ for e in repo.collect_events()] == ["Created"]


# -- refresh-token families ----------------------------------------------------------------------


def test_a_refresh_token_family_rotates_and_ends_on_reuse() -> None:
    from dockyard.domain.refresh_token import RefreshTokenFamily

    family = RefreshTokenFamily(family_id="f1", user="kara", token_id=None, credentials_epoch=2)
    # The token of generation 0 rotates the family to generation 1.
    assert family.use(0, credentials_epoch=2) and family.generation == 1
    # Credentials changed since the family started: refused, nothing recorded (the epoch decides).
    assert not family.use(1, credentials_epoch=3) and not family.ended
    # The spent token of generation 0 again: reuse, the family ends; then nothing refreshes it.
    assert not family.use(0, credentials_epoch=2) and family.ended
    assert not family.use(1, credentials_epoch=2)
    names = [type(e).__name__ for e in family.collect_events()]
    assert names == ["Created", "Rotated", "Ended"]
