"""The readable set in SQL (`projections.readable`) agrees with the pure policy
(`domain.access.may_read`) for every caller and repository of an exhaustive grid: global roles,
own namespace, organisation owners, team grants of each level, public and private, deleted,
and access tokens of each level with and without a repository list."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from dockyard.domain import access
from dockyard.domain.access import Principal, RepositoryFacts
from dockyard.projections.readable import CallerFacts, readable_candidates, readable_predicate

USERS = ("alice", "bob", "carol")
# organisation -> team -> members; "owners" is the owners team.
TEAMS = {"org": {"owners": ("carol",), "dev": ("alice",), "ops": ("bob", "alice")},
         "lab": {"owners": ("bob",), "dev": ("carol",)}}
# repository -> (visibility, deleted, {team: level}) — teams of the repository's organisation.
REPOS = {
    "alice/own": ("private", False, {}),
    "alice/pub": ("public", False, {}),
    "bob/own": ("private", False, {}),
    "org/none": ("private", False, {}),
    "org/ro": ("private", False, {"dev": "read-only"}),
    "org/rw": ("private", False, {"ops": "read-write"}),
    "org/adm": ("private", False, {"dev": "admin"}),
    "org/pub": ("public", False, {"ops": "admin"}),
    "org/gone": ("private", True, {"dev": "read-only"}),
    "lab/x": ("private", False, {"dev": "read-write"}),
    "lab/gone-pub": ("public", True, {}),
}
ROLES = ("none", "read-only", "read-write", "admin")
TOKEN_LEVELS = (None, "none", "read-only", "read-write", "admin")
TOKEN_REPOS = ((), ("org/none",), ("alice/pub", "org/rw", "lab/x"))


def _database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.executescript(
        "CREATE TABLE repositories (name TEXT PRIMARY KEY, namespace TEXT, visibility TEXT, deleted INTEGER);"
        "CREATE TABLE team_access (repository TEXT, organization TEXT, team TEXT, level TEXT);"
        "CREATE TABLE team_members (organization TEXT, team TEXT, member TEXT);")
    for name, (visibility, deleted, grants) in REPOS.items():
        namespace = name.split("/")[0]
        db.execute("INSERT INTO repositories VALUES (?, ?, ?, ?)", (name, namespace, visibility, int(deleted)))
        for team, level in grants.items():
            db.execute("INSERT INTO team_access VALUES (?, ?, ?, ?)", (name, namespace, team, level))
    for org, teams in TEAMS.items():
        for team, members in teams.items():
            for member in members:
                db.execute("INSERT INTO team_members VALUES (?, ?, ?)", (org, team, member))
    return db


def _facts(user: str | None, repository: str) -> RepositoryFacts:
    visibility, deleted, grants = REPOS[repository]
    namespace = repository.split("/")[0]
    teams = TEAMS.get(namespace, {})
    levels = tuple(level for team, level in grants.items() if user in teams.get(team, ()))
    owner = user is not None and user in teams.get("owners", ())
    return RepositoryFacts(exists=not deleted, public=visibility == "public", team_levels=levels, org_owner=owner)


def _principals() -> list[Principal]:
    found = [access.ANONYMOUS, Principal(None, "admin")]  # anonymous, and auth mode `none`
    for user, role, level, repos in itertools.product(USERS, ROLES, TOKEN_LEVELS, TOKEN_REPOS):
        if level is None and repos:
            continue
        found.append(Principal(user, role, "tok" if level else None, level, repos))
    return found


def _owned(user: str | None) -> tuple[str, ...]:
    return tuple(org for org, teams in TEAMS.items() if user in teams["owners"])


@pytest.mark.parametrize("principal", _principals(), ids=repr)
def test_the_readable_set_in_sql_is_the_policy(principal: Principal) -> None:
    db = _database()
    where, params = readable_predicate(CallerFacts(principal, _owned(principal.name)), "r", "r.namespace")
    in_sql = {row["name"] for row in db.execute(
        f"SELECT name FROM repositories r WHERE {where}".replace("%(", ":").replace(")s", ""), params)}
    by_policy = {name for name in REPOS if access.may_read(principal, name, _facts(principal.name, name))}
    assert in_sql == by_policy
    # The indexed starting set a search uses for a caller who reads a few holds all of them.
    candidates = readable_candidates(CallerFacts(principal, _owned(principal.name)), "repositories")
    if candidates is not None:
        sql, params = candidates
        found = {row[0] for row in db.execute(sql.replace("%(", ":").replace(")s", ""), params)}
        assert by_policy <= found


def test_the_grid_covers_every_kind_of_answer() -> None:
    """Not vacuous: some callers read nothing, some everything live, most something between."""
    db = _database()
    sizes = set()
    for principal in _principals():
        where, params = readable_predicate(CallerFacts(principal, _owned(principal.name)), "r", "r.namespace")
        sizes.add(len(db.execute(f"SELECT name FROM repositories r WHERE {where}".replace("%(", ":")
                                 .replace(")s", ""), params).fetchall()))
    live = sum(1 for _, deleted, _ in REPOS.values() if not deleted)
    assert 0 in sizes and live in sizes and len(sizes) >= 5
