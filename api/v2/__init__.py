"""The OCI distribution API v1.1 under `/v2/`: plain Starlette routes (the hot paths), one
module per resource. `routes()` lists them in match order: upload routes before blob routes,
because repository names may contain slashes."""

from __future__ import annotations

from starlette.routing import BaseRoute

from dockyard.api.v2 import base, blobs, manifests, referrers, tags, uploads


def routes() -> list[BaseRoute]:
    return [*base.routes, *uploads.routes, *blobs.routes, *manifests.routes, *tags.routes, *referrers.routes]
