"""Restoring from the log (`commands.restore`): `POST …/tags/{tag}/restore` with `{"at": …}` or
`{"digest": …}` brings a deleted or moved tag back; `POST …/restore` brings back a deleted
repository with its tags, visibility, description and team access as they were before the
delete. Both need the delete's rights; both are refused with 409 naming the missing blobs when
garbage collection already removed some.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.as_of import as_of, position_of
from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.schemas import RepositoryRestored, TagRestore, TagRestored
from dockyard.api.v2.common import Services
from dockyard.commands.restore import Restore
from dockyard.domain.errors import NotFound
from dockyard.domain.names import is_valid_tag

router = APIRouter(prefix="/repositories/{namespace}/{repo:path}", tags=["restore"])
FRESHNESS_WAIT = 2.0


def restorer(svc: Services) -> Restore:
    svc.read_side.wait("audit", svc.read_side.head(), FRESHNESS_WAIT)
    return Restore(svc.registry, svc.registry_view, svc.identity_view, svc.store, as_of(svc), svc.management,
                   svc.read_side.audit)


@router.post("/tags/{tag}/restore", summary="Point a deleted or moved tag where it was (read-write access)")
async def restore_tag(namespace: str, repo: str, tag: str, body: TagRestore, principal: SignedIn,
                      svc: ServicesDep) -> TagRestored:
    full = f"{namespace}/{repo}"

    def restore() -> TagRestored:
        if not is_valid_tag(tag):
            raise NotFound("no such tag", {"repository": full, "tag": tag})
        svc.management.check_level(principal, full, "read-write")
        restoring = restorer(svc)
        digest = body.digest or restoring.tag_digest_at(full, tag, position_of(svc, str(body.at)))
        restoring.restore_tag(principal, full, tag, digest)
        return TagRestored(repository=full, tag=tag, digest=digest)

    return await run_in_threadpool(restore)


@router.post("/restore", summary="Bring back a deleted repository as it was before the delete (admin on it then)")
async def restore_repository(namespace: str, repo: str, principal: SignedIn, svc: ServicesDep) -> RepositoryRestored:
    full = f"{namespace}/{repo}"

    def restore() -> RepositoryRestored:
        done = restorer(svc).restore_repository(principal, full)
        return RepositoryRestored(repository=full, tags=done.tags, team_access=done.teams,
                                  skipped_teams=list(done.skipped_teams))

    return await run_in_threadpool(restore)
