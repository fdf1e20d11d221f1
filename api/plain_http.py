"""uvicorn's httptools protocol with Dockyard's limits (`http_limits`) and zero-copy file answers
(`zerocopy`), quiet about clients that try TLS first.

skopeo, podman and docker, told a registry is insecure, first try HTTPS on it and fall back to
plain HTTP. On a plain-HTTP port each try arrives as a TLS ClientHello, which no HTTP parser
reads: stock uvicorn logs "WARNING: Invalid HTTP request received." and answers 400, twice per
command, so a newcomer's first push looks like an error. Such a connection gets the same 400
(on which the client falls back to HTTP) and a debug line instead; any other unparsable request
is logged as before.
"""

from __future__ import annotations

from dockyard.api.zerocopy import ZeroCopyHttpToolsProtocol

# A TLS record of type handshake (0x16) in a 3.x protocol version: the first bytes of a ClientHello.
TLS_HANDSHAKE = b"\x16\x03"


class PlainHttpProtocol(ZeroCopyHttpToolsProtocol):
    """One connection; `serve` passes this class to uvicorn in place of `"httptools"`."""

    _seen_data = False

    def data_received(self, data: bytes) -> None:
        if not self._seen_data:
            self._seen_data = True
            if data.startswith(TLS_HANDSHAKE):
                self.logger.debug("TLS handshake on the plain-HTTP port from %s (a client trying HTTPS first)",
                                  self.client)
                self.send_400_response("This port speaks plain HTTP, not TLS.")
                return
        super().data_received(data)
