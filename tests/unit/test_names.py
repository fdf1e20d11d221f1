"""Names: repositories and tags (OCI distribution spec v1.1 grammar), accounts and teams."""

from __future__ import annotations

import pytest

from dockyard.domain.account import check_account_name
from dockyard.domain.errors import InvalidRequest, ManifestInvalid, NameInvalid
from dockyard.domain.names import MAX_NAME_LENGTH, check_repository_name, check_tag, is_valid_tag
from dockyard.domain.team import check_team_name

VALID_REPOSITORIES = [
    "a", "ubuntu", "library/ubuntu", "engineering/barca", "a/b/c/d/e", "a0", "0a",
    "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "my-org/my_app.v2",
    "a" * MAX_NAME_LENGTH,
    "/".join(["ab"] * 85),  # 254 characters of many components
]

INVALID_REPOSITORIES = [
    "", "A", "Library/ubuntu", "library/Ubuntu", "/a", "a/", "a//b", "-a", "a-", "_a", "a_",
    ".a", "a.", "a..b", "a___b", "a._b", "a b", "a:b", "a@b", "a/b:latest", "ü",
    "a" * (MAX_NAME_LENGTH + 1),
    "library/ubuntu\n",  # a trailing newline is not part of a name
    "\nlibrary/ubuntu",
]


@pytest.mark.parametrize("name", VALID_REPOSITORIES)
def test_valid_repository_names(name: str) -> None:
    assert check_repository_name(name) == name


@pytest.mark.parametrize("name", INVALID_REPOSITORIES)
def test_invalid_repository_names(name: str) -> None:
    with pytest.raises(NameInvalid) as info:
        check_repository_name(name)
    assert info.value.detail == {"name": name}


VALID_TAGS = ["latest", "v1", "v1.2.3", "1.0-rc.1", "_private", "A", "UPPER_lower-1.2", "a" * 128, "0"]
INVALID_TAGS = [
    "", "-leading-dash", ".leading-dot", "a" * 129, "has:colon", "has/slash", "has space",
    "sha256:abc", "caf\u00e9", "latest\n", "\nlatest",
]


@pytest.mark.parametrize("tag", VALID_TAGS)
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", INVALID_TAGS)
def test_invalid_tags(tag: str) -> None:
    # An invalid tag in a manifest PUT is MANIFEST_INVALID, as Distribution answers it.
    with pytest.raises(ManifestInvalid) as info:
        check_tag(tag)
    assert info.value.detail == {"tag": tag}
    assert not is_valid_tag(tag)


@pytest.mark.parametrize("name", ["gordon", "engineering", "a", "a.b", "a_b", "a__b", "a-b", "0", "a" * 64])
def test_valid_account_names(name: str) -> None:
    # An account name is one repository-name component: it is the namespace of its repositories.
    assert check_account_name(name) == name
    assert check_repository_name(f"{name}/app") == f"{name}/app"


@pytest.mark.parametrize("name", ["", "Gordon", "a/b", "-a", "a-", "a" * 65, "a b", "gordon\n", None])
def test_invalid_account_names(name: str) -> None:
    with pytest.raises(InvalidRequest):
        check_account_name(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["owners", "core", "front-end", "team.a", "team_b", "t1"])
def test_valid_team_names(name: str) -> None:
    assert check_team_name(name) == name


@pytest.mark.parametrize("name", ["", "Core", "a/b", "-a", "a-", "a" * 65, "a b", "a__b", "core\n", None])
def test_invalid_team_names(name: str) -> None:
    with pytest.raises(InvalidRequest):
        check_team_name(name)  # type: ignore[arg-type]
