"""Manifest parsing: every supported media type, what each references, and every way to be invalid.

The registry never re-serialises a manifest, so these tests also check that the digest is over
the exact bytes given, whitespace and key order included.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from dockyard.domain.errors import ManifestInvalid, ManifestTooLarge
from dockyard.domain.manifest_format import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
FOREIGN_LAYER_TYPE = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


def digest_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


CONFIG, LAYER1, LAYER2 = digest_of("config"), digest_of("layer1"), digest_of("layer2")
CHILD1, CHILD2, SUBJECT = digest_of("child1"), digest_of("child2"), digest_of("subject")


def descriptor(media_type: str, digest: str, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image(media_type: str | None = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "config": descriptor(CONFIG_TYPE if media_type != DOCKER_MANIFEST else DOCKER_CONFIG_TYPE, CONFIG),
        "layers": [descriptor(LAYER_TYPE, LAYER1), descriptor(LAYER_TYPE, LAYER2)],
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    doc.update(extra)
    return doc


def index(media_type: str | None = OCI_INDEX, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [
            descriptor(OCI_MANIFEST, CHILD1, platform={"architecture": "amd64", "os": "linux"}),
            descriptor(OCI_MANIFEST, CHILD2, platform={"architecture": "arm64", "os": "linux"}),
        ],
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    doc.update(extra)
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- the four media types ----------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_manifests_reference_config_and_layers(media_type: str) -> None:
    body = encode(image(media_type))

    parsed = parse_manifest(body, media_type)

    # The media type is the declared one; the blobs are the config then the layers.
    assert parsed.media_type == media_type
    assert parsed.blobs == (CONFIG, LAYER1, LAYER2)
    assert parsed.manifests == ()
    assert parsed.subject is None
    # The digest and size are those of the exact bytes.
    assert parsed.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert parsed.size == len(body)


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_indexes_reference_child_manifests(media_type: str) -> None:
    body = encode(index(media_type))

    parsed = parse_manifest(body, media_type)

    # An index references manifests, not blobs.
    assert parsed.media_type == media_type
    assert parsed.manifests == (CHILD1, CHILD2)
    assert parsed.blobs == ()
    assert parsed.artifact_type is None


def test_oci_manifest_artifact_type_defaults_to_config_media_type() -> None:
    # An OCI 1.1 artifact without artifactType is typed by its config (the referrers API says so).
    doc = image(OCI_MANIFEST)
    doc["config"]["mediaType"] = "application/vnd.example.sbom.config+json"
    assert parse_manifest(encode(doc), OCI_MANIFEST).artifact_type == "application/vnd.example.sbom.config+json"

    # An explicit artifactType wins.
    doc["artifactType"] = "application/vnd.example.signature"
    assert parse_manifest(encode(doc), OCI_MANIFEST).artifact_type == "application/vnd.example.signature"

    # Docker manifests have no artifact type.
    assert parse_manifest(encode(image(DOCKER_MANIFEST)), DOCKER_MANIFEST).artifact_type is None


def test_subject_and_annotations_are_reported() -> None:
    # A referrer: an artifact manifest naming its subject, with annotations.
    doc = image(
        OCI_MANIFEST,
        artifactType="application/vnd.example.sbom",
        subject=descriptor(OCI_MANIFEST, SUBJECT, 1234),
        annotations={"org.opencontainers.image.created": "2026-11-26T00:00:00Z", "com.example.k": "v"},
    )
    parsed = parse_manifest(encode(doc), OCI_MANIFEST)
    assert parsed.subject == SUBJECT
    assert parsed.artifact_type == "application/vnd.example.sbom"
    assert parsed.annotations == {"org.opencontainers.image.created": "2026-11-26T00:00:00Z", "com.example.k": "v"}

    # An index may have a subject and an artifactType too.
    idx = parse_manifest(encode(index(OCI_INDEX, subject=descriptor(OCI_MANIFEST, SUBJECT),
                                      artifactType="application/vnd.example.bundle")), OCI_INDEX)
    assert (idx.subject, idx.artifact_type) == (SUBJECT, "application/vnd.example.bundle")

    # A null subject is no subject.
    assert parse_manifest(encode(image(OCI_MANIFEST, subject=None)), OCI_MANIFEST).subject is None


def test_digest_is_over_the_exact_bytes() -> None:
    # The same document written compactly, indented, or with keys reordered: three manifests.
    doc = image(OCI_MANIFEST)
    bodies = [
        json.dumps(doc, separators=(",", ":")).encode(),
        json.dumps(doc, indent=3).encode(),
        json.dumps(dict(reversed(list(doc.items())))).encode(),
    ]
    digests = {parse_manifest(b, OCI_MANIFEST).digest for b in bodies}
    assert len(digests) == 3
    for body in bodies:
        assert parse_manifest(body, OCI_MANIFEST).digest == "sha256:" + hashlib.sha256(body).hexdigest()

    # With sha512 asked for, the digest is sha512 over the same bytes.
    parsed = parse_manifest(bodies[0], OCI_MANIFEST, "sha512")
    assert parsed.digest == "sha512:" + hashlib.sha512(bodies[0]).hexdigest()


def test_duplicate_references_are_listed_once_in_order() -> None:
    # A layer used twice (and equal to the config) is one blob to check.
    doc = image(OCI_MANIFEST)
    doc["layers"] = [descriptor(LAYER_TYPE, LAYER2), descriptor(LAYER_TYPE, CONFIG), descriptor(LAYER_TYPE, LAYER2)]
    assert parse_manifest(encode(doc), OCI_MANIFEST).blobs == (CONFIG, LAYER2)

    idx = index(OCI_INDEX)
    idx["manifests"].append(descriptor(OCI_MANIFEST, CHILD1))
    assert parse_manifest(encode(idx), OCI_INDEX).manifests == (CHILD1, CHILD2)


def test_foreign_layers_with_urls_are_not_required_blobs() -> None:
    # A Windows base layer lives elsewhere (its urls); the registry need not have it.
    doc = image(DOCKER_MANIFEST)
    doc["layers"] = [
        descriptor(FOREIGN_LAYER_TYPE, LAYER1, urls=["https://mcr.microsoft.com/v2/blobs/" + LAYER1]),
        descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER2),
    ]
    parsed = parse_manifest(encode(doc), DOCKER_MANIFEST)
    assert parsed.blobs == (CONFIG, LAYER2)

    # An empty urls list is not foreign: the blob is required.
    doc["layers"][0]["urls"] = []
    assert parse_manifest(encode(doc), DOCKER_MANIFEST).blobs == (CONFIG, LAYER1, LAYER2)

    # urls must be a list.
    doc["layers"][0]["urls"] = "https://example.com/layer"
    with pytest.raises(ManifestInvalid, match="urls"):
        parse_manifest(encode(doc), DOCKER_MANIFEST)


def test_an_empty_layer_list_is_allowed() -> None:
    # Artifacts often have only a config (or the empty descriptor) and no layers.
    doc = image(OCI_MANIFEST)
    doc["layers"] = []
    assert parse_manifest(encode(doc), OCI_MANIFEST).blobs == (CONFIG,)
    del doc["layers"]
    assert parse_manifest(encode(doc), OCI_MANIFEST).blobs == (CONFIG,)


# -- media type: the body, the Content-Type header, and both ----------------------------------


def test_media_type_from_header_when_body_has_none() -> None:
    # Docker manifests carry mediaType; when a body does not, the header says what it is.
    assert parse_manifest(encode(image(None)), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    assert parse_manifest(encode(index(None)), DOCKER_MANIFEST_LIST).media_type == DOCKER_MANIFEST_LIST


@pytest.mark.parametrize("content_type", [None, "", "application/octet-stream", "application/json"])
def test_media_type_inferred_when_nobody_says(content_type: str | None) -> None:
    # Neither says (or the header is generic): the shape decides between OCI manifest and index.
    assert parse_manifest(encode(image(None)), content_type).media_type == OCI_MANIFEST
    assert parse_manifest(encode(index(None)), content_type).media_type == OCI_INDEX

    # A generic header does not contradict a body that declares its type.
    assert parse_manifest(encode(image(DOCKER_MANIFEST)), content_type).media_type == DOCKER_MANIFEST


def test_content_type_parameters_and_case_are_ignored() -> None:
    body = encode(image(OCI_MANIFEST))
    assert parse_manifest(body, OCI_MANIFEST + "; charset=utf-8").media_type == OCI_MANIFEST
    assert parse_manifest(body, OCI_MANIFEST.upper()).media_type == OCI_MANIFEST


@pytest.mark.parametrize(("declared", "header"), [
    (OCI_MANIFEST, DOCKER_MANIFEST),
    (DOCKER_MANIFEST, OCI_MANIFEST),
    (OCI_INDEX, OCI_MANIFEST),
    (DOCKER_MANIFEST_LIST, OCI_INDEX),
])
def test_media_type_contradicting_content_type_is_invalid(declared: str, header: str) -> None:
    doc = index(declared) if declared in (OCI_INDEX, DOCKER_MANIFEST_LIST) else image(declared)
    with pytest.raises(ManifestInvalid, match="does not match") as info:
        parse_manifest(encode(doc), header)
    assert info.value.detail == {"mediaType": declared, "contentType": header}


@pytest.mark.parametrize("media_type", [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
    "text/plain",
])
def test_unknown_media_types_are_invalid(media_type: str) -> None:
    # Unknown in the body, or in the header of a body that does not say.
    with pytest.raises(ManifestInvalid, match="unknown manifest media type"):
        parse_manifest(encode(image(media_type)), None)
    with pytest.raises(ManifestInvalid, match="unknown manifest media type"):
        parse_manifest(encode(image(None)), media_type)


# -- schemaVersion and JSON --------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
])
def test_docker_schema1_is_refused(content_type: str) -> None:
    schema1 = {"schemaVersion": 1, "name": "library/app", "tag": "latest", "fsLayers": [], "history": []}
    with pytest.raises(ManifestInvalid, match="schema 1"):
        parse_manifest(encode(schema1), content_type)
    with pytest.raises(ManifestInvalid, match="schema 1"):
        parse_manifest(encode(schema1), None)
    # Even a schema-2-looking body sent as schema 1 is refused.
    with pytest.raises(ManifestInvalid, match="schema 1"):
        parse_manifest(encode(image(None)), content_type)


@pytest.mark.parametrize("version", [None, 0, 3, "2", [2]])
def test_schema_version_must_be_2(version: Any) -> None:
    doc = image(OCI_MANIFEST)
    if version is None:
        del doc["schemaVersion"]
    else:
        doc["schemaVersion"] = version
    with pytest.raises(ManifestInvalid, match="schemaVersion"):
        parse_manifest(encode(doc), OCI_MANIFEST)


@pytest.mark.parametrize("body", [
    b"", b"{", b"not json", b"{'single': 'quotes'}", b"\xff\xfe{}", b'{"schemaVersion": 2,}',
])
def test_bad_json_is_invalid(body: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="not valid JSON"):
        parse_manifest(body, OCI_MANIFEST)


@pytest.mark.parametrize("body", [b"[]", b"null", b"2", b'"manifest"', b"true"])
def test_json_that_is_not_an_object_is_invalid(body: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="not a JSON object"):
        parse_manifest(body, OCI_MANIFEST)


# -- structure and descriptors -----------------------------------------------------------------


def test_image_manifest_structure() -> None:
    # An image manifest may not list manifests.
    with pytest.raises(ManifestInvalid, match="no 'manifests'"):
        parse_manifest(encode(image(OCI_MANIFEST, manifests=[])), OCI_MANIFEST)
    # It needs a config descriptor.
    doc = image(OCI_MANIFEST)
    del doc["config"]
    with pytest.raises(ManifestInvalid, match="config"):
        parse_manifest(encode(doc), OCI_MANIFEST)
    # Its layers are a list.
    with pytest.raises(ManifestInvalid, match="layers must be a list"):
        parse_manifest(encode(image(OCI_MANIFEST, layers={"0": descriptor(LAYER_TYPE, LAYER1)})), OCI_MANIFEST)


def test_index_structure() -> None:
    # An index needs a manifests list.
    for manifests in (None, {}, "x"):
        doc = index(OCI_INDEX)
        if manifests is None:
            del doc["manifests"]
        else:
            doc["manifests"] = manifests
        with pytest.raises(ManifestInvalid, match="'manifests' list"):
            parse_manifest(encode(doc), OCI_INDEX)
    # An empty index is valid.
    assert parse_manifest(encode(index(OCI_INDEX, manifests=[])), OCI_INDEX).manifests == ()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: "not a descriptor", "is not a descriptor"),
    (lambda d: {k: v for k, v in d.items() if k != "mediaType"}, "has no mediaType"),
    (lambda d: {**d, "mediaType": ""}, "has no mediaType"),
    (lambda d: {**d, "mediaType": 7}, "has no mediaType"),
    (lambda d: {k: v for k, v in d.items() if k != "digest"}, "has no digest"),
    (lambda d: {**d, "digest": 12}, "has no digest"),
    (lambda d: {**d, "digest": "sha256:abc"}, "invalid digest"),
    (lambda d: {**d, "digest": "md5:" + "0" * 32}, "invalid digest"),
    (lambda d: {**d, "digest": d["digest"].upper()}, "invalid digest"),
    (lambda d: {k: v for k, v in d.items() if k != "size"}, "invalid size"),
    (lambda d: {**d, "size": -1}, "invalid size"),
    (lambda d: {**d, "size": "10"}, "invalid size"),
    (lambda d: {**d, "size": 10.5}, "invalid size"),
    (lambda d: {**d, "size": True}, "invalid size"),
    (lambda d: {**d, "annotations": ["a"]}, "invalid annotations"),
    (lambda d: {**d, "urls": {"u": "https://example.com"}}, "invalid urls"),
])
def test_bad_descriptors_are_invalid_wherever_they_are(change: Any, message: str) -> None:
    # The same fault in the config, in a layer, in an index entry or in the subject.
    places = {
        "config": lambda doc: doc.__setitem__("config", change(doc["config"])),
        "layers[1]": lambda doc: doc["layers"].__setitem__(1, change(doc["layers"][1])),
        "subject": lambda doc: doc.__setitem__("subject", change(descriptor(OCI_MANIFEST, SUBJECT))),
    }
    for where, apply in places.items():
        doc = image(OCI_MANIFEST)
        apply(doc)
        with pytest.raises(ManifestInvalid, match=message) as info:
            parse_manifest(encode(doc), OCI_MANIFEST)
        assert str(info.value).startswith(where)

    doc = index(OCI_INDEX)
    doc["manifests"][0] = change(doc["manifests"][0])
    with pytest.raises(ManifestInvalid, match=message) as info:
        parse_manifest(encode(doc), OCI_INDEX)
    assert str(info.value).startswith("manifests[0]")


def test_size_zero_is_a_valid_descriptor_size() -> None:
    doc = image(OCI_MANIFEST)
    doc["layers"][0]["size"] = 0
    assert LAYER1 in parse_manifest(encode(doc), OCI_MANIFEST).blobs


def test_top_level_artifact_type_and_annotations_are_checked() -> None:
    with pytest.raises(ManifestInvalid, match="artifactType must be a string"):
        parse_manifest(encode(image(OCI_MANIFEST, artifactType=3)), OCI_MANIFEST)
    with pytest.raises(ManifestInvalid, match="annotations must be an object"):
        parse_manifest(encode(image(OCI_MANIFEST, annotations=["a=b"])), OCI_MANIFEST)


# -- the 4 MiB limit ---------------------------------------------------------------------------


def padded_to(size: int) -> bytes:
    """A valid OCI manifest of exactly `size` bytes (padding in an annotation)."""
    doc = image(OCI_MANIFEST, annotations={"pad": ""})
    base = len(encode(doc))
    doc["annotations"]["pad"] = "x" * (size - base)
    body = encode(doc)
    assert len(body) == size
    return body


def test_manifest_of_exactly_4_mib_is_accepted() -> None:
    body = padded_to(MAX_MANIFEST_BYTES)
    parsed = parse_manifest(body, OCI_MANIFEST)
    assert parsed.size == 4 * 1024 * 1024


def test_manifest_over_4_mib_is_too_large() -> None:
    body = padded_to(MAX_MANIFEST_BYTES + 1)
    with pytest.raises(ManifestTooLarge) as info:
        parse_manifest(body, OCI_MANIFEST)
    assert info.value.detail == {"size": MAX_MANIFEST_BYTES + 1, "limit": MAX_MANIFEST_BYTES}

    # The size is checked before parsing: even bytes that are not JSON are "too large".
    with pytest.raises(ManifestTooLarge):
        parse_manifest(b"x" * (MAX_MANIFEST_BYTES + 1), OCI_MANIFEST)
