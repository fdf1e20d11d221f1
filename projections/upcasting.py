"""Stored event state in its current shape, for projections that fold the JSON the log holds.

The library's mapper (`Mapper.to_domain_event`) upcasts an event stored at an older
`class_version` before it builds the event object: it pops `class_version` (absent means 1)
and calls the event class's `upcast_v1_v2`, `upcast_v2_v3`, ... on the state in turn. The
runner decodes state itself (to stay fast and not to build objects), so it applies that same
chain here; a fold then sees every event in the shape its class has now, and an audit row of an
event stored at version 1 equals that of the same event stored today.

A topic that resolves to no class (one added by a later release) is folded as stored.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import resolve_topic

_VERSIONS: dict[str, tuple[type, int]] = {}  # topic -> (event class, its class_version); hits only


def _event_class(topic: str) -> tuple[type, int] | None:
    found = _VERSIONS.get(topic)
    if found is None:
        try:
            cls = resolve_topic(topic)
        except Exception:  # noqa: BLE001 - TopicError, or a module that no longer imports: fold as stored
            return None
        found = _VERSIONS[topic] = (cls, int(getattr(cls, "class_version", 1)))
    return found


def current_shape(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """`state` (changed in place, and returned) as the current class of `topic` has it."""
    found = _event_class(topic)
    if found is None:
        return state
    cls, current = found
    if current == 1 and "class_version" not in state:  # nearly every event: nothing to do
        return state
    stored = int(state.pop("class_version", 1))
    while stored < current:
        getattr(cls, f"upcast_v{stored}_v{stored + 1}")(state)
        stored += 1
    return state
