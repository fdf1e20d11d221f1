"""The composition root: the one place that builds Dockyard's object graph (as cosmicpython's bootstrap).

Storage (the event log and the database beside it, the blob store, the secrets), the command
side (`commands/`) and the read side (`projections/`: query objects, the followed projections
and their runners) are constructed here and handed to whatever uses them; nothing else builds
them. `api.app.create_app` serves what `build_services` returns, the in-process tests build
their app through it, and the CLI builds the parts a verb needs with the functions below.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dockyard.api.auth import Auth
from dockyard.api.portal.sessions import SessionStore
from dockyard.api.settings import Settings
from dockyard.api.v2.common import Services
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.audit_chain import start_chain
from dockyard.commands.general_settings import General
from dockyard.commands.identity import Identity
from dockyard.commands.management import Management
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.secrets import SecretStore
from dockyard.commands.storage_settings import StorageSetting
from dockyard.commands.uploads import UploadSessions
from dockyard.commands.webhooks import Webhooks
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.read_side import ReadSide
from dockyard.projections.registry_queries import RegistryQueries
from dockyard.projections.webhook_delivery import WebhookDelivery
from dockyard.storage import open_store
from dockyard.storage.switchable import SwitchableStore


def open_registry(data_dir: str, database_url: str | None) -> Registry:
    """The event log (SQLite under `data_dir`, or PostgreSQL at `database_url`) and the command side on it."""
    return Registry(event_store_env(data_dir, database_url))


def storage_setting(registry: Registry, secrets: SecretStore) -> StorageSetting:
    """Settings > Storage: which blob store was chosen at run time, if any (else --storage)."""
    return StorageSetting(registry, secrets, open_store)


def accounts(registry: Registry, settings: Settings, clock: Callable[[], float] = time.time,
             secrets: SecretStore | None = None) -> Accounts:
    """Users, passwords and sign-in (`accounts.identity` is the identity command); LDAP binds with
    the stored password when `secrets` is given."""
    identity = Identity(registry, settings.password_min_length)
    tokens = AccessTokens(registry, clock)
    if secrets is None:
        return Accounts(registry, identity, tokens)
    return Accounts(registry, identity, tokens, secrets.ldap_bind_password)


def views(registry: Registry) -> tuple[RegistryQueries, IdentityQueries]:
    """The query objects of the inline read models, on the log's database (they are written in the
    event transaction, so never behind a command that has returned): `registry_view` (repositories,
    tags, manifests, blob links) and `identity_view` (accounts, teams, grants, tokens, settings)."""
    return RegistryQueries(registry.datastore, registry.dialect), IdentityQueries(registry.datastore, registry.dialect)


def read_side(registry: Registry, secrets: SecretStore | None = None, checkpoint_every: int = 1000) -> ReadSide:
    """The followed projections and their runners; with `secrets`, the audit checkpoint signer too."""
    key = secrets.audit_signing_key() if secrets is not None else None
    return ReadSide(registry, key, checkpoint_every)


def build_services(settings: Settings, clock: Callable[[], float] = time.time) -> Services:
    """Everything a serving process uses. `clock` (seconds since the epoch) is what token expiry
    and upload ages are measured by."""
    registry = open_registry(settings.data_dir, settings.database_url)
    secrets = SecretStore(registry)
    # Settings > Storage, when chosen at run time, wins over --storage; every process follows changes.
    storage = storage_setting(registry, secrets)
    store = SwitchableStore(storage.open_current() if storage.version() else
                            open_store(settings.storage_url), storage.version, storage.open_current)
    storage.listeners.append(store.refresh)
    start_chain(registry)  # events stored before the tamper-evident chain existed: chain them, once
    users = accounts(registry, settings, clock, secrets)
    identity, tokens = users.identity, users.tokens
    auth = Auth(settings, users, secrets.signing_key(), clock)
    general = General(registry)
    auth.domain_name = general.domain_name  # the token realm names the domain name once one is set
    sessions = SessionStore(registry.datastore, registry.dialect, settings.portal_idle_minutes * 60, clock)
    uploads = UploadSessions(store, registry, clock, settings.max_upload_sessions_per_user)
    followed = read_side(registry, secrets, settings.audit_checkpoint_every)
    registry_view, identity_view = views(registry)
    return Services(
        settings=settings, registry=registry, registry_view=registry_view, identity_view=identity_view, store=store,
        uploads=uploads, accounts=users, auth=auth, identity=identity, tokens=tokens, secrets=secrets,
        read_side=followed, portal_sessions=sessions, general=general, storage_setting=storage,
        management=Management(identity, users), webhooks=Webhooks(registry, secrets),
        webhook_delivery=WebhookDelivery(registry, followed, secrets, registry_view, identity_view,
                                         source=settings.public_url or "", clock=clock,
                                         history=settings.webhook_history))
