"""The access policy (`domain/access.py`), checked three ways:

1. the lab scenario of DESIGN.md, row by row, as the lab states it;
2. hand-picked cases for each rule and each token restriction;
3. exhaustively, over every combination of global role, own namespace, organisation owner,
   team level, visibility, existence and access token, against the rules written out once
   more from DESIGN.md ("Access model").
"""

from __future__ import annotations

import itertools

import pytest

from dockyard.domain.access import (
    ACTIONS,
    ANONYMOUS,
    LEVELS,
    Principal,
    RepositoryFacts,
    allowed_actions,
    highest,
    lowest,
    may_create,
    may_list_catalog,
    may_read,
    namespace_of,
    repository_level,
)

ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})

# -- 1. the lab ----------------------------------------------------------------------------------

# engineering/barca: private, team core read-only; engineering/madrid: private, team frontend read-write.
TEAMS = {"gordon": ("core", "frontend"), "orca": ("core",), "moby": ("frontend",), "ahab": ("frontend",)}
ROLES = {"gordon": "admin", "orca": "read-write", "moby": "read-only", "ahab": "none"}
GRANTS = {"engineering/barca": {"core": "read-only"}, "engineering/madrid": {"frontend": "read-write"}}


def lab_facts(user: str, repository: str) -> RepositoryFacts:
    """What the identity read model would say for the lab's users and repositories."""
    levels = tuple(level for team, level in GRANTS[repository].items() if team in TEAMS[user])
    return RepositoryFacts(exists=True, public=False, team_levels=levels, org_owner=False)


# user: (pull barca, push barca, pull madrid, push madrid, sees barca), as DESIGN.md tabulates it.
LAB = {
    "gordon": (True, True, True, True, True),
    "orca": (True, True, True, True, True),
    "moby": (True, False, True, True, True),
    "ahab": (False, False, True, True, False),
}


@pytest.mark.parametrize("user", sorted(LAB))
def test_lab_scenario(user: str) -> None:
    principal = Principal(user, ROLES[user])
    barca, madrid = lab_facts(user, "engineering/barca"), lab_facts(user, "engineering/madrid")

    outcome = (
        "pull" in allowed_actions(principal, "engineering/barca", {"pull"}, barca),
        "push" in allowed_actions(principal, "engineering/barca", {"push"}, barca),
        "pull" in allowed_actions(principal, "engineering/madrid", {"pull"}, madrid),
        "push" in allowed_actions(principal, "engineering/madrid", {"push"}, madrid),
        may_read(principal, "engineering/barca", barca),
    )
    assert outcome == LAB[user]


# -- 2. rule by rule -----------------------------------------------------------------------------


def test_levels_are_ordered() -> None:
    assert LEVELS == ("none", "read-only", "read-write", "admin")
    assert highest("read-only", "admin", "none") == "admin"
    assert lowest("read-write", "admin", "read-only") == "read-only"
    assert ACTIONS["none"] == frozenset()
    assert ACTIONS["read-only"] == {"pull"}
    assert ACTIONS["read-write"] == {"pull", "push", "delete"}
    assert ACTIONS["admin"] == {"pull", "push", "delete", "*"}


def test_namespace_of() -> None:
    assert namespace_of("gordon/app") == "gordon"
    assert namespace_of("engineering/team/app") == "engineering"
    assert namespace_of("ubuntu") == ""  # a top-level repository has no namespace


def test_own_namespace_is_admin_even_with_no_role() -> None:
    ahab = Principal("ahab", "none")
    facts = RepositoryFacts(exists=True)
    assert repository_level(ahab, "ahab/tools", facts) == "admin"
    assert allowed_actions(ahab, "ahab/tools", ALL_ACTIONS, facts) == ALL_ACTIONS
    # A repository merely named like the user elsewhere is not theirs.
    assert repository_level(ahab, "other/ahab", facts) == "none"
    assert repository_level(ahab, "ahabx/tools", facts) == "none"
    # And a top-level repository named after them neither.
    assert repository_level(ahab, "ahab", facts) == "none"


def test_organisation_membership_alone_grants_nothing() -> None:
    # In a team of the organisation, but with no grant on the repository.
    facts = RepositoryFacts(exists=True, team_levels=())
    assert allowed_actions(Principal("moby", "none"), "engineering/barca", ALL_ACTIONS, facts) == set()
    assert not may_read(Principal("moby", "none"), "engineering/barca", facts)


def test_owners_are_admin_and_may_create_in_their_organisation() -> None:
    owner = Principal("olga", "none")
    live, missing = RepositoryFacts(exists=True, org_owner=True), RepositoryFacts(exists=False, org_owner=True)
    assert allowed_actions(owner, "engineering/new", ALL_ACTIONS, live) == ALL_ACTIONS
    assert may_create(owner, "engineering/new", missing)
    assert allowed_actions(owner, "engineering/new", {"push", "pull"}, missing) == {"push", "pull"}


def test_highest_team_level_wins() -> None:
    facts = RepositoryFacts(exists=True, team_levels=("read-only", "read-write"))
    assert repository_level(Principal("moby", "none"), "engineering/madrid", facts) == "read-write"
    facts = RepositoryFacts(exists=True, team_levels=("admin", "read-only"))
    assert repository_level(Principal("moby", "none"), "engineering/madrid", facts) == "admin"


def test_public_repositories_are_readable_by_everyone() -> None:
    public = RepositoryFacts(exists=True, public=True)
    for principal in (ANONYMOUS, Principal("ahab", "none")):
        assert allowed_actions(principal, "engineering/docs", ALL_ACTIONS, public) == {"pull"}
        assert may_read(principal, "engineering/docs", public)
    # Private: anonymous clients get nothing and the repository does not exist for them.
    private = RepositoryFacts(exists=True, public=False)
    assert allowed_actions(ANONYMOUS, "engineering/docs", ALL_ACTIONS, private) == set()
    assert not may_read(ANONYMOUS, "engineering/docs", private)


def test_anonymous_never_creates_and_never_lists_the_catalog() -> None:
    assert not may_create(ANONYMOUS, "anything/new", RepositoryFacts(exists=False))
    assert allowed_actions(ANONYMOUS, "anything/new", ALL_ACTIONS, RepositoryFacts(exists=False)) == set()
    assert not may_list_catalog(ANONYMOUS)
    assert may_list_catalog(Principal("ahab", "none"))
    assert ANONYMOUS.is_anonymous and not Principal("ahab").is_anonymous


def test_global_read_write_may_push_existing_but_not_create_elsewhere() -> None:
    orca = Principal("orca", "read-write")
    assert allowed_actions(orca, "engineering/barca", ALL_ACTIONS, RepositoryFacts(exists=True)) == {
        "pull", "push", "delete"}
    # Creating by push is for admins, one's own namespace and organisation owners.
    missing = RepositoryFacts(exists=False)
    assert not may_create(orca, "engineering/new", missing)
    assert allowed_actions(orca, "engineering/new", ALL_ACTIONS, missing) == {"pull", "delete"}
    assert may_create(orca, "orca/new", missing)


def test_missing_repositories_do_not_exist_for_reading() -> None:
    # Even a global admin does not "see" a repository that is not there.
    assert not may_read(Principal("gordon", "admin"), "engineering/gone", RepositoryFacts(exists=False))


def test_unknown_role_counts_as_none() -> None:
    weird = Principal("x", "superuser")
    assert repository_level(weird, "engineering/barca", RepositoryFacts(exists=True)) == "none"


def test_token_level_caps_the_user() -> None:
    gordon = Principal("gordon", "admin", token_id="t1", token_level="read-only")
    facts = RepositoryFacts(exists=True)
    assert allowed_actions(gordon, "engineering/barca", ALL_ACTIONS, facts) == {"pull"}
    assert not gordon.is_admin  # a read-only token does not carry admin rights
    assert not may_create(gordon, "gordon/new", RepositoryFacts(exists=False))
    # A token never raises a level: an admin token of a read-only user stays read-only.
    moby = Principal("moby", "read-only", token_id="t2", token_level="admin")
    assert allowed_actions(moby, "engineering/barca", ALL_ACTIONS, facts) == {"pull"}
    assert Principal("gordon", "admin", token_id="t3", token_level="admin").is_admin


def test_token_repository_list_limits_where_it_applies() -> None:
    token = Principal("orca", "read-write", token_id="t", token_level="read-write",
                      token_repositories=("engineering/madrid",))
    live = RepositoryFacts(exists=True)
    assert allowed_actions(token, "engineering/madrid", ALL_ACTIONS, live) == {"pull", "push", "delete"}
    # Elsewhere: nothing, except that public repositories stay readable.
    assert allowed_actions(token, "engineering/barca", ALL_ACTIONS, live) == set()
    assert allowed_actions(token, "engineering/barca", ALL_ACTIONS,
                           RepositoryFacts(exists=True, public=True)) == {"pull"}
    # And it cannot create outside its list, even in the user's own namespace.
    assert not may_create(token, "orca/new", RepositoryFacts(exists=False))


# -- 3. exhaustive -------------------------------------------------------------------------------

_RANK = {level: i for i, level in enumerate(LEVELS)}
REPO_OWN, REPO_OTHER = "gordon/app", "engineering/app"


def expected_actions(user: str | None, role: str, repository: str, facts: RepositoryFacts,
                     token_level: str | None, token_repositories: tuple[str, ...]) -> set[str]:
    """DESIGN.md's access model, written out independently of `domain/access.py`."""
    own = user is not None and repository.split("/")[0] == user
    if user is None:
        granted = ["read-only"] if facts.public else ["none"]
    else:
        granted = [role]
        if own or facts.org_owner:
            granted.append("admin")
        granted += list(facts.team_levels)
        if facts.public:
            granted.append("read-only")
    level = max(granted, key=_RANK.__getitem__)
    token_applies = not token_repositories or repository in token_repositories
    if token_level is not None:
        if not token_applies:
            level = "read-only" if facts.public else "none"
        elif _RANK[token_level] < _RANK[level]:
            level = token_level
    actions = {
        "none": set(), "read-only": {"pull"}, "read-write": {"pull", "push", "delete"},
        "admin": {"pull", "push", "delete", "*"},
    }[level]
    if not facts.exists:
        admin = role == "admin" and token_level in (None, "admin")
        creates = (user is not None and token_level != "read-only" and token_applies
                   and (admin or own or facts.org_owner))
        if not creates:
            actions -= {"push", "*"}
    return actions


def combinations():
    tokens = [(None, ())] + [
        (level, repos) for level in ("read-only", "read-write", "admin")
        for repos in ((), (REPO_OWN, REPO_OTHER), ("elsewhere/app",))
    ]
    for user, role, repository, exists, public, teams, owner, (token_level, token_repos) in itertools.product(
        (None, "gordon"), LEVELS, (REPO_OWN, REPO_OTHER), (True, False), (True, False),
        ((), ("read-only",), ("read-write",), ("admin",), ("read-only", "read-write")),
        (False, True), tokens,
    ):
        if not exists and (public or teams):
            continue  # the read model only reports visibility and grants of a live repository
        if user is None and (role != "none" or teams or owner or token_level is not None):
            continue  # anonymous clients have no role, teams, ownership or token
        facts = RepositoryFacts(exists=exists, public=public, team_levels=teams, org_owner=owner)
        principal = Principal(user, role, token_id="t" if token_level else None, token_level=token_level,
                              token_repositories=token_repos)
        yield principal, repository, facts


def test_exhaustive_against_the_design() -> None:
    checked = 0
    for principal, repository, facts in combinations():
        expected = expected_actions(principal.name, principal.role, repository, facts,
                                    principal.token_level, principal.token_repositories)
        # Every subset of actions asked for gets exactly its intersection with what is allowed.
        for size in range(len(ALL_ACTIONS) + 1):
            for requested in itertools.combinations(sorted(ALL_ACTIONS), size):
                got = allowed_actions(principal, repository, set(requested), facts)
                assert got == expected & set(requested), (principal, repository, facts, requested)
        # Reading (catalog, search, UI) is: exists and may pull.
        assert may_read(principal, repository, facts) == (facts.exists and "pull" in expected)
        checked += 1
    # The whole grid was walked: 1,760 signed-in cases (4 roles x 2 repositories x 11 states of
    # existence, visibility and teams x owner or not x 10 tokens) and 6 anonymous ones.
    assert checked == 1766
