"""Admin actions on the followed projections (the read side's runners, `projections.runner`).

The rule of "retry now": only a followed projection can fail apart from the log (the inline
views are written in the event transaction, so they never lag or fail on their own), and only
a failed one has a retry to bring forward. The retry itself is the leading runner's, in
whichever process leads: this only moves the stored time of its next try to now.
"""

from __future__ import annotations

from typing import Any

from dockyard.domain.errors import Conflict, NotFound
from dockyard.projections.status import INLINE, projection_status


def retry_projection(read_side: Any, name: str) -> dict[str, Any]:
    """Ask the runner of failed projection `name` to try its failing batch again now; returns
    its status row. `NotFound` for an unknown name; `Conflict` for an inline view or a
    projection that has not failed (nothing to retry: it is following the log)."""
    if name in INLINE:
        raise Conflict(f"{name} is an inline view, written in the event transaction: it has no retry")
    if name not in read_side.runners:
        raise NotFound(f"no projection {name} (known: {', '.join([*INLINE, *read_side.runners])})")
    if not read_side.positions.request_retry(name):
        raise Conflict(f"projection {name} has not failed: nothing to retry")
    return next(r for r in projection_status(read_side) if r["name"] == name)
