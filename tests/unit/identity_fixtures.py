"""Fixtures for the identity, accounts and access-token command tests: one `Registry` on its own
in-memory SQLite database (the read model written in the event transaction, as in production),
the commands built on it as `create_app` builds them, a clock the test moves. No files, no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from dockyard.bootstrap import registry_on, views
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import MEMORY_DATABASE_URL, event_store_env
from dockyard.commands.registry import Registry
from tests.clock import Clock
from tests.on_registry import identity_view


def open_registry() -> Registry:
    return registry_on(event_store_env("", MEMORY_DATABASE_URL))


def topics(registry: Registry) -> list[str]:
    """The topics of every event in the log, in order."""
    return [n.topic for n in registry.recorder.select_notifications(0, 10_000)]


def last_event(registry: Registry) -> Any:
    last = registry.recorder.max_notification_id() or 0
    return registry.mapper.to_domain_event(registry.recorder.select_notifications(last, 1)[0])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> Iterator[Registry]:
    app = open_registry()
    yield app
    app.close()


@pytest.fixture
def identity(registry: Registry) -> Identity:
    return Identity(registry, *views(registry))


@pytest.fixture
def tokens(registry: Registry, clock: Clock) -> AccessTokens:
    return AccessTokens(registry, identity_view(registry), clock)


@pytest.fixture
def accounts(registry: Registry, identity: Identity, tokens: AccessTokens, monkeypatch: pytest.MonkeyPatch) -> Accounts:
    # argon2id with its cheapest parameters: the real ones cost ~0.1 s of CPU per hash by design.
    monkeypatch.setattr("dockyard.commands.accounts.PasswordHasher",
                        lambda **_: PasswordHasher.from_parameters(CHEAPEST))
    return Accounts(registry, identity_view(registry), identity, tokens)
