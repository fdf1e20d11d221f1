"""`/api/v0/settings/storage`: DTR's Settings > Storage — the blob store, chosen at run time by
global admins. A new setting is probed (write, read back, delete) before it is recorded; its
credentials go to the secret store and never appear in a response or the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, require_token_admin
from dockyard.api.v0.schemas import Model
from dockyard.api.v2.common import Services

router = APIRouter(prefix="/settings/storage", tags=["settings"])


class StorageSettingsOut(Model):
    url: str = Field(description="The storage URL in force (file://, s3://, azure:// or swift://).")
    source: str = Field(description="`setting` (chosen here) or `startup` (--storage / DOCKYARD_STORAGE).")
    credentials: list[str] = Field(description="The names of the stored credentials; their values are never shown.")


class StorageSettingsIn(Model):
    url: str = Field(max_length=2000, description="s3://BUCKET[/PREFIX]?endpoint=…&region=…, "
                     "azure://CONTAINER[/PREFIX], swift://CONTAINER[/PREFIX] or file:///PATH.")
    credentials: dict[str, str] = Field(default_factory=dict, description=(
        "Environment-style credentials for the backend: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
        "AZURE_STORAGE_CONNECTION_STRING; ST_AUTH, ST_USER and ST_KEY or OS_*. Empty: the server's environment."))


def storage_view(svc: Services, current: dict[str, Any]) -> StorageSettingsOut:
    """What the API and the portal show: the URL in force, where it comes from, credential names."""
    if current["url"]:
        return StorageSettingsOut(url=current["url"], source="setting", credentials=current["credentials"])
    startup = svc.settings.storage_url.partition("?")[0]  # parameters may hold what is not ours to show
    return StorageSettingsOut(url=startup, source="startup", credentials=[])


@router.get("", summary="The blob storage in force (global admins)")
async def get_storage_settings(principal: GlobalAdmin, svc: ServicesDep) -> StorageSettingsOut:
    return storage_view(svc, await run_in_threadpool(svc.storage_setting.current))


@router.put("", summary="Change the blob storage (global admins; probed first, refused with the reason)")
async def change_storage_settings(body: StorageSettingsIn, principal: GlobalAdmin,
                                  svc: ServicesDep) -> StorageSettingsOut:
    require_token_admin(principal)
    # In force in this process at once (the setting's listeners), in the others within seconds.
    return storage_view(svc, await run_in_threadpool(svc.storage_setting.change, body.url, body.credentials))
