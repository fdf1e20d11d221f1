"""Who is acting: set by the API per request, stamped on every event.

A `ContextVar` (as `examples/contentmanagement` in eventsourcing does with `user_id_cvar`)
keeps HTTP out of the domain while every event still records actor and client address.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal behind a request.

    `name` is a user name, `anonymous` or `system`; `address` the client's IP address (or
    `local` for the CLI and background jobs); `token` the id of the access token used, if any.
    """

    name: str
    address: str = "local"
    token: str | None = None


SYSTEM = Actor("system")
ANONYMOUS_NAME = "anonymous"  # the actor name of anonymous requests (the principal is `access.ANONYMOUS`)

current_actor: ContextVar[Actor] = ContextVar("current_actor", default=SYSTEM)
