"""`open_store` refuses, in one line, URLs that no backend can use before any server is asked:
credentials written into the URL (never echoed: a start-up error goes to the log), a bucket name
S3 cannot have, an endpoint with a path."""

from __future__ import annotations

import pytest

from tests.object_stores import one_line_error
from tests.server import free_port

SECRET = "s3cr3t-Value"
ENVS = {
    "s3": {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
    "azure": {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
    "swift": {"ST_AUTH": "http://127.0.0.1:1/auth/v1.0", "ST_USER": "u", "ST_KEY": "k"},
}


@pytest.mark.parametrize("scheme", ["s3", "azure", "swift"])
@pytest.mark.parametrize("userinfo", [f"user:{SECRET}@", f"{SECRET}@"], ids=["user-password", "token"])
def test_credentials_in_the_url_are_refused_without_echoing_them(scheme: str, userinfo: str) -> None:
    message = one_line_error(f"{scheme}://{userinfo}registry?endpoint=http://127.0.0.1:{free_port()}"
                             if scheme == "s3" else f"{scheme}://{userinfo}registry", ENVS[scheme])
    assert SECRET not in message
    assert "credentials" in message and "not in the storage URL" in message


@pytest.mark.parametrize("scheme", ["s3", "azure", "swift"])
def test_unknown_parameters_are_named_but_their_values_not_shown(scheme: str) -> None:
    message = one_line_error(f"{scheme}://registry?secret_key={SECRET}", ENVS[scheme])
    assert "secret_key" in message and SECRET not in message


def test_a_bucket_name_s3_cannot_have() -> None:
    message = one_line_error(f"s3://no..dots?endpoint=http://127.0.0.1:{free_port()}", ENVS["s3"])
    assert "invalid bucket name 'no..dots'" in message


def test_an_s3_endpoint_with_a_path() -> None:
    message = one_line_error("s3://registry?endpoint=http://127.0.0.1:9000/some/path", ENVS["s3"])
    assert "bad endpoint" in message and "no path" in message


def test_an_s3_endpoint_with_an_impossible_port() -> None:
    message = one_line_error("s3://registry?endpoint=http://127.0.0.1:99999", ENVS["s3"])
    assert "bad endpoint 'http://127.0.0.1:99999'" in message
