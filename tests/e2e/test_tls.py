"""`dockyard serve --tls` with its own CA, trusted the way the lab's Task 4 does it: fetch the
chain with `openssl s_client -showcerts`, keep the CA, hand it to the client (skopeo
`--cert-dir`, `SSL_CERT_FILE` for httpx), then push and pull with verification on."""

from __future__ import annotations

import re
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import ADMIN_PASSWORD, require_tool
from tests.e2e.clients import Layout, Skopeo, assert_same_image, make_image
from tests.inprocess.test_tls_upload import pair
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)


def served_chain(server: DockyardServer) -> list[str]:
    """The PEM certificates the server presents, as `openssl s_client -showcerts` prints them."""
    openssl = require_tool("openssl")
    out = subprocess.run([openssl, "s_client", "-showcerts", "-connect", server.host], input="",
                         capture_output=True, text=True, timeout=60).stdout
    return [m.group(0) for m in PEM.finditer(out)]


def test_the_lab_trust_procedure_then_push_and_pull_verified(tmp_path: Path) -> None:
    server = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD, tls=True, workers=2)
    server.start()
    try:
        chain = served_chain(server)
        assert len(chain) == 2, "leaf then CA"
        leaf, ca = (x509.load_pem_x509_certificate(pem.encode()) for pem in chain)
        assert leaf.issuer == ca.subject
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]  # no domain yet
        cert_dir = tmp_path / "certs.d"
        cert_dir.mkdir()
        ca_file = cert_dir / "ca.crt"
        ca_file.write_text(chain[-1])  # the last certificate shown: the CA, to trust

        # Unverified clients are refused; with the CA trusted, verification succeeds.
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/healthz", timeout=30)
        trusted = ssl.create_default_context(cafile=str(ca_file))
        assert httpx.get(server.url + "/healthz", verify=trusted, timeout=30).status_code == 200

        skopeo = Skopeo(server, tmp_path / "skopeo")
        image = make_image(tmp_path / "img", ["4K", "32K"], seed="tls", tag="v1")
        common = ["--dest-tls-verify=true", f"--dest-cert-dir={cert_dir}", f"--dest-creds={skopeo.creds}"]
        skopeo.run("copy", "--preserve-digests", *common, image.ref, f"docker://{server.host}/admin/tls:v1")
        back = tmp_path / "back"
        skopeo.run("copy", "--src-tls-verify=true", f"--src-cert-dir={cert_dir}", f"--src-creds={skopeo.creds}",
                   f"docker://{server.host}/admin/tls:v1", f"oci:{back}:v1")
        assert_same_image(image, Layout(back, "v1"))
        # Without the CA, skopeo refuses the registry.
        refused = skopeo.run("inspect", "--tls-verify=true", f"--creds={skopeo.creds}",
                             f"docker://{server.host}/admin/tls:v1", check=False)
        assert refused.returncode != 0 and "certificate" in refused.stderr

        # Settings > General: a new domain name; the served certificate follows it (checked
        # every 2 s by each worker), signed by the same CA; the running server is not restarted.
        with httpx.Client(base_url=server.url, verify=trusted, auth=("admin", ADMIN_PASSWORD), timeout=30) as admin:
            r = admin.put("/api/v0/settings/general", json={"domainName": "registry.example.test"})
            assert r.status_code == 200, r.text
        # Every worker follows: wait (bounded) until four handshakes in a row, whichever worker
        # takes each, present the new name.
        deadline, in_a_row = time.monotonic() + 60, 0
        while in_a_row < 4:
            leaf = x509.load_pem_x509_certificate(served_chain(server)[0].encode())
            dns = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            in_a_row = in_a_row + 1 if dns.get_values_for_type(x509.DNSName) == ["registry.example.test"] else 0
            assert leaf.issuer == ca.subject
            assert time.monotonic() < deadline, "the certificate did not follow the domain name"
            if in_a_row == 0:
                time.sleep(0.5)
        assert server.process is not None and server.process.poll() is None

        # An admin uploads a chain and key of their own: every worker serves it within seconds.
        chain_pem, key_pem = pair("registry.example.test")
        by_address = ssl.create_default_context(cafile=str(ca_file))
        by_address.check_hostname = False  # the certificate names the domain now; we dial 127.0.0.1
        with httpx.Client(base_url=server.url, verify=by_address, auth=("admin", ADMIN_PASSWORD), timeout=30) as admin:
            r = admin.put("/api/v0/settings/tls", json={"certificateChain": chain_pem, "privateKey": key_pem})
            assert r.status_code == 200, r.text
        deadline, in_a_row = time.monotonic() + 60, 0
        while in_a_row < 4:
            in_a_row = in_a_row + 1 if served_chain(server)[0] == chain_pem else 0
            assert time.monotonic() < deadline, "the uploaded certificate is not served"
            if in_a_row == 0:
                time.sleep(0.5)
    finally:
        server.stop()
