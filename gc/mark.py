"""Mark: the live set as a pure function of a log position.

`Marker` folds registry events, in log order, into the little state GC needs (repositories,
tags, manifests with what they reference, blob links, blobs collected and orphans seen). From
that state `live()` computes, for the position folded so far, every blob a live manifest
references, and `explain()` says of every other blob which event left it unreferenced.

A manifest is live when its repository is live and it is present (pushed, not deleted), and
it is tagged, or (unless `delete_untagged`) untagged; the children of a live index and the
referrers of a live subject are live too. A blob is live when a live manifest lists it.

The same fold continues past P during the sweep (`advance`): `touched_after(P)` are the digests
an event after P linked, referenced or made live again; those are never swept by that run.
No clock, no storage, no read model: the same events give the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dockyard.domain.blob_link
import dockyard.domain.gc_run
import dockyard.domain.manifest
import dockyard.domain.repository
import dockyard.domain.tag  # noqa: F401 - the event classes the topics resolve to

# The stored topics mark reads; everything else in the log (accounts, settings…) is skipped.
TOPICS = (
    "dockyard.Repository.Created", "dockyard.Repository.Deleted", "dockyard.Repository.Restored",
    "dockyard.Tag.Moved", "dockyard.Tag.Deleted", "dockyard.Manifest.Pushed", "dockyard.Manifest.Deleted",
    "dockyard.BlobLink.Linked", "dockyard.BlobLink.Unlinked", "dockyard.GcRun.BlobCollected",
    "dockyard.GcRun.Finished",
)


@dataclass(frozen=True, slots=True)
class Cause:
    """An event, as an explanation cites it."""

    position: int
    topic: str
    actor: str
    at: datetime
    what: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "event": self.topic, "actor": self.actor,
                "at": self.at.isoformat(), "what": self.what}


@dataclass
class _Manifest:
    repository: str
    digest: str
    present: bool = False
    blobs: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    subject: str | None = None
    changed: Cause | None = None  # the last event that changed whether it is live


@dataclass
class _Link:
    linked: bool
    size: int
    changed: Cause


@dataclass(frozen=True, slots=True)
class Holder:
    """Why a blob is kept: a live manifest that lists it, and what keeps that manifest live."""

    repository: str
    manifest: str
    via: str  # "tag:<name>", "untagged", "index:<digest>", "subject:<digest>"
    since: int  # position of the event that made it so

    def as_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "manifest": self.manifest, "via": self.via,
                "position": self.since}


@dataclass
class Marker:
    """The fold. `position` is the last event folded; feed events with `fold` in log order."""

    position: int = 0
    repositories: dict[str, bool] = field(default_factory=dict)  # name -> deleted
    tags: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # -> (digest, position)
    manifests: dict[tuple[str, str], _Manifest] = field(default_factory=dict)
    links: dict[tuple[str, str], _Link] = field(default_factory=dict)
    collected: dict[str, Cause] = field(default_factory=dict)
    orphans_seen: dict[str, Cause] = field(default_factory=dict)
    # digest -> the last position at which something touched it (see `touched_after`).
    _touched: dict[str, int] = field(default_factory=dict)
    _by_repository: dict[str, list[_Manifest]] = field(default_factory=dict)
    _links_by_digest: dict[str, list[str]] = field(default_factory=dict)  # digest -> repositories
    _index: _Index | None = None

    # -- folding -------------------------------------------------------------------------------

    def fold_all(self, events: Iterable[tuple[int, Any]]) -> None:
        for position, event in events:
            self.fold(position, event)

    def fold(self, position: int, e: Any) -> None:
        """Fold one domain event at `position` (positions must increase)."""
        self.position = position
        self._index = None
        topic = getattr(type(e), "TOPIC", "")  # the stored topic: stable, and known to mypy
        m: _Manifest | None
        if topic in ("dockyard.Repository.Created", "dockyard.Repository.Restored"):
            self.repositories[e.name] = False
            self._touch_repository(e.name, position)
        elif topic == "dockyard.Repository.Deleted":
            self.repositories[e.name] = True
            cause = self._cause(position, e, f"repository {e.name} deleted")
            for m in self._by_repository.get(e.name, ()):
                m.changed = cause
        elif topic == "dockyard.Tag.Moved":
            self.tags[(e.repository, e.name)] = (e.digest, position)
            cause = self._cause(position, e, f"tag {e.repository}:{e.name} moved to {e.digest}")
            for digest in (e.digest, e.previous):
                m = self.manifests.get((e.repository, digest)) if digest else None
                if m is not None:
                    m.changed = cause
            self._touch_manifest(e.repository, e.digest, position)
        elif topic == "dockyard.Tag.Deleted":
            self.tags.pop((e.repository, e.name), None)
            m = self.manifests.get((e.repository, e.digest))
            if m is not None:
                m.changed = self._cause(position, e, f"tag {e.repository}:{e.name} deleted")
        elif topic == "dockyard.Manifest.Pushed":
            pushed = self.manifests.get((e.repository, e.digest))
            if pushed is None:
                pushed = self.manifests[(e.repository, e.digest)] = _Manifest(e.repository, e.digest)
                self._by_repository.setdefault(e.repository, []).append(pushed)
            pushed.present, pushed.blobs, pushed.children = True, tuple(e.blobs), tuple(e.manifests)
            pushed.subject = e.subject
            pushed.changed = self._cause(position, e, f"manifest {e.repository}@{e.digest} pushed")
            self._touch_manifest(e.repository, e.digest, position)
        elif topic == "dockyard.Manifest.Deleted":
            m = self.manifests.get((e.repository, e.digest))
            if m is not None:
                m.present = False
                m.changed = self._cause(position, e, f"manifest {e.repository}@{e.digest} deleted")
        elif topic == "dockyard.BlobLink.Linked":
            if (e.repository, e.digest) not in self.links:
                self._links_by_digest.setdefault(e.digest, []).append(e.repository)
            self.links[(e.repository, e.digest)] = _Link(
                True, e.size, self._cause(position, e, f"blob linked into {e.repository} ({e.source})"))
            self.collected.pop(e.digest, None)
            self._touch(e.digest, position)
        elif topic == "dockyard.BlobLink.Unlinked":
            link = self.links.get((e.repository, e.digest))
            if link is not None:
                link.linked = False
                link.changed = self._cause(position, e, f"blob unlinked from {e.repository}")
        elif topic == "dockyard.GcRun.BlobCollected":
            self.collected[e.digest] = self._cause(position, e, "collected by GC")
            self.orphans_seen.pop(e.digest, None)
        elif topic == "dockyard.GcRun.Finished":
            cause = self._cause(position, e, "in storage, named by no event; first seen by GC")
            for digest in e.orphans_seen:
                self.orphans_seen.setdefault(digest, cause)

    @staticmethod
    def _cause(position: int, e: Any, what: str) -> Cause:
        return Cause(position, getattr(e, "TOPIC", "") or type(e).__qualname__, getattr(e, "actor", "system"),
                     e.timestamp, what)

    def _touch(self, digest: str, position: int) -> None:
        self._touched[digest] = position

    def _touch_manifest(self, repository: str, digest: str, position: int, depth: int = 0) -> None:
        m = self.manifests.get((repository, digest))
        if m is None or depth > 8:
            return
        for blob in m.blobs:
            self._touch(blob, position)
        for child in m.children:
            self._touch_manifest(repository, child, position, depth + 1)

    def _touch_repository(self, repository: str, position: int) -> None:
        for m in self._by_repository.get(repository, ()):
            self._touch_manifest(repository, m.digest, position)

    def touched_after(self, position: int, digest: str) -> bool:
        """Whether an event after `position` linked `digest`, or pushed, tagged or restored a
        manifest that lists it (directly or through an index)."""
        return self._touched.get(digest, 0) > position

    # -- the live set --------------------------------------------------------------------------

    def live_manifests(self, delete_untagged: bool) -> dict[tuple[str, str], Holder]:
        """Every live manifest, with the first reason found that keeps it live."""
        live: dict[tuple[str, str], Holder] = {}
        # A stack, popped from the end: tags (and what they reach) before the untagged roots,
        # so a manifest held by a tag is explained by the tag.
        stack: list[tuple[tuple[str, str], Holder]] = []
        if not delete_untagged:
            for key, root in sorted(self.manifests.items(), reverse=True):
                if root.present and root.changed is not None:
                    stack.append((key, Holder(root.repository, root.digest, "untagged", root.changed.position)))
        for (repository, tag), (digest, since) in sorted(self.tags.items(), reverse=True):
            stack.append(((repository, digest), Holder(repository, digest, f"tag:{tag}", since)))
        by_subject: dict[tuple[str, str], list[_Manifest]] = {}
        for referrer in self.manifests.values():
            if referrer.subject and referrer.present:
                by_subject.setdefault((referrer.repository, referrer.subject), []).append(referrer)
        while stack:
            key, holder = stack.pop()
            m = self.manifests.get(key)
            if key in live or m is None or not m.present or self.repositories.get(m.repository, False):
                continue
            live[key] = holder
            for child in m.children:
                stack.append(((m.repository, child),
                              Holder(m.repository, child, f"index:{m.digest}", holder.since)))
            for referrer in by_subject.get(key, ()):
                stack.append(((referrer.repository, referrer.digest),
                              Holder(referrer.repository, referrer.digest, f"subject:{m.digest}", holder.since)))
        return live

    def live(self, delete_untagged: bool) -> dict[str, list[Holder]]:
        """Every live blob digest, with the live manifests that list it."""
        blobs: dict[str, list[Holder]] = {}
        for key, holder in sorted(self.live_manifests(delete_untagged).items()):
            for blob in self.manifests[key].blobs:
                blobs.setdefault(blob, []).append(holder)
        return blobs

    def _indexed(self) -> _Index:
        if self._index is None:
            self._index = _Index(self)
        return self._index

    def last_change(self, digest: str) -> Cause | None:
        """The latest event that changed whether `digest` is referenced: a link or unlink of it,
        or a change to a manifest (or an index or subject of one) that lists it. None when no
        event names the blob (an orphan: its first sighting by GC stands in)."""
        index = self._indexed()
        causes: list[Cause | None] = [link.changed for link in index.links.get(digest, ())]
        for m in index.listing.get(digest, ()):
            causes.append(m.changed)
            causes.extend(p.changed for p in index.parents.get((m.repository, m.digest), ()))
        known = [c for c in causes if c is not None]
        if not known:
            return self.orphans_seen.get(digest)
        return max(known, key=lambda c: c.position)

    def size_of(self, digest: str) -> int | None:
        sizes = [self.links[(r, digest)].size for r in self._links_by_digest.get(digest, ())]
        return max(sizes) if sizes else None

    def links_of(self, digest: str) -> list[str]:
        """The repositories `digest` is linked into now (kept current by `fold`, without the
        index, so the sweep asks it cheaply after each blob)."""
        return sorted(r for r in self._links_by_digest.get(digest, ()) if self.links[(r, digest)].linked)


class _Index:
    """Digest-keyed lookups over a `Marker`'s state, built once per position queried."""

    def __init__(self, marker: Marker) -> None:
        self.links: dict[str, list[_Link]] = {}
        for key, link in marker.links.items():
            self.links.setdefault(key[1], []).append(link)
        self.listing: dict[str, list[_Manifest]] = {}
        self.parents: dict[tuple[str, str], list[_Manifest]] = {}
        for m in marker.manifests.values():
            for blob in m.blobs:
                self.listing.setdefault(blob, []).append(m)
            for child in m.children:
                self.parents.setdefault((m.repository, child), []).append(m)
            if m.subject:
                subject = marker.manifests.get((m.repository, m.subject))
                if subject is not None:
                    self.parents.setdefault((m.repository, m.digest), []).append(subject)


def read_events(recorder: Any, mapper: Any, start: int, stop: int, batch: int = 1000) -> Iterator[tuple[int, Any]]:
    """The GC-relevant events in (`start`, `stop`], in batches of `batch` from the recorder."""
    while start < stop:
        notifications = recorder.select_notifications(start, batch, stop=stop, topics=TOPICS,
                                                      inclusive_of_start=False)
        if not notifications:
            return
        for n in notifications:
            yield n.id, mapper.to_domain_event(n)
        start = notifications[-1].id


def mark(recorder: Any, mapper: Any, position: int) -> Marker:
    """The fold of every GC-relevant event up to and including `position`."""
    marker = Marker()
    marker.fold_all(read_events(recorder, mapper, 0, position))
    marker.position = position
    return marker
