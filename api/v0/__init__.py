"""The management API under `/api/v0/`, modelled on DTR's: one FastAPI router per resource,
and the API console (Swagger UI at `/docs`) that documents it.

Errors are RFC 9457 problem documents (`application/problem+json`, rendered by
`dockyard.api.errors`); `/openapi.json` says so for every route. `router()` lists the routers in
match order: the `tags` and `teamAccess` routes before the repository routes, whose `{repo}` is
a path (repository names may have several components).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from dockyard.api.v0 import (
    account_access,
    accounts,
    audit,
    console,
    event_stream,
    events,
    gc,
    general_settings,
    history,
    logs,
    projections,
    repositories,
    restore,
    search,
    settings,
    storage_settings,
    tags,
    team_access,
    teams,
    tls_settings,
    tokens,
    webhooks,
)
from dockyard.api.v0.schemas import PROBLEM_RESPONSES, Problem
from dockyard.domain.account import MIN_PASSWORD_LENGTH

PREFIX = "/api/v0"


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, responses=PROBLEM_RESPONSES)
    for module in (account_access, accounts, teams, tokens, history, restore, tags, team_access, repositories,
                   settings, general_settings, storage_settings, event_stream, events, audit, projections, gc, search,
                   webhooks, logs, tls_settings):
        api.include_router(module.router)
    return api


def install(app: FastAPI, password_min_length: int = MIN_PASSWORD_LENGTH) -> None:
    """Add the management API, its problem schema in `/openapi.json`, and the console. The
    schemas state the password policy as configured (`password_min_length`)."""
    app.include_router(router())
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
            for model in ("NewUser", "AccountChange"):
                if model in schemas:
                    schemas[model]["properties"]["password"]["minLength"] = password_min_length
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    console.install(app)
