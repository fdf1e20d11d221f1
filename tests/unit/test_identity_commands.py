"""`commands.identity.Identity`: users, organisations, teams, repositories' settings and team
access, auth settings — each command's rules, what it records, and that a refused command
records nothing. In-memory SQLite, no I/O (tests/unit/identity_fixtures.py)."""

from __future__ import annotations

import pytest

from dockyard.commands.identity import Identity
from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal, repository_level
from dockyard.domain.actor import Actor, current_actor
from dockyard.domain.errors import Conflict, InvalidRequest, NameInvalid, NotFound
from tests.on_registry import identity_view, registry_view
from tests.unit.identity_fixtures import identity, last_event, registry, topics  # noqa: F401 - fixtures


def test_create_user_records_who_made_it_and_refuses_taken_or_bad_names(identity: Identity,
                                                                        registry: Registry) -> None:
    # An admin, signed in from an address, creates a user.
    token = current_actor.set(Actor("admin", "10.0.0.7"))
    try:
        identity.create_user("gordon", "hash-1", "read-write")
    finally:
        current_actor.reset(token)
    row = identity_view(registry).user("gordon")
    assert row is not None
    assert (row["role"], row["active"], row["source"], row["password_hash"]) == ("read-write", 1, "managed", "hash-1")
    created = last_event(registry)
    assert (created.actor, created.client_address) == ("admin", "10.0.0.7")

    # The name is taken by a user or by an organisation, whatever the kind asked for.
    identity.create_organization("engineering", "gordon")
    before = topics(registry)
    for make in (lambda: identity.create_user("gordon", "h", "none"),
                 lambda: identity.create_user("engineering", "h", "none"),
                 lambda: identity.create_organization("gordon", "gordon")):
        with pytest.raises(Conflict):
            make()

    # Bad names and roles are refused before anything is recorded.
    with pytest.raises(InvalidRequest):
        identity.create_user("Bad Name!", "h", "none")
    with pytest.raises(InvalidRequest):
        identity.create_user("orca", "h", "superuser")
    with pytest.raises(InvalidRequest):
        identity.create_organization("-dash", "gordon")
    assert topics(registry) == before
    assert identity_view(registry).user("orca") is None


def test_an_organisation_starts_with_its_creator_as_owner(identity: Identity, registry: Registry) -> None:
    identity.create_user("orca", "h", "none")
    identity.create_organization("engineering", "orca")
    assert identity_view(registry).account("engineering")["kind"] == "organization"
    assert identity_view(registry).user("engineering") is None
    assert identity_view(registry).members("engineering", "owners") == ["orca"]
    assert identity_view(registry).is_owner("orca", "engineering")

    # A creator that is no user (auth mode `none`: anonymous) leaves the owners team empty.
    identity.create_organization("open", "anonymous")
    assert identity_view(registry).members("open", "owners") == []


def test_update_user_changes_role_password_and_active_and_records_only_changes(identity: Identity,
                                                                               registry: Registry) -> None:
    identity.create_user("admin", "h0", "admin")  # so that moby is never the last active admin
    identity.create_user("moby", "h1", "read-only")
    before = len(topics(registry))

    # Setting the role it already has records nothing new for the role.
    identity.update_user("moby", role="read-only", password_hash="h2")
    assert topics(registry)[before:] == ["dockyard.User.PasswordChanged"]

    identity.update_user("moby", role="admin", active=False)
    row = identity_view(registry).user("moby")
    assert (row["role"], row["password_hash"], row["active"]) == ("admin", "h2", 0)
    identity.update_user("moby", active=True)
    assert identity_view(registry).user("moby")["active"] == 1

    # Unknown users, organisations and bad roles are refused; nothing changes.
    identity.create_organization("engineering", "moby")
    count = len(topics(registry))
    with pytest.raises(NotFound):
        identity.update_user("nobody", role="none")
    with pytest.raises(NotFound):
        identity.update_user("engineering", role="admin")
    with pytest.raises(InvalidRequest):
        identity.update_user("moby", role="root", password_hash="h3")
    assert len(topics(registry)) == count
    assert identity_view(registry).user("moby")["password_hash"] == "h2"


def test_teams_and_members(identity: Identity, registry: Registry) -> None:
    for user in ("owner", "gordon", "orca"):
        identity.create_user(user, "h", "none")
    identity.create_organization("engineering", "owner")

    # Create a team, add members; adding twice records nothing.
    identity.create_team("engineering", "core", "Core team")
    assert identity_view(registry).team("engineering", "core")["description"] == "Core team"
    identity.add_member("engineering", "core", "gordon")
    identity.add_member("engineering", "core", "orca")
    count = len(topics(registry))
    identity.add_member("engineering", "core", "orca")
    assert len(topics(registry)) == count
    assert identity_view(registry).members("engineering", "core") == ["gordon", "orca"]

    # Remove a member; removing a non-member is NotFound.
    identity.remove_member("engineering", "core", "orca")
    assert identity_view(registry).members("engineering", "core") == ["gordon"]
    with pytest.raises(NotFound):
        identity.remove_member("engineering", "core", "orca")

    # What does not exist, or is not allowed.
    with pytest.raises(Conflict):
        identity.create_team("engineering", "core")
    with pytest.raises(NotFound):
        identity.create_team("nowhere", "core")
    with pytest.raises(NotFound):
        identity.create_team("gordon", "core")  # a user is no organisation
    with pytest.raises(InvalidRequest):
        identity.create_team("engineering", "Bad Team")
    with pytest.raises(NotFound):
        identity.add_member("engineering", "core", "nobody")
    with pytest.raises(NotFound):
        identity.add_member("engineering", "ghosts", "gordon")
    with pytest.raises(Conflict):
        identity.remove_member("engineering", "owners", "owner")  # the last owner stays
    with pytest.raises(Conflict):
        identity.delete_team("engineering", "owners")

    # Delete the team; its name can be created again, empty.
    identity.delete_team("engineering", "core")
    assert identity_view(registry).team("engineering", "core") is None
    with pytest.raises(NotFound):
        identity.delete_team("engineering", "core")
    with pytest.raises(NotFound):
        identity.add_member("engineering", "core", "gordon")
    identity.create_team("engineering", "core", "again")
    assert identity_view(registry).members("engineering", "core") == []
    assert "dockyard.Team.Recreated" in topics(registry)


def test_repositories_and_team_access(identity: Identity, registry: Registry) -> None:
    for user in ("owner", "gordon"):
        identity.create_user(user, "h", "none")
    identity.create_organization("engineering", "owner")
    identity.create_team("engineering", "core")
    identity.add_member("engineering", "core", "gordon")

    # Create a repository explicitly; the name must be new, under an existing account.
    assert identity.create_repository("engineering", "barca", "private", "the app") == "engineering/barca"
    assert registry_view(registry).repository("engineering/barca") is not None
    with pytest.raises(Conflict):
        identity.create_repository("engineering", "barca")
    with pytest.raises(NameInvalid):
        identity.create_repository("engineering", "a/b")
    with pytest.raises(NotFound):
        identity.create_repository("nowhere", "app")
    with pytest.raises(InvalidRequest):
        identity.create_repository("engineering", "madrid", "secret")

    # Grant a team of the repository's organisation a level; the policy sees it.
    gordon = Principal("gordon", "none")
    facts = identity_view(registry).repository_facts("gordon", "engineering/barca")
    assert repository_level(gordon, "engineering/barca", facts) == "none"
    identity.grant_team_access("engineering/barca", "core", "read-write")
    facts = identity_view(registry).repository_facts("gordon", "engineering/barca")
    assert repository_level(gordon, "engineering/barca", facts) == "read-write"
    assert identity_view(registry).team_access("engineering/barca") == [{"team": "core", "level": "read-write"}]
    with pytest.raises(NotFound):
        identity.grant_team_access("engineering/barca", "ghosts", "read-only")
    with pytest.raises(InvalidRequest):
        identity.grant_team_access("engineering/barca", "core", "owner")
    identity.create_repository("gordon", "own")
    with pytest.raises(NotFound):
        identity.grant_team_access("gordon/own", "core", "read-only")  # a user's namespace has no teams
    with pytest.raises(NotFound):
        identity.grant_team_access("engineering/nothing", "core", "read-only")

    # Change the settings, revoke, delete.
    identity.update_repository("engineering/barca", visibility="public", description="now public")
    assert identity_view(registry).repository_facts(None, "engineering/barca").public
    with pytest.raises(InvalidRequest):
        identity.update_repository("engineering/barca", visibility="hidden")
    identity.revoke_team_access("engineering/barca", "core")
    assert identity_view(registry).team_access("engineering/barca") == []
    with pytest.raises(NotFound):
        identity.revoke_team_access("engineering/barca", "core")
    identity.delete_repository("engineering/barca")
    assert not identity_view(registry).repository_facts(None, "engineering/barca").exists
    with pytest.raises(NotFound):
        identity.delete_repository("engineering/barca")
    with pytest.raises(NotFound):
        identity.update_repository("engineering/barca", description="gone")

    # Created again, it starts over: private, with no grants.
    identity.create_repository("engineering", "barca")
    assert not identity_view(registry).repository_facts(None, "engineering/barca").public
    assert identity_view(registry).team_access("engineering/barca") == []


def test_auth_settings(identity: Identity, registry: Registry) -> None:
    assert identity_view(registry).auth_settings() == {"mode": "managed", "ldap": {}}
    ldap = {"url": "ldap://directory.example", "bindDn": "cn=admin"}
    identity.change_auth_settings("ldap", ldap, bind_password_changed=True)
    assert identity_view(registry).auth_settings() == {"mode": "ldap", "ldap": ldap}
    assert last_event(registry).bind_password_changed is True

    count = len(topics(registry))
    with pytest.raises(InvalidRequest):
        identity.change_auth_settings("kerberos", {}, False)
    with pytest.raises(InvalidRequest):
        identity.change_auth_settings("ldap", {"url": ""}, False)  # LDAP mode needs a URL
    assert len(topics(registry)) == count
    identity.change_auth_settings("none", {}, False)
    assert identity_view(registry).auth_settings()["mode"] == "none"
