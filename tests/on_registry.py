"""What tests build on one `Registry`, as `dockyard.bootstrap` builds it: the inline read models'
query objects (`registry_view`, `identity_view`, to check what commands wrote) and the account
commands (`accounts_on`)."""

from __future__ import annotations

from typing import Any

from dockyard.bootstrap import views
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.identity import Identity
from dockyard.commands.registry import Registry
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.registry_queries import RegistryQueries


def registry_view(registry: Registry) -> RegistryQueries:
    return views(registry)[0]


def identity_view(registry: Registry) -> IdentityQueries:
    return views(registry)[1]


def accounts_on(registry: Registry, **kwargs: Any) -> Accounts:
    """`Accounts` with its identity and access-token commands; `kwargs` go to `Accounts`."""
    return Accounts(registry, identity_view(registry), Identity(registry, *views(registry)),
                    AccessTokens(registry, identity_view(registry)), **kwargs)
