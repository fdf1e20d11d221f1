"""Identity commands: users, organisations, teams, members, repositories' settings and team
access, the auth settings. Each is one intent, one `save()`, retried on a version conflict.

Checks that need the current state of other aggregates (does the user exist? is the team in
this organisation?) read the identity read model, which is written in the event transaction.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError

from dockyard.commands.registry import Registry
from dockyard.domain.account import (
    MIN_PASSWORD_LENGTH,
    Organization,
    User,
    account_id,
    check_account_name,
    check_keeps_an_admin,
    check_password,
    check_role,
    stops_being_admin,
)
from dockyard.domain.auth_settings import AuthSettings, check_ldap_url, check_mode
from dockyard.domain.errors import Conflict, InvalidRequest, NameInvalid, NotFound
from dockyard.domain.names import check_repository_name
from dockyard.domain.repository import Repository, check_team_level, check_visibility
from dockyard.domain.team import OWNERS, Team, check_team_name
from dockyard.projections.dialect import Dialect
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.registry_queries import RegistryQueries


class Identity:
    """The identity commands with the invariants every caller keeps — the management API, the
    portal and the CLI alike: account names, one namespace per account, the last active admin,
    the password policy. Who may ask for what is `commands.management`."""

    def __init__(self, registry: Registry, registry_view: RegistryQueries, identity_view: IdentityQueries,
                 password_min_length: int = MIN_PASSWORD_LENGTH) -> None:
        self.registry = registry
        self.registry_view = registry_view  # which repositories a namespace holds
        self.identity_view = identity_view  # who exists, what is taken
        self.password_min_length = password_min_length

    def check_password(self, password: str) -> str:
        """The password policy (`domain.account.check_password`), before a password is hashed."""
        return check_password(password, self.password_min_length)

    # -- users ---------------------------------------------------------------------------------

    def create_user(self, name: str, password_hash: str, role: str, source: str = "managed") -> None:
        """Create a user. `Conflict` when the name is taken by a user or an organisation."""
        check_account_name(name)
        check_role(role)
        self._create_account(User(name=name, password_hash=password_hash, role=role, source=source))

    def _create_account(self, *aggregates: Any) -> None:
        """Save a new account; `Conflict` when the name is taken, or when its namespace holds
        repositories (live or soft-deleted) made before the rule that a push needs an account:
        the new account would own them (`Registry.check_namespace` is the other direction)."""
        name = aggregates[0].name
        if self.registry.load(User, account_id(name)) is not None:
            raise Conflict("an account with this name already exists", {"name": name})
        held = self.registry_view.namespace_repositories(name)
        if held:
            raise Conflict(f"the namespace {name!r} holds repositories that no account owns; an account "
                           "of that name would take them over", {"name": name, "repositories": held})
        try:
            self.registry.save(*aggregates)
        except IntegrityError:  # created concurrently: the name is taken now
            raise Conflict("an account with this name already exists", {"name": name}) from None

    def update_user(self, name: str, *, role: str | None = None, password_hash: str | None = None,
                    active: bool | None = None) -> None:
        """Change a user's role, password hash or active flag. `NotFound` for no such user;
        `Conflict` when the change would leave no active global admin."""
        def command() -> None:
            user = self._user(name)
            stops = stops_being_admin(user, role, active)
            check_keeps_an_admin(name, stops, lambda: self.identity_view.other_active_admins(name))
            if role is not None and check_role(role) != user.role:
                user.change_role(name, role)
            if password_hash is not None:
                user.change_password(name, password_hash)
            if active is not None:
                user.set_active(active)

            def fence(dialect: Dialect, cursor: Any) -> None:
                # Again under the log's write lock: two admins demoting each other at once each
                # saw the other active before either saved; the second save is refused here.
                check_keeps_an_admin(name, stops, lambda: self.identity_view.other_active_admins(name, cursor))
            self.registry.save(user, fence=fence if stops else None)

        self.registry.retrying(command)

    def _user(self, name: str) -> User:
        user = self.registry.load(User, account_id(name))
        if not isinstance(user, User):
            raise NotFound("no such user", {"name": name})
        return user

    # -- organisations and teams ---------------------------------------------------------------

    def create_organization(self, name: str, creator: str) -> None:
        """Create an organisation with its `owners` team, whose first member is `creator`."""
        check_account_name(name)
        owners = Team(organization=name, name=OWNERS, description="Owners of the organisation")
        if self.identity_view.user(creator) is not None:
            owners.add_member(creator)
        self._create_account(Organization(name=name), owners)

    def _organization(self, name: str) -> None:
        row = self.identity_view.account(name)
        if row is None or row["kind"] != "organization":
            raise NotFound("no such organisation", {"organization": name})

    def create_team(self, organization: str, name: str, description: str = "") -> None:
        self._organization(organization)
        check_team_name(name)

        def command() -> None:
            team = self.registry.load(Team, Team.create_id(organization, name))
            if team is None:
                team = Team(organization=organization, name=name, description=description)
            else:
                team.recreate(description)
            self.registry.save(team)

        self.registry.retrying(command)

    def _team(self, organization: str, name: str) -> Team:
        team = self.registry.load(Team, Team.create_id(organization, name))
        if team is None or team.deleted:
            raise NotFound("no such team", {"organization": organization, "team": name})
        return team

    def add_member(self, organization: str, team: str, user: str) -> None:
        if self.identity_view.user(user) is None:
            raise NotFound("no such user", {"user": user})

        def command() -> None:
            t = self._team(organization, team)
            if t.add_member(user):
                self.registry.save(t)

        self.registry.retrying(command)

    def remove_member(self, organization: str, team: str, user: str) -> None:
        def command() -> None:
            t = self._team(organization, team)
            if not t.remove_member(user):
                raise NotFound("not a member of the team", {"team": team, "user": user})
            self.registry.save(t)

        self.registry.retrying(command)

    def delete_team(self, organization: str, team: str) -> None:
        def command() -> None:
            t = self._team(organization, team)
            t.delete()
            self.registry.save(t)

        self.registry.retrying(command)

    # -- repositories --------------------------------------------------------------------------

    def create_repository(self, namespace: str, name: str, visibility: str = "private",
                          description: str = "") -> str:
        """Create `namespace/name` explicitly; `Conflict` if it exists."""
        full = f"{namespace}/{name}"
        if "/" in name:
            raise NameInvalid("a repository name has no '/' under its namespace", {"name": name})
        check_repository_name(full)
        check_visibility(visibility)
        if self.identity_view.account(namespace) is None:
            raise NotFound("no such user or organisation", {"namespace": namespace})

        def command() -> None:
            repo = self.registry.load(Repository, Repository.create_id(full))
            if repo is not None and not repo.deleted:
                raise Conflict("the repository already exists", {"repository": full})
            if repo is None:
                repo = Repository(name=full, visibility=visibility, description=description)
            else:
                repo.recreate(visibility, description)
            self.registry.save(repo)

        self.registry.retrying(command)
        return full

    def _repository(self, full: str) -> Repository:
        repo = self.registry.load(Repository, Repository.create_id(full))
        if repo is None or repo.deleted:
            raise NotFound("no such repository", {"repository": full})
        return repo

    def update_repository(self, full: str, *, visibility: str | None = None,
                          description: str | None = None) -> None:
        def command() -> None:
            repo = self._repository(full)
            if visibility is not None:
                repo.set_visibility(visibility)
            if description is not None:
                repo.set_description(description)
            self.registry.save(repo)

        self.registry.retrying(command)

    def delete_repository(self, full: str) -> None:
        """Soft delete with everything in it (`Registry.delete_repository`); the log keeps it all."""
        if not self.registry.delete_repository(full):
            raise NotFound("no such repository", {"repository": full})

    def grant_team_access(self, full: str, team: str, level: str) -> None:
        """Give a team of the repository's organisation `level` on it."""
        check_team_level(level)
        namespace = full.split("/", 1)[0]
        self._organization(namespace)
        if self.identity_view.team(namespace, team) is None:
            raise NotFound("no such team in the repository's organisation", {"team": team})

        def command() -> None:
            repo = self._repository(full)
            repo.grant(team, level)
            self.registry.save(repo)

        self.registry.retrying(command)

    def revoke_team_access(self, full: str, team: str) -> None:
        def command() -> None:
            repo = self._repository(full)
            if not repo.revoke(team):
                raise NotFound("the team has no access to this repository", {"team": team})
            self.registry.save(repo)

        self.registry.retrying(command)

    # -- auth settings -------------------------------------------------------------------------

    def change_auth_settings(self, mode: str, ldap: dict[str, Any], bind_password_changed: bool) -> None:
        check_mode(mode)
        if mode == "ldap" and not ldap.get("url"):
            raise InvalidRequest("LDAP mode needs ldap.url", {"ldap": ldap})
        if ldap.get("url"):
            check_ldap_url(str(ldap["url"]))

        def command() -> None:
            settings = self.registry.load(AuthSettings, AuthSettings.create_id()) or AuthSettings()
            settings.change(mode, dict(ldap), bind_password_changed)
            self.registry.save(settings)

        self.registry.retrying(command)
