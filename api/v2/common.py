"""What every `/v2/` route shares: the services, path parameters, headers, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

from dockyard.api.auth import Auth, Scope
from dockyard.api.portal.sessions import SessionStore
from dockyard.api.settings import Settings
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.general_settings import General
from dockyard.commands.identity import Identity
from dockyard.commands.management import Management
from dockyard.commands.registry import Registry
from dockyard.commands.secrets import SecretStore
from dockyard.commands.storage_settings import StorageSetting
from dockyard.commands.uploads import UploadSessions
from dockyard.commands.webhooks import Webhooks
from dockyard.domain.errors import PaginationInvalid
from dockyard.domain.names import check_repository_name
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.loop_reads import LoopReads
from dockyard.projections.read_side import ReadSide
from dockyard.projections.registry_queries import Read, RegistryQueries
from dockyard.projections.webhook_delivery import WebhookDelivery
from dockyard.storage import BlobStore

T = TypeVar("T")

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
MAX_PAGE = 10_000


@dataclass
class Services:
    """The object graph a request uses, built once per process by `create_app`."""

    settings: Settings
    registry: Registry  # the registry's commands, on the event log
    registry_view: RegistryQueries  # the registry read model: repositories, tags, manifests, blob links
    identity_view: IdentityQueries  # the identity read model: accounts, teams, grants, tokens, auth settings
    store: BlobStore
    uploads: UploadSessions
    accounts: Accounts
    auth: Auth
    identity: Identity  # the identity commands (its read model is `identity_view`)
    tokens: AccessTokens
    secrets: SecretStore
    read_side: ReadSide  # the followed projections (audit trail) and their positions
    portal_sessions: SessionStore
    general: General  # Settings > General (the domain name)
    storage_setting: StorageSetting  # Settings > Storage (`store` follows it in every process)
    management: Management  # who may manage what, then the identity command (API and portal)
    webhooks: Webhooks  # webhook subscriptions (events; secrets in `secrets`)
    webhook_delivery: WebhookDelivery  # follows the audit trail for each subscription (one leader)


def services(request: Request) -> Services:
    return request.app.state.services


async def read(request: Request, statement: Read[T]) -> T:
    """The answer of one read-model statement, read without a thread hop where the backend
    allows it (`projections.loop_reads`): what the pull path's routes read."""
    reads: LoopReads = request.app.state.loop_reads
    return await reads.run(statement)


def repository(request: Request) -> str:
    """The repository name from the path, validated (`NAME_INVALID` otherwise)."""
    return check_repository_name(request.path_params["name"])


def scope(name: str, *actions: str) -> Scope:
    return Scope("repository", name, frozenset(actions))


def headers(**extra: Any) -> dict[str, str]:
    out = dict(API_VERSION)
    out.update({k.replace("_", "-"): str(v) for k, v in extra.items()})
    return out


def location(request: Request, path: str) -> str:
    """A `Location` header's value: absolute with the public URL or the domain name once one is set (as
    Distribution's are, so a client is sent to the name it trusts), else relative to the address asked
    (RFC 9110 allows it; containers/image and Docker resolve it against the request's URL)."""
    return services(request).auth.public_base(request) + path


def page_params(request: Request) -> tuple[int | None, str | None]:
    """`n` and `last` of a paginated listing."""
    raw = request.query_params.get("n")
    n = None
    if raw is not None and raw != "":
        try:
            n = int(raw)
        except ValueError:
            raise PaginationInvalid(detail={"n": raw}) from None
        if n < 0:
            raise PaginationInvalid(detail={"n": raw})
        n = min(n, MAX_PAGE)
    return n, request.query_params.get("last") or None


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'
