"""The one parser of `Authorization` headers, for `/v2/`, `/auth/token` and `/api/v0`, and the
client address events record.

HTTP Basic carries a user name and a password (or an access token `dyt_…` as the password), in
UTF-8 (RFC 7617); Bearer carries a token — a registry JWT on `/v2/`, an access token on `/api/v0`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.requests import Request

from dockyard.domain.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Basic:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Bearer:
    token: str


def parse_authorization(header: str) -> Basic | Bearer | None:
    """The credentials in an `Authorization` header; None when there is none.

    `Unauthorized` for a malformed Basic value (not base64, not UTF-8, no `:`) or a scheme
    other than Basic and Bearer: wrong credentials, never anonymous ones.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic":
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return Basic(user, password)
    if scheme == "bearer" and value:
        return Bearer(value)
    raise Unauthorized("unsupported authorization scheme")


def client_address(request: Request) -> str:
    """The client's IP address, as events record it."""
    return request.client.host if request.client else "unknown"
