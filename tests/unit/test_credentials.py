"""The one parser of `Authorization` headers, shared by `/v2/`, `/auth/token` and `/api/v0`."""

from __future__ import annotations

import base64

import pytest

from dockyard.api.auth.credentials import Basic, Bearer, parse_authorization
from dockyard.domain.errors import Unauthorized


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_basic_credentials_are_user_and_password_in_utf8() -> None:
    assert parse_authorization(basic("jörg:pässwörd:with:colons".encode())) == Basic("jörg", "pässwörd:with:colons")
    assert parse_authorization(basic(b"ci:dyt_abc_def")) == Basic("ci", "dyt_abc_def")
    assert parse_authorization("bAsIc " + base64.b64encode(b"a:b").decode()) == Basic("a", "b")  # any case
    assert parse_authorization(basic(b"a:")) == Basic("a", "")  # an empty password is for the check to refuse


def test_bearer_credentials_are_the_token() -> None:
    assert parse_authorization("Bearer eyJ.x.y") == Bearer("eyJ.x.y")
    assert parse_authorization("bearer  dyt_1_2 ") == Bearer("dyt_1_2")


def test_no_header_is_no_credentials() -> None:
    assert parse_authorization("") is None


@pytest.mark.parametrize("header", [
    "Basic not-base64!", basic(b"no-colon"), basic(b"\xff\xfe:x"), "Bearer", "Bearer   ",
    "Negotiate abc", "Digest username=x", "garbage"])
def test_malformed_or_unknown_credentials_are_refused_not_anonymous(header: str) -> None:
    with pytest.raises(Unauthorized):
        parse_authorization(header)
