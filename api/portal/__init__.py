"""The web portal: DTR's admin portal, server-rendered, every asset served by Dockyard.

One router module per area (`login`, `repositories`, `organizations`, `users`, `settings`,
`gc`, `tokens`, `logs`, `audit`, `webhooks`), one template per page extending `templates/base.html`, and
`static/` for the stylesheet and the little JavaScript the pages use (no CDN: the portal works offline).
Routes are thin: they read the read models and call the same commands as `/api/v0`, through
the same access checks.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from dockyard.api.portal import audit, gc, login, logs, organizations, repositories, settings, tokens, users, webhooks
from dockyard.api.portal.web import ASSETS, HERE

AREAS = (login, repositories, organizations, users, settings, gc, tokens, logs, audit, webhooks)


def install(app: FastAPI) -> None:
    """Add the portal's pages and assets (after the APIs, whose paths they never shadow)."""
    app.mount(ASSETS, StaticFiles(directory=str(HERE / "static")), name="portal-assets")
    for module in AREAS:
        app.include_router(module.router)


def routes() -> set[tuple[str, str]]:
    """(method, path) of every portal page, for the access tests."""
    return {(method, route.path) for module in AREAS for route in module.router.routes
            for method in getattr(route, "methods", ()) if method != "HEAD"}
