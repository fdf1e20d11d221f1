"""Restore: bring back a deleted or moved tag, or a deleted repository, from the log.

Nothing is rewritten: a restore records new events — the repository's `Restored` (and its
visibility, description and team grants as they were just before the delete), a manifest's
`Pushed` again with the exact bytes it had, blob links `Linked` again, the tag's `Moved` — so
a pull works right after and the history shows the restore as one more step. A restore is one
save, so one transaction: all of its events are recorded or none (a crash or a refusal half way
leaves nothing half restored).

Rights are the delete's: `read-write` on the repository for a tag, `admin` for a repository —
for a deleted repository, as the caller had them just before the delete (the policy of
`domain.access` on the facts of that instant). Before anything is recorded every blob the
images need is looked for in the blob store: when garbage collection already removed some,
the restore is refused (`Conflict`) naming each missing digest, and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.blob_link import BlobLink
from dockyard.domain.errors import Conflict, Denied, NotFound
from dockyard.domain.manifest import Manifest
from dockyard.domain.manifest_format import parse_manifest
from dockyard.domain.repository import Repository
from dockyard.projections.as_of import AsOf, PastState
from dockyard.projections.audit_queries import EVERYTHING, AuditFilter, AuditQueries
from dockyard.projections.dialect import Dialect
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.registry_queries import RegistryQueries
from dockyard.storage import BlobStore, blob_key


@dataclass(frozen=True)
class Restored:
    repository: str
    tags: dict[str, str]  # tag -> digest it points at now
    teams: dict[str, str]  # team -> level granted again
    skipped_teams: tuple[str, ...] = ()  # grants whose team no longer exists


class Restore:
    def __init__(self, registry: Any, registry_view: RegistryQueries, identity_view: IdentityQueries, store: BlobStore,
                 as_of: AsOf, management: Any, audit: AuditQueries) -> None:
        """`audit` must have folded the log up to the request (the delete's position is read there);
        `registry_view` and `identity_view` are today's read models, `as_of` the past ones."""
        self.registry, self.store, self.as_of, self.management, self.audit = registry, store, as_of, management, audit
        self.registry_view, self.identity_view = registry_view, identity_view

    # -- tags ------------------------------------------------------------------------------------

    def tag_digest_at(self, repository: str, tag: str, position: int) -> str:
        """What `repository:tag` pointed at right after `position` (`NotFound` if nothing)."""
        digest = self.as_of.at(position).registry_view.tag_digest(repository, tag)
        if digest is None:
            raise NotFound("the tag pointed at nothing at that instant", {"repository": repository, "tag": tag,
                                                                         "at": position})
        return digest

    def restore_tag(self, principal: Principal, repository: str, tag: str, digest: str) -> str:
        """Point `repository:tag` at `digest` again, a manifest once pushed to the repository
        (re-pushed and its blobs linked again if they were deleted), in one transaction.
        Returns the digest."""
        self.management.check_level(principal, repository, "read-write")
        manifests = self._manifests(repository, {digest})
        self.check_blobs(list(manifests.values()))
        self.registry.retrying(lambda: self._save_back(repository, {tag: digest}, manifests))
        return digest

    # -- repositories ------------------------------------------------------------------------------

    def restore_repository(self, principal: Principal, repository: str) -> Restored:
        """Undo the last delete of `repository`: live again with the tags, visibility,
        description and team access it had just before."""
        repo = self.registry.load(Repository, Repository.create_id(repository))
        if repo is None:
            raise NotFound("no such repository", {"repository": repository})
        if not repo.deleted:
            raise Conflict("the repository is not deleted", {"repository": repository})
        deleted_at = self._deleted_at(repository)
        before = self.as_of.at(deleted_at - 1)
        self._check_admin_then(principal, repository, before)
        row = before.registry_view.repository(repository)
        if row is None:  # the log says it was live before its delete; a guard, not a path
            raise NotFound("no such repository before its delete", {"repository": repository})
        tags = {r["tag"]: r["digest"] for r in before.registry_view.tag_rows(repository)}
        manifests = self._manifests(repository, set(tags.values()))
        self.check_blobs(list(manifests.values()))
        grants = {r["team"]: r["level"] for r in before.identity_view.team_access(repository)}
        teams = {r["name"] for r in self.identity_view.teams(repo.namespace)}
        kept = {team: level for team, level in grants.items() if team in teams}

        def command() -> None:
            aggregate = self.registry.load(Repository, Repository.create_id(repository))
            if not aggregate.deleted:
                raise Conflict("the repository is not deleted", {"repository": repository})
            aggregate.recreate(row["visibility"], row["description"])
            for team, level in sorted(kept.items()):
                aggregate.grant(team, level)
            self._save_back(repository, tags, manifests, aggregate)

        self.registry.retrying(command)
        return Restored(repository, tags, kept, tuple(sorted(set(grants) - set(kept))))

    # -- shared ------------------------------------------------------------------------------------

    def _manifests(self, repository: str, digests: set[str]) -> dict[str, dict[str, Any]]:
        """Each manifest of `digests` as once pushed to the repository, and an index's children
        (they come back with it), by digest; `NotFound` for one never pushed there."""
        found: dict[str, dict[str, Any]] = {}
        todo = sorted(digests)
        while todo:
            digest = todo.pop()
            if digest in found:
                continue
            manifest = self.registry_view.manifest_ever(repository, digest)
            if manifest is None:
                raise NotFound("no manifest with this digest was ever pushed to the repository",
                               {"repository": repository, "digest": digest})
            parsed = parse_manifest(manifest["body"], manifest["media_type"])
            found[digest] = {**manifest, "parsed": parsed}
            todo.extend(parsed.manifests)
        return found

    def check_blobs(self, manifests: list[dict[str, Any]]) -> None:
        """`Conflict` naming every blob (config, layer, child manifest's) the manifests need that
        is no longer in the blob store."""
        missing = sorted({d for m in manifests for d in m["parsed"].blobs if not self.store.exists(blob_key(d))})
        if missing:
            raise Conflict("garbage collection already removed blobs this image needs, so it cannot be "
                           f"restored: {', '.join(missing)}", {"missingBlobs": missing})

    def _save_back(self, repository: str, tags: dict[str, str], manifests: dict[str, dict[str, Any]],
                   *first: Any) -> None:
        """In one save (one transaction: all of it is recorded or none): `first` (the restored
        repository), each blob the manifests need linked again, each manifest pushed again with
        its exact bytes, each of `tags` pointed at its digest. The save's fence, under the log's
        write lock, finds every blob it links again still in the blob store and every blob it
        relies on still linked, so a GC sweep between the check and the save cannot leave a
        restored image with blobs missing (the sweep deletes under the same lock)."""
        needed = sorted({d for m in manifests.values() for d in m["parsed"].blobs})
        links = [self.registry.load(BlobLink, BlobLink.create_id(repository, d))
                 or BlobLink.unborn(repository=repository, digest=d) for d in needed]
        relinked = [link for link in links if not link.linked]
        for link in relinked:
            link.link(self.store.stat(blob_key(link.digest)), "restore")
        changed: list[Any] = [*first, *relinked]
        for digest in sorted(manifests):
            changed += self.registry.manifest_pushed(repository, manifests[digest]["parsed"],
                                                     manifests[digest]["body"])
        pushed = {m.digest for m in changed if isinstance(m, Manifest)}
        for tag, digest in sorted(tags.items()):
            changed += self.registry.tag_moved(repository, tag, digest)
        fresh = {link.digest for link in relinked}
        kept_blobs = [d for d in needed if d not in fresh]
        kept_manifests = [d for d in manifests if d not in pushed]

        def fence(dialect: Dialect, cursor: Any) -> None:
            queries = self.registry_view
            gone = [d for d in sorted(fresh) if not self.store.exists(blob_key(d))]
            gone += queries.unlinked_blobs(repository, kept_blobs, cursor)
            gone += queries.missing_manifests(repository, kept_manifests, cursor)
            if gone:
                raise Conflict("garbage collection already removed blobs this image needs, so it cannot be "
                               f"restored: {', '.join(sorted(gone))}", {"missingBlobs": sorted(gone)})

        if changed:
            self.registry.save(*changed, fence=fence)

    def _deleted_at(self, repository: str) -> int:
        """The position of the first event of the repository's last delete: the delete revokes
        its team grants right before its `Deleted` event, in the same transaction."""
        rows = self.audit.latest(AuditFilter(repository=repository, action="repository.deleted"), EVERYTHING, 1)
        if not rows:
            raise NotFound("no delete of this repository is in the log", {"repository": repository})
        first = int(rows[0]["position"])
        for row in self.audit.latest(AuditFilter(repository=repository), EVERYTHING, 1000, before=first):
            if row["position"] != first - 1 or row["action"] != "repository.team_access_revoked":
                break
            first -= 1
        return first

    def _check_admin_then(self, principal: Principal, repository: str, before: PastState) -> None:
        facts = before.identity_view.repository_facts(principal.name, repository)
        level = access.repository_level(principal, repository, facts) if facts.exists else "none"
        if principal.is_anonymous and principal.is_admin:  # auth mode `none`
            level = "admin"
        if level == "none":
            raise NotFound("no such repository", {"repository": repository})
        if level != "admin":
            raise Denied("restoring a repository needs admin on it, as deleting it did", {"repository": repository})

