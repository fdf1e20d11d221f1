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

from dockyard.domain.errors import Denied, NotFound, Unauthorized

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
    """Whether pushing to the (not yet existing) `repository` may create it. Anonymous callers
    never may, except in auth mode `none`, where everyone is an admin."""
    if principal.name is None:
        return principal.is_admin
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


# -- management: who may manage accounts, teams and repositories --------------------------------
# Where DTR's lab is silent (DESIGN.md, "Access model"): signed-in users read accounts, teams and
# members; global admins make users and change roles; any signed-in user makes an organisation;
# an organisation's owners (and global admins) manage its teams; account and team writes through
# an access token need an `admin`-scoped one; a password change or a new access token needs a
# password sign-in. `commands.management` gathers the facts and calls these before each command,
# for the management API and the portal alike. Each raises the domain error the caller sees.

def check_signed_in(principal: Principal) -> None:
    """`Unauthorized` for an anonymous caller (auth mode `none` makes everyone an admin)."""
    if principal.is_anonymous and not principal.is_admin:
        raise Unauthorized("authentication required")


def check_account_scope(principal: Principal) -> None:
    """Account, organisation and team writes through an access token need an admin-scoped one."""
    check_signed_in(principal)
    if principal.token_level not in (None, "admin"):
        raise Denied("this access token's scope does not allow account or team changes")


def check_password_sign_in(principal: Principal) -> None:
    """Changing a password or making an access token needs the password, not a token."""
    if principal.token_id is not None:
        raise Denied("sign in with a password, not an access token, to do this")


def check_admin(principal: Principal, what: str = "do this") -> None:
    """Global admins only (an access token counts only when admin-scoped: `Principal.is_admin`)."""
    check_signed_in(principal)
    if not principal.is_admin:
        raise Denied(f"only a global admin may {what}")


def check_may_change_user(principal: Principal, user: str, *, role_or_active: bool, password: bool) -> None:
    """A user's role and active flag are the global admins'; a password is the user's or theirs."""
    check_account_scope(principal)
    if role_or_active and not principal.is_admin:
        raise Denied("only a global admin may change a role or deactivate a user")
    if password:
        if not principal.is_admin and principal.name != user:
            raise Denied("only the user themself or a global admin may change a password", {"user": user})
        check_password_sign_in(principal)


def check_may_manage_teams(principal: Principal, organization: str, is_owner: bool) -> None:
    """An organisation's teams and members: global admins and members of its `owners` team."""
    check_account_scope(principal)
    if not principal.is_admin and not is_owner:
        raise Denied("only the organisation's owners may manage its teams", {"organization": organization})


def check_level(level: str, needed: str, repository: str) -> None:
    """A repository the caller cannot read is `NotFound`, exactly like a missing one; one they
    read but cannot change enough is `Denied`."""
    if level == "none":
        raise NotFound("no such repository", {"repository": repository})
    if _RANK[level] < _RANK[needed]:
        raise Denied(f"this needs {needed} access to the repository", {"repository": repository})


def check_may_create_repository(principal: Principal, repository: str, facts: RepositoryFacts) -> None:
    check_signed_in(principal)
    if not may_create(principal, repository, facts):
        raise Denied("only the namespace's user, its organisation's owners or a global admin may create "
                     "repositories in it", {"namespace": namespace_of(repository)})
