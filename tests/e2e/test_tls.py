"""`dockyard serve --tls` with its own CA, trusted the way the lab's Task 4 does it: fetch the
chain with `openssl s_client -showcerts`, keep the CA, hand it to the client (skopeo and podman
`--cert-dir`, which is what /etc/containers/certs.d/HOST:PORT/ca.crt does for one registry, not
the machine-wide `update-ca-certificates` of the lab: the tests share this machine; an `SSLContext`
for httpx), then push and pull with verification on; and a pull in progress that completes while
the domain name changes and the new certificate is served."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import ADMIN_PASSWORD, require_tool
from tests.e2e.clients import Layout, Podman, Skopeo, assert_same_image, make_image
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


def trust(server: DockyardServer, tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """The lab's Task 4: the CA the server shows (`openssl s_client -showcerts`, the last
    certificate) in a client certificate directory; and an SSLContext trusting it."""
    cert_dir = tmp_path / "certs.d"
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / "ca.crt").write_text(served_chain(server)[-1])
    return cert_dir, ssl.create_default_context(cafile=str(cert_dir / "ca.crt"))


def served_names(server: DockyardServer) -> list[str]:
    leaf = x509.load_pem_x509_certificate(served_chain(server)[0].encode())
    return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)


def test_podman_pushes_and_pulls_with_verification_on(tmp_path: Path) -> None:
    server = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD, tls=True)
    server.start()
    podman = Podman(server, tmp_path / "podman")
    try:
        cert_dir, trusted = trust(server, tmp_path)
        verified = ["--tls-verify=true", f"--cert-dir={cert_dir}"]
        login = podman.run("login", *verified, "-u", podman.user, "-p", podman.password, server.host)
        assert "Login Succeeded" in login.stdout
        image = make_image(tmp_path / "img", ["4K", "32K"], seed="tls-podman", tag="v1")
        image_id = "sha256:" + podman.run("pull", image.ref).stdout.split()[-1]  # into podman's storage
        target = podman.ref("admin/tls-podman", "v1")
        podman.run("tag", image_id, target)
        digestfile = tmp_path / "pushed"
        podman.run("push", *verified, f"--digestfile={digestfile}", target, f"docker://{target}")
        with httpx.Client(base_url=server.url, verify=trusted, auth=("admin", ADMIN_PASSWORD), timeout=30) as http:
            # The registry holds what podman says it pushed.
            assert http.head(f"/v2/admin/tls-podman/manifests/{digestfile.read_text().strip()}").status_code == 200

        podman.run("rmi", "--all", "--force")
        podman.run("pull", *verified, target)
        assert podman.image_id(target) == image_id
        # Without the CA, podman refuses the registry.
        podman.run("rmi", "--all", "--force")
        refused = podman.run("pull", "--tls-verify=true", target, check=False)
        assert refused.returncode != 0 and "certificate" in refused.stderr
    finally:
        podman.close()
        server.stop()


BIG = 96 * 1024 * 1024


def test_a_pull_in_progress_completes_while_the_domain_name_and_certificate_change(tmp_path: Path) -> None:
    """A 96 MiB blob is being pulled (over TLS, verified) when an admin sets a new domain name: the
    client stops reading after 8 MiB (so the server is mid-response) until every new handshake
    presents the certificate for the new name; then it reads the rest, byte for byte the blob."""
    server = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD, tls=True, workers=2)
    server.start()
    try:
        _, trusted = trust(server, tmp_path)
        blob = os.urandom(BIG)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        path = f"/v2/admin/big/blobs/{digest}"
        with httpx.Client(base_url=server.url, verify=trusted, auth=("admin", ADMIN_PASSWORD), timeout=120) as admin:
            r = admin.post("/v2/admin/big/blobs/uploads/", params={"digest": digest}, content=blob)
            assert r.status_code == 201, r.text

            with httpx.Client(base_url=server.url, verify=trusted, auth=("admin", ADMIN_PASSWORD),
                              timeout=120) as puller, puller.stream("GET", path) as pull:
                assert pull.status_code == 200 and int(pull.headers["content-length"]) == BIG
                received = hashlib.sha256()
                size = 0
                chunks = pull.iter_raw(1024 * 1024)
                while size < 8 * 1024 * 1024:
                    chunk = next(chunks)
                    received.update(chunk)
                    size += len(chunk)

                r = admin.put("/api/v0/settings/general", json={"domainName": "pull.example.test"})
                assert r.status_code == 200, r.text
                deadline, in_a_row = time.monotonic() + 60, 0
                while in_a_row < 4:  # whichever worker takes each handshake
                    in_a_row = in_a_row + 1 if served_names(server) == ["pull.example.test"] else 0
                    assert time.monotonic() < deadline, "the certificate did not follow the domain name"
                    if in_a_row == 0:
                        time.sleep(0.5)
                # The pull's response has not ended: the access line is logged when it does.
                with httpx.Client(base_url=server.url, verify=_by_address(tmp_path), timeout=30,
                                  auth=("admin", ADMIN_PASSWORD)) as reader:
                    lines = reader.get("/api/v0/logs", params={"component": "api", "limit": 1000}).json()["lines"]
                assert not [line for line in lines if f"GET {path} 200" in line]

                for chunk in chunks:
                    received.update(chunk)
                    size += len(chunk)
        assert size == BIG and "sha256:" + received.hexdigest() == digest

        # The next handshake presents the new certificate: valid for the new name, from the same CA.
        with socket.create_connection(("127.0.0.1", int(server.host.rsplit(":", 1)[1])), timeout=30) as raw, \
                trusted.wrap_socket(raw, server_hostname="pull.example.test") as tls:
            names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
        assert names == ["pull.example.test"]
    finally:
        server.stop()


def _by_address(tmp_path: Path) -> ssl.SSLContext:
    """Trusting the CA, dialling 127.0.0.1 while the certificate names the domain."""
    context = ssl.create_default_context(cafile=str(tmp_path / "certs.d" / "ca.crt"))
    context.check_hostname = False
    return context
