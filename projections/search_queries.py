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

from dockyard.domain.access import Principal
from dockyard.domain.team import OWNERS
from dockyard.projections.dialect import Dialect
from dockyard.projections.readable import (
    CallerFacts,
    add_access_levels,
    readable_candidates,
    readable_predicate,
    team_levels,
)
from dockyard.projections.registry_queries import _like_literal
from dockyard.projections.repository_search import FTS, TABLE, WORDS

FTS_MIN = 3  # trigrams: shorter terms are matched by LIKE alone
WINDOW = 500  # rows a global reader's search reads in page order before it asks an index
_COLUMNS = "s.name, r.visibility, r.description, r.created_at, s.namespace, s.tags, s.pushed_at"
# The rank of a row (see the module's docstring), lower first.
_RANK = ("CASE WHEN s.name = %(q)s OR s.short_name = %(q)s THEN 0 "
         "WHEN s.name LIKE %(prefix)s ESCAPE '\\' OR s.short_name LIKE %(prefix)s ESCAPE '\\' THEN 1 "
         "WHEN s.words LIKE %(word)s ESCAPE '\\' THEN 2 ELSE 3 END")


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
        if namespace:
            params["namespace"] = namespace
        candidates = readable_candidates(facts, TABLE)
        if candidates is None:
            rows = self._rank_by_rank(readable, params, term, limit, after, namespace)
        else:
            rows = self._from_candidates(readable, params, candidates, term, after, namespace)
        with self.dialect.reading(self.datastore) as cursor:
            levels = team_levels(cursor, self.dialect.sql, facts.principal.name, [r["name"] for r in rows])
        add_access_levels(facts, rows, levels)
        return rows

    def _from_candidates(self, readable: str, params: dict[str, Any], candidates: tuple[str, dict[str, Any]],
                         term: str, after: SearchKey | None, namespace: str | None) -> list[dict[str, Any]]:
        """A caller who reads a few: one query that starts from the indexed candidate set,
        filters it by the readable predicate and the term, and ranks what is left."""
        where = [readable]
        if term:  # The few rows are matched without the text index. On PostgreSQL `|| ''` keeps the
            # planner from starting at the trigram index instead (it misjudges common terms and scans
            # most of it); on SQLite `instr` is LIKE '%term%' on the lowercase document, without a pattern.
            where.append("(s.document || '') LIKE %(sub)s ESCAPE '\\'" if self.dialect.name == "postgres"
                         else "instr(s.document, %(q)s) > 0")
        if namespace:
            where.append("s.namespace = %(namespace)s")
        sql, extra = candidates
        params.update(extra)
        if self.dialect.name == "sqlite":  # CROSS JOIN keeps SQLite's join in this order
            source = f"({sql}) c CROSS JOIN {TABLE} s CROSS JOIN repositories r"
            where.append("s.name = c.name AND r.name = s.name")
        else:  # an array from an init plan, so PostgreSQL probes the name index with it
            source = f"{TABLE} s JOIN repositories r ON r.name = s.name"
            where.append(f"s.name = ANY(ARRAY({sql}))")
        inner = f"SELECT {_COLUMNS}, {_RANK} AS rank FROM {source} WHERE {' AND '.join(where)}"
        keyset = ""
        if after is not None:
            keyset = ("WHERE rank > %(k_rank)s OR (rank = %(k_rank)s AND (pushed_at < %(k_pushed)s OR "
                      "(pushed_at = %(k_pushed)s AND name > %(k_name)s)))")
            params.update({"k_rank": after.rank, "k_pushed": after.pushed_at, "k_name": after.name})
        statement = f"SELECT * FROM ({inner}) found {keyset} ORDER BY rank, pushed_at DESC, name LIMIT %(limit)s"
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(statement), params)
            return [dict(r) for r in cursor.fetchall()]

    def _rank_by_rank(self, readable: str, params: dict[str, Any], term: str, limit: int,
                      after: SearchKey | None, namespace: str | None) -> list[dict[str, Any]]:
        """A caller who reads everything: one query per rank, best rank first, each stopped at
        the rows the page still lacks, so a page of exact and prefix matches never ranks the
        substring tail. Each query keeps the rank expression itself (`rank = k`) and adds a
        condition every row of that rank meets and an index can find (names are lowercase, so
        a prefix is a range of them; words and substrings are trigram matches)."""
        sqlite = self.dialect.name == "sqlite"
        fts = sqlite and len(term) >= FTS_MIN
        if fts:
            params["fts"] = '"' + term.replace('"', '""') + '"'
        # Words and substrings: the FTS5 trigram table on SQLite; PostgreSQL finds `s.document LIKE`
        # (added to every rank below) with its pg_trgm index.
        matched = f"s.id IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %(fts)s)" if fts else "1 = 1"
        if sqlite and term:
            params.update({"lo": term, "hi": term[:-1] + chr(ord(term[-1]) + 1)})
            prefixed = ("((s.name >= %(lo)s AND s.name < %(hi)s) OR "
                        "(s.short_name >= %(lo)s AND s.short_name < %(hi)s))")
        else:  # PostgreSQL: the `text_pattern_ops` indexes serve LIKE 'prefix%'
            prefixed = ("(s.name LIKE %(prefix)s ESCAPE '\\' OR s.short_name LIKE %(prefix)s ESCAPE '\\')"
                        if term else "1 = 1")
        # Whole words (rank 2) are a few of the substring matches: on SQLite, when a window of the
        # table does not hold a page of them, all substring matches are read once for both ranks.
        steps: list[tuple[tuple[int, ...], str]] = [((0,), "(s.name = %(q)s OR s.short_name = %(q)s)"),
                                                    ((1,), prefixed), ((2, 3), matched)]
        if not sqlite:  # PostgreSQL indexes the words themselves: rank 2 is found by them alone
            steps[2:] = [((2,), f"{WORDS.replace('words', 's.words')} @> string_to_array(%(q)s, ' ')"),
                         ((3,), matched)]
        if not term:  # every row is of rank 1
            steps = [((1,), "1 = 1")]
        with self.dialect.reading(self.datastore) as cursor:
            return self._pages(cursor, steps, readable, params, term, limit, after, namespace)

    def _pages(self, cursor: Any, steps: list[tuple[tuple[int, ...], str]], readable: str, params: dict[str, Any],
               term: str, limit: int, after: SearchKey | None, namespace: str | None) -> list[dict[str, Any]]:
        """Run the steps (ranks, a condition an index finds their rows by) in order until
        `limit` rows are found.

        Neither planner chooses well between finding a rank's rows by an index (then sorting
        them all) and reading the table in page order until the page is full (SQLite has no
        statistics; PostgreSQL's misjudge LIKE on names): each rank first reads the next
        `WINDOW` rows in page order (the `recent` index) and keeps that answer when it fills
        the page — the same rows, as they are the first matches in page order — and only
        otherwise finds them all by the index (or a pass over the table)."""
        sqlite = self.dialect.name == "sqlite"
        contains = ("instr(s.document, %(q)s) > 0" if sqlite  # LIKE '%term%' on the lowercase document
                    else "s.document LIKE %(sub)s ESCAPE '\\'")
        first = 0 if after is None else after.rank
        if after is not None:
            params.update({"k_rank": after.rank, "k_pushed": after.pushed_at, "k_name": after.name})
        rows: list[dict[str, Any]] = []
        for ranks, found_by in steps:
            if max(ranks) < first:
                continue
            where = [readable]
            if term:  # `|| ''`: an exact or prefix match is found by a name index, not the trigrams
                where.append(contains.replace("s.document LIKE", "(s.document || '') LIKE") if max(ranks) < 2
                             else contains)
            if namespace:
                where.append("s.namespace = %(namespace)s")
            params["limit"] = limit - len(rows)
            found: list[Any] = []
            window = max(ranks[0], first)  # the page's next rank
            if window > 0:
                params["window"] = WINDOW
                keyset = ("(s.pushed_at < %(k_pushed)s OR (s.pushed_at = %(k_pushed)s AND s.name > %(k_name)s))"
                          if window == first and after is not None else "1 = 1")
                cursor.execute(self.dialect.sql(
                    f"SELECT {_COLUMNS}, {window} AS rank FROM (SELECT * FROM {TABLE} s WHERE {keyset} "
                    f"ORDER BY s.pushed_at DESC, s.name LIMIT %(window)s) s JOIN repositories r ON r.name = s.name "
                    f"WHERE {' AND '.join([*where, f'{_RANK} = {window}'])} "
                    f"ORDER BY s.pushed_at DESC, s.name LIMIT %(limit)s"), params)
                found = cursor.fetchall()
            if len(found) < params["limit"]:  # all of the step's ranks, found by the index, then sorted
                rank = f"{_RANK} IN ({', '.join(map(str, ranks))})"
                if after is not None:
                    rank += (f" AND ({_RANK} > %(k_rank)s OR ({_RANK} = %(k_rank)s AND (s.pushed_at < %(k_pushed)s "
                             "OR (s.pushed_at = %(k_pushed)s AND s.name > %(k_name)s))))")
                cursor.execute(self.dialect.sql(
                    f"SELECT {_COLUMNS}, {_RANK} AS rank FROM {TABLE} s JOIN repositories r ON r.name = s.name "
                    f"WHERE {' AND '.join([*where, found_by, rank])} "  # SQLite: `+`, or it reads in page order
                    f"ORDER BY rank, {'+' if sqlite else ''}s.pushed_at DESC, s.name LIMIT %(limit)s"), params)
                found = cursor.fetchall()
            rows.extend(dict(r) for r in found)
            if len(rows) >= limit:
                break
        return rows
