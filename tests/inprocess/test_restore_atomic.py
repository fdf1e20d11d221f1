"""A repository restore is one transaction: a fault in the middle of its save (here the read
model's fold failing once the repository, its grants, blob links, manifests and first tag are
already in the transaction) records nothing of it; the same restore then succeeds. On both
backends (PostgreSQL through the `postgres` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api.settings import Settings
from dockyard.projections import inline
from tests.conftest import BACKENDS
from tests.inprocess.conftest import API, Dockyard, inprocess_settings
from tests.inprocess.test_tag_history import named_user

pytestmark = pytest.mark.anyio
MADRID = f"{API}/repositories/engineering/madrid"


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    if request.param == "postgres":
        return inprocess_settings(database_url=request.getfixturevalue("postgres").create())
    return inprocess_settings()


def head(dockyard: Dockyard) -> int:
    return dockyard.services.registry.recorder.max_notification_id() or 0


async def test_a_fault_in_the_middle_of_a_restore_records_nothing(dockyard: Dockyard,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ahab = await named_user(dockyard, "ahab")
    await dockyard.org(name="engineering")
    await dockyard.team("engineering", "crew", members=["ahab"])
    admin = dockyard.client()
    v1 = await dockyard.push(admin, "engineering/madrid", "v1")
    v2 = await dockyard.push(admin, "engineering/madrid", "v2")
    assert (await admin.patch(MADRID, json={"visibility": "public", "description": "the capital"})).status_code == 200
    await dockyard.grant("engineering/madrid", "crew", "read-write")
    assert (await admin.delete(MADRID)).status_code == 204
    before = head(dockyard)

    folded: list[str] = []
    fold = inline.apply

    def crash_at_the_second_tag(dialect: Any, cursor: Any, events: Any) -> None:
        for event in events:
            if type(event).__name__ == "Moved" and getattr(event, "name", None) == "v2":
                raise RuntimeError("injected: the process dies half way through the restore's save")
            fold(dialect, cursor, [event])
            folded.append(type(event).__qualname__)

    monkeypatch.setattr(inline, "apply", crash_at_the_second_tag)
    with pytest.raises(RuntimeError, match="injected"):  # the in-process transport re-raises what a server logs
        await admin.post(f"{MADRID}/restore")
    # The fault came after the repository, its grants, the manifests and tag v1 were in the transaction...
    assert {"Repository.Restored", "Repository.TeamAccessGranted", "Manifest.Pushed", "Tag.Moved"} <= set(folded)
    # ...and none of it was recorded: the log, the repository, its tags and ahab's access are as before.
    assert head(dockyard) == before
    monkeypatch.setattr(inline, "apply", fold)
    assert (await admin.get(MADRID)).status_code == 404
    assert (await admin.get("/v2/engineering/madrid/manifests/v1")).status_code == 404
    r = await admin.get(f"{API}/accounts/ahab/access", params={"repository": "engineering/madrid"})
    assert r.json()["accessLevel"] == "none"

    r = await admin.post(f"{MADRID}/restore")
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == {"v1": v1, "v2": v2} and r.json()["teamAccess"] == {"crew": "read-write"}
    repo = (await admin.get(MADRID)).json()
    assert (repo["visibility"], repo["description"]) == ("public", "the capital")
    async with dockyard.client(ahab) as as_ahab:
        for tag in ("v1", "v2"):
            assert (await as_ahab.get(f"/v2/engineering/madrid/manifests/{tag}")).status_code == 200
