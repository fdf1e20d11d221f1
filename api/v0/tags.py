"""`/api/v0/repositories/{namespace}/{repo}/tags`: a repository's tags, and soft-deleting one
(DTR's trash can: the manifest stays, reachable by digest, until GC finds it unreferenced)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.as_of import At, readable_views
from dockyard.api.v0.deps import PrincipalDep, ServicesDep, SignedIn, readable_repository
from dockyard.api.v0.paging import Cursor, Limit, link_next, page
from dockyard.api.v0.schemas import Tag, TagList
from dockyard.domain.errors import NotFound
from dockyard.domain.names import is_valid_tag

router = APIRouter(prefix="/repositories/{namespace}/{repo:path}/tags", tags=["tags"])


@router.get("", summary="The repository's tags (read access; paged, by name; ?at= as of then)")
async def list_tags(namespace: str, repo: str, request: Request, response: Response, principal: PrincipalDep,
                    svc: ServicesDep, limit: Limit = 100, cursor: Cursor = None, at: At = None) -> TagList:
    full = f"{namespace}/{repo}"

    def tags() -> TagList:
        queries = readable_views(svc, principal, full, at).registry_view
        rows, next_cursor = page(queries.tag_rows(full), lambda r: r["tag"], limit, cursor)
        link_next(request, response, next_cursor)
        return TagList(repository=full, tags=[Tag(name=r["tag"], digest=r["digest"], updated_at=r["updated_at"],
                                                  updated_by=r["updated_by"]) for r in rows])

    return await run_in_threadpool(tags)


@router.delete("/{tag}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a tag (read-write access); the manifest stays until GC")
async def delete_tag(namespace: str, repo: str, tag: str, principal: SignedIn, svc: ServicesDep) -> None:
    full = f"{namespace}/{repo}"

    def delete() -> None:
        readable_repository(svc, principal, full, "read-write")
        if not is_valid_tag(tag) or svc.registry_view.tag_digest(full, tag) is None:
            raise NotFound("no such tag", {"repository": full, "tag": tag})
        svc.registry.delete_tag(full, tag)

    await run_in_threadpool(delete)
