"""Management as a principal asks for it: the management API (`/api/v0`) and the portal call these.

Each method checks who may do it (`domain.access`, with facts read from the identity and
registry read models), then runs the `Identity` command, which keeps the invariants every
caller keeps (account names and namespaces, the last active admin, the password policy). The
CLI is the local operator: it calls `Identity` directly and meets the same invariants.

Blocking (argon2, read-model queries): the API calls these in its thread pool.
"""

from __future__ import annotations

from dockyard.commands.accounts import Accounts
from dockyard.commands.identity import Identity
from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.account import check_account_name, check_role
from dockyard.domain.errors import NotFound
from dockyard.domain.team import OWNERS
from dockyard.projections.identity_queries import IdentityQueries


class Management:
    def __init__(self, identity_view: IdentityQueries, identity: Identity, accounts: Accounts) -> None:
        """`accounts` makes and changes users: it hashes their passwords (after the policy) and
        ends what their old credentials gave (refresh tokens, remembered sign-ins)."""
        self.identity = identity
        self.accounts = accounts
        self.identity_view = identity_view

    # -- accounts ------------------------------------------------------------------------------

    def create_user(self, principal: Principal, name: str, password: str, role: str) -> None:
        """Global admins make users."""
        access.check_admin(principal, "create users")
        check_account_name(name)  # the cheap checks before the hash (argon2 costs tens of ms)
        check_role(role)
        self.accounts.create_user(name, password, role)

    def create_organization(self, principal: Principal, name: str) -> None:
        """Any signed-in user makes an organisation, and is the first member of its `owners`."""
        access.check_account_scope(principal)
        self.identity.create_organization(name, principal.name or "")

    def update_user(self, principal: Principal, name: str, *, role: str | None = None,
                    active: bool | None = None, password: str | None = None) -> None:
        """Role and active flag: global admins; password: the user or a global admin, signed in
        with a password. `Conflict` when no active global admin would remain."""
        access.check_may_change_user(principal, name, role_or_active=role is not None or active is not None,
                                     password=password is not None)
        if self.identity_view.user(name) is None:
            raise NotFound("no such user", {"name": name})
        self.accounts.update_user(name, role=role, password=password, active=active)

    def deactivate_user(self, principal: Principal, name: str) -> None:
        access.check_admin(principal, "deactivate users")
        self.update_user(principal, name, active=False)

    # -- organisations and teams ---------------------------------------------------------------

    def check_organization(self, organization: str) -> None:
        """`NotFound` unless `organization` is an organisation."""
        row = self.identity_view.account(organization)
        if row is None or row["kind"] != "organization":
            raise NotFound("no such organisation", {"organization": organization})

    def check_may_manage_teams(self, principal: Principal, organization: str) -> None:
        self.check_organization(organization)
        is_owner = principal.name is not None and self.identity_view.is_owner(principal.name, organization)
        access.check_may_manage_teams(principal, organization, is_owner)

    def create_team(self, principal: Principal, organization: str, name: str, description: str = "") -> None:
        self.check_may_manage_teams(principal, organization)
        self.identity.create_team(organization, name, description)

    def delete_team(self, principal: Principal, organization: str, team: str) -> None:
        self.check_may_manage_teams(principal, organization)
        self.identity.delete_team(organization, team)

    def add_member(self, principal: Principal, organization: str, team: str, user: str) -> None:
        self.check_may_manage_teams(principal, organization)
        self.identity.add_member(organization, team, user)

    def remove_member(self, principal: Principal, organization: str, team: str, user: str) -> None:
        self.check_may_manage_teams(principal, organization)
        self.identity.remove_member(organization, team, user)

    # -- repositories --------------------------------------------------------------------------

    def repository_level(self, principal: Principal, repository: str) -> str:
        """The principal's level on `repository`; `none` when it does not exist."""
        facts = self.identity_view.repository_facts(principal.name, repository)
        return access.repository_level(principal, repository, facts) if facts.exists else "none"

    def check_level(self, principal: Principal, repository: str, needed: str = "read-only") -> str:
        """The principal's level on a repository they may read, at least `needed` (`NotFound`
        when they cannot read it, exactly as when it is missing; `Denied` when too low)."""
        level = self.repository_level(principal, repository)
        access.check_level(level, needed, repository)
        return level

    def may_create_repository(self, principal: Principal, repository: str) -> bool:
        facts = self.identity_view.repository_facts(principal.name, repository)
        return access.may_create(principal, repository, facts)

    def creatable_namespaces(self, principal: Principal) -> list[str]:
        """The namespaces `principal` may create repositories in, by name (the portal's `New
        Repository` dropdown): the policy (`access.may_create`) asked of each account, its facts
        read once — the organisations whose owners team the principal is in — not per account."""
        if principal.name is None and not principal.is_admin:
            return []
        owned = {row["organization"] for row in self.identity_view.memberships(principal.name)
                 if row["team"] == OWNERS} if principal.name else set()
        return [row["name"] for row in self.identity_view.accounts()
                if access.may_create(principal, f"{row['name']}/x",
                                     access.RepositoryFacts(exists=False, org_owner=row["name"] in owned))]

    def create_repository(self, principal: Principal, namespace: str, name: str, visibility: str = "private",
                          description: str = "") -> str:
        """Create `namespace/name` where pushing could create it; returns the full name."""
        if self.identity_view.account(namespace) is None:
            raise NotFound("no such user or organisation", {"namespace": namespace})
        full = f"{namespace}/{name}"
        access.check_may_create_repository(principal, full, self.identity_view.repository_facts(principal.name, full))
        return self.identity.create_repository(namespace, name, visibility, description)

    def update_repository(self, principal: Principal, repository: str, *, visibility: str | None = None,
                          description: str | None = None) -> None:
        self.check_level(principal, repository, "admin")
        self.identity.update_repository(repository, visibility=visibility, description=description)

    def delete_repository(self, principal: Principal, repository: str) -> None:
        self.check_level(principal, repository, "admin")
        self.identity.delete_repository(repository)

    def grant_team_access(self, principal: Principal, repository: str, team: str, level: str) -> None:
        self.check_level(principal, repository, "admin")
        self.identity.grant_team_access(repository, team, level)

    def revoke_team_access(self, principal: Principal, repository: str, team: str) -> None:
        self.check_level(principal, repository, "admin")
        self.identity.revoke_team_access(repository, team)
