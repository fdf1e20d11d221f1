"""Catalog and tag-list pages as the registry grows: is the time per page flat?

Fills a fresh registry (SQLite file, or PostgreSQL with `--database-url`) through the write side:
domain aggregates (`Repository`, `Manifest` pushed, `Tag`s pointed at it) saved with
`Registry.save` in batches of 100 per transaction, so every event goes through the recorder and
the inline read model exactly as a push does (no raw SQL; the push command's blob checks are
skipped, as in `gc.py`). Each repository gets one manifest and `--tags` tags; one repository,
`scale/big`, gets as many tags as there are repositories, so its tag list grows with the registry.

At each `--sizes` checkpoint (repositories) it times the read model's page queries, which the
`/v2/_catalog` and `/v2/<name>/tags/list` routes call (`RegistryQueries.catalog` / `list_tags`,
n=100): the first page, a page from the middle and the last page (keyset: `last=`), each the
median (and p99) of `--repeat` calls. Then, at the same size, `--pushes` small images pushed
through the commands as the routes push them (two blobs uploaded through `UploadSessions`, the
manifest through `Registry.push_manifest` with its checks and fence, each into a new repository
of the `scale` organisation: the write side's cost as the log grows), and as many pulls of them
(the manifest by tag, then each blob's link, as `/v2/` answers them): images/s, p50 and p99 ms.

    .venv/bin/python benchmarks/scale.py                                  # SQLite, 1k..10k repositories
    .venv/bin/python benchmarks/scale.py --sizes 1000,10000,100000 --database-url postgresql://postgres@127.0.0.1:5432/DB

Prints one JSON line per checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson
from small_push import push_small_image  # benchmarks/ is the script's folder

from dockyard.bootstrap import registry_on, views
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.manifest import Manifest
from dockyard.domain.manifest_format import OCI_MANIFEST
from dockyard.domain.repository import Repository
from dockyard.domain.tag import Tag
from dockyard.storage.filesystem import FilesystemStore

BATCH = 100
PAGE = 100
BIG = "scale/big"


def _manifest(repository: str) -> Manifest:
    config = "sha256:" + hashlib.sha256(repository.encode()).hexdigest()
    body = orjson.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 64},
        "layers": []})
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    manifest = Manifest.unborn(repository=repository, digest=digest)
    manifest.push(repository=repository, digest=digest, media_type=OCI_MANIFEST, size=len(body),
                  payload=Manifest.encode_payload(body), blobs=[config], manifests=[], subject=None,
                  artifact_type=None, annotations={})
    return manifest


def grow(registry: Registry, start: int, stop: int, tags: int, big_digest: str) -> None:
    """Repositories `start`..`stop`-1 with one manifest and `tags` tags each, and as many tags in BIG."""
    pending: list[Any] = []
    for r in range(start, stop):
        name = f"scale/r{r:07d}"
        manifest = _manifest(name)
        pending += [Repository(name=name), manifest]
        for t in range(tags):
            tag = Tag.unborn(repository=name, name=f"v{t}")
            tag.point_at(manifest.digest)
            pending.append(tag)
        big_tag = Tag.unborn(repository=BIG, name=f"t{r:07d}")
        big_tag.point_at(big_digest)
        pending.append(big_tag)
        if len(pending) >= BATCH:
            registry.save(*pending)
            pending = []
    if pending:
        registry.save(*pending)


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3)}


def timed(call: Callable[[], list[str]], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        page = call()
        samples.append((time.perf_counter() - t0) * 1000)
        assert len(page) == PAGE + 1, f"a page of {len(page)} names, not {PAGE + 1}"
    return _percentiles(samples)


def measure(registry: Registry, size: int, repeat: int) -> dict[str, Any]:
    q = views(registry)[0]
    mid, end = f"scale/r{size // 2:07d}", f"scale/r{size - PAGE - 2:07d}"
    return {
        "catalog_first": timed(lambda: q.catalog(PAGE + 1, None), repeat),
        "catalog_middle": timed(lambda: q.catalog(PAGE + 1, mid), repeat),
        "catalog_last": timed(lambda: q.catalog(PAGE + 1, end), repeat),
        "tags_first": timed(lambda: q.list_tags(BIG, PAGE + 1, None), repeat),
        "tags_middle": timed(lambda: q.list_tags(BIG, PAGE + 1, f"t{size // 2:07d}"), repeat),
        "tags_last": timed(lambda: q.list_tags(BIG, PAGE + 1, f"t{size - PAGE - 2:07d}"), repeat),
    }


def pushes_and_pulls(registry: Registry, uploads: UploadSessions, size: int, count: int) -> dict[str, Any]:
    """`count` small images pushed, each into a new repository, then each pulled back."""
    q = views(registry)[0]
    pushed: list[tuple[str, list[str]]] = []
    push_ms: list[float] = []
    t0 = time.perf_counter()
    for i in range(count):
        repository = f"scale/pushed-{size}-{i:05d}"
        t = time.perf_counter()
        blobs = push_small_image(registry, uploads, repository, "latest", f"{size}-{i}")
        push_ms.append((time.perf_counter() - t) * 1000)
        pushed.append((repository, blobs))
    push_s = time.perf_counter() - t0
    pull_ms: list[float] = []
    for repository, blobs in pushed:
        t = time.perf_counter()
        manifest = q.manifest_by_tag(repository, "latest")
        assert manifest is not None, repository
        assert all(q.blob_size(repository, digest) is not None for digest in blobs), repository
        pull_ms.append((time.perf_counter() - t) * 1000)
    return {"push": {"images_per_s": round(count / push_s, 1), **_percentiles(push_ms)},
            "pull": _percentiles(pull_ms)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url")
    p.add_argument("--sizes", default="1000,3000,10000", help="repository counts to measure at")
    p.add_argument("--tags", type=int, default=10, help="tags per repository")
    p.add_argument("--repeat", type=int, default=200, help="calls per timed page")
    p.add_argument("--pushes", type=int, default=200, help="small images pushed (and pulled) per size")
    a = p.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="dockyard-scale-bench-") as tmp:
        registry = registry_on(event_store_env(os.path.join(tmp, "data"), a.database_url))
        uploads = UploadSessions(FilesystemStore(os.path.join(tmp, "blobs")), registry, views(registry)[0])
        try:
            Identity(registry, *views(registry)).create_organization("scale", "admin")  # pushes need the namespace
            big = _manifest(BIG)
            registry.save(Repository(name=BIG), big)
            done = 0
            for size in sizes:
                t0 = time.perf_counter()
                grow(registry, done, size, a.tags, big.digest)
                fill_s = time.perf_counter() - t0
                done = size
                if a.database_url:  # statistics for the planner, as autovacuum would have them (it may be off)
                    with registry.recorder.datastore.get_connection() as connection:
                        connection.execute("ANALYZE")
                events = registry.recorder.max_notification_id() or 0
                print(orjson.dumps({
                    "repositories": size, "tags": size * a.tags + size, "events": events,
                    "fill_s": round(fill_s, 1), "load": os.getloadavg()[0],
                    "pages": measure(registry, size, a.repeat),
                    **pushes_and_pulls(registry, uploads, size, a.pushes)}).decode(), flush=True)
        finally:
            registry.close()


if __name__ == "__main__":
    main()
