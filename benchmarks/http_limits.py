"""CPU cost of the HTTP protocol's limits (api/http_limits.py) per request and per body byte.

Drives uvicorn's stock HttpToolsProtocol and Dockyard's PlainHttpProtocol (the limits under the
TLS-hint check) in-process with a fake transport and a trivial ASGI app: a manifest-shaped GET
(6 headers, a 900-byte bearer token) 2,000 times, then a 64 MiB body in 256 KiB reads, 21
alternating rounds, CPU time of this process (wall time is meaningless on a loaded 2-core box).

    .venv/bin/python benchmarks/http_limits.py
"""
import asyncio
import time

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from dockyard.api.plain_http import PlainHttpProtocol


async def app(scope, receive, send):
    """A trivial ASGI app: drains a PATCH body, answers 200 "ok"."""
    if scope["method"] == "PATCH":
        while (await receive()).get("more_body"):
            pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class FakeTransport:
    """What the protocols ask of a transport; counts the bytes written."""

    def __init__(self):
        self.out = 0
        self._closing = False

    def write(self, data):
        self.out += len(data)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 5000) if name in ("sockname", "peername") else default

    def is_closing(self):
        return self._closing

    def close(self):
        self._closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def set_protocol(self, protocol):
        pass

    def can_write_eof(self):
        return True


HEAD = (b"GET /v2/library/app/manifests/v1 HTTP/1.1\r\nHost: registry:5000\r\nUser-Agent: docker/24.0 go/1.21\r\n"
        b"Accept: application/vnd.oci.image.manifest.v1+json\r\n"
        b"Accept: application/vnd.docker.distribution.manifest.v2+json\r\n"
        b"Authorization: Bearer " + b"x" * 900 + b"\r\nAccept-Encoding: gzip\r\n\r\n")


async def bench(cls, n):
    """(µs of CPU per GET over `n` requests, CPU seconds for a 64 MiB body) for protocol `cls`."""
    config = Config(app, log_level="warning")
    config.load()
    protocol = cls(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(FakeTransport())
    t0 = time.process_time()
    for _ in range(n):
        protocol.data_received(HEAD)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    per_request = time.process_time() - t0
    # The body path: 64 MiB in 256 KiB reads.
    chunk = b"b" * (256 << 10)
    protocol.data_received(b"PATCH /x HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n\r\n" % (256 * len(chunk)))
    t1 = time.process_time()
    for _ in range(256):
        protocol.data_received(chunk)
        await asyncio.sleep(0)
    body_seconds = time.process_time() - t1
    protocol.connection_lost(None)
    return per_request / n * 1e6, body_seconds


async def main():
    results = {HttpToolsProtocol: [], PlainHttpProtocol: []}
    for _ in range(21):
        for cls in results:
            results[cls].append(await bench(cls, 2000))
    for cls, runs in results.items():
        us = sorted(r[0] for r in runs)
        mib_s = sorted(64 / r[1] for r in runs)
        print(f"{cls.__name__:20s} min {us[0]:6.2f} median {us[10]:6.2f} us/request; "
              f"64 MiB body median {mib_s[10]:5.0f} max {mib_s[-1]:5.0f} MiB/s")


if __name__ == "__main__":
    uvloop.run(main())
