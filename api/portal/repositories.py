"""`Repositories`: the repositories a user can read, `New Repository`, a repository's page
(tags with the trash can, the pull command, team access, settings, activity) and deletes.

Every check is the API's (`api/v0/deps.py` over `domain.access`): a repository the viewer
cannot read is a 404; deleting a tag needs read-write, changing settings or deleting the
repository needs admin. Deletes ask the user to type DELETE; the command is the one the API
and `/v2/` use, so the log records the same events.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.audit import scope_of
from dockyard.api.portal.web import CurrentViewer, Form, PortalRoute, Viewer, redirect, render, services, status_of
from dockyard.api.v0.as_of import past, past_readable
from dockyard.api.v2.common import Services
from dockyard.domain import access
from dockyard.domain.errors import DomainError, InvalidRequest, NotFound
from dockyard.domain.names import is_valid_tag
from dockyard.projections.audit_queries import AuditFilter
from dockyard.projections.search_queries import SearchKey

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
PAGE = 50
ACTIVITY = 20  # the newest audit entries a repository's page shows
CONFIRM_WORD = "DELETE"
SEARCH_FRESHNESS = 2.0  # seconds a search waits for the search projection to reach the log's head


def readable_page(svc: Services, viewer: Viewer, search: str | None, after: str | None,
                  namespace: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the repositories the viewer can read (name order after `after`), and the
    name to continue after when there are more. With a `search` term the page is ranked by the
    search projection (`projections.search_queries`, best match first, filtered by read access
    in the query) and `after` is its key, as text."""
    if search:
        try:
            key = SearchKey.decode(after) if after else None
        except ValueError:
            raise InvalidRequest("invalid page: follow the Next link", {"after": after}) from None
        read_side = svc.read_side
        read_side.wait("search", read_side.head(), SEARCH_FRESHNESS)
        facts = read_side.search.caller_facts(viewer.principal)
        hits = read_side.search.search(facts, search, PAGE + 1, key, namespace)
        rows = [{**hit, "level": hit["access_level"]} for hit in hits[:PAGE]]
        last = hits[PAGE - 1] if len(hits) > PAGE else None
        return rows, (SearchKey(last["rank"], last["pushed_at"], last["name"]).encode() if last else None)
    facts = svc.read_side.search.caller_facts(viewer.principal)
    rows = svc.registry_view.readable_repositories(facts, PAGE + 1, after, namespace)
    found = [{**row, "level": row["access_level"]} for row in rows[:PAGE]]
    return found, (found[-1]["name"] if len(rows) > PAGE else None)


@router.get("/repositories")
async def list_repositories(request: Request, current: CurrentViewer, q: str | None = None,
                            after: str | None = None) -> Response:
    term = (q or "").strip().lower() or None
    rows, more = await run_in_threadpool(readable_page, services(request), current, term, after)
    return render(request, "repositories.html", section="repositories", repositories=rows, q=q or "",
                  next_after=more)


def creatable_namespaces(svc: Services, viewer: Viewer) -> list[str]:
    """The namespaces the viewer may create repositories in (the `New Repository` dropdown)."""
    return svc.management.creatable_namespaces(viewer.principal)


@router.get("/repositories/new")
async def new_repository_page(request: Request, current: CurrentViewer, namespace: str | None = None) -> Response:
    namespaces = await run_in_threadpool(creatable_namespaces, services(request), current)
    return render(request, "repository_new.html", section="repositories", namespaces=namespaces,
                  values={"namespace": namespace or current.principal.name or "", "visibility": "private"},
                  errors={})


@router.post("/repositories/new")
async def create_repository(request: Request, current: CurrentViewer, form: Form) -> Response:
    svc = services(request)
    values = {k: form.get(k, "").strip() for k in ("namespace", "name", "description", "visibility")}

    def create() -> str:
        if not values["name"]:
            raise InvalidRequest("Enter a repository name.")
        return svc.management.create_repository(current.principal, values["namespace"], values["name"],
                                                values["visibility"] or "private", values["description"])

    try:
        full = await run_in_threadpool(create)
    except DomainError as exc:
        namespaces = await run_in_threadpool(creatable_namespaces, svc, current)
        return render(request, "repository_new.html", status_of(exc), section="repositories", namespaces=namespaces,
                      values=values, errors={"name": exc.message})
    return redirect(f"/repositories/{full}")


def image_size(body: bytes) -> int:
    """Bytes a pull of this manifest fetches: the manifest, its config and its layers (an index
    counts only itself; its children are listed by digest)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return len(body)
    total = len(body)
    for descriptor in [doc.get("config") or {}, *(doc.get("layers") or [])]:
        if isinstance(descriptor, dict) and isinstance(descriptor.get("size"), int):
            total += descriptor["size"]
    return total


def moment(value: str | None) -> str | None:
    """The `at` of the "as of" form: a browser's `datetime-local` value is UTC here (the page says
    so); a log position or a full RFC 3339 time passes as it is. None: now."""
    value = (value or "").strip()
    if not value or value.isdigit() or value.endswith(("Z", "z")) or "+" in value[10:]:
        return value or None
    return value + ("" if value.count(":") >= 2 else ":00") + "+00:00"


def repository_view(svc: Services, viewer: Viewer, full: str, at: str | None = None) -> dict[str, Any]:
    """What the repository page shows: today, or as of `at` (the read models folded up to that
    instant and the access policy on its facts, as `?at=` on /api/v0; read only)."""
    views: Any  # today's read models (`Services`) or the instant's (`PastState`): `.registry_view`, `.identity_view`
    position: int | None = None
    if at is None:
        level, views = svc.management.check_level(viewer.principal, full), svc
    else:
        state = past(svc, at, full)
        level, views, position = past_readable(state, viewer.principal, full), state, state.position
    row = views.registry_view.repository(full)
    if row is None:
        raise NotFound("no such repository", {"repository": full})
    tags = []
    for tag in views.registry_view.tag_rows(full):
        # A manifest's bytes are a fact of its digest, the same then as now: "as of" folds no
        # manifest payloads, so they come from today's rows (None once it is deleted today).
        manifest = svc.registry_view.manifest_by_digest(full, tag["digest"])
        tags.append({**tag, "size": image_size(manifest.body) if manifest else None,
                     "media_type": manifest.media_type if manifest else ""})
    namespace = full.split("/", 1)[0]
    org = views.identity_view.account(namespace)
    writable = at is None
    return {
        "repository": row, "level": level, "tags": tags, "namespace": namespace,
        "name": full.split("/", 1)[1], "team_access": views.identity_view.team_access(full),
        "is_org": bool(org and org["kind"] == "organization"), "at": at, "at_position": position,
        "can_push": writable and access.LEVELS.index(level) >= access.LEVELS.index("read-write"),
        "can_admin": writable and level == "admin",
        "host": svc.general.domain_name() or "",
        "activity": svc.read_side.audit.latest(AuditFilter(repository=full), scope_of(svc, viewer), ACTIVITY),
    }


TAG_NOTE = "The image stays reachable by digest until garbage collection removes what nothing uses."
REPOSITORY_NOTE = "Its tags and team access go with it; the log keeps its history."


def confirm_page(request: Request, what: str, repository: str, note: str, unconfirmed: bool = False) -> Response:
    """The page asking to type DELETE (the no-JavaScript form of the trash can's dialog); posted
    without the word, it comes back (400) saying so."""
    return render(request, "confirm_delete.html", 400 if unconfirmed else 200, section="repositories", what=what,
                  action=request.url.path, back=f"/repositories/{repository}", note=note,
                  error=f"Type {CONFIRM_WORD} to confirm." if unconfirmed else None)


@router.get("/repositories/{namespace}/{repo:path}/tags/{tag}/delete")
async def confirm_delete_tag(request: Request, namespace: str, repo: str, tag: str,
                             current: CurrentViewer) -> Response:
    full = f"{namespace}/{repo}"
    view = await run_in_threadpool(repository_view, services(request), current, full)
    if not view["can_push"] or not any(t["tag"] == tag for t in view["tags"]):
        raise NotFound("no such tag", {"tag": tag})
    return confirm_page(request, f"the tag {full}:{tag}", full, TAG_NOTE)


@router.post("/repositories/{namespace}/{repo:path}/tags/{tag}/delete")
async def delete_tag(request: Request, namespace: str, repo: str, tag: str, current: CurrentViewer,
                     form: Form) -> Response:
    svc, full = services(request), f"{namespace}/{repo}"
    if form.get("confirm", "").strip() != CONFIRM_WORD:
        return confirm_page(request, f"the tag {full}:{tag}", full, TAG_NOTE, unconfirmed=True)

    def delete() -> None:
        svc.management.check_level(current.principal, full, "read-write")
        if not is_valid_tag(tag) or svc.registry_view.tag_digest(full, tag) is None:
            raise NotFound("no such tag", {"repository": full, "tag": tag})
        svc.registry.delete_tag(full, tag)

    await run_in_threadpool(delete)
    return redirect(f"/repositories/{full}")


@router.get("/repositories/{namespace}/{repo:path}/delete")
async def confirm_delete_repository(request: Request, namespace: str, repo: str, current: CurrentViewer) -> Response:
    full = f"{namespace}/{repo}"
    await run_in_threadpool(services(request).management.check_level, current.principal, full, "admin")
    return confirm_page(request, f"the repository {full}", full, REPOSITORY_NOTE)


@router.post("/repositories/{namespace}/{repo:path}/delete")
async def delete_repository(request: Request, namespace: str, repo: str, current: CurrentViewer,
                            form: Form) -> Response:
    svc, full = services(request), f"{namespace}/{repo}"
    if form.get("confirm", "").strip() != CONFIRM_WORD:
        return confirm_page(request, f"the repository {full}", full, REPOSITORY_NOTE, unconfirmed=True)

    def delete() -> None:
        svc.management.delete_repository(current.principal, full)

    await run_in_threadpool(delete)
    return redirect("/repositories")


@router.post("/repositories/{namespace}/{repo:path}/settings")
async def change_settings(request: Request, namespace: str, repo: str, current: CurrentViewer,
                          form: Form) -> Response:
    svc, full = services(request), f"{namespace}/{repo}"

    def change() -> None:
        svc.management.update_repository(current.principal, full, visibility=form.get("visibility") or None,
                                       description=form.get("description", ""))

    try:
        await run_in_threadpool(change)
    except InvalidRequest as exc:
        view = await run_in_threadpool(repository_view, svc, current, full)
        return render(request, "repository.html", 400, section="repositories", settings_error=exc.message,
                      **{**view, "host": view["host"] or request.url.netloc})
    return redirect(f"/repositories/{full}")


@router.get("/repositories/{namespace}/{repo:path}")
async def repository_page(request: Request, namespace: str, repo: str, current: CurrentViewer,
                          at: str | None = None) -> Response:
    view = await run_in_threadpool(repository_view, services(request), current, f"{namespace}/{repo}", moment(at))
    return render(request, "repository.html", section="repositories", settings_error=None,
                  **{**view, "host": view["host"] or request.url.netloc})
