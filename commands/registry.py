"""The `Registry` application: every write to the registry is a method here.

Shape of eventsourcing's `examples/bankaccounts/application.py`: load aggregates by ids derived
from names, call them, `save()` everything a request changes in one transaction. A version
conflict (two requests changed the same aggregate) re-runs the whole command, a bounded number
of times. Reads for checks go to the registry read model, which is written in the event
transaction and so is never behind a command that has returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from dockyard.domain.access import namespace_of
from dockyard.domain.aggregate import RegistryAggregate
from dockyard.domain.blob_link import BlobLink
from dockyard.domain.digest import Digest, is_digest
from dockyard.domain.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    TooManyRequests,
)
from dockyard.domain.manifest import Manifest
from dockyard.domain.manifest_format import ParsedManifest, parse_manifest
from dockyard.domain.names import check_repository_name, check_tag
from dockyard.domain.repository import Repository
from dockyard.domain.tag import Tag
from dockyard.projections.dialect import POSTGRES, SQLITE, Dialect
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.registry_queries import RegistryQueries

A = TypeVar("A")
MAX_ATTEMPTS = 8


class Registry(Application[UUID]):
    """The registry's write model. `name` fixes the PostgreSQL table (`registry_events`)."""

    name = "Registry"
    # The read models its checks read (namespaces, a repository's contents, what a manifest
    # refers to): handed in by `read_through`, never built here.
    _registry_view: RegistryQueries
    _identity_view: IdentityQueries

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        recorder = self.recorder
        if not isinstance(recorder, SQLiteApplicationRecorder | PostgresApplicationRecorder):
            raise TypeError(f"unsupported event store recorder: {type(recorder).__name__}")
        # The database of the log, which also holds the read models and the secrets.
        self.datastore: SQLiteDatastore | PostgresDatastore = recorder.datastore
        self.dialect: Dialect = POSTGRES if isinstance(recorder, PostgresApplicationRecorder) else SQLITE

    def read_through(self, registry_view: RegistryQueries, identity_view: IdentityQueries) -> Registry:
        """Take the query objects the checks read (`dockyard.bootstrap` builds them and hands them
        in right after construction: they read this application's own database, which exists only
        once the application does). Returns the application."""
        self._registry_view, self._identity_view = registry_view, identity_view
        return self

    # -- plumbing ------------------------------------------------------------------------------

    def _record(self, processing_event: Any) -> Any:
        # Hand the domain events to the recorder so it folds them into the read model in the
        # same transaction (see dockyard.commands.persistence).
        processing_event.saved_kwargs["view_events"] = list(processing_event.events)
        return super()._record(processing_event)

    def retrying(self, command: Callable[[], A]) -> A:
        """Run `command` (which loads, decides and saves) again on a version conflict."""
        for _attempt in range(MAX_ATTEMPTS):
            try:
                return command()
            except IntegrityError:
                continue
        raise TooManyRequests("too many concurrent changes to the same object; retry")

    def load(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def check_namespace(self, repository: str) -> None:
        """Refuse (`NameUnknown`) to create `repository` unless its namespace is an account.

        A repository lives in the namespace of an existing user or organisation (DESIGN.md,
        "Access model"): were a push to create `ghost/img` with no account `ghost`, whoever
        created `ghost` later would own it. Accounts are never deleted, so once this check
        passes it holds; `Identity` refuses the other direction (an account over repositories).
        """
        namespace = namespace_of(repository)
        if not namespace:
            raise NameUnknown(f"repository {repository!r} has no namespace: name it <user or organisation>/"
                              f"{repository}", {"repository": repository})
        if self._identity_view.account(namespace) is None:
            raise NameUnknown(f"no user or organisation {namespace!r}: an admin creates the organisation "
                              f"first (POST /api/v0/accounts)", {"namespace": namespace})

    def check_may_push(self, repository: str) -> None:
        """Before an upload starts: a live repository takes pushes; a new one needs its namespace."""
        if not self._registry_view.repository_exists(repository):
            self.check_namespace(repository)

    def _live_repository(self, name: str) -> list[Repository]:
        """The aggregates to save so that repository `name` exists and is live (created on first
        push, in an account's namespace only: `check_namespace`)."""
        repo = self.load(Repository, Repository.create_id(name))
        if repo is None:
            self.check_namespace(name)
            return [Repository(name=name)]
        if repo.deleted:
            self.check_namespace(name)
            repo.recreate()
            return [repo]
        return []

    def delete_repository(self, repository: str) -> bool:
        """Soft delete `repository` and all it holds, in one transaction: each tag, manifest and
        blob link gets its own `Deleted`/`Unlinked` event, and team grants are revoked. A later
        push starts an empty private repository; GC finds the old blobs unreferenced. False if
        there is no such live repository."""

        def command() -> bool:
            repo = self.load(Repository, Repository.create_id(repository))
            if repo is None or repo.deleted:
                return False
            tags, manifests, blobs = self._registry_view.contents(repository)
            changed: list[Any] = []
            removals: list[tuple[type[RegistryAggregate], list[str], Callable[[Any], object]]] = [
                (Tag, tags, Tag.delete), (Manifest, manifests, Manifest.delete), (BlobLink, blobs, BlobLink.unlink)]
            for cls, keys, remove in removals:
                for key in keys:
                    aggregate = self.load(cls, cls.create_id(repository, key))
                    if aggregate is not None:
                        remove(aggregate)  # each a no-op when there is nothing to remove
                        if aggregate.pending_events:
                            changed.append(aggregate)
            repo.delete()
            self.save(repo, *changed)
            return True

        return self.retrying(command)

    # -- blobs ---------------------------------------------------------------------------------

    def link_blob(self, repository: str, digest: str, size: int, source: str = "upload",
                  stored: Callable[[], bool] | None = None) -> None:
        """Make a stored blob pullable from `repository` (after an upload or a mount).

        `stored` says whether the blob's bytes are in storage; it is asked inside the event
        transaction, under the log's write lock, so a GC sweep (which deletes bytes under the
        same lock) cannot remove them between the check and the link. False raises
        `BlobUploadUnknown`: the client starts the upload again.
        """
        check_repository_name(repository)

        def fence(dialect: Dialect, cursor: Any) -> None:
            if stored is not None and not stored():
                raise BlobUploadUnknown("the blob was removed by garbage collection; upload it again",
                                        {"digest": digest})

        def command() -> None:
            link = self.load(BlobLink, BlobLink.create_id(repository, digest)) or BlobLink.unborn(
                repository=repository, digest=digest)
            link.link(size, source)
            self.save(*self._live_repository(repository), link, fence=fence if stored is not None else None)

        self.retrying(command)

    def delete_blob(self, repository: str, digest: str) -> None:
        """Unlink a blob from `repository` (its bytes go when GC finds nothing references them)."""
        Digest.parse(digest)

        def command() -> None:
            link = self.load(BlobLink, BlobLink.create_id(repository, digest))
            if link is None or not link.linked:
                raise BlobUnknown(detail={"digest": digest})
            link.unlink()
            self.save(link)

        self.retrying(command)

    # -- manifests and tags --------------------------------------------------------------------

    def push_manifest(self, repository: str, reference: str, content_type: str | None,
                      body: bytes) -> ParsedManifest:
        """Store a manifest byte for byte under its digest, and move the tag if `reference` is one.

        Raises `ManifestInvalid`/`ManifestTooLarge` for a bad manifest, `DigestInvalid` when a
        digest reference does not match the bytes, `ManifestBlobUnknown` when it references
        blobs or manifests the repository does not have.
        """
        check_repository_name(repository)
        tag = None if is_digest(reference) else check_tag(reference)
        by_digest = Digest.parse(reference) if tag is None else None
        parsed = parse_manifest(body, content_type, by_digest.algorithm if by_digest else "sha256")
        if by_digest is not None and str(by_digest) != parsed.digest:
            raise DigestInvalid("manifest digest does not match the reference",
                                {"reference": reference, "digest": parsed.digest})

        def check_references(dialect: Dialect, cursor: Any | None = None) -> None:
            missing = self._registry_view.unlinked_blobs(repository, list(parsed.blobs), cursor)
            missing += self._registry_view.missing_manifests(repository, list(parsed.manifests), cursor)
            if missing:
                raise ManifestBlobUnknown(detail={"missing": missing})

        # Checked first without the write lock (a cheap refusal), then again inside the event
        # transaction as its fence: a GC sweep unlinks and deletes under that lock, so what
        # this push acknowledges is never a manifest whose blobs were just swept (rule 4).
        check_references(self.dialect)
        # Each descriptor declares the size of what it names (content-addressed: that size never
        # changes, so this check needs no fence).
        stored = self._registry_view.linked_blob_sizes(repository, list(parsed.blobs))
        stored |= self._registry_view.manifest_sizes(repository, list(parsed.manifests))
        wrong = {d: {"declared": parsed.sizes[d], "stored": size} for d, size in stored.items()
                 if parsed.sizes.get(d, size) != size}
        if wrong:
            raise ManifestInvalid("a descriptor's size differs from the stored content's", {"sizes": wrong})

        def command() -> None:
            changed: list[Any] = self._live_repository(repository)
            changed += self.manifest_pushed(repository, parsed, body, by_digest=tag is None)
            if tag is not None:
                changed += self.tag_moved(repository, tag, parsed.digest)
            if changed:
                self.save(*changed, fence=check_references)

        self.retrying(command)
        return parsed

    def manifest_pushed(self, repository: str, parsed: ParsedManifest, body: bytes,
                        by_digest: bool = False) -> list[Manifest]:
        """The manifest aggregate with `body` pushed, to save (an empty list when it is present
        already: pushing it again records nothing). `by_digest`: the push named no tag."""
        manifest = self.load(Manifest, Manifest.create_id(repository, parsed.digest)) or Manifest.unborn(
            repository=repository, digest=parsed.digest)
        if manifest.present:
            return []
        manifest.push(
            repository=repository, digest=parsed.digest, media_type=parsed.media_type,
            size=parsed.size, payload=Manifest.encode_payload(body), blobs=list(parsed.blobs),
            manifests=list(parsed.manifests), subject=parsed.subject,
            artifact_type=parsed.artifact_type, annotations=parsed.annotations, by_digest=by_digest,
        )
        return [manifest]

    def tag_moved(self, repository: str, name: str, digest: str) -> list[Tag]:
        """The tag aggregate pointed at `digest`, to save (empty when it points there already)."""
        tag = self.load(Tag, Tag.create_id(repository, name)) or Tag.unborn(repository=repository, name=name)
        return [tag] if tag.point_at(digest) else []

    def delete_manifest(self, repository: str, digest: str) -> list[str]:
        """Delete a manifest revision and every tag pointing at it; returns those tags."""
        Digest.parse(digest)

        def command() -> list[str]:
            manifest = self.load(Manifest, Manifest.create_id(repository, digest))
            if manifest is None or not manifest.present:
                raise ManifestUnknown(detail={"digest": digest})
            manifest.delete()
            changed: list[Any] = [manifest]
            tags = self._registry_view.tags_pointing_at(repository, digest)
            for name in tags:
                tag = self.load(Tag, Tag.create_id(repository, name))
                if tag is not None and tag.digest == digest:
                    tag.delete()
                    changed.append(tag)
            self.save(*changed)
            return tags

        return self.retrying(command)

    def delete_tag(self, repository: str, name: str) -> str:
        """Remove a tag; the manifest stays, reachable by digest. Returns the digest it named."""
        check_tag(name)

        def command() -> str:
            tag = self.load(Tag, Tag.create_id(repository, name))
            if tag is None or tag.digest is None:
                raise ManifestUnknown(detail={"tag": name})
            digest = tag.digest
            tag.delete()
            self.save(tag)
            return digest

        return self.retrying(command)
