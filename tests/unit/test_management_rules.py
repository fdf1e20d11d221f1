"""Rules in one place (issue 7, items 9 and 10): who may manage what (`domain.access`, applied by
`commands.management`), the last active admin and the password policy (`commands.identity`), so
the management API, the portal and the CLI meet the same rules. No HTTP here."""

from __future__ import annotations

import pytest

from dockyard.bootstrap import views
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.identity import Identity
from dockyard.commands.management import Management
from dockyard.commands.registry import Registry
from dockyard.domain import access
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.account import check_password
from dockyard.domain.errors import Conflict, Denied, InvalidRequest, NotFound, Unauthorized
from tests.on_registry import identity_view
from tests.unit.test_namespaces import registry  # noqa: F401 - a fixture: an empty registry in memory

ADMIN = Principal("admin", "admin")
GORDON = Principal("gordon", "none")


@pytest.fixture
def identity(registry: Registry) -> Identity:
    identity = Identity(registry, *views(registry))
    identity.create_user("admin", "hash", "admin")
    return identity


@pytest.fixture
def accounts(registry: Registry, identity: Identity) -> Accounts:
    return Accounts(registry, identity_view(registry), identity, AccessTokens(registry, identity_view(registry)))


@pytest.fixture
def management(identity: Identity, accounts: Accounts) -> Management:
    return Management(identity.identity_view, identity, accounts)


# -- the last active admin -----------------------------------------------------------------------


@pytest.mark.parametrize("change", [{"role": "none"}, {"role": "read-write"}, {"active": False}])
def test_the_last_active_admin_is_neither_demoted_nor_deactivated(identity: Identity, change: dict) -> None:
    # What `dockyard users set-role admin --role none` and `deactivate admin` ask of the command.
    with pytest.raises(Conflict) as refused:
        identity.update_user("admin", **change)
    assert refused.value.detail == {"name": "admin"}
    row = identity.identity_view.user("admin")
    assert row["role"] == "admin" and row["active"]


def test_an_admin_steps_down_once_another_active_admin_exists(identity: Identity) -> None:
    identity.create_user("gordon", "hash", "admin")
    identity.update_user("gordon", active=False)
    with pytest.raises(Conflict):  # a deactivated admin does not count
        identity.update_user("admin", role="none")

    identity.update_user("gordon", active=True)
    identity.update_user("admin", role="none")
    with pytest.raises(Conflict):  # gordon is the last one now
        identity.update_user("gordon", active=False)
    # Changes that keep an admin pass: a password, an admin staying admin.
    identity.update_user("gordon", role="admin", password_hash="new")


# -- the password policy -------------------------------------------------------------------------


def test_the_password_policy_asks_for_eight_characters_by_default_and_is_configurable(registry: Registry) -> None:
    assert check_password("12345678") == "12345678"
    for short in ("", "1234567"):
        with pytest.raises(InvalidRequest) as refused:
            check_password(short)
        assert refused.value.message == "the password must be at least 8 characters long"
        assert refused.value.detail == {"minLength": 8}  # never the password
    strict = Identity(registry, *views(registry), password_min_length=12)
    with pytest.raises(InvalidRequest, match="at least 12 characters"):
        strict.check_password("12345678901")
    assert strict.check_password("123456789012")
    with pytest.raises(InvalidRequest, match="at least 1 characters"):  # never below one: no empty password
        Identity(registry, *views(registry), password_min_length=0).check_password("")


def test_only_passwords_that_meet_the_policy_are_hashed(management: Management, identity: Identity,
                                                        accounts: Accounts) -> None:
    with pytest.raises(InvalidRequest):
        management.create_user(ADMIN, "gordon", "short", "none")
    assert identity.identity_view.user("gordon") is None
    management.create_user(ADMIN, "gordon", "long-enough", "none")
    with pytest.raises(InvalidRequest):
        management.update_user(GORDON, "gordon", password="short")
    with pytest.raises(InvalidRequest):  # every door that hashes a password: the CLI and the portal use it
        accounts.update_user("gordon", password="short")
    assert accounts.authenticate("gordon", "long-enough") == Principal("gordon", "none")


# -- who may manage what -------------------------------------------------------------------------


def test_users_are_made_and_changed_by_global_admins(management: Management, identity: Identity) -> None:
    with pytest.raises(Unauthorized):
        management.create_user(ANONYMOUS, "gordon", "long-enough", "none")
    management.create_user(ADMIN, "gordon", "long-enough", "none")
    with pytest.raises(Denied, match="only a global admin may create users"):
        management.create_user(GORDON, "moby", "long-enough", "none")
    with pytest.raises(Denied):
        management.update_user(GORDON, "gordon", role="admin")  # not their own role either
    with pytest.raises(Denied):
        management.deactivate_user(GORDON, "admin")
    with pytest.raises(Denied):  # another user's password
        management.update_user(GORDON, "admin", password="long-enough")
    # Their own password, with a password sign-in; not with an access token, even an admin-scoped one.
    management.update_user(GORDON, "gordon", password="changed-it")
    with pytest.raises(Denied, match="sign in with a password"):
        management.update_user(Principal("gordon", "none", token_id="t1", token_level="admin"), "gordon",
                               password="changed-again")
    # An admin's read-write token may not change accounts; no such user is a 404 after the rights check.
    with pytest.raises(Denied, match="scope"):
        management.update_user(Principal("admin", "admin", token_id="t2", token_level="read-write"), "gordon",
                               role="admin")
    with pytest.raises(NotFound):
        management.update_user(ADMIN, "nobody", role="admin")
    # The last-admin rule holds on this path too.
    with pytest.raises(Conflict):
        management.deactivate_user(ADMIN, "admin")


def test_organisation_owners_and_admins_manage_its_teams(management: Management, identity: Identity) -> None:
    identity.create_user("gordon", "hash", "none")
    identity.create_user("moby", "hash", "none")
    management.create_organization(GORDON, "engineering")  # any signed-in user; gordon owns it
    with pytest.raises(Unauthorized):
        management.create_organization(ANONYMOUS, "nobodys")

    management.create_team(GORDON, "engineering", "core")
    management.add_member(GORDON, "engineering", "core", "moby")
    moby = Principal("moby", "none")
    for attempt in (lambda: management.create_team(moby, "engineering", "mine"),
                    lambda: management.add_member(moby, "engineering", "core", "gordon"),
                    lambda: management.remove_member(moby, "engineering", "core", "moby"),
                    lambda: management.delete_team(moby, "engineering", "core")):
        with pytest.raises(Denied):
            attempt()
    management.delete_team(ADMIN, "engineering", "core")
    with pytest.raises(NotFound):
        management.create_team(ADMIN, "gordon", "core")  # a user is no organisation


def test_repositories_by_level(management: Management, identity: Identity) -> None:
    identity.create_user("gordon", "hash", "none")
    identity.create_user("moby", "hash", "none")
    management.create_organization(GORDON, "engineering")
    management.create_team(GORDON, "engineering", "core")
    management.add_member(GORDON, "engineering", "core", "moby")
    moby = Principal("moby", "none")

    # Creating where pushing could create: the owners, not a mere member; not in a missing namespace.
    with pytest.raises(Denied):
        management.create_repository(moby, "engineering", "barca")
    with pytest.raises(NotFound):
        management.create_repository(ADMIN, "ghost", "barca")
    assert management.create_repository(GORDON, "engineering", "barca") == "engineering/barca"
    assert management.create_repository(moby, "moby", "tools") == "moby/tools"  # own namespace

    # A private repository moby cannot read does not exist for him; read-only is not enough to change it.
    with pytest.raises(NotFound):
        management.check_level(moby, "engineering/barca")
    management.grant_team_access(GORDON, "engineering/barca", "core", "read-only")
    assert management.check_level(moby, "engineering/barca") == "read-only"
    for attempt in (lambda: management.update_repository(moby, "engineering/barca", visibility="public"),
                    lambda: management.grant_team_access(moby, "engineering/barca", "core", "admin"),
                    lambda: management.revoke_team_access(moby, "engineering/barca", "core"),
                    lambda: management.delete_repository(moby, "engineering/barca")):
        with pytest.raises(Denied):
            attempt()
    management.delete_repository(GORDON, "engineering/barca")
    assert management.repository_level(GORDON, "engineering/barca") == "none"


def test_auth_mode_none_lets_an_anonymous_caller_create(management: Management) -> None:
    # The management API gives every caller the admin role in auth mode `none` (DTR's "None").
    everyone = Principal(None, "admin")
    access.check_signed_in(everyone)
    assert management.may_create_repository(everyone, "admin/anything")
    assert not management.may_create_repository(ANONYMOUS, "admin/anything")
