"""The repositories a caller may read, as one SQL predicate: `domain.access.may_read` for a
whole table at once, so listings and search filter inside the query (a repository the caller
cannot read never reaches Python, nor any count).

`readable_predicate(facts, repo_alias)` is built only from the caller's facts — global role,
own namespace, the organisations whose `owners` team they are in, their teams' grants (read in
the query through `team_members`/`team_access`), public visibility, and an access token's
level and repository list — and it must agree with `domain.access` for every caller and
repository: `tests/unit/test_readable_sql.py` checks an exhaustive grid of both against the
pure policy. The alias names a `repositories` row (`name`, `visibility`, `deleted`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.domain import access
from dockyard.domain.access import Principal, RepositoryFacts
from dockyard.domain.team import OWNERS


@dataclass(frozen=True, slots=True)
class CallerFacts:
    """Who asks: the principal, and the organisations whose `owners` team they are in."""

    principal: Principal
    owned_organizations: tuple[str, ...] = ()


def _in_list(column: str, values: tuple[str, ...], prefix: str, params: dict[str, Any]) -> str:
    if not values:
        return "1 = 0"
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f"%({prefix}{i})s")
    return f"{column} IN ({', '.join(names)})"


def readable_predicate(facts: CallerFacts, alias: str = "r",
                       namespace: str = "s.namespace") -> tuple[str, dict[str, Any]]:
    """A SQL condition over `repositories AS alias` true exactly where the caller may read the
    (live) repository, and its parameters (named `rd_*`). `namespace` is an SQL expression for
    the repository's namespace (the part of its name before the first `/`)."""
    p = facts.principal
    params: dict[str, Any] = {}
    live = f"{alias}.deleted = 0"
    public = f"{alias}.visibility = 'public'"
    # What the principal's own rights (before an access token's cap) let them read.
    if p.role in ("read-only", "read-write", "admin"):
        own = "1 = 1"  # a global role reads everything (anonymous admin: auth mode `none`)
    elif p.name is None:
        own = "1 = 0"
    else:
        params["rd_user"] = p.name
        params["rd_owners"] = OWNERS
        own = " OR ".join([
            f"{namespace} = %(rd_user)s",
            _in_list(namespace, facts.owned_organizations, "rd_org", params),
            f"EXISTS (SELECT 1 FROM team_access rd_ta JOIN team_members rd_tm ON rd_tm.organization = "
            f"rd_ta.organization AND rd_tm.team = rd_ta.team WHERE rd_ta.repository = {alias}.name "
            f"AND rd_tm.member = %(rd_user)s)",
        ])
    if p.token_level is None:
        return f"({live} AND ({public} OR {own}))", params
    # An access token caps the level (`lowest`) and, with a repository list, limits where it applies:
    # outside the list only public repositories stay readable.
    within = "1 = 1" if p.token_level != "none" else "1 = 0"
    if p.token_repositories:
        listed = _in_list(f"{alias}.name", p.token_repositories, "rd_tok", params)
        return f"({live} AND (({listed} AND {within} AND ({public} OR {own})) OR (NOT {listed} AND {public})))", params
    return f"({live} AND {within} AND ({public} OR {own}))", params



def readable_candidates(facts: CallerFacts, search_table: str) -> tuple[str, dict[str, Any]] | None:
    """A query of repository names, drawn from indexes, that holds every repository the caller
    may read (and maybe more: `readable_predicate` still decides) — the set a query starts from
    when the caller reads a few, not all (None when a global role reads everything, where a
    search starts from its text index instead). Parameters are named `rc_*`."""
    p = facts.principal
    params: dict[str, Any] = {}
    public = "SELECT name FROM repositories WHERE visibility = 'public' AND deleted = 0"
    if p.token_repositories:
        return f"{public} UNION {_select_in(p.token_repositories, params)}", params
    if p.role in ("read-only", "read-write", "admin"):
        return None if p.token_level != "none" else (public, params)
    if p.name is None:
        return public, params
    params["rc_user"] = p.name
    parts = [public,
             f"SELECT name FROM {search_table} WHERE namespace = %(rc_user)s",
             "SELECT rc_ta.repository FROM team_members rc_tm JOIN team_access rc_ta ON rc_ta.organization = "
             "rc_tm.organization AND rc_ta.team = rc_tm.team WHERE rc_tm.member = %(rc_user)s"]
    if facts.owned_organizations:
        parts.append(f"SELECT name FROM {search_table} WHERE "
                     + _in_list("namespace", facts.owned_organizations, "rc_org", params))
    return " UNION ".join(parts), params


def _select_in(names: tuple[str, ...], params: dict[str, Any]) -> str:
    """`SELECT name FROM repositories WHERE name IN (…)` for the given names."""
    return f"SELECT name FROM repositories WHERE {_in_list('name', names, 'rc_tok', params)}"


def team_levels(cursor: Any, sql: Any, user: str | None, names: list[str]) -> dict[str, tuple[str, ...]]:
    """The levels the user's teams were granted on each of `names` (one query for a page);
    `sql` is the dialect's statement converter."""
    if user is None or not names:
        return {}
    params: dict[str, Any] = {"user": user}
    slots = []
    for i, name in enumerate(names):
        params[f"n{i}"] = name
        slots.append(f"%(n{i})s")
    cursor.execute(sql(
        "SELECT ta.repository, ta.level FROM team_access ta JOIN team_members tm ON tm.organization = "
        f"ta.organization AND tm.team = ta.team WHERE tm.member = %(user)s AND ta.repository IN "
        f"({', '.join(slots)})"), params)
    found: dict[str, tuple[str, ...]] = {}
    for r in cursor.fetchall():
        found[r["repository"]] = (*found.get(r["repository"], ()), r["level"])
    return found


def add_access_levels(facts: CallerFacts, rows: list[dict[str, Any]], levels: dict[str, tuple[str, ...]]) -> None:
    """Set each row's `access_level`: the caller's level on it, by `domain.access` (rows have
    `name` and `visibility`; `levels` are `team_levels` of their names)."""
    for row in rows:
        row["access_level"] = access.repository_level(facts.principal, row["name"], RepositoryFacts(
            exists=True, public=row["visibility"] == "public", team_levels=levels.get(row["name"], ()),
            org_owner=row["name"].split("/", 1)[0] in facts.owned_organizations))
