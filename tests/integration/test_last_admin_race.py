"""The last-admin rule holds under concurrency: two admins demoting (or deactivating) each other
at the same moment, each through its own registry as two server processes would, must not both
succeed. Each command's check passed before either saved (a barrier holds them there); the check
is made again under the log's write lock (a fence), so the second save is refused with
`Conflict` and one active admin remains. On SQLite (a file shared by both) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from dockyard.bootstrap import registry_on, views
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.domain.errors import Conflict
from tests.conftest import database_url_for


@pytest.fixture
def two_processes(backend: str, request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[Identity, Identity]]:
    url = database_url_for(backend, request)
    registries = [registry_on(event_store_env(str(tmp_path), url)) for _ in range(2)]
    yield Identity(registries[0], *views(registries[0])), Identity(registries[1], *views(registries[1]))
    for registry in registries:
        registry.close()


def _held_at_the_check(identity: Identity, barrier: threading.Barrier) -> None:
    """Both commands pass the cheap check before either saves: the race, every time."""
    count = identity.identity_view.other_active_admins

    def held(name: str, cursor: Any = None) -> int:
        n = count(name, cursor)
        if cursor is None:  # the check before the transaction, not the fence inside it
            barrier.wait(timeout=30)
        return n
    identity.identity_view.other_active_admins = held  # type: ignore[method-assign]


@pytest.mark.parametrize("change", [{"role": "read-write"}, {"active": False}], ids=["demote", "deactivate"])
def test_two_admins_demoting_each_other_at_once_leave_one_admin(two_processes, change: dict[str, Any]) -> None:
    first, second = two_processes
    password_hash = PasswordHasher.from_parameters(CHEAPEST).hash("password-123")
    first.create_user("alice", password_hash, "admin")
    first.create_user("bob", password_hash, "admin")
    barrier = threading.Barrier(2)
    _held_at_the_check(first, barrier)
    _held_at_the_check(second, barrier)
    outcomes: dict[str, BaseException | None] = {}

    def run(name: str, command: Callable[[], None]) -> None:
        try:
            command()
            outcomes[name] = None
        except BaseException as exc:  # reported below
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=("alice", lambda: first.update_user("alice", **change))),
               threading.Thread(target=run, args=("bob", lambda: second.update_user("bob", **change)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    refused = [name for name, exc in outcomes.items() if isinstance(exc, Conflict)]
    assert len(refused) == 1, outcomes
    assert [exc for exc in outcomes.values() if exc is not None and not isinstance(exc, Conflict)] == []
    admins = [r["name"] for r in first.identity_view.accounts("user") if r["role"] == "admin" and r["active"]]
    assert admins == refused  # the one whose change was refused is still an active admin
