"""The access policy: what a principal may do to a repository. Pure functions.

DESIGN.md ("Access model", DTR 1.4 semantics). A user's level on `N/R` is the highest of:
- the global role (`admin` on everything; `read-write`/`read-only` on every repository);
- `admin` on their own namespace (`N` is the user's name);
- `admin` on every repository of organisation `N` when in its `owners` team;
- the level each team of `N` the user belongs to was granted on `R`;
- `read-only` for everyone, anonymous included, when `R` is public.
Organisation membership alone grants nothing. Repositories are created by pushing only where
the principal may create: global admins anywhere, users in their own namespace, owners in
their organisation's. An access token caps the level further (`Principal.token_level`) and may
be limited to some repositories.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("none", "read-only", "read-write", "admin")
_RANK = {level: i for i, level in enumerate(LEVELS)}

# Docker token actions each level grants on a repository.
ACTIONS = {
    "none": frozenset(),
    "read-only": frozenset({"pull"}),
    "read-write": frozenset({"pull", "push", "delete"}),
    "admin": frozenset({"pull", "push", "delete", "*"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user (`name`, global `role`), or anonymous (`name` None).

    `token_id`, `token_level` and `token_repositories` are set when the user signed in with
    an access token: the token's level caps theirs, and a non-empty repository list limits
    where it applies.
    """

    name: str | None
    role: str = "none"
    token_id: str | None = None
    token_level: str | None = None
    token_repositories: tuple[str, ...] = ()

    @property
    def is_anonymous(self) -> bool:
        return self.name is None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.token_level in (None, "admin")


ANONYMOUS = Principal(None)


@dataclass(frozen=True, slots=True)
class RepositoryFacts:
    """What the policy needs to know about one repository and one principal (read models supply it)."""

    exists: bool
    public: bool = False
    team_levels: tuple[str, ...] = ()  # levels granted on it to teams the principal belongs to
    org_owner: bool = False  # the principal is in the owners team of its namespace


def highest(*levels: str) -> str:
    return max(levels, key=lambda level: _RANK[level])


def lowest(*levels: str) -> str:
    return min(levels, key=lambda level: _RANK[level])


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0] if "/" in repository else ""


def repository_level(principal: Principal, repository: str, facts: RepositoryFacts) -> str:
    """The principal's level on `repository`."""
    levels = [principal.role if principal.role in _RANK else "none"]
    if principal.name is not None:
        if namespace_of(repository) == principal.name or facts.org_owner:
            levels.append("admin")
        levels.extend(level for level in facts.team_levels if level in _RANK)
    if facts.public:
        levels.append("read-only")
    level = highest(*levels)
    if principal.token_level is not None:
        if principal.token_repositories and repository not in principal.token_repositories:
            return "read-only" if facts.public else "none"
        level = lowest(level, principal.token_level)
    return level


def may_create(principal: Principal, repository: str, facts: RepositoryFacts) -> bool:
    """Whether pushing to the (not yet existing) `repository` may create it."""
    if principal.name is None:
        return False
    if principal.token_level is not None and principal.token_level == "read-only":
        return False
    if principal.token_repositories and repository not in principal.token_repositories:
        return False
    return principal.is_admin or namespace_of(repository) == principal.name or facts.org_owner


def allowed_actions(principal: Principal, repository: str, requested: set[str] | frozenset[str],
                    facts: RepositoryFacts) -> set[str]:
    """The subset of `requested` Docker token actions the principal may perform on `repository`."""
    actions = set(ACTIONS[repository_level(principal, repository, facts)])
    if not facts.exists and not may_create(principal, repository, facts):
        actions -= {"push", "*"}
    return set(requested) & actions


def may_read(principal: Principal, repository: str, facts: RepositoryFacts) -> bool:
    """Whether the repository exists for this principal at all (catalog, search, UI)."""
    return facts.exists and "pull" in allowed_actions(principal, repository, {"pull"}, facts)


def reads_everything(principal: Principal) -> bool:
    """Whether the principal may read every repository (a global role of read-only or more, not
    narrowed by an access token's repository list): listings then need no per-repository check."""
    return (principal.name is not None and principal.role in ("read-only", "read-write", "admin")
            and principal.token_level != "none" and not principal.token_repositories)


def may_list_catalog(principal: Principal) -> bool:
    """Anyone signed in may list the catalog; each entry is still filtered by read access."""
    return not principal.is_anonymous
