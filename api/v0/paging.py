"""Cursor paging for `/api/v0` listings, as `/v2/` pages tags and the catalog.

A listing takes `?limit=` (1 to `MAX_LIMIT`, default `DEFAULT_LIMIT`) and `?cursor=`; when more
items follow, the answer carries `Link: </api/v0/…?limit=N&cursor=C>; rel="next"` (the request's
other parameters kept), and the last page has no `Link`. The cursor is opaque to clients: the
sort key of the last item sent, base64url-encoded, so a page is stable while items are added
or removed elsewhere in the listing (no offsets that shift). A cursor that does not decode is
a 400 problem.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import HTTPException, Query, Request, Response

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many items (1-{MAX_LIMIT}).")]
Cursor = Annotated[str | None, Query(description='Where to continue: from the `Link: <…>; rel="next"` '
                                                 "header of the previous page (opaque).")]

T = TypeVar("T")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The sort key a cursor names (None for the first page); 400 for one we did not make."""
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HTTPException(400, "invalid cursor: pass the one the previous page's Link header names") from None


def page(items: Iterable[T], key: Callable[[T], str], limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """Up to `limit` of `items` in `key` order after the cursor's key, and the next page's
    cursor (None on the last page). `key` must be unique within the listing."""
    after = decode_cursor(cursor)
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [item for item in ordered if key(item) > after]
    chunk = ordered[:limit]
    return chunk, (encode_cursor(key(chunk[-1])) if len(ordered) > limit else None)


def link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """Name the next page in `response`'s `Link` header, when there is one."""
    if next_cursor is None:
        return
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    response.headers["Link"] = f'<{request.url.path}?{urlencode([*query, ("cursor", next_cursor)])}>; rel="next"'
