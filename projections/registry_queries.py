"""Reads of the registry read model: what the `/v2/` pull path, listings and checks ask.

Every method is one short read transaction, blocking (the API calls it off the event loop),
and sees everything committed before it started — including the read-model rows written in
the same transaction as the events (see `registry_view`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from dockyard.projections.dialect import Dialect
from dockyard.projections.readable import CallerFacts, add_access_levels, readable_predicate, team_levels

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """One statement of the read model (portable SQL, `%(name)s` parameters) and what its rows
    answer: `RegistryQueries.run` runs it through the library's pool, `projections.loop_reads` on
    the event loop without a thread. The pull path's reads are built this way, so both run the
    same SQL."""

    statement: str
    params: dict[str, Any]
    answer: Callable[[list[Any]], T]


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    size: int
    body: bytes


def _like_literal(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_LIVE_REPO = "EXISTS (SELECT 1 FROM repositories r WHERE r.name = %(repository)s AND r.deleted = 0)"


def _stored_manifest(rows: list[Any]) -> StoredManifest | None:
    if not rows:
        return None
    row = rows[0]
    return StoredManifest(row["digest"], row["media_type"], row["size"], bytes(row["body"]))


def _tags_found(rows: list[Any]) -> list[str] | None:
    if not rows or rows[0]["k"] != 0:
        return None
    return [r["tag"] for r in rows[1:]]


class RegistryQueries:
    def __init__(self, datastore: Any, dialect: Dialect) -> None:
        self._datastore = datastore
        self._dialect = dialect

    def _rows(self, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(statement), params or {})
            return cursor.fetchall()

    def _row(self, statement: str, params: dict[str, Any] | None = None) -> Any:
        rows = self._rows(statement, params)
        return rows[0] if rows else None

    def run(self, read: Read[T]) -> T:
        """`read`'s answer (blocking, through the library's pool)."""
        return read.answer(self._rows(read.statement, read.params))

    def repository_exists(self, repository: str) -> bool:
        return self.run(self.repository_exists_read(repository))

    @staticmethod
    def repository_exists_read(repository: str) -> Read[bool]:
        return Read("SELECT 1 FROM repositories WHERE name = %(repository)s AND deleted = 0",
                    {"repository": repository}, bool)

    def namespace_repositories(self, namespace: str, n: int = 10) -> list[str]:
        """Up to `n` repositories, live or soft-deleted, under `namespace/`, by name."""
        rows = self._rows("SELECT name FROM repositories WHERE name LIKE %(prefix)s ESCAPE '\\' "
                          "ORDER BY name LIMIT %(n)s", {"prefix": f"{_like_literal(namespace)}/%", "n": n})
        return [r["name"] for r in rows]

    def manifest_by_digest(self, repository: str, digest: str) -> StoredManifest | None:
        return self.run(self.manifest_by_digest_read(repository, digest))

    @staticmethod
    def manifest_by_digest_read(repository: str, digest: str) -> Read[StoredManifest | None]:
        return Read("SELECT digest, media_type, size, body FROM manifests WHERE repository = %(repository)s "
                    f"AND digest = %(digest)s AND deleted = 0 AND {_LIVE_REPO}",
                    {"repository": repository, "digest": digest}, _stored_manifest)

    def manifest_by_tag(self, repository: str, tag: str) -> StoredManifest | None:
        return self.run(self.manifest_by_tag_read(repository, tag))

    @staticmethod
    def manifest_by_tag_read(repository: str, tag: str) -> Read[StoredManifest | None]:
        return Read("SELECT m.digest, m.media_type, m.size, m.body FROM tags t JOIN manifests m "
                    "ON m.repository = t.repository AND m.digest = t.digest "
                    f"WHERE t.repository = %(repository)s AND t.tag = %(tag)s AND m.deleted = 0 AND {_LIVE_REPO}",
                    {"repository": repository, "tag": tag}, _stored_manifest)

    def manifest_ever(self, repository: str, digest: str) -> dict[str, Any] | None:
        """A manifest once pushed to `repository`, deleted or not: its media type and exact bytes
        (what a restore pushes again)."""
        row = self._row("SELECT media_type, body FROM manifests WHERE repository = %(repository)s "
                        "AND digest = %(digest)s", {"repository": repository, "digest": digest})
        return {"media_type": row["media_type"], "body": bytes(row["body"])} if row else None

    def manifest_facts(self, repository: str, digest: str) -> tuple[str, int] | None:
        """The media type and size of a manifest once pushed to `repository`, deleted or not
        (content-addressed: they never change)."""
        row = self._row("SELECT media_type, size FROM manifests WHERE repository = %(repository)s "
                        "AND digest = %(digest)s", {"repository": repository, "digest": digest})
        return (row["media_type"], int(row["size"])) if row else None

    def tag_digest(self, repository: str, tag: str) -> str | None:
        row = self._row(
            "SELECT digest FROM tags WHERE repository = %(repository)s AND tag = %(tag)s",
            {"repository": repository, "tag": tag},
        )
        return row["digest"] if row else None

    def tags_pointing_at(self, repository: str, digest: str) -> list[str]:
        rows = self._rows(
            "SELECT tag FROM tags WHERE repository = %(repository)s AND digest = %(digest)s ORDER BY tag",
            {"repository": repository, "digest": digest},
        )
        return [r["tag"] for r in rows]

    def blob_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob linked into `repository`, or None when it is not linked there."""
        row = self._row(
            f"SELECT size FROM blob_links WHERE repository = %(repository)s AND digest = %(digest)s AND {_LIVE_REPO}",
            {"repository": repository, "digest": digest},
        )
        return row["size"] if row else None

    def unlinked_blobs(self, repository: str, digests: list[str], cursor: Any | None = None) -> list[str]:
        """Those of `digests` that are not linked into `repository` (read through `cursor`, an
        open transaction's, when given)."""
        return self._absent(
            "SELECT digest FROM blob_links WHERE repository = %(repository)s AND digest = %(digest)s",
            repository, digests, cursor)

    def missing_manifests(self, repository: str, digests: list[str], cursor: Any | None = None) -> list[str]:
        """Those of `digests` that are not live manifests in `repository`."""
        return self._absent(
            "SELECT digest FROM manifests WHERE repository = %(repository)s AND digest = %(digest)s AND deleted = 0",
            repository, digests, cursor)

    def _absent(self, statement: str, repository: str, digests: list[str], cursor: Any | None) -> list[str]:
        if cursor is None:
            with self._dialect.reading(self._datastore) as reading:
                return self._absent(statement, repository, digests, reading)
        found = {row["digest"] for row in self._matching(cursor, statement, repository, digests)}
        return [digest for digest in digests if digest not in found]

    def _matching(self, cursor: Any, statement: str, repository: str, digests: list[str]) -> list[Any]:
        """The rows of `statement` (`SELECT ... FROM t WHERE repository = %(repository)s AND
        digest = %(digest)s ...`, selecting `digest`) for each of `digests`: on PostgreSQL one
        query (`digest = ANY(...)`, one round trip, which a manifest's checks under the log's
        write lock pay), on SQLite one per digest (in process, no round trip)."""
        if not digests:
            return []
        if self._dialect.name == "postgres":
            cursor.execute(statement.replace("digest = %(digest)s", "digest = ANY(%(digests)s)"),
                           {"repository": repository, "digests": list(dict.fromkeys(digests))})
            return cursor.fetchall()
        rows = []
        for digest in dict.fromkeys(digests):
            cursor.execute(self._dialect.sql(statement), {"repository": repository, "digest": digest})
            rows += cursor.fetchall()
        return rows

    def linked_blob_sizes(self, repository: str, digests: list[str]) -> dict[str, int]:
        """The size of each of `digests` linked into `repository` (absent: not linked)."""
        return self._sizes(
            "SELECT digest, size FROM blob_links WHERE repository = %(repository)s AND digest = %(digest)s",
            repository, digests)

    def manifest_sizes(self, repository: str, digests: list[str]) -> dict[str, int]:
        """The size of each of `digests` that is a live manifest in `repository`."""
        return self._sizes(
            "SELECT digest, size FROM manifests WHERE repository = %(repository)s AND digest = %(digest)s "
            "AND deleted = 0", repository, digests)

    def _sizes(self, statement: str, repository: str, digests: list[str]) -> dict[str, int]:
        with self._dialect.reading(self._datastore) as cursor:
            return {row["digest"]: row["size"] for row in self._matching(cursor, statement, repository, digests)}

    def repositories_linking(self, digest: str) -> list[str]:
        rows = self._rows(
            "SELECT b.repository FROM blob_links b JOIN repositories r ON r.name = b.repository "
            "WHERE b.digest = %(digest)s AND r.deleted = 0 ORDER BY b.repository",
            {"digest": digest},
        )
        return [r["repository"] for r in rows]

    @staticmethod
    def _tag_page(repository: str, n: int | None, last: str | None) -> tuple[str, dict[str, Any]]:
        """The keyset page of `repository`'s tags after `last` (at most `n`), and its parameters."""
        statement = "SELECT tag FROM tags WHERE repository = %(repository)s"
        params: dict[str, Any] = {"repository": repository}
        if last:
            statement += " AND tag > %(last)s"
            params["last"] = last
        statement += " ORDER BY tag"
        if n is not None:
            statement += " LIMIT %(n)s"
            params["n"] = n
        return statement, params

    def list_tags(self, repository: str, n: int | None, last: str | None) -> list[str]:
        return [r["tag"] for r in self._rows(*self._tag_page(repository, n, last))]

    def tags_page(self, repository: str, n: int | None, last: str | None) -> list[str] | None:
        """`list_tags(repository, n, last)`, or None when `repository` does not exist (live): the
        existence check and the page in one statement, one round trip on PostgreSQL where they
        were two. The page is still a keyset scan of `tags`' primary key (`tag > last ... LIMIT n`,
        inside); the outer ORDER BY sorts at most n + 1 rows."""
        return self.run(self.tags_page_read(repository, n, last))

    @classmethod
    def tags_page_read(cls, repository: str, n: int | None, last: str | None) -> Read[list[str] | None]:
        page, params = cls._tag_page(repository, n, last)
        return Read("SELECT k, tag FROM (SELECT 0 AS k, NULL AS tag FROM repositories "
                    "WHERE name = %(repository)s AND deleted = 0 "
                    f"UNION ALL SELECT 1 AS k, tag FROM ({page}) page) found ORDER BY k, tag", params, _tags_found)

    def catalog(self, n: int | None, last: str | None) -> list[str]:
        statement = "SELECT name FROM repositories WHERE deleted = 0"
        params: dict[str, Any] = {}
        if last:
            statement += " AND name > %(last)s"
            params["last"] = last
        statement += " ORDER BY name"
        if n is not None:
            statement += " LIMIT %(n)s"
            params["n"] = n
        return [r["name"] for r in self._rows(statement, params)]

    def referrers(self, repository: str, subject: str, artifact_type: str | None) -> list[dict[str, Any]]:
        """OCI descriptors of the live manifests in `repository` whose subject is `subject`."""
        statement = (
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests "
            "WHERE repository = %(repository)s AND subject = %(subject)s AND deleted = 0"
        )
        params: dict[str, Any] = {"repository": repository, "subject": subject}
        if artifact_type is not None:
            statement += " AND artifact_type = %(artifact_type)s"
            params["artifact_type"] = artifact_type
        statement += " ORDER BY digest"
        out = []
        for r in self._rows(statement, params):
            descriptor: dict[str, Any] = {"mediaType": r["media_type"], "digest": r["digest"], "size": r["size"]}
            if r["artifact_type"]:
                descriptor["artifactType"] = r["artifact_type"]
            annotations = orjson.loads(r["annotations"])
            if annotations:
                descriptor["annotations"] = annotations
            out.append(descriptor)
        return out

    def contents(self, repository: str) -> tuple[list[str], list[str], list[str]]:
        """What `repository` holds (whether or not the repository itself is deleted): its tags,
        live manifest digests and linked blob digests — for deleting all of it."""
        params = {"repository": repository}
        with self._dialect.reading(self._datastore) as cursor:
            found = []
            for statement in ("SELECT tag AS v FROM tags WHERE repository = %(repository)s",
                              "SELECT digest AS v FROM manifests WHERE repository = %(repository)s AND deleted = 0",
                              "SELECT digest AS v FROM blob_links WHERE repository = %(repository)s"):
                cursor.execute(self._dialect.sql(statement), params)
                found.append(sorted(r["v"] for r in cursor.fetchall()))
        return found[0], found[1], found[2]

    def repository(self, name: str) -> dict[str, Any] | None:
        """A live repository's row (name, visibility, description, created_at, created_by), or None."""
        row = self._row("SELECT name, visibility, description, created_at, created_by FROM repositories "
                        "WHERE name = %(name)s AND deleted = 0", {"name": name})
        return dict(row) if row else None

    def search_repositories(self, search: str | None, namespace: str | None, n: int,
                            last: str | None) -> list[dict[str, Any]]:
        """Live repositories ordered by name after `last`, at most `n`: whose name contains
        `search`, and (if given) in `namespace`."""
        statement = ("SELECT name, visibility, description, created_at, created_by FROM repositories "
                     "WHERE deleted = 0")
        params: dict[str, Any] = {"n": n}
        if search:
            statement += " AND name LIKE %(pattern)s ESCAPE '\\'"
            params["pattern"] = f"%{_like_literal(search)}%"
        if namespace:
            statement += " AND name LIKE %(prefix)s ESCAPE '\\'"
            params["prefix"] = f"{_like_literal(namespace)}/%"
        if last:
            statement += " AND name > %(last)s"
            params["last"] = last
        return [dict(r) for r in self._rows(statement + " ORDER BY name LIMIT %(n)s", params)]

    def readable_repositories(self, facts: CallerFacts, n: int, last: str | None = None,
                              namespace: str | None = None) -> list[dict[str, Any]]:
        """Up to `n` live repositories the caller may read, ordered by name after `last` (and in
        `namespace` if given), each with the caller's `access_level`. The policy is in the query
        (`projections.readable`, as search has it): a caller who reads a few of many never has
        the others fetched and checked one by one."""
        postgres = self._dialect.name == "postgres"
        owner_of = "split_part(r.name, '/', 1)" if postgres else "substr(r.name, 1, instr(r.name, '/') - 1)"
        readable, params = readable_predicate(facts, "r", owner_of)
        where = [readable]
        if namespace and postgres:
            where.append("r.name LIKE %(prefix)s ESCAPE '\\'")
            params["prefix"] = f"{_like_literal(namespace)}/%"
        elif namespace:  # SQLite compares bytes: the names under `namespace/` are one range of the key
            where.append("r.name > %(lo)s AND r.name < %(hi)s")
            params.update({"lo": f"{namespace}/", "hi": f"{namespace}0"})  # "0" follows "/"
        if last:
            where.append("r.name > %(last)s")
            params["last"] = last
        params["n"] = n
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(
                "SELECT r.name, r.visibility, r.description, r.created_at, r.created_by FROM repositories r "
                f"WHERE {' AND '.join(where)} ORDER BY r.name LIMIT %(n)s"), params)
            rows = [dict(r) for r in cursor.fetchall()]
            levels = team_levels(cursor, self._dialect.sql, facts.principal.name, [r["name"] for r in rows])
        add_access_levels(facts, rows, levels)
        return rows

    def tag_rows(self, repository: str) -> list[dict[str, Any]]:
        """Every tag of `repository` with its digest and last move (when, by whom), by name."""
        rows = self._rows("SELECT tag, digest, updated_at, updated_by FROM tags WHERE repository = %(repository)s "
                          f"AND {_LIVE_REPO} ORDER BY tag", {"repository": repository})
        return [dict(r) for r in rows]

    def table_rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of a read-model table, ordered: for rebuild checks and `projections status`."""
        rows = self._rows(f"SELECT * FROM {table}")
        return sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in dict(r).values()) for r in rows)
