"""`commands.accounts.Accounts`, the one door for credentials: the first admin, managed
passwords, access tokens as passwords, remembered logins, and throttling — per process and, once
recorded, in every process. In-memory SQLite, no I/O (tests/unit/identity_fixtures.py); the LDAP
path needs a directory and is tested in tests/e2e/test_ldap_scenario.py."""

from __future__ import annotations

import pytest

from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import MAX_FAILURES, Accounts
from dockyard.commands.identity import Identity
from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.errors import InvalidRequest, TooManyRequests
from tests.on_registry import identity_view
from tests.unit.identity_fixtures import (  # noqa: F401 - fixtures
    accounts,
    clock,
    identity,
    last_event,
    registry,
    tokens,
    topics,
)


def test_the_first_admin_is_created_once(accounts: Accounts, registry: Registry) -> None:
    # No password given: one is generated, returned once, and works.
    generated = accounts.ensure_admin(None)
    assert generated
    assert accounts.authenticate("admin", generated) == Principal("admin", "admin")
    created = last_event(registry)
    assert created.actor == "system" and generated not in str(created.__dict__)
    # On a database that has an admin, nothing happens, whatever password is given.
    count = len(topics(registry))
    assert accounts.ensure_admin("another") is None
    assert len(topics(registry)) == count
    assert accounts.authenticate("admin", "another") is None


def test_a_chosen_admin_password(accounts: Accounts) -> None:
    assert accounts.ensure_admin("chosen-pw") is None  # nothing generated
    assert accounts.authenticate("admin", "chosen-pw") == Principal("admin", "admin")


def test_managed_passwords(accounts: Accounts, identity: Identity, registry: Registry) -> None:
    with pytest.raises(InvalidRequest):
        accounts.hash_password("")
    hashed = accounts.hash_password("orca-password")
    assert hashed.startswith("$argon2id$") and "orca-password" not in hashed
    identity.create_user("orca", hashed, "read-write")

    assert accounts.authenticate("orca", "orca-password", "10.0.0.1") == Principal("orca", "read-write")
    assert accounts.authenticate("orca", "wrong", "10.0.0.1") is None
    assert accounts.authenticate("nobody", "orca-password", "10.0.0.1") is None  # looks like a wrong password
    assert accounts.authenticate("orca", "", "10.0.0.1") is None

    # A deactivated user cannot sign in (once remembered logins are forgotten, as the API does).
    identity.update_user("orca", active=False)
    accounts.forget_cached()
    assert accounts.authenticate("orca", "orca-password", "10.0.0.1") is None
    # A directory user has no managed password to match.
    identity.create_user("ldapuser", "", "none", source="ldap")
    assert accounts.authenticate("ldapuser", "", "10.0.0.1") is None


def test_a_remembered_login_is_forgotten_on_request(accounts: Accounts, identity: Identity) -> None:
    identity.create_user("moby", accounts.hash_password("old-password"), "read-only")
    assert accounts.authenticate("moby", "old-password") is not None
    identity.update_user("moby", password_hash=accounts.hash_password("new-password"), role="admin")
    assert accounts.authenticate("moby", "old-password") == Principal("moby", "read-only")  # remembered
    accounts.forget_cached()
    assert accounts.authenticate("moby", "old-password") is None
    assert accounts.authenticate("moby", "new-password") == Principal("moby", "admin")


def test_an_access_token_is_a_password(accounts: Accounts, identity: Identity, tokens: AccessTokens) -> None:
    identity.create_user("ahab", accounts.hash_password("ahab-password"), "read-write")
    issued = tokens.create("ahab", "ci", "read-only", None, ["ahab/app"])
    principal = accounts.authenticate("ahab", issued.secret)
    assert principal == Principal("ahab", "read-write", token_id=issued.token_id, token_level="read-only",
                                  token_repositories=("ahab/app",))
    assert accounts.authenticate("admin", issued.secret) is None  # someone else's token
    # Token use is checked every time: revocation and deactivation take effect at once.
    tokens.revoke("ahab", issued.token_id)
    assert accounts.authenticate("ahab", issued.secret) is None
    other = tokens.create("ahab", "other", "read-write", None, [])
    assert accounts.authenticate("ahab", other.secret) is not None
    identity.update_user("ahab", active=False)
    assert accounts.authenticate("ahab", other.secret) is None


def test_repeated_failures_lock_out_that_user_from_that_address(accounts: Accounts, identity: Identity,
                                                                registry: Registry) -> None:
    identity.create_user("stubb", accounts.hash_password("stubb-pw"), "none")
    for _ in range(MAX_FAILURES):
        assert accounts.authenticate("stubb", "wrong", "10.0.0.9") is None
    # Locked out: even the right password is refused from that address, with a retry hint.
    with pytest.raises(TooManyRequests) as refused:
        accounts.authenticate("stubb", "stubb-pw", "10.0.0.9")
    assert refused.value.detail["retryAfterSeconds"] > 0
    throttled = last_event(registry)
    assert throttled.__class__.__qualname__ == "LoginGuard.Throttled"
    assert (throttled.actor, throttled.client_address) == ("anonymous", "10.0.0.9")
    # Another address, or another user, is not affected.
    assert accounts.authenticate("stubb", "stubb-pw", "10.0.0.10") == Principal("stubb", "none")

    # A second process (its own Accounts on the same log) honours the recorded lock-out.
    elsewhere = Accounts(registry, identity_view(registry), identity, AccessTokens(registry, identity_view(registry)))
    with pytest.raises(TooManyRequests):
        elsewhere.authenticate("stubb", "stubb-pw", "10.0.0.9")
    assert elsewhere.authenticate("stubb", "stubb-pw", "10.0.0.10") is not None
