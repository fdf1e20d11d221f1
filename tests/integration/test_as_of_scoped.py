"""Time travel folded for one repository (`AsOf.at(position, repository, accounts)`) answers
exactly as the whole log folded to the same position, at every position of a history with
repositories made, deleted and made again, tags moved and deleted, teams changing members,
grants given and revoked, a team deleted and made again, and users changing role or
deactivated; on both backends. Without the audit trail caught up it folds the whole log."""

from __future__ import annotations

from typing import Any

from dockyard.commands.registry import Registry
from dockyard.domain.account import Organization, User
from dockyard.domain.repository import PUBLIC, Repository
from dockyard.domain.tag import Tag
from dockyard.domain.team import Team
from dockyard.projections.as_of import AsOf, PastState
from dockyard.projections.audit_trail import AuditTrail
from dockyard.projections.runner import ProjectionRunner
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures

REPOSITORIES = ("org/app", "org/web", "lab/app")
USERS = ("ann", "ben", "cat")


def _history(registry: Registry) -> None:  # noqa: F811
    users = {name: User(name=name, password_hash="x", role="none") for name in USERS}
    orgs = [Organization(name="org"), Organization(name="lab")]
    teams = {(org, name): Team(organization=org, name=name) for org in ("org", "lab") for name in ("owners", "dev")}
    repos = {name: Repository(name=name) for name in REPOSITORIES}
    registry.save(*users.values(), *orgs, *teams.values(), *repos.values())
    tags = {}
    for i, name in enumerate(REPOSITORIES):
        tags[name] = Tag(repository=name, name="v1")
        tags[name].point_at(f"sha256:{i:064x}")
    registry.save(*tags.values())
    steps: list[Any] = [
        lambda: teams["org", "dev"].add_member("ann"),
        lambda: repos["org/app"].grant("dev", "read-write"),
        lambda: teams["org", "owners"].add_member("ben"),
        lambda: teams["lab", "dev"].add_member("ann"),
        lambda: repos["lab/app"].grant("dev", "admin"),
        lambda: tags["org/app"].point_at("sha256:" + "a" * 64),
        lambda: repos["org/web"].set_visibility(PUBLIC),
        lambda: users["ann"].change_role("ann", "read-only"),
        lambda: teams["org", "dev"].remove_member("ann"),
        lambda: teams["org", "dev"].add_member("cat"),
        lambda: repos["org/app"].set_description("moved on"),
        lambda: tags["org/app"].delete(),
        lambda: repos["org/app"].grant("dev", "read-only"),
        lambda: teams["org", "dev"].delete(),
        lambda: users["cat"].set_active(False),
        lambda: teams["org", "dev"].recreate("again"),
        lambda: repos["org/app"].delete(),
        lambda: repos["org/app"].recreate(PUBLIC, "second life"),
        lambda: repos["lab/app"].revoke("dev"),
    ]
    everything = [*users.values(), *teams.values(), *repos.values(), *tags.values()]
    for step in steps:
        step()
        registry.save(*everything)


def _answers(state: PastState, repository: str) -> dict[str, Any]:
    """What the scoped routes ask of a past state about `repository`."""
    namespace = repository.split("/", 1)[0]
    return {
        "repository": state.registry_view.repository(repository),
        "tags": state.registry_view.tag_rows(repository),
        "team_access": state.identity_view.team_access(repository),
        "organization": state.identity_view.account(namespace),
        "users": {user: state.identity_view.user(user) for user in USERS},
        "facts": {user: state.identity_view.repository_facts(user, repository) for user in (*USERS, None)},
    }


def test_a_repository_folded_alone_answers_as_the_whole_log_at_every_position(registry: Registry) -> None:  # noqa: F811
    _history(registry)
    as_of = AsOf(registry, registry.recorder.datastore, registry.dialect)
    head = registry.recorder.max_notification_id() or 0
    unscoped = {position: as_of.at(position) for position in range(head + 1)}
    ProjectionRunner(registry, AuditTrail()).catch_up()
    scoped_events = []
    for position in range(head + 1):
        for repository in REPOSITORIES:
            expected = _answers(unscoped[position], repository)
            assert _answers(as_of.at(position, repository, USERS), repository) == expected, (position, repository)
            scoped_events.append(len(as_of._scoped_events(position, repository, USERS)))
    assert max(scoped_events) < head  # it did fold less than the whole log


def test_without_the_audit_trail_caught_up_it_folds_the_whole_log(registry: Registry) -> None:  # noqa: F811
    _history(registry)
    ProjectionRunner(registry, AuditTrail())  # its tables, at position 0: behind the log
    as_of = AsOf(registry, registry.recorder.datastore, registry.dialect)
    head = registry.recorder.max_notification_id() or 0
    assert as_of._scoped_events(head, "org/app", USERS) == []  # the audit trail holds nothing yet
    assert _answers(as_of.at(head, "org/app", USERS), "org/app") == _answers(as_of.at(head), "org/app")
    assert _answers(as_of.at(head, "org/app"), "org/app")["repository"]["description"] == "second life"
