"""`/api/v0/settings/general`: DTR's Settings > General — the registry's domain name (global
admins change it; any signed-in user may read it). A change is an event."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, SignedIn, require_token_admin
from dockyard.api.v0.schemas import Model

router = APIRouter(prefix="/settings/general", tags=["settings"])


class GeneralSettings(Model):
    domain_name: str = Field("", max_length=260, description="The host name (and :port) clients use; "
                             "empty: not set (clients' own addresses are used).")


@router.get("", summary="The general settings (the domain name)")
async def get_general_settings(principal: SignedIn, svc: ServicesDep) -> GeneralSettings:
    return GeneralSettings(domain_name=await run_in_threadpool(svc.general.domain_name))


@router.put("", summary="Change the domain name (global admins)")
async def change_general_settings(body: GeneralSettings, principal: GlobalAdmin, svc: ServicesDep) -> GeneralSettings:
    require_token_admin(principal)
    return GeneralSettings(domain_name=await run_in_threadpool(svc.general.change_domain_name, body.domain_name))
