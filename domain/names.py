"""Repository names and tags, with the grammar of the OCI distribution spec v1.1."""

from __future__ import annotations

import re

from dockyard.domain.errors import ManifestInvalid, NameInvalid

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255


def is_valid_repository_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME.fullmatch(name))


def check_repository_name(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise `NameInvalid`."""
    if not is_valid_repository_name(name):
        raise NameInvalid("invalid repository name", {"name": name})
    return name


def check_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag, else raise `ManifestInvalid`."""
    if not _TAG.fullmatch(tag):
        raise ManifestInvalid("invalid tag", {"tag": tag})
    return tag


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.fullmatch(tag))
