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
        for event in events:
            state, kind = event.state, event.topic.rsplit(".", 1)[-1]
            if kind in ("Created", "DescriptionChanged"):
                self._upsert(dialect, cursor, state["name"], description=state.get("description", ""),
                             created=kind == "Created")
            elif kind == "Moved":
                self._upsert(dialect, cursor, state["repository"], add_tag=state["name"],
                             pushed_at=_timestamp(state.get("timestamp")))
            elif kind == "Deleted":
                self._upsert(dialect, cursor, state["repository"], remove_tag=state["name"])

    def _upsert(self, dialect: Dialect, cursor: Any, name: str, *, description: str | None = None,
                created: bool = False, add_tag: str | None = None, remove_tag: str | None = None,
                pushed_at: str | None = None) -> None:
        cursor.execute(dialect.sql(f"SELECT id, description, tags, pushed_at FROM {self.table} "
                                   "WHERE name = %(name)s"), {"name": name})
        rows = cursor.fetchall()
        old: dict[str, Any] = dict(rows[0]) if rows else {"id": None, "description": "", "tags": "", "pushed_at": ""}
        tags = set(str(old["tags"]).split())
        if created:
            tags = set()  # a repository made again under an old name starts with no tags
        if add_tag:
            tags.add(add_tag)
        if remove_tag:
            tags.discard(remove_tag)
        desc = str(old["description"]) if description is None else description
        values: dict[str, str] = {
            "name": name, "namespace": name.split("/", 1)[0] if "/" in name else "",
            "short": name.split("/", 1)[1] if "/" in name else name, "description": desc,
            "tags": " ".join(sorted(tags)), "pushed": pushed_at or str(old["pushed_at"]),
        }
        values["document"] = "\n".join([name.lower(), desc.lower(), values["tags"].lower()])
        values["words"] = words_of(name, desc, values["tags"])
        if old["id"] is None:
            cursor.execute(dialect.sql(
                f"INSERT INTO {self.table} (name, namespace, short_name, description, tags, pushed_at, document, "
                "words) VALUES (%(name)s, %(namespace)s, %(short)s, %(description)s, %(tags)s, %(pushed)s, "
                "%(document)s, %(words)s) RETURNING id"), values)
            row_id = cursor.fetchall()[0]["id"]
        else:
            row_id = old["id"]
            cursor.execute(dialect.sql(
                f"UPDATE {self.table} SET description = %(description)s, tags = %(tags)s, pushed_at = %(pushed)s, "
                "document = %(document)s, words = %(words)s WHERE name = %(name)s"), values)
        if dialect.name == "sqlite" and self.fts:
            cursor.execute(f"DELETE FROM {self.fts_table} WHERE rowid = :id", {"id": row_id})
            cursor.execute(f"INSERT INTO {self.fts_table} (rowid, document) VALUES (:id, :document)",
                           {"id": row_id, "document": values["document"]})
