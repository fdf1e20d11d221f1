"""`/api/v0/accounts/{user}/tokens`: a user's access tokens, for CI and scripts.

Only the user themself makes tokens, signed in with a password (a token cannot mint tokens);
the secret is in the POST response and nowhere else. The user and global admins list and revoke.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn, require_password_sign_in, require_self_or_admin
from dockyard.api.v0.schemas import CreatedToken, NewToken, Token, TokenList
from dockyard.api.v2.common import Services
from dockyard.domain.errors import Denied, NotFound

router = APIRouter(prefix="/accounts/{user}/tokens", tags=["access tokens"])


def token_view(row: dict[str, Any]) -> Token:
    return Token(id=row["id"], name=row["name"], scope=row["level"], repositories=row["repositories"],
                 expires_at=row["expires_at"], created_at=row["created_at"], revoked=bool(row["revoked"]))


def _user(svc: Services, user: str) -> None:
    if svc.registry.identity.user(user) is None:
        raise NotFound("no such user", {"user": user})


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an access token (the user themself)")
async def create_token(user: str, body: NewToken, principal: SignedIn, svc: ServicesDep) -> CreatedToken:
    if principal.name != user:
        raise Denied("only the user themself may create their access tokens", {"user": user})
    require_password_sign_in(principal)

    def create() -> CreatedToken:
        issued = svc.tokens.create(user, body.name, body.scope, body.expires_at, body.repositories)
        row = svc.registry.identity.access_token(issued.token_id)
        assert row is not None
        return CreatedToken(**token_view(row).model_dump(), token=issued.secret)

    return await run_in_threadpool(create)


@router.get("", summary="A user's access tokens, without their secrets (the user, global admins)")
async def list_tokens(user: str, principal: SignedIn, svc: ServicesDep) -> TokenList:
    require_self_or_admin(principal, user)

    def tokens() -> TokenList:
        _user(svc, user)
        return TokenList(tokens=[token_view(r) for r in svc.registry.identity.access_tokens(user)])

    return await run_in_threadpool(tokens)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Revoke an access token (the user, global admins)")
async def revoke_token(user: str, token_id: str, principal: SignedIn, svc: ServicesDep) -> None:
    require_self_or_admin(principal, user)
    await run_in_threadpool(svc.tokens.revoke, user, token_id)
