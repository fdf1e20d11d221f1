"""`/api/v0/accounts/{user}/tokens`: a user's access tokens, for CI and scripts.

Who may do what is `domain.access_token`'s rule (checked by `commands.access_tokens`): only the
user themself makes tokens, the user and global admins list and revoke them, always signed in
with a password (a token can neither mint tokens nor see or revoke its siblings). The secret is
in the POST response and nowhere else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.paging import Cursor, Limit, link_next, page
from dockyard.api.v0.schemas import CreatedToken, NewToken, Token, TokenList

router = APIRouter(prefix="/accounts/{user}/tokens", tags=["access tokens"])


def token_view(row: dict[str, Any]) -> Token:
    return Token(id=row["id"], name=row["name"], scope=row["level"], repositories=row["repositories"],
                 expires_at=row["expires_at"], created_at=row["created_at"], revoked=bool(row["revoked"]))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an access token (the user themself)")
async def create_token(user: str, body: NewToken, principal: SignedIn, svc: ServicesDep) -> CreatedToken:
    def create() -> CreatedToken:
        issued = svc.tokens.create(user, body.name, body.scope, body.expires_at, body.repositories, by=principal)
        row = svc.identity_view.access_token(issued.token_id)
        assert row is not None
        return CreatedToken(**token_view(row).model_dump(), token=issued.secret)

    return await run_in_threadpool(create)


@router.get("", summary="A user's access tokens, without their secrets (the user, global admins; paged, "
            "oldest first)")
async def list_tokens(user: str, request: Request, response: Response, principal: SignedIn, svc: ServicesDep,
                      limit: Limit = 100, cursor: Cursor = None) -> TokenList:
    def tokens() -> TokenList:
        rows, next_cursor = page(svc.tokens.list_tokens(user, by=principal),
                                 lambda r: f"{r['created_at']}\x00{r['id']}", limit, cursor)
        link_next(request, response, next_cursor)
        return TokenList(tokens=[token_view(r) for r in rows])

    return await run_in_threadpool(tokens)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Revoke an access token (the user, global admins)")
async def revoke_token(user: str, token_id: str, principal: SignedIn, svc: ServicesDep) -> None:
    await run_in_threadpool(lambda: svc.tokens.revoke(user, token_id, by=principal))
