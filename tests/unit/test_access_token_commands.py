"""`commands.access_tokens.AccessTokens`: make a token (its secret shown once, only a hash
stored), check a presented one (owner, secret, revocation, expiry by the clock passed in), list,
revoke, and who may do which. In-memory SQLite, no I/O (tests/unit/identity_fixtures.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.commands.access_tokens import AccessTokens, is_access_token
from dockyard.commands.identity import Identity
from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.errors import Denied, InvalidRequest, NameInvalid, NotFound
from tests.on_registry import identity_view
from tests.unit.identity_fixtures import (  # noqa: F401 - fixtures
    Clock,
    clock,
    identity,
    registry,
    tokens,
    topics,
)


@pytest.fixture
def users(identity: Identity) -> None:
    identity.create_user("queequeg", "h", "read-write")
    identity.create_user("starbuck", "h", "none")
    identity.create_user("admin", "h", "admin")


def test_a_token_is_shown_once_and_stored_as_a_hash(tokens: AccessTokens, registry: Registry, users: None) -> None:
    issued = tokens.create("queequeg", "ci", "read-only", None, ["queequeg/app", "queequeg/app", "lib/base"])
    assert issued.secret.startswith(f"dyt_{issued.token_id}_") and is_access_token(issued.secret)
    row = identity_view(registry).access_token(issued.token_id)
    secret = issued.secret.split("_", 2)[2]
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(row) and secret not in str(registry.recorder.select_notifications(0, 100))
    assert (row["owner"], row["name"], row["level"], row["revoked"]) == ("queequeg", "ci", "read-only", 0)
    assert row["repositories"] == ["lib/base", "queequeg/app"]  # sorted, once each
    assert tokens.owner_of(issued.secret) == "queequeg"
    assert tokens.owner_of("a password") is None

    # The presented token checks out for its owner only, and only with its own secret.
    assert tokens.check("queequeg", issued.secret)["id"] == issued.token_id
    assert tokens.check("starbuck", issued.secret) is None
    assert tokens.check("queequeg", issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")) is None
    assert tokens.check("queequeg", f"dyt_{issued.token_id}_") is None
    assert tokens.check("queequeg", "not-a-token") is None


def test_bad_requests_make_no_token(tokens: AccessTokens, registry: Registry, users: None, clock: Clock) -> None:
    before = topics(registry)
    with pytest.raises(NotFound):
        tokens.create("nobody", "ci", "read-only", None, [])
    for name in ("", "x" * 101):
        with pytest.raises(InvalidRequest):
            tokens.create("queequeg", name, "read-only", None, [])
    with pytest.raises(InvalidRequest):
        tokens.create("queequeg", "ci", "owner", None, [])
    with pytest.raises(NameInvalid):
        tokens.create("queequeg", "ci", "read-only", None, ["Not A Repo"])
    now = datetime.fromtimestamp(clock(), UTC)
    with pytest.raises(InvalidRequest):  # an expiry in the past, by the clock passed in
        tokens.create("queequeg", "ci", "read-only", now, [])
    assert topics(registry) == before


def test_a_token_expires_by_the_clock(tokens: AccessTokens, users: None, clock: Clock) -> None:
    expires = datetime.fromtimestamp(clock(), UTC) + timedelta(hours=1)
    issued = tokens.create("queequeg", "short", "read-write", expires, [])
    clock.advance(3599)
    assert tokens.check("queequeg", issued.secret) is not None
    clock.advance(1)
    assert tokens.check("queequeg", issued.secret) is None

    # An expiry without a time zone is UTC.
    naive = datetime.fromtimestamp(clock(), UTC).replace(tzinfo=None) + timedelta(minutes=5)
    issued = tokens.create("queequeg", "naive", "read-write", naive, [])
    assert tokens.check("queequeg", issued.secret) is not None
    clock.advance(300)
    assert tokens.check("queequeg", issued.secret) is None


def test_list_and_revoke(tokens: AccessTokens, users: None) -> None:
    first = tokens.create("queequeg", "first", "read-only", None, [])
    second = tokens.create("queequeg", "second", "admin", None, [])
    assert [t["name"] for t in tokens.list_tokens("queequeg")] == ["first", "second"]
    assert all("secret_hash" not in t for t in tokens.list_tokens("queequeg"))
    assert tokens.list_tokens("starbuck") == []
    with pytest.raises(NotFound):
        tokens.list_tokens("nobody")

    tokens.revoke("queequeg", first.token_id)
    assert tokens.check("queequeg", first.secret) is None
    assert tokens.check("queequeg", second.secret) is not None
    assert [t["revoked"] for t in tokens.list_tokens("queequeg")] == [1, 0]
    # Another user's token, or one that does not exist, is not found (nothing says which).
    with pytest.raises(NotFound):
        tokens.revoke("starbuck", second.token_id)
    with pytest.raises(NotFound):
        tokens.revoke("queequeg", "0000000000000000")


def test_who_may_make_list_and_revoke(tokens: AccessTokens, users: None) -> None:
    queequeg = Principal("queequeg", "read-write")
    admin = Principal("admin", "admin")
    issued = tokens.create("queequeg", "ci", "admin", None, [], by=queequeg)
    with_token = Principal("queequeg", "read-write", token_id=issued.token_id, token_level="admin")

    # Only the user themself makes tokens, signed in with a password — not even an admin for them.
    for by in (admin, Principal("starbuck", "none"), with_token):
        with pytest.raises(Denied):
            tokens.create("queequeg", "more", "read-only", None, [], by=by)
    # The user and global admins list and revoke; a token never manages its siblings.
    assert len(tokens.list_tokens("queequeg", by=admin)) == 1
    for by in (Principal("starbuck", "read-write"), with_token):
        with pytest.raises(Denied):
            tokens.list_tokens("queequeg", by=by)
        with pytest.raises(Denied):
            tokens.revoke("queequeg", issued.token_id, by=by)
    assert tokens.check("queequeg", issued.secret) is not None
    tokens.revoke("queequeg", issued.token_id, by=admin)
    assert tokens.check("queequeg", issued.secret) is None
