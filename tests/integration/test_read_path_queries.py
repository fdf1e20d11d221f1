"""The read path's one-statement queries answer as the statements they replace, on both backends:
`IdentityQueries.policy_facts` (the repository, the team levels, the owners' team and the user's
account, which were three reads and a fourth for the user) and `RegistryQueries.tags_page` (the
repository's existence and a page of its tags, which were two)."""

from __future__ import annotations

import itertools
from typing import Any

from dockyard.commands.registry import Registry
from dockyard.domain.access import RepositoryFacts
from dockyard.domain.account import Organization, User
from dockyard.domain.repository import PUBLIC, Repository
from dockyard.domain.tag import Tag
from dockyard.domain.team import OWNERS, Team
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures (both backends)
from tests.on_registry import identity_view, registry_view

USERS = ("ann", "ben", "cat", "dan")
REPOSITORIES = ("org/app", "org/web", "org/gone", "lab/app", "ann/own", "org/never")


def _world(registry: Registry) -> None:  # noqa: F811
    users = {name: User(name=name, password_hash="x", role=role)
             for name, role in zip(USERS, ("none", "read-only", "read-write", "none"), strict=True)}
    teams = {(org, name): Team(organization=org, name=name) for org in ("org", "lab") for name in (OWNERS, "dev")}
    repos = {name: Repository(name=name) for name in REPOSITORIES[:-1]}
    registry.save(*users.values(), Organization(name="org"), Organization(name="lab"), *teams.values(),
                  *repos.values())
    teams["org", "dev"].add_member("ann")
    teams["org", "dev"].add_member("cat")
    teams["lab", "dev"].add_member("ann")
    teams["org", OWNERS].add_member("ben")
    repos["org/app"].grant("dev", "read-write")
    repos["org/gone"].grant("dev", "admin")
    repos["lab/app"].grant("dev", "read-only")
    repos["org/web"].set_visibility(PUBLIC)
    repos["org/gone"].delete()
    users["dan"].set_active(False)
    registry.save(*users.values(), *teams.values(), *repos.values())


def _reference_facts(registry: Registry, user: str | None,  # noqa: F811
                     repository: str) -> tuple[Any, RepositoryFacts]:
    """The facts as the separate statements read them before (and the account as `user()` does)."""
    view = identity_view(registry)
    repo = view._rows("SELECT visibility FROM repositories WHERE name = %(r)s AND deleted = 0", {"r": repository})
    account = view.user(user) if user else None
    if user is None:
        return None, RepositoryFacts(exists=bool(repo), public=bool(repo) and repo[0]["visibility"] == "public")
    levels = tuple(sorted(r["level"] for r in view._rows(
        "SELECT ta.level FROM team_access ta JOIN team_members tm ON tm.organization = ta.organization "
        "AND tm.team = ta.team WHERE ta.repository = %(r)s AND tm.member = %(u)s", {"r": repository, "u": user})))
    facts = RepositoryFacts(exists=bool(repo), public=bool(repo) and repo[0]["visibility"] == "public",
                            team_levels=levels if repo else (),
                            org_owner=view.is_owner(user, repository.split("/", 1)[0]))
    return (None if account is None else {k: account[k] for k in ("name", "role", "active")}), facts


def test_policy_facts_in_one_statement_are_the_separate_reads(registry: Registry) -> None:  # noqa: F811
    _world(registry)
    view = identity_view(registry)
    for user, repository in itertools.product((*USERS, "nobody", "org", None), REPOSITORIES):
        account, facts = view.policy_facts(user, repository)
        facts = RepositoryFacts(facts.exists, facts.public, tuple(sorted(facts.team_levels)), facts.org_owner)
        assert (account, facts) == _reference_facts(registry, user, repository), (user, repository)
        assert view.repository_facts(user, repository).exists == facts.exists
    # Spot checks, so that the reference itself is not the only witness.
    assert view.policy_facts("ann", "org/app") == (
        {"name": "ann", "role": "none", "active": 1}, RepositoryFacts(True, False, ("read-write",), False))
    assert view.policy_facts("ben", "org/never")[1] == RepositoryFacts(False, False, (), True)
    assert view.policy_facts("dan", "org/web") == ({"name": "dan", "role": "none", "active": 0},
                                                  RepositoryFacts(True, True, (), False))
    assert view.policy_facts("org", "org/app")[0] is None  # an organisation is no user
    assert view.policy_facts(None, "org/gone") == (None, RepositoryFacts(False, False, (), False))


def test_a_tags_page_with_its_existence_check_is_the_two_reads(registry: Registry) -> None:  # noqa: F811
    _world(registry)
    tags = [Tag(repository="org/app", name=f"v{i:02d}") for i in range(12)]
    gone = Tag(repository="org/gone", name="left")  # a tag row of a deleted repository
    for i, tag in enumerate([*tags, gone]):
        tag.point_at(f"sha256:{i:064x}")
    registry.save(*tags, gone)
    view = registry_view(registry)
    names = [t.name for t in tags]
    for n, last in itertools.product((None, 0, 1, 5, 12, 13), (None, "v00", "v04", "v11", "zzz", "a")):
        expected = view.list_tags("org/app", n, last)
        assert view.tags_page("org/app", n, last) == expected, (n, last)
        assert expected == [t for t in names if last is None or t > last][:n]
    assert view.tags_page("org/web", None, None) == []  # exists, no tags
    assert view.tags_page("org/web", 0, None) == []
    for missing in ("org/gone", "org/never", "nowhere/x"):
        for n in (None, 0, 3):
            assert view.tags_page(missing, n, None) is None, (missing, n)
