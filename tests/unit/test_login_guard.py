"""Login throttling across processes: the lock-out each process records is a `LoginGuard` event;
two processes recording one at the same moment conflict on the aggregate's version, and the
loser retries instead of failing the request (issue 7, item 9)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.bootstrap import registry_on
from dockyard.commands.accounts import MAX_FAILURES, Accounts
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.domain.errors import TooManyRequests
from dockyard.domain.login import LoginGuard
from tests.on_registry import accounts_on


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = event_store_env(str(tmp_path), None)
    env["SQLITE_DBNAME"] = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
    return env


def _accounts(registry: Registry) -> Accounts:
    return accounts_on(registry)


@pytest.fixture
def processes(env: dict[str, str]) -> Iterator[tuple[Accounts, Accounts]]:
    """Two processes on one database."""
    one, two = registry_on(env), registry_on(env)
    yield _accounts(one), _accounts(two)
    one.close()
    two.close()


def test_a_lock_out_recorded_concurrently_by_another_process_is_retried(
        processes: tuple[Accounts, Accounts]) -> None:
    one, two = processes
    # Process two reaches its MAX_FAILURES-th failure and loads the guard; before it saves,
    # process one records its own lock-out of the same user and address.
    for _ in range(MAX_FAILURES - 1):
        assert two.authenticate("nobody", "wrong", "10.0.0.9") is None
    save = two.registry.save
    raced = []

    def save_after_the_other_process(*aggregates: Any, **kwargs: Any) -> Any:
        if not raced and any(isinstance(a, LoginGuard) for a in aggregates):
            raced.append(True)
            for _ in range(MAX_FAILURES):
                try:
                    one.authenticate("nobody", "wrong", "10.0.0.9")
                except TooManyRequests:
                    break
        return save(*aggregates, **kwargs)

    two.registry.save = save_after_the_other_process  # type: ignore[method-assign]
    assert two.authenticate("nobody", "wrong", "10.0.0.9") is None  # no IntegrityError
    assert raced
    guard = two.registry.load(LoginGuard, LoginGuard.create_id("nobody", "10.0.0.9"))
    assert guard is not None and guard.until is not None
    notes = two.registry.recorder.select_notifications(start=1, limit=1000)
    assert sum(n.topic == "dockyard.LoginGuard.Throttled" for n in notes) == 2  # both recorded
    with pytest.raises(TooManyRequests):
        two.authenticate("nobody", "wrong", "10.0.0.9")
