"""Repository search: a followed projection of what a person types into a search box.

One row per repository ever created (`repository_search`): its name, namespace, the name after
the namespace, description, tag names, when a tag was last pushed, and two derived texts —
`document` (name, description and tags, lowercased, for substring matches) and `words` (the
same split into words on anything not a letter or digit, space-delimited, for word matches).
Substring matches use an index: `pg_trgm` (GIN) on PostgreSQL, an FTS5 `trigram` table
(`repository_search_fts`, rowid = the row's `id`) on SQLite.

`apply` reads only the events and this projection's own rows (no clock, no other table), so
a rebuild gives the same rows. Liveness and visibility are not copied here: queries join the
inline `repositories` table, the one the access policy reads (`projections.search_queries`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.projections.audit_trail import _timestamp
from dockyard.projections.dialect import Dialect
from dockyard.projections.runner import Recorded

TABLE = "repository_search"
FTS = "repository_search_fts"
_WORD = re.compile(r"[^0-9a-z]+")
# PostgreSQL: `words` as an array, GIN-indexed, so `words LIKE '% term %'` is found by index.
WORDS = "string_to_array(btrim(words), ' ')"

TOPICS = ("dockyard.Repository.Created", "dockyard.Repository.DescriptionChanged",
          "dockyard.Tag.Moved", "dockyard.Tag.Deleted")


def words_of(*texts: str) -> str:
    """` w1 w2 … ` — every word of `texts`, lowercased, space-delimited at both ends so
    `LIKE '% word %'` matches a whole word."""
    found = [w for text in texts for w in _WORD.split(text.lower()) if w]
    return " " + " ".join(found) + " "


class RepositorySearch:
    """The projection. `suffix` names a parallel table set (a rebuild); `fts` keeps the SQLite
    FTS5 table (PostgreSQL indexes `document` with pg_trgm instead)."""

    name = "search"
    topics: tuple[str, ...] = TOPICS

    def __init__(self, suffix: str = "", fts: bool = True) -> None:
        self.suffix, self.fts = suffix, fts
        self.table, self.fts_table = TABLE + suffix, FTS + suffix

    def with_suffix(self, suffix: str) -> RepositorySearch:
        return RepositorySearch(suffix, self.fts)

    def tables(self) -> dict[str, str]:
        tables = {TABLE: self.table}
        if self.fts:
            tables[FTS] = self.fts_table
        return tables

    def create_statements(self, dialect: Dialect) -> list[str]:
        id_column = "id INTEGER PRIMARY KEY" if dialect.name == "sqlite" else "id BIGSERIAL PRIMARY KEY"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.table} ({id_column}, name TEXT NOT NULL UNIQUE, "
            "namespace TEXT NOT NULL, short_name TEXT NOT NULL, description TEXT NOT NULL, tags TEXT NOT NULL, "
            "pushed_at TEXT NOT NULL, document TEXT NOT NULL, words TEXT NOT NULL)",
        ]
        if dialect.name == "postgres":  # for the GIN index of `index_statements`
            statements.insert(0, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
        if dialect.name == "sqlite" and self.fts:
            statements.append(f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.fts_table} USING fts5(document, "
                              "tokenize='trigram')")
        return statements

    def index_statements(self, dialect: Dialect) -> list[str]:
        statements = [f"CREATE INDEX IF NOT EXISTS {self.table}_namespace ON {self.table} (namespace)",
                      f"CREATE INDEX IF NOT EXISTS {self.table}_short ON {self.table} (short_name)",
                      # A page of one rank in search order, read from its start (`search_queries`).
                      f"CREATE INDEX IF NOT EXISTS {self.table}_recent ON {self.table} (pushed_at DESC, name)"]
        if dialect.name == "postgres":
            statements.append(f"CREATE INDEX IF NOT EXISTS {self.table}_trgm ON {self.table} "
                              "USING GIN (document gin_trgm_ops)")
            # LIKE 'prefix%' by index whatever the database's collation.
            statements += [f"CREATE INDEX IF NOT EXISTS {self.table}_{column}_prefix ON {self.table} "
                           f"({column} text_pattern_ops)" for column in ("name", "short_name")]
            # Whole words: the rows whose words hold every word of a term (`search_queries.WORDS`).
            statements.append(f"CREATE INDEX IF NOT EXISTS {self.table}_words ON {self.table} USING GIN ({WORDS})")
        return statements

    def apply(self, dialect: Dialect, cursor: Any, events: Sequence[Recorded]) -> None:
        """Fold a batch: one read of the rows its repositories already have, the events folded in
        memory, then one write of the new rows (in order of first appearance, so ids are those a
        fold event by event gives) and one of the changed rows — not two statements per event,
        which cost a round trip each on PostgreSQL (~270 events/s here)."""
        folded: dict[str, _Row] = {}
        for event in events:
            state, kind = event.state, event.topic.rsplit(".", 1)[-1]
            name = state["name"] if kind in ("Created", "DescriptionChanged") else state["repository"]
            folded.setdefault(name, _Row())
        if not folded:
            return
        for name, old in self._load(dialect, cursor, list(folded)).items():
            folded[name] = _Row(old["id"], str(old["description"]), set(str(old["tags"]).split()),
                                str(old["pushed_at"]))
        for event in events:
            state, kind = event.state, event.topic.rsplit(".", 1)[-1]
            if kind in ("Created", "DescriptionChanged"):
                row = folded[state["name"]]
                row.description = state.get("description", "")
                if kind == "Created":
                    row.tags = set()  # a repository made again under an old name starts with no tags
            elif kind == "Moved":
                row = folded[state["repository"]]
                row.tags.add(state["name"])
                row.pushed_at = _timestamp(state.get("timestamp")) or row.pushed_at
            elif kind == "Deleted":
                folded[state["repository"]].tags.discard(state["name"])
        new = [_values(name, row) for name, row in folded.items() if row.id is None]
        changed = [_values(name, row) for name, row in folded.items() if row.id is not None]
        if dialect.name == "postgres":
            self._write_postgres(cursor, new, changed)
            return
        cursor.executemany(dialect.sql(
            f"INSERT INTO {self.table} (name, namespace, short_name, description, tags, pushed_at, document, "
            "words) VALUES (%(name)s, %(namespace)s, %(short)s, %(description)s, %(tags)s, %(pushed)s, "
            "%(document)s, %(words)s)"), new)
        cursor.executemany(dialect.sql(
            f"UPDATE {self.table} SET description = %(description)s, tags = %(tags)s, pushed_at = %(pushed)s, "
            "document = %(document)s, words = %(words)s WHERE name = %(name)s"), changed)
        if self.fts:
            ids = {name: old["id"] for name, old in self._load(dialect, cursor, [v["name"] for v in new]).items()}
            for values in new:
                values["id"] = ids[values["name"]]
            for values in changed:
                values["id"] = folded[values["name"]].id
            cursor.executemany(f"DELETE FROM {self.fts_table} WHERE rowid = :id", [{"id": v["id"]} for v in changed])
            cursor.executemany(f"INSERT INTO {self.fts_table} (rowid, document) VALUES (:id, :document)",
                               [{"id": v["id"], "document": v["document"]} for v in new + changed])

    def _load(self, dialect: Dialect, cursor: Any, names: list[str]) -> dict[str, Any]:
        """The stored rows of `names` (those that have one), by name."""
        found: dict[str, Any] = {}
        if dialect.name == "postgres":
            cursor.execute(f"SELECT id, name, description, tags, pushed_at FROM {self.table} "
                           "WHERE name = ANY(%(names)s)", {"names": names})
            return {r["name"]: r for r in cursor.fetchall()}
        for start in range(0, len(names), 500):  # SQLite's bound on a statement's parameters
            chunk = names[start:start + 500]
            cursor.execute(f"SELECT id, name, description, tags, pushed_at FROM {self.table} "
                           f"WHERE name IN ({', '.join('?' * len(chunk))})", chunk)
            found.update({r["name"]: r for r in cursor.fetchall()})
        return found

    def _write_postgres(self, cursor: Any, new: list[dict[str, Any]], changed: list[dict[str, Any]]) -> None:
        """The new rows by one COPY (ids drawn in the batch's order), the changed ones by a COPY
        into a temporary table and one UPDATE from it: COPY streams the rows, where arrays of
        parameters cost ~3x more to encode in Python."""
        if new:
            with cursor.copy(f"COPY {self.table} (name, namespace, short_name, description, tags, pushed_at, "
                             "document, words) FROM STDIN") as copy:
                for v in new:
                    copy.write_row((v["name"], v["namespace"], v["short"], v["description"], v["tags"],
                                    v["pushed"], v["document"], v["words"]))
        if changed:
            # Per connection, emptied at each commit: the batch's changes only.
            cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS repository_search_changes (name TEXT, "
                           "description TEXT, tags TEXT, pushed_at TEXT, document TEXT, words TEXT) "
                           "ON COMMIT DELETE ROWS")
            with cursor.copy("COPY repository_search_changes FROM STDIN") as copy:
                for v in changed:
                    copy.write_row((v["name"], v["description"], v["tags"], v["pushed"], v["document"], v["words"]))
            cursor.execute(f"UPDATE {self.table} AS t SET description = c.description, tags = c.tags, "
                           "pushed_at = c.pushed_at, document = c.document, words = c.words "
                           "FROM repository_search_changes AS c WHERE t.name = c.name")


@dataclass
class _Row:
    """A repository's searchable state while a batch is folded (`id` None: not stored yet)."""

    id: int | None = None
    description: str = ""
    tags: set[str] = field(default_factory=set)
    pushed_at: str = ""


def _values(name: str, row: _Row) -> dict[str, Any]:
    """The stored columns of a folded row."""
    tags = " ".join(sorted(row.tags))
    return {
        "name": name, "namespace": name.split("/", 1)[0] if "/" in name else "",
        "short": name.split("/", 1)[1] if "/" in name else name, "description": row.description,
        "tags": tags, "pushed": row.pushed_at,
        "document": "\n".join([name.lower(), row.description.lower(), tags.lower()]),
        "words": words_of(name, row.description, tags),
    }
