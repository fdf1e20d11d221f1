"""The access policy: what a principal may do to a repository. One pure function.

DESIGN.md ("Access model"): a user's level on `N/R` is the highest of their global role, admin
on their own namespace, and read-only for everyone on a public repository. Team grants and
organisation owners join this function with the identity issue; its callers do not change.
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
    """An authenticated user (`name`, global `role`), or anonymous (`name` None, role `none`)."""

    name: str | None
    role: str = "none"

    @property
    def is_anonymous(self) -> bool:
        return self.name is None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ANONYMOUS = Principal(None)


def highest(*levels: str) -> str:
    return max(levels, key=lambda level: _RANK[level])


def repository_level(principal: Principal, repository: str, *, public: bool = False) -> str:
    """The principal's level on `repository` (a full name such as `engineering/barca`)."""
    namespace = repository.split("/", 1)[0] if "/" in repository else ""
    levels = [principal.role if principal.role in _RANK else "none"]
    if principal.name is not None and namespace == principal.name:
        levels.append("admin")
    if public:
        levels.append("read-only")
    return highest(*levels)


def allowed_actions(principal: Principal, repository: str, requested: set[str] | frozenset[str], *,
                    public: bool = False) -> set[str]:
    """The subset of `requested` actions the principal may perform on `repository`."""
    return set(requested) & ACTIONS[repository_level(principal, repository, public=public)]


def may_list_catalog(principal: Principal) -> bool:
    """Anyone signed in may list the catalog; each entry is still filtered by read access."""
    return not principal.is_anonymous
