"""Searching repositories: ranked, filtered by the caller's read access inside the query, paged
by keyset.

Ranking (`rank`, lower first): 0 the name (full, or the part after the namespace) equals the
term; 1 it starts with the term; 2 the term is a whole word of the name, description or a tag
name; 3 the term is a substring of any of them. Among equals the most recently pushed come
first, then by name. The readable set is `projections.readable.readable_predicate`, so a
repository the caller cannot read is never selected, counted or paged over.

A page continues after a `SearchKey` (rank, pushed_at, name), which the API encodes in its
opaque cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.domain import access
from dockyard.domain.access import Principal, RepositoryFacts
from dockyard.domain.team import OWNERS
from dockyard.projections.dialect import Dialect
from dockyard.projections.readable import CallerFacts, readable_candidates, readable_predicate
from dockyard.projections.registry_queries import _like_literal
from dockyard.projections.repository_search import FTS, TABLE

FTS_MIN = 3  # trigrams: shorter terms are matched by LIKE alone


@dataclass(frozen=True, slots=True)
class SearchKey:
    rank: int
    pushed_at: str
    name: str

    def encode(self) -> str:
        return f"{self.rank}|{self.pushed_at}|{self.name}"

    @classmethod
    def decode(cls, text: str) -> SearchKey:
        """The key `encode` wrote; ValueError for anything else."""
        rank, pushed_at, name = text.split("|", 2)
        return cls(int(rank), pushed_at, name)


class SearchQueries:
    def __init__(self, datastore: Any, dialect: Dialect) -> None:
        self.datastore, self.dialect = datastore, dialect

    def caller_facts(self, principal: Principal) -> CallerFacts:
        """The facts the readable set is built from (the organisations the caller owns)."""
        if principal.name is None:
            return CallerFacts(principal)
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql("SELECT organization FROM team_members WHERE member = %(user)s "
                                            "AND team = %(owners)s ORDER BY organization"),
                           {"user": principal.name, "owners": OWNERS})
            return CallerFacts(principal, tuple(r["organization"] for r in cursor.fetchall()))

    def search(self, facts: CallerFacts, term: str, limit: int, after: SearchKey | None = None,
               namespace: str | None = None) -> list[dict[str, Any]]:
        """Up to `limit` repositories the caller may read matching `term` (lowercased; empty: all),
        best first, after `after`. Each row: name, visibility, description, created_at, tags,
        pushed_at, rank and `access_level` (the caller's level, by `domain.access`)."""
        term = term.strip().lower()
        readable, params = readable_predicate(facts, "r", "s.namespace")
        params.update({"q": term, "prefix": _like_literal(term) + "%", "word": f"% {_like_literal(term)} %",
                       "sub": f"%{_like_literal(term)}%", "limit": limit})
        rank = ("CASE WHEN s.name = %(q)s OR s.short_name = %(q)s THEN 0 "
                "WHEN s.name LIKE %(prefix)s ESCAPE '\\' OR s.short_name LIKE %(prefix)s ESCAPE '\\' THEN 1 "
                "WHEN s.words LIKE %(word)s ESCAPE '\\' THEN 2 ELSE 3 END")
        where = [readable]
        if term:
            where.append("s.document LIKE %(sub)s ESCAPE '\\'")
            if self.dialect.name == "sqlite" and len(term) >= FTS_MIN:
                where.append(f"s.id IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %(fts)s)")
                params["fts"] = '"' + term.replace('"', '""') + '"'
        if namespace:
            where.append("s.namespace = %(namespace)s")
            params["namespace"] = namespace
        candidates = readable_candidates(facts, TABLE)
        if candidates is None:  # reads everything: start from the text index
            source = f"{TABLE} s JOIN repositories r ON r.name = s.name"
        else:  # reads a few: start from them (CROSS JOIN keeps SQLite's join in this order)
            sql, extra = candidates
            params.update(extra)
            if self.dialect.name == "sqlite":
                source = f"({sql}) c CROSS JOIN {TABLE} s CROSS JOIN repositories r"
                where.append("s.name = c.name AND r.name = s.name")
            else:  # an array from an init plan, so PostgreSQL probes the name index with it
                source = f"{TABLE} s JOIN repositories r ON r.name = s.name"
                where.append(f"s.name = ANY(ARRAY({sql}))")
            # The few rows are matched by LIKE alone; `|| ''` keeps PostgreSQL from starting at the
            # trigram index instead (it misjudges common terms and scans most of it).
            where = [w.replace("s.document LIKE", "(s.document || '') LIKE") for w in where if "MATCH" not in w]
        inner = (f"SELECT s.name, r.visibility, r.description, r.created_at, s.namespace, s.tags, s.pushed_at, "
                 f"{rank} AS rank FROM {source} WHERE {' AND '.join(where)}")
        keyset = ""
        if after is not None:
            keyset = ("WHERE rank > %(k_rank)s OR (rank = %(k_rank)s AND (pushed_at < %(k_pushed)s OR "
                      "(pushed_at = %(k_pushed)s AND name > %(k_name)s)))")
            params.update({"k_rank": after.rank, "k_pushed": after.pushed_at, "k_name": after.name})
        statement = f"SELECT * FROM ({inner}) found {keyset} ORDER BY rank, pushed_at DESC, name LIMIT %(limit)s"
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(statement), params)
            rows = [dict(r) for r in cursor.fetchall()]
            levels = self._team_levels(cursor, facts.principal.name, [r["name"] for r in rows])
        for row in rows:
            row["access_level"] = access.repository_level(facts.principal, row["name"], RepositoryFacts(
                exists=True, public=row["visibility"] == "public", team_levels=levels.get(row["name"], ()),
                org_owner=row["namespace"] in facts.owned_organizations))
        return rows

    def _team_levels(self, cursor: Any, user: str | None, names: list[str]) -> dict[str, tuple[str, ...]]:
        """The levels the user's teams were granted on each of `names` (one query for a page)."""
        if user is None or not names:
            return {}
        params: dict[str, Any] = {"user": user}
        slots = []
        for i, name in enumerate(names):
            params[f"n{i}"] = name
            slots.append(f"%(n{i})s")
        cursor.execute(self.dialect.sql(
            "SELECT ta.repository, ta.level FROM team_access ta JOIN team_members tm ON tm.organization = "
            f"ta.organization AND tm.team = ta.team WHERE tm.member = %(user)s AND ta.repository IN "
            f"({', '.join(slots)})"), params)
        found: dict[str, tuple[str, ...]] = {}
        for r in cursor.fetchall():
            found[r["repository"]] = (*found.get(r["repository"], ()), r["level"])
        return found
