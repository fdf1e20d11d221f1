"""The base of every Dockyard aggregate: deterministic ids and events that say who and from where.

Stored topics are explicit (`dockyard.<Aggregate>.<Event>`) so that moving or renaming a
module never orphans stored events; a changed event shape gets `class_version` + `upcast_*`.

An aggregate class marked `@opened_by("Moved")` may begin its log with that event instead of a
bare `Created`: a new one is made `unborn` (the state its `__init__` gives, version 0, nothing
recorded) and its first event, recorded at version 1, opens the log; on replay that event, met
with no aggregate, first builds the same unborn state from its own fields. Logs that begin with
`Created` (as every log did before) replay as they always did.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import field
from datetime import datetime
from typing import Any, Self, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, ProgrammingError, filter_kwargs_for_method_params

from dockyard.domain.actor import current_actor

_NAMESPACE = uuid5(NAMESPACE_URL, "https://dockyard.invalid/aggregates")


def name_id(kind: str, *parts: str) -> UUID:
    """A stable aggregate id derived from names, so 'create twice' is a version conflict."""
    return uuid5(_NAMESPACE, kind + ":" + "\x00".join(parts))


def _actor_name() -> str:
    return current_actor.get().name


def _actor_address() -> str:
    return current_actor.get().address


def _actor_token() -> str | None:
    return current_actor.get().token


# An opening event class -> the aggregate class whose log it may begin (see `opened_by`).
_OPENS: dict[type, type[RegistryAggregate]] = {}
R = TypeVar("R", bound="RegistryAggregate")


class RegistryAggregate(Aggregate):
    """Events of subclasses carry `actor`, `client_address` and `token` from `current_actor`."""

    class Event(Aggregate.Event):
        actor: str = field(default_factory=_actor_name, init=False)
        client_address: str = field(default_factory=_actor_address, init=False)
        token: str | None = field(default_factory=_actor_token, init=False)

        def mutate(self, aggregate: Any) -> Any:
            """As the library's, but an opening event (`opened_by`) met with no aggregate first
            builds it unborn from its own fields; `originator_version` must then be 1."""
            opens = _OPENS.get(type(self)) if aggregate is None else None
            if opens is not None:
                init = filter_kwargs_for_method_params(vars(self), opens.__init__)
                aggregate = opens._unborn(self.originator_id, init, self.timestamp)
            first = aggregate is not None and aggregate.version == 0
            aggregate = super().mutate(aggregate)
            if first:  # made unborn a moment before its first event: created when that happened
                aggregate._created_on = self.timestamp
            return aggregate

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def unborn(cls, **init_kwargs: Any) -> Self:
        """This aggregate before its first event: the state `__init__(**init_kwargs)` gives, at
        version 0, with nothing recorded (saving it alone records nothing). Its first event must
        be one of the class's opening events (`opened_by`), recorded at version 1, so two
        processes making the same one both write version 1 and the second save conflicts."""
        if cls not in _OPENS.values():
            raise ProgrammingError(f"{cls.__name__} has no opening event: create it by calling the class")
        aggregate_id = cls.create_id(**filter_kwargs_for_method_params(init_kwargs, cls.create_id))
        return cls._unborn(aggregate_id, init_kwargs, cls.Event.create_timestamp())

    @classmethod
    def _unborn(cls, aggregate_id: UUID, init_kwargs: dict[str, Any], timestamp: datetime) -> Self:
        aggregate = cls.__new__(cls)
        aggregate.__base_init__(originator_id=aggregate_id, originator_version=0, timestamp=timestamp)
        # Only the body runs: `@event` on `__init__` records `Created` when the class is called.
        aggregate.__init__(**init_kwargs)  # type: ignore[misc]
        return aggregate

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        if self.version == 0 and _OPENS.get(event_class) is not type(self):
            raise ProgrammingError(f"an unborn {type(self).__name__} records one of its opening events first, "
                                   f"not {event_class.__name__}")
        super().trigger_event(event_class, **kwargs)


def opened_by(*names: str) -> Callable[[type[R]], type[R]]:
    """Class decorator: the aggregate's log may begin with any of the events `names` (each an
    `@event` of the class, which then must carry the `__init__` parameters) instead of `Created`.
    Old logs that begin with `Created` still load; the event's stored topic and fields are the
    same whether it opens the log or comes later."""

    def decorate(cls: type[R]) -> type[R]:
        for name in names:
            event_class = getattr(cls, name)
            fields = {f.name for f in dataclasses.fields(event_class)}
            missing = [p for p in inspect.signature(cls.__init__).parameters if p != "self" and p not in fields]
            if missing:
                raise ProgrammingError(f"{cls.__name__}.{name} cannot open the log: it lacks {sorted(missing)}")
            _OPENS[event_class] = cls
        return cls

    return decorate
