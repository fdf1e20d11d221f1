"""OCI distribution spec v1.1, "Content discovery": tag listing and the catalog with `n`/`last`
and `Link` pagination, and the referrers API (`subject`, `OCI-Subject`, `artifactType` filtering
with `OCI-Filters-Applied`).
"""

from __future__ import annotations

import httpx

from tests.integration.oci_client import (  # noqa: F401 - `client` is a fixture
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    Manifest,
    client,
    image,
    index,
    next_link,
    push,
    push_blob,
    put_manifest,
    random_bytes,
    sha256,
    unique_repo,
)

SBOM = "application/vnd.example.sbom.v1+json"
SIGNATURE_CONFIG = "application/vnd.example.signature.config.v1+json"


def follow(client: httpx.Client, path: str, params: dict[str, str | int], key: str) -> list[list[str]]:
    """Every page of a listing, following `Link: <...>; rel="next"` until there is none."""
    pages = []
    r = client.get(path, params=params)
    while True:
        assert r.status_code == 200, r.text
        pages.append(r.json()[key])
        link = next_link(r)
        if link is None:
            return pages
        r = client.get(link)


def artifact(subject: Manifest | None, artifact_type: str | None = SBOM, **kw) -> Manifest:
    """An artifact over the empty config, as `oras attach` makes them."""
    return image(config=EMPTY_JSON, config_type=OCI_EMPTY, layer_type="application/vnd.example.data",
                 artifact_type=artifact_type, subject=subject, **kw)


def referrers(client: httpx.Client, repo: str, digest: str, **params: str) -> httpx.Response:
    r = client.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == OCI_INDEX
    body = r.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    return r


def listed(response: httpx.Response) -> list[dict]:
    return sorted(response.json()["manifests"], key=lambda d: d["digest"])


# -- tags and catalog ------------------------------------------------------------------------------

def test_tags_are_listed_in_lexical_order_and_paginated(client) -> None:
    repo = unique_repo("tags")
    m = push(client, repo, image(layers=0), "delta")
    for tag in ("bravo", "echo", "alpha", "charlie"):
        assert put_manifest(client, repo, tag, m).status_code == 201
    everything = ["alpha", "bravo", "charlie", "delta", "echo"]
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.json() == {"name": repo, "tags": everything}
    assert "link" not in r.headers

    r = client.get(f"/v2/{repo}/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["alpha", "bravo"]
    assert r.headers["link"] == f'</v2/{repo}/tags/list?n=2&last=bravo>; rel="next"'
    assert follow(client, f"/v2/{repo}/tags/list", {"n": 2}, "tags") == [
        ["alpha", "bravo"], ["charlie", "delta"], ["echo"]]
    assert client.get(f"/v2/{repo}/tags/list", params={"last": "charlie"}).json()["tags"] == ["delta", "echo"]
    assert client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "bravo"}).json()["tags"] == [
        "charlie", "delta"]
    assert client.get(f"/v2/{repo}/tags/list", params={"n": 10}).json()["tags"] == everything
    assert client.get(f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []


def test_catalog_is_paginated_with_link(client) -> None:
    prefix = unique_repo("catalog")
    names = [f"{prefix}/{leaf}" for leaf in ("a", "b", "c")]
    for name in names:
        push_blob(client, name, random_bytes(8))
    r = client.get("/v2/_catalog", params={"n": 2, "last": prefix})
    assert r.status_code == 200
    assert r.json()["repositories"] == names[:2]
    assert next_link(r) == f"/v2/_catalog?n=2&last={prefix.replace('/', '%2F')}%2Fb"
    pages = follow(client, "/v2/_catalog", {"n": 2, "last": prefix}, "repositories")
    assert pages[1][0] == names[2]
    assert all(len(page) <= 2 for page in pages)
    everything = client.get("/v2/_catalog").json()["repositories"]
    assert set(names) <= set(everything)
    assert everything == sorted(everything)
    assert [name for page in pages for name in page] == everything[everything.index(names[0]):]


# -- referrers -------------------------------------------------------------------------------------

def test_referrers_list_and_artifact_type_filter(client) -> None:
    repo = unique_repo("referrers")
    subject = push(client, repo, image(), "v1")
    sbom = artifact(subject, annotations={"org.example.sbom.format": "spdx"})
    # Without artifactType, an image manifest's artifact type is its config's media type.
    signature = image(layers=1, config=b'{"sig":1}', config_type=SIGNATURE_CONFIG, subject=subject)
    for m in (sbom, signature):
        for blob in m.blobs:
            push_blob(client, repo, blob)
        r = put_manifest(client, repo, m.digest, m)
        assert r.status_code == 201, r.text
        assert r.headers["oci-subject"] == subject.digest
    push(client, repo, artifact(None), "unrelated")

    r = referrers(client, repo, subject.digest)
    assert "oci-filters-applied" not in r.headers
    assert listed(r) == sorted([
        sbom.descriptor(artifactType=SBOM, annotations={"org.example.sbom.format": "spdx"}),
        signature.descriptor(artifactType=SIGNATURE_CONFIG),
    ], key=lambda d: d["digest"])

    r = referrers(client, repo, subject.digest, artifactType=SBOM)
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in listed(r)] == [sbom.digest]
    r = referrers(client, repo, subject.digest, artifactType="application/vnd.example.none")
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert listed(r) == []


def test_referrers_of_an_unknown_subject_are_an_empty_index(client) -> None:
    repo = unique_repo("noreferrers")
    push(client, repo, image(), "v1")
    absent = sha256(random_bytes(16))
    assert listed(referrers(client, repo, absent)) == []
    assert listed(referrers(client, unique_repo("nosuchrepo"), absent)) == []


def test_a_referrer_may_arrive_before_its_subject(client) -> None:
    repo = unique_repo("early")
    subject = image()
    early = push(client, repo, artifact(subject), "early")
    assert [d["digest"] for d in listed(referrers(client, repo, subject.digest))] == [early.digest]
    push(client, repo, subject, "v1")
    assert [d["digest"] for d in listed(referrers(client, repo, subject.digest))] == [early.digest]


def test_an_index_with_a_subject_is_a_referrer(client) -> None:
    repo = unique_repo("indexref")
    subject = push(client, repo, image(), "v1")
    bundle = index([artifact(None), artifact(None)], artifact_type="application/vnd.example.bundle",
                   subject=subject)
    for child in bundle.children:
        push(client, repo, child)
    r = put_manifest(client, repo, "bundle", bundle)
    assert r.status_code == 201, r.text
    assert r.headers["oci-subject"] == subject.digest
    assert listed(referrers(client, repo, subject.digest)) == [
        bundle.descriptor(artifactType="application/vnd.example.bundle")]
