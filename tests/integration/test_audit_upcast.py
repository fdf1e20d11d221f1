"""The audit trail folds an event stored at an older `class_version` in its class's current
shape (the upcasters applied, as the library's mapper applies them), so its row equals the row
of the same event stored today. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import orjson
from eventsourcing.persistence import StoredEvent

from dockyard.commands.registry import Registry
from dockyard.domain.aggregate import RegistryAggregate
from dockyard.projections.audit_trail import COLUMNS, AuditTrail
from dockyard.projections.runner import ProjectionRunner
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures


class Probe(RegistryAggregate):
    """An aggregate whose `Noted` event gained a field: version 1 had `repository` only."""

    TOPIC = "dockyard.UpcastProbe"

    class Created(RegistryAggregate.Created):
        TOPIC = "dockyard.UpcastProbe.Created"

    class Noted(RegistryAggregate.Event):
        TOPIC = "dockyard.UpcastProbe.Noted"
        class_version = 2
        repository: str
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = "unspecified"

        def apply(self, aggregate: Any) -> None:
            aggregate.reason = self.reason

    def note(self, repository: str, reason: str) -> None:
        self.trigger_event(self.Noted, repository=repository, reason=reason)


def _audit_rows(registry: Registry) -> dict[int, dict[str, Any]]:  # noqa: F811
    with registry.dialect.reading(registry.recorder.datastore) as cursor:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events")
        return {int(r["position"]): dict(r) for r in cursor.fetchall()}


def test_an_event_stored_at_version_1_folds_as_its_current_shape(registry: Registry) -> None:  # noqa: F811
    # Step 1: today's event (stored with class_version 2).
    probe = Probe()
    probe.note("ns/probe", "unspecified")
    registry.save(probe)
    [today] = registry.recorder.select_notifications(0, 1000, topics=["dockyard.UpcastProbe.Noted"])
    state = orjson.loads(today.state)
    assert state["class_version"] == 2
    # Step 2: the same facts as a release before the change stored them: no `reason`, no version.
    old_state = {k: v for k, v in state.items() if k not in ("reason", "class_version")}
    registry.recorder.insert_events([StoredEvent(originator_id=uuid4(), originator_version=1, topic=today.topic,
                                                 state=orjson.dumps(old_state))])
    [_, old] = registry.recorder.select_notifications(0, 1000, topics=["dockyard.UpcastProbe.Noted"])
    assert registry.mapper.to_domain_event(old).reason == "unspecified"  # the library's own reading
    # Step 3: the audit trail folds both; their rows differ only in position.
    ProjectionRunner(registry, AuditTrail()).catch_up()
    rows = _audit_rows(registry)
    current, upcast = rows[today.id], rows[old.id]
    assert orjson.loads(upcast["details"])["reason"] == "unspecified"
    assert "class_version" not in orjson.loads(current["details"])
    assert {k: v for k, v in upcast.items() if k != "position"} == {k: v for k, v in current.items()
                                                                      if k != "position"}
