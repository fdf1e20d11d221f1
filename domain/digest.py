"""Content digests (`algorithm:hex`), as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dockyard.domain.errors import DigestInvalid

# Registered algorithms and the exact length of their hex encoding.
_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated digest. `str(d)` is the canonical `algorithm:hex` form."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `text`; raise `DigestInvalid` unless it is a well-formed, supported digest."""
        m = _DIGEST.fullmatch(text or "")
        if not m:
            raise DigestInvalid("invalid digest", {"digest": text})
        algorithm, encoded = m.group(1), m.group(2)
        length = _ALGORITHMS.get(algorithm)
        if length is None:
            raise DigestInvalid("unsupported digest algorithm", {"digest": text})
        if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
            raise DigestInvalid("invalid digest encoding", {"digest": text})
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of `data`."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> "hashlib._Hash":
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def is_digest(reference: str) -> bool:
    """True when a manifest reference is meant as a digest (it contains ':')."""
    return ":" in reference
