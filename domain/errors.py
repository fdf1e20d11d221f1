"""Errors named after the condition a client caused.

Each maps to one OCI error code in `dockyard.api.errors`; commands translate library and
storage failures into these (`raise ... from None`) so nothing below the API speaks HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the registry refuses; `detail` is extra JSON-able context for the client."""

    def __init__(self, message: str = "", detail: Any = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        self.message = message or (self.__class__.__doc__ or "").strip()
        self.detail = detail


class BlobUnknown(DomainError):
    """blob unknown to registry"""


class BlobUploadInvalid(DomainError):
    """blob upload invalid"""


class BlobUploadUnknown(DomainError):
    """blob upload unknown to registry"""


class RangeInvalid(BlobUploadInvalid):
    """requested range not satisfiable: chunk out of order"""


class DigestInvalid(DomainError):
    """provided digest did not match uploaded content"""


class ManifestBlobUnknown(DomainError):
    """manifest references a manifest or blob unknown to the repository"""


class ManifestInvalid(DomainError):
    """manifest invalid"""


class ManifestUnknown(DomainError):
    """manifest unknown"""


class ManifestTooLarge(DomainError):
    """manifest exceeds the size limit"""


class NameInvalid(DomainError):
    """invalid repository name"""


class NameUnknown(DomainError):
    """repository name not known to registry"""


class SizeInvalid(DomainError):
    """provided length did not match content length"""


class Unauthorized(DomainError):
    """authentication required"""


class Denied(DomainError):
    """requested access to the resource is denied"""


class Unsupported(DomainError):
    """the operation is unsupported"""


class TooManyRequests(DomainError):
    """too many requests"""


class PaginationInvalid(DomainError):
    """invalid number of results requested"""


class InvalidRequest(DomainError):
    """the request is invalid"""


class NotFound(DomainError):
    """no such object"""


class Conflict(DomainError):
    """the request conflicts with the current state"""


class StorageFull(DomainError):
    """storage is full: the registry cannot store more data until space is freed"""


class Unavailable(DomainError):
    """the registry's database is unavailable; retry later"""
