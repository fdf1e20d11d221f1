"""Passwords are hashed by the accounts commands (argon2id), never by a caller: what the API, the
CLI and the portal hand over is the password itself (issue 7, item 9)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters

from dockyard.bootstrap import registry_on
from dockyard.commands.accounts import Accounts
from dockyard.commands.persistence import event_store_env
from dockyard.domain.access import Principal
from dockyard.domain.errors import InvalidRequest
from tests.on_registry import accounts_on


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    env = event_store_env(str(tmp_path), None)
    env["SQLITE_DBNAME"] = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
    registry = registry_on(env)
    yield accounts_on(registry)
    registry.close()


def test_a_password_is_stored_only_as_its_argon2id_hash(accounts: Accounts) -> None:
    accounts.create_user("kara", "kara-password", "read-only")
    row = accounts.identity_view.user("kara")
    assert row is not None and row["password_hash"].startswith("$argon2id$")
    assert "kara-password" not in row["password_hash"]
    assert accounts.authenticate("kara", "kara-password") is not None
    with pytest.raises(InvalidRequest):
        accounts.create_user("lee", "", "none")
    assert accounts.identity_view.user("lee") is None


def test_new_hashes_cost_owasps_setting_and_older_ones_still_verify(accounts: Accounts) -> None:
    accounts.create_user("kara", "kara-password", "read-only")
    row = accounts.identity_view.user("kara")
    assert row is not None
    made = extract_parameters(row["password_hash"])
    assert (made.memory_cost, made.time_cost, made.parallelism) == (19 * 1024, 2, 1)
    # A hash made with argon2-cffi's default cost (64 MiB, before this setting) still signs in.
    older = PasswordHasher().hash("lee-password")
    assert extract_parameters(older).memory_cost == 64 * 1024
    accounts.identity.create_user("lee", older, "none")
    assert accounts.authenticate("lee", "lee-password") == Principal("lee", "none")
    assert accounts.authenticate("lee", "wrong-password") is None


def test_a_password_change_hashes_forgets_remembered_sign_ins_and_moves_the_credentials_epoch(
        accounts: Accounts) -> None:
    accounts.create_user("kara", "old-password", "none")
    assert accounts.authenticate("kara", "old-password") is not None  # remembered for a while
    epoch = accounts.identity_view.credentials_epoch("kara")
    accounts.update_user("kara", password="new-password")
    assert accounts.authenticate("kara", "old-password") is None
    assert accounts.authenticate("kara", "new-password") is not None
    assert accounts.identity_view.credentials_epoch("kara") == epoch + 1
    accounts.update_user("kara", active=False)
    accounts.update_user("kara", active=True)  # reactivation does not move it back
    assert accounts.identity_view.credentials_epoch("kara") == epoch + 2


class _Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_remembered_sign_in_follows_changes_made_by_another_process(tmp_path: Path) -> None:
    # Two processes on one database; process two remembers kara's password sign-in.
    env = event_store_env(str(tmp_path), None)
    env["SQLITE_DBNAME"] = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
    one_registry, two_registry = registry_on(env), registry_on(env)
    clock = _Monotonic()
    one = accounts_on(one_registry)
    two = accounts_on(two_registry, monotonic=clock)
    try:
        one.create_user("kara", "old-password", "read-write")
        principal = two.authenticate("kara", "old-password")
        assert principal is not None and principal.role == "read-write"

        # Process one lowers her role and changes her password: process two follows within
        # seconds, not when its remembered sign-in would have expired.
        one.update_user("kara", role="read-only")
        clock.now += 5
        principal = two.authenticate("kara", "old-password")
        assert principal is not None and principal.role == "read-only"
        one.update_user("kara", password="new-password")
        clock.now += 5
        assert two.authenticate("kara", "old-password") is None
        assert two.authenticate("kara", "new-password") is not None
        one.update_user("kara", active=False)
        clock.now += 5
        assert two.authenticate("kara", "new-password") is None
    finally:
        one_registry.close()
        two_registry.close()


class _Waiting(threading.Event):
    """An Event that tells the test when someone starts waiting on it."""

    someone_waits = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        _Waiting.someone_waits.set()
        return super().wait(timeout)


def test_parallel_sign_ins_with_the_same_credentials_share_one_check(
        accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    # A client's parallel requests once its remembered sign-in expired: one argon2 check, not one each.
    accounts.create_user("kara", "kara-password", "read-write")
    accounts.forget_cached()
    monkeypatch.setattr("dockyard.commands.accounts.threading.Event", _Waiting)
    _Waiting.someone_waits.clear()
    checks: list[str] = []
    verify = accounts._verify

    def slow_verify(name: str, password: str) -> tuple[Principal | None, str]:
        checks.append(name)
        _Waiting.someone_waits.wait(30)  # held until the second sign-in waits for this one
        return verify(name, password)

    monkeypatch.setattr(accounts, "_verify", slow_verify)
    results: list[Principal | None] = []
    first = threading.Thread(target=lambda: results.append(accounts.authenticate("kara", "kara-password")))
    first.start()
    while not checks:  # the first sign-in is checking
        first.join(0.01)
    second = accounts.authenticate("kara", "kara-password")
    first.join()
    assert checks == ["kara"] and results == [second] and second == Principal("kara", "read-write")

    # A failed check is not shared: each wrong attempt is checked, and counted, by itself.
    monkeypatch.setattr(accounts, "_verify", verify)
    assert accounts.authenticate("kara", "wrong") is None
    assert accounts.authenticate("kara", "wrong") is None
    assert len(accounts._failures[("kara", "local")]) == 2
