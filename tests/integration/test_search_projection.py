"""The search projection on both backends: a fold from scratch, an online rebuild (fresh tables,
FTS5 table or pg_trgm index included, then the swap) answers the very same searches, and a
reader's search holds only what they may read."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.repository import PRIVATE, PUBLIC, Repository
from dockyard.domain.tag import Tag
from dockyard.domain.team import Team
from dockyard.projections import search_queries
from dockyard.projections.online_rebuild import rebuild
from dockyard.projections.repository_search import RepositorySearch
from dockyard.projections.runner import ProjectionRunner
from dockyard.projections.search_queries import WINDOW, SearchKey, SearchQueries
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures


def _fill(registry: Registry) -> None:  # noqa: F811
    words = ("api", "web", "barca", "madrid", "ledger")
    batch: list[Any] = []
    for i in range(300):
        name = f"org{i % 3}/{words[i % 5]}-{i}"
        batch.append(Repository(name=name, visibility=PUBLIC if i % 50 == 0 else PRIVATE,
                                description=f"the {words[(i + 2) % 5]} service"))
        tag = Tag(repository=name, name=f"v{i % 4}")
        tag.point_at(f"sha256:{i:064x}")
        batch.append(tag)
    registry.save(*batch)
    team = Team(organization="org1", name="readers")
    team.add_member("reader")
    granted = []
    for i in (1, 4, 7):
        repo = registry.load(Repository, Repository.create_id(f"org1/{words[i % 5]}-{i}"))
        assert repo is not None
        repo.grant("readers", "read-only")
        granted.append(repo)
    registry.save(team, *granted)


def test_rebuilt_search_answers_as_the_live_one_and_only_what_a_reader_may_read(registry: Registry) -> None:  # noqa: F811
    _fill(registry)
    live = ProjectionRunner(registry, RepositorySearch(fts=registry.dialect.name == "sqlite"))
    live.catch_up()
    queries = SearchQueries(registry.recorder.datastore, registry.dialect)
    admin = queries.caller_facts(Principal("root", "admin"))
    reader = queries.caller_facts(Principal("reader", "none"))
    terms = ("api", "barca", "ma", "v3", "org1/web-1", "nothing-here")
    before = {term: queries.search(admin, term, 1000) for term in terms}
    assert len(before["api"]) == 120 and before["org1/web-1"][0]["name"] == "org1/web-1"
    assert rebuild(registry, live).events > 0
    assert {term: queries.search(admin, term, 1000) for term in terms} == before
    readable = {row["name"] for row in queries.search(reader, "", 1000)}
    public = {f"org{i % 3}/{('api', 'web', 'barca', 'madrid', 'ledger')[i % 5]}-{i}" for i in range(0, 300, 50)}
    assert readable == public | {"org1/web-1", "org1/ledger-4", "org1/barca-7"}


@pytest.mark.parametrize("window", [WINDOW, 3])
def test_a_caller_who_reads_everything_gets_the_ranking_of_one_who_reads_the_same_few(
        registry: Registry, window: int, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A global role's search runs one query per rank (on SQLite first over a window of rows
    in page order: here all 300 rows, or 3 so that most ranks are found by their index); an
    owner of every organisation's runs one query over their candidates: both must page through
    the very same rows in order."""
    monkeypatch.setattr(search_queries, "WINDOW", window)
    _fill(registry)
    owners = [Team(organization=f"org{i}", name="owners") for i in range(3)]
    for team in owners:
        team.add_member("boss")
    registry.save(*owners)
    ProjectionRunner(registry, RepositorySearch(fts=registry.dialect.name == "sqlite")).catch_up()
    queries = SearchQueries(registry.recorder.datastore, registry.dialect)
    admin = queries.caller_facts(Principal("root", "admin"))
    boss = queries.caller_facts(Principal("boss", "none"))
    assert boss.owned_organizations == ("org0", "org1", "org2")

    def pages(facts: Any, term: str, namespace: str | None) -> list[tuple[str, int]]:
        found, after = [], None
        while True:
            rows = queries.search(facts, term, 7, after, namespace)
            found += [(r["name"], r["rank"]) for r in rows]
            if len(rows) < 7:
                return found
            after = SearchKey(rows[-1]["rank"], rows[-1]["pushed_at"], rows[-1]["name"])

    for term in ("", "api", "ap", "barca-1", "org1/web-1", "web", "eb", "v3", "service", "the", "1", "zz-none"):
        for namespace in (None, "org2"):
            expected = pages(boss, term, namespace)
            assert pages(admin, term, namespace) == expected, (term, namespace)
    assert {rank for _, rank in pages(admin, "barca", None)} == {1, 2}


def _rows(registry: Registry, search: RepositorySearch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # noqa: F811
    """The projection's rows in id order, and on SQLite its FTS5 rows in rowid order."""
    with registry.recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT * FROM {search.table} ORDER BY id")
        rows = [dict(r) for r in cursor.fetchall()]
        fts: list[dict[str, Any]] = []
        if registry.dialect.name == "sqlite":
            cursor.execute(f"SELECT rowid, document FROM {search.fts_table} ORDER BY rowid")
            fts = [dict(r) for r in cursor.fetchall()]
    return rows, fts


def test_a_batch_folds_to_the_rows_of_one_event_at_a_time(registry: Registry) -> None:  # noqa: F811
    """Batches fold a repository's events in memory and write once: the rows (ids included) must be
    those a fold of one event per transaction gives, whatever falls into one batch."""
    repos = [Repository(name=f"org{i % 2}/svc-{i}", description=f"Service {i}") for i in range(6)]
    registry.save(*repos)
    tags: list[Tag] = []
    for round_ in range(3):
        batch: list[Any] = []
        for i, repo in enumerate(repos):
            tag = Tag(repository=repo.name, name=f"r{round_}-{i % 3}")
            tag.point_at(f"sha256:{round_ * 10 + i:064x}")
            batch.append(tag)
            tags.append(tag)
            if (round_ + i) % 4 == 0:
                repo.set_description(f"Changed {round_} Ledger-{i}")
                batch.append(repo)
        registry.save(*batch)
    for tag in tags[::4]:
        tag.delete()
    registry.save(*tags[::4])
    repos[1].delete()
    registry.save(repos[1])
    repos[1].recreate(description="Again")
    late = Tag(repository="org9/late", name="only")  # a tag event before any Repository event
    late.point_at(f"sha256:{99:064x}")
    registry.save(repos[1], late)
    fts = registry.dialect.name == "sqlite"
    one = RepositorySearch("__one", fts)
    ProjectionRunner(registry, one, batch=1, name="search__one").catch_up()
    for size in (7, 1000):  # batches that split a repository's events, and one batch of them all
        batched = RepositorySearch(f"__batched{size}", fts)
        ProjectionRunner(registry, batched, batch=size, name=f"search__batched{size}").catch_up()
        assert _rows(registry, batched) == _rows(registry, one)
    rows, _ = _rows(registry, one)
    assert len(rows) == 7 and rows[1]["description"] == "Again" and rows[6]["name"] == "org9/late"
