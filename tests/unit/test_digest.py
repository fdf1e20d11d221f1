"""Digests: `algorithm:hex` as the OCI image spec defines them, sha256 and sha512 only."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.domain.digest import Digest, is_digest
from dockyard.domain.errors import DigestInvalid

SHA256_HEX = hashlib.sha256(b"hello").hexdigest()
SHA512_HEX = hashlib.sha512(b"hello").hexdigest()


def test_parse_accepts_sha256_and_sha512() -> None:
    # A well-formed digest parses into its parts, and prints back unchanged.
    d = Digest.parse(f"sha256:{SHA256_HEX}")
    assert (d.algorithm, d.hex) == ("sha256", SHA256_HEX)
    assert str(d) == f"sha256:{SHA256_HEX}"

    d512 = Digest.parse(f"sha512:{SHA512_HEX}")
    assert (d512.algorithm, d512.hex) == ("sha512", SHA512_HEX)
    assert str(d512) == f"sha512:{SHA512_HEX}"


@pytest.mark.parametrize("text", [
    "",
    "sha256",
    "sha256:",
    ":" + SHA256_HEX,
    SHA256_HEX,
    f"sha256:{SHA256_HEX[:-1]}",  # too short
    f"sha256:{SHA256_HEX}0",  # too long
    f"sha256:{SHA256_HEX.upper()}",  # the hex must be lowercase
    f"sha256:{SHA256_HEX[:-1]}g",  # not hex
    f"SHA256:{SHA256_HEX}",  # the algorithm is lowercase
    f"sha512:{SHA256_HEX}",  # a sha256 length under sha512
    f"sha256:{SHA512_HEX}",
    f"sha256:{SHA256_HEX}\n",  # a trailing newline is not part of a digest
    f" sha256:{SHA256_HEX}",
    f"sha256:{SHA256_HEX} ",
    f"sha256::{SHA256_HEX}",
])
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(DigestInvalid) as info:
        Digest.parse(text)
    # The client is told which digest it sent.
    assert info.value.detail == {"digest": text}


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha384", "blake3", "sha256+b64u"])
def test_parse_rejects_unsupported_algorithms(algorithm: str) -> None:
    # Well-formed per the grammar, but not an algorithm the registry verifies.
    with pytest.raises(DigestInvalid, match="unsupported"):
        Digest.parse(f"{algorithm}:{SHA256_HEX}")


def test_of_hashes_the_exact_bytes() -> None:
    # The digest of some bytes is over those bytes exactly: one byte more changes it.
    assert str(Digest.of(b"hello")) == f"sha256:{SHA256_HEX}"
    assert str(Digest.of(b"hello", "sha512")) == f"sha512:{SHA512_HEX}"
    assert Digest.of(b"hello\n") != Digest.of(b"hello")


def test_hasher_continues_to_the_same_digest() -> None:
    # A hasher from a digest computes that digest's algorithm, piece by piece.
    for algorithm, hexpart in (("sha256", SHA256_HEX), ("sha512", SHA512_HEX)):
        wanted = Digest.parse(f"{algorithm}:{hexpart}")
        h = wanted.hasher()
        h.update(b"hel")
        h.update(b"lo")
        assert h.hexdigest() == wanted.hex
        assert wanted.hasher() is not h  # a fresh one each time


def test_digests_are_values() -> None:
    # Equal when their parts are; usable as keys; immutable.
    a, b = Digest.parse(f"sha256:{SHA256_HEX}"), Digest.of(b"hello")
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.hex = "0" * 64  # type: ignore[misc]


def test_is_digest_tells_references_apart() -> None:
    # A manifest reference with ':' is meant as a digest (and is then validated as one);
    # tags cannot contain ':'.
    assert is_digest(f"sha256:{SHA256_HEX}")
    assert is_digest("md5:whatever")
    assert not is_digest("latest")
    assert not is_digest("v1.2.3")
