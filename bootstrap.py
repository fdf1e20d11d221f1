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
from dockyard.storage import BlobStore, open_store
from dockyard.storage.switchable import SwitchableStore


def open_registry(data_dir: str, database_url: str | None) -> Registry:
    """The event log (SQLite under `data_dir`, or PostgreSQL at `database_url`) and the registry's
    commands on it, reading through the inline read models (`registry_on`)."""
    return registry_on(event_store_env(data_dir, database_url))


def registry_on(env: dict[str, str]) -> Registry:
    """The `Registry` application of eventsourcing environment `env`, handed the query objects its
    checks read (each call stands for a process: its own connections, the same database)."""
    registry = Registry(env)
    return registry.read_through(*views(registry))


def views(registry: Registry) -> tuple[RegistryQueries, IdentityQueries]:
    """The query objects of the inline read models, on the log's database (they are written in the
    event transaction, so never behind a command that has returned): `registry_view` (repositories,
    tags, manifests, blob links) and `identity_view` (accounts, teams, grants, tokens, settings)."""
    return RegistryQueries(registry.datastore, registry.dialect), IdentityQueries(registry.datastore, registry.dialect)


def storage_setting(registry: Registry, secrets: SecretStore) -> StorageSetting:
    """Settings > Storage: which blob store was chosen at run time, if any (else --storage)."""
    return StorageSetting(registry, secrets, open_store)


def accounts(registry: Registry, settings: Settings, clock: Callable[[], float] = time.time,
             secrets: SecretStore | None = None,
             read: tuple[RegistryQueries, IdentityQueries] | None = None) -> Accounts:
    """Users, passwords and sign-in (`accounts.identity` is the identity command, `accounts.identity_view`
    its read model, `accounts.tokens` the access tokens), reading through `read` (else `views(registry)`);
    LDAP binds with the stored password when `secrets` is given."""
    registry_view, identity_view = read or views(registry)
    identity = Identity(registry, registry_view, identity_view, settings.password_min_length)
    tokens = AccessTokens(registry, identity_view, clock)
    if secrets is None:
        return Accounts(registry, identity_view, identity, tokens)
    return Accounts(registry, identity_view, identity, tokens, secrets.ldap_bind_password)


def upload_sessions(store: BlobStore, registry: Registry) -> UploadSessions:
    """Upload sessions in `store` (what `dockyard uploads purge` works on)."""
    return UploadSessions(store, registry, views(registry)[0])


def read_side(registry: Registry, secrets: SecretStore | None = None, checkpoint_every: int = 1000) -> ReadSide:
    """The followed projections and their runners; with `secrets`, the audit checkpoint signer too."""
    key = secrets.audit_signing_key() if secrets is not None else None
    return ReadSide(registry, key, checkpoint_every)


def build_services(settings: Settings, clock: Callable[[], float] = time.time) -> Services:
    """Everything a serving process uses. `clock` (seconds since the epoch) is what token expiry
    and upload ages are measured by."""
    registry = Registry(event_store_env(settings.data_dir, settings.database_url))
    registry_view, identity_view = views(registry)  # the one pair this process reads through
    registry.read_through(registry_view, identity_view)
    secrets = SecretStore(registry)
    # Settings > Storage, when chosen at run time, wins over --storage; every process follows changes.
    storage = storage_setting(registry, secrets)
    store = SwitchableStore(storage.open_current() if storage.version() else
                            open_store(settings.storage_url), storage.version, storage.open_current)
    storage.listeners.append(store.refresh)
    start_chain(registry)  # events stored before the tamper-evident chain existed: chain them, once
    users = accounts(registry, settings, clock, secrets, (registry_view, identity_view))
    identity, tokens = users.identity, users.tokens
    auth = Auth(settings, users, identity_view, secrets.signing_key(), clock)
    general = General(registry)
    auth.domain_name = general.domain_name  # the token realm names the domain name once one is set
    sessions = SessionStore(registry.datastore, registry.dialect, settings.portal_idle_minutes * 60, clock)
    uploads = UploadSessions(store, registry, registry_view, clock, settings.max_upload_sessions_per_user)
    followed = read_side(registry, secrets, settings.audit_checkpoint_every)
    return Services(
        settings=settings, registry=registry, registry_view=registry_view, identity_view=identity_view, store=store,
        uploads=uploads, accounts=users, auth=auth, identity=identity, tokens=tokens, secrets=secrets,
        read_side=followed, portal_sessions=sessions, general=general, storage_setting=storage,
        management=Management(identity_view, identity, users), webhooks=Webhooks(registry, identity_view, secrets),
        webhook_delivery=WebhookDelivery(registry, followed, secrets, registry_view, identity_view,
                                         source=settings.public_url or "", clock=clock,
                                         history=settings.webhook_history))
