"""Access tokens and sign-in hardening against the real server, with skopeo and httpx.

A user makes a named token with an expiry and a scope (`/api/v0/accounts/{user}/tokens`); it is
the password for skopeo and for HTTP Basic, shown once, and every use is attributed to it in the
event log. A read-only token cannot push, a token limited to one repository cannot touch
another, a revoked token fails (for skopeo too), and so do a tampered token and registry JWTs
that were altered or signed by another key. Expiry by the clock, and registry JWTs issued before
a revocation or expiry, are shown in tests/inprocess/test_access_token_lifecycle.py. Unknown users get the same answer as wrong passwords; five
failed logins from one address lock the sixth out with 429 TOOMANYREQUESTS, recorded as a
`dockyard.LoginGuard.Throttled` event that every process of the registry honours.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.clients import Layout, Skopeo, assert_same_image, events, get_manifest, make_image, push_layout
from tests.e2e.test_lab_scenario import assert_oci_refusal, jwt_claims, ok, parse_challenge, token_flow
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

USER = "starbuck"
PASSWORD = "starbuck-pw"
APP = f"{USER}/app"
OTHER = f"{USER}/other"


@dataclass
class Token:
    id: str
    secret: str  # the presentable token, shown once
    body: dict[str, Any]


@dataclass
class Crew:
    server: DockyardServer
    workdir: Path
    app: Layout  # in starbuck/app:v1 and starbuck/other:v1, pushed with the password
    extra: Layout  # for pushes made with tokens

    def skopeo(self, home: str, password: str, user: str = USER) -> Skopeo:
        return Skopeo(self.server, self.workdir / "clients" / home, user=user, password=password)

    def layout(self, name: str) -> Layout:
        path = self.workdir / "pulled" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return Layout(path, "pulled")


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def create_user(server: DockyardServer, name: str, password: str, role: str = "none") -> None:
    with server.client() as api:
        ok(api.post("/api/v0/accounts", json={"type": "user", "name": name, "password": password, "role": role}))


def create_token(server: DockyardServer, name: str, scope: str, expires_in: float | None = 86400,
                 repositories: tuple[str, ...] = (), user: str = USER, password: str = PASSWORD) -> Token:
    """The user makes a token for themselves (HTTP Basic with their password)."""
    body: dict[str, Any] = {"name": name, "scope": scope, "repositories": list(repositories),
                            "expiresAt": iso_in(expires_in) if expires_in is not None else None}
    with server.client((user, password)) as api:
        created = ok(api.post(f"/api/v0/accounts/{user}/tokens", json=body), 200, 201).json()
    secret = created["token"]
    assert secret.startswith("dyt_"), created
    assert created["name"] == name
    return Token(str(created["id"]), secret, created)


def basic_status(server: DockyardServer, user: str, password: str, path: str = "/v2/") -> httpx.Response:
    with server.client((user, password)) as http:
        return http.get(path)


def oauth(server: DockyardServer, **form: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        return http.post("/auth/token", data={"service": "dockyard", "client_id": "tests", **form})


@pytest.fixture(scope="module")
def crew(shared_server: DockyardServer, tmp_path_factory) -> Crew:
    workdir = tmp_path_factory.mktemp(f"tokens-{shared_server.backend}")
    create_user(shared_server, USER, PASSWORD)
    crew = Crew(shared_server, workdir,
                app=make_image(workdir / "images" / "app", ["4K", "48K"], seed="tokens-app", tag="v1"),
                extra=make_image(workdir / "images" / "extra", ["2K", "20K"], seed="tokens-extra", tag="v2"))
    with shared_server.client((USER, PASSWORD)) as http:
        for repository in (APP, OTHER):
            assert push_layout(http, repository, crew.app, "v1").status_code == 201
    return crew


def test_token_is_a_password_shown_once_and_attributed(crew: Crew) -> None:
    server = crew.server
    token = create_token(server, "ci-read-write", "read-write")

    # Shown once: the listing names it but never holds the secret (or anything of it).
    with server.client((USER, PASSWORD)) as api:
        listing = ok(api.get(f"/api/v0/accounts/{USER}/tokens"), 200)
    # The part after "dyt_<id>_" (the random part may itself hold "_": never split on it).
    secret_part = token.secret.removeprefix(f"dyt_{token.id}_")
    assert len(secret_part) >= 40, token.secret
    assert token.id in listing.text and "ci-read-write" in listing.text
    assert secret_part not in listing.text and token.secret not in listing.text
    assert "secret_hash" not in listing.text
    with server.client() as admin:  # not to the admin either
        assert secret_part not in ok(admin.get(f"/api/v0/accounts/{USER}/tokens"), 200).text

    # skopeo: login, push, pull back byte for byte.
    skopeo = crew.skopeo("token-rw", token.secret)
    skopeo.login()
    skopeo.copy(crew.extra.ref, skopeo.docker(APP, "by-skopeo"))
    back = crew.layout("rw-back")
    skopeo.copy(skopeo.docker(APP, "by-skopeo"), back.ref)
    assert_same_image(crew.extra, back)

    # httpx with HTTP Basic: read and push.
    with server.client((USER, token.secret)) as http:
        assert "by-skopeo" in ok(http.get(f"/v2/{APP}/tags/list"), 200).json()["tags"]
        assert push_layout(http, APP, crew.extra, "by-httpx").status_code == 201

    # Each use is attributed to the user and the token; a password push is not.
    with server.client((USER, PASSWORD)) as http:
        assert push_layout(http, APP, crew.extra, "by-password").status_code == 201
    log = events(server, 2000)
    pushed = [e for e in log if e["topic"] == "dockyard.Manifest.Pushed" and e["repository"] == APP]
    new_manifest = [e for e in pushed if e["digest"] == crew.extra.digest]
    assert len(new_manifest) == 1, pushed  # new once (skopeo's push); later pushes only move tags
    assert new_manifest[0]["token"] == token.id and new_manifest[0]["actor"] == USER
    assert all(e["token"] is None for e in pushed if e["digest"] == crew.app.digest)
    moved = {e["name"]: e for e in log if e["topic"] == "dockyard.Tag.Moved" and e["repository"] == APP}
    assert moved["by-skopeo"]["token"] == token.id and moved["by-skopeo"]["actor"] == USER
    assert moved["by-httpx"]["token"] == token.id and moved["by-httpx"]["actor"] == USER
    assert moved["by-password"]["token"] is None and moved["by-password"]["actor"] == USER
    assert moved["v1"]["token"] is None
    created = [e for e in log if e["topic"] == "dockyard.AccessToken.Created" and e["token_id"] == token.id]
    assert len(created) == 1 and created[0]["actor"] == USER and created[0]["name"] == "ci-read-write"
    assert secret_part not in json.dumps(log)  # the log never holds the secret


def test_read_only_token_cannot_push(crew: Crew) -> None:
    server = crew.server
    token = create_token(server, "ci-read-only", "read-only")
    skopeo = crew.skopeo("token-ro", token.secret)
    skopeo.login()
    pulled = crew.layout("ro-pull")
    skopeo.copy(skopeo.docker(APP, "v1"), pulled.ref)
    assert_same_image(crew.app, pulled)

    result = skopeo.copy(crew.extra.ref, skopeo.docker(APP, "ro-push"), check=False)
    assert result.returncode != 0, result.stdout
    with server.client() as admin:
        assert get_manifest(admin, APP, "ro-push").status_code == 404

    # The server's answer: the token grants pull only, and a push is refused (401/403, OCI body).
    flow = token_flow(server, USER, token.secret, "POST", f"/v2/{APP}/blobs/uploads/")
    assert flow.granted == {"pull"}
    assert_oci_refusal(flow.response)
    with server.client((USER, token.secret)) as http:
        assert_oci_refusal(http.post(f"/v2/{APP}/blobs/uploads/"))
        assert_oci_refusal(http.delete(f"/v2/{APP}/manifests/{crew.app.digest}"))
        # nor may it create a repository in the user's own namespace
        assert_oci_refusal(http.post(f"/v2/{USER}/brand-new/blobs/uploads/"))
        # ...nor act as the user on the management API beyond its scope
        r = http.post(f"/api/v0/accounts/{USER}/tokens", json={"name": "escalate", "scope": "admin",
                                                                "repositories": [], "expiresAt": iso_in(3600)})
        assert r.status_code in (401, 403), r.text


def test_token_limited_to_one_repository(crew: Crew) -> None:
    server = crew.server
    token = create_token(server, "ci-app-only", "read-write", repositories=(APP,))
    skopeo = crew.skopeo("token-app-only", token.secret)
    skopeo.login()
    skopeo.copy(crew.extra.ref, skopeo.docker(APP, "app-only"))  # its repository: push works

    result = skopeo.copy(crew.extra.ref, skopeo.docker(OTHER, "app-only"), check=False)
    assert result.returncode != 0
    result = skopeo.copy(skopeo.docker(OTHER, "v1"), crew.layout("other-pull").ref, check=False)
    assert result.returncode != 0
    with server.client() as admin:
        assert get_manifest(admin, OTHER, "app-only").status_code == 404

    for method, path in (("GET", f"/v2/{OTHER}/manifests/v1"), ("POST", f"/v2/{OTHER}/blobs/uploads/")):
        flow = token_flow(server, USER, token.secret, method, path)
        assert flow.granted == frozenset(), (method, path, flow.granted)
        assert_oci_refusal(flow.response)
    with server.client((USER, token.secret)) as http:
        assert_oci_refusal(get_manifest(http, OTHER, "v1"))
        assert_oci_refusal(http.post(f"/v2/{OTHER}/blobs/uploads/"))
        catalog = ok(http.get("/v2/_catalog"), 200).json()["repositories"]
    assert APP in catalog and OTHER not in catalog
    with server.client((USER, PASSWORD)) as http:  # the user's own password still reaches both
        catalog = ok(http.get("/v2/_catalog"), 200).json()["repositories"]
    assert {APP, OTHER} <= set(catalog)


def test_revoked_token_fails(crew: Crew) -> None:
    # Failed logins count towards the lock-out per user: this test signs in as its own user.
    server, user, password = crew.server, "daggoo", "daggoo-pw"
    create_user(server, user, password)
    token = create_token(server, "to-revoke", "read-write", user=user, password=password)
    assert basic_status(server, user, token.secret).status_code == 200
    refresh = oauth(server, grant_type="password", username=user, password=token.secret,
                    access_type="offline", scope=f"repository:{user}/app:pull")
    assert refresh.status_code == 200, refresh.text
    refresh_token = refresh.json()["refresh_token"]
    with server.client((user, password)) as api:
        ok(api.delete(f"/api/v0/accounts/{user}/tokens/{token.id}"))
        rows = ok(api.get(f"/api/v0/accounts/{user}/tokens"), 200).json()["tokens"]
    assert [row["revoked"] for row in rows if row["id"] == token.id] == [True], rows

    r = basic_status(server, user, token.secret)
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert crew.skopeo("token-revoked", token.secret, user).login(check=False).returncode != 0
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.get("/auth/token", params={"service": "dockyard", "scope": f"repository:{user}/app:pull"},
                     auth=(user, token.secret))
    assert r.status_code == 401
    # A refresh token obtained with it dies with it.
    r = oauth(server, grant_type="refresh_token", refresh_token=refresh_token, scope=f"repository:{user}/app:pull")
    assert r.status_code == 401, r.text
    assert basic_status(server, user, password).status_code == 200  # the password is unaffected


def test_tampered_token_is_rejected(crew: Crew) -> None:
    server, user, password = crew.server, "tashtego", "tashtego-pw"
    create_user(server, user, password)
    token = create_token(server, "to-tamper", "read-write", user=user, password=password)
    assert basic_status(server, user, token.secret).status_code == 200
    prefix, token_id, secret = token.secret.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for forged in (f"{prefix}_{token_id}_{flipped}",  # one character of the secret
                   f"{prefix}_{token_id[:-1]}{'0' if token_id[-1] != '0' else '1'}_{secret}",  # the id
                   f"{prefix}_{token_id}_"):  # no secret
        r = basic_status(server, user, forged)
        assert r.status_code == 401, (forged, r.text)
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    # Another user cannot present it either.
    create_user(server, "flask", "flask-pw")
    assert basic_status(server, "flask", token.secret).status_code == 401


def test_forged_registry_jwts_are_rejected(crew: Crew) -> None:
    server = crew.server
    with httpx.Client(base_url=server.url, timeout=60) as http:
        challenge = parse_challenge(http.get("/v2/").headers["www-authenticate"])
        issued = http.get(challenge["realm"], auth=(USER, PASSWORD),
                          params={"service": challenge["service"], "scope": f"repository:{APP}:pull"})
        real = issued.json()["token"]
        claims = jwt_claims(real)
        header = jwt.get_unverified_header(real)

        def get(token: str, path: str = f"/v2/{APP}/manifests/v1") -> httpx.Response:
            return http.get(path, headers={"Authorization": f"Bearer {token}",
                                           "Accept": "application/vnd.oci.image.manifest.v1+json"})

        assert get(real).status_code == 200  # the genuine token works

        # Tampered: the payload widened to admin on everything, the signature kept.
        widened = dict(claims, sub="admin", access=[
            {"type": "repository", "name": APP, "actions": ["pull", "push", "delete", "*"]},
            {"type": "repository", "name": "engineering/barca", "actions": ["pull", "push"]}])
        h, _, s = real.split(".")
        payload = base64.urlsafe_b64encode(json.dumps(widened).encode()).rstrip(b"=").decode()
        tampered = f"{h}.{payload}.{s}"
        # Signed by another key, with the server's issuer, audience and even its key id.
        other_key = ec.generate_private_key(ec.SECP256R1())
        foreign = jwt.encode(dict(widened, exp=int(time.time()) + 300), other_key, algorithm="ES256",
                             headers={"kid": header.get("kid", "")})
        # Unsigned (`alg: none`).
        unsigned = jwt.encode(widened, None, algorithm="none")
        for name, forged in (("tampered", tampered), ("foreign key", foreign), ("alg none", unsigned)):
            for path in (f"/v2/{APP}/manifests/v1", "/v2/", "/v2/_catalog"):
                r = get(forged, path)
                assert r.status_code == 401, (name, path, r.status_code, r.text)
                assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
                assert r.headers["www-authenticate"].lower().startswith("bearer ")
            r = http.post(f"/v2/{APP}/blobs/uploads/", headers={"Authorization": f"Bearer {forged}"})
            assert r.status_code == 401, (name, r.text)


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(crew: Crew) -> None:
    server = crew.server
    create_user(server, "pip", "pip-right-pw")
    wrong = ("pip", "pip-wrong-pw")
    unknown = ("nobody-at-all", "pip-wrong-pw")

    def answers(user: str, password: str) -> list[tuple[int, Any, str | None]]:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            v2 = http.get("/v2/", auth=(user, password))
            token = http.get("/auth/token", params={"service": "dockyard"}, auth=(user, password))
            form = http.post("/auth/token", data={"grant_type": "password", "username": user,
                                                  "password": password, "service": "dockyard"})
        return [(r.status_code, r.json(), r.headers.get("www-authenticate")) for r in (v2, token, form)]

    a, b = answers(*wrong), answers(*unknown)
    assert a == b
    assert [status for status, _, _ in a] == [401, 401, 401]
    assert a[0][1]["errors"][0]["code"] == "UNAUTHORIZED"
    with server.client(("pip", "pip-right-pw")) as http:  # two failures do not lock pip out
        assert http.get("/v2/").status_code == 200


def test_sixth_failed_login_is_throttled_and_recorded(crew: Crew) -> None:
    server = crew.server
    create_user(server, "stubb", "stubb-right-pw")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for attempt in range(5):
            r = http.get("/v2/", auth=("stubb", f"wrong-{attempt}"))
            assert r.status_code == 401, (attempt, r.text)
        # The 6th — even with the right password — is refused while locked out.
        for request in (lambda: http.get("/v2/", auth=("stubb", "stubb-right-pw")),
                        lambda: http.get("/auth/token", params={"service": "dockyard"},
                                         auth=("stubb", "stubb-right-pw")),
                        lambda: http.post("/auth/token", data={"grant_type": "password", "username": "stubb",
                                                               "password": "stubb-right-pw"})):
            r = request()
            assert r.status_code == 429, r.text
            assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        # Unknown users are locked out alike (nothing tells them apart).
        for attempt in range(5):
            assert http.get("/v2/", auth=("nobody-else", f"x{attempt}")).status_code == 401
        r = http.get("/v2/", auth=("nobody-else", "x"))
        assert r.status_code == 429 and r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    # Others from the same address are not affected.
    with server.client((USER, PASSWORD)) as http:
        assert http.get("/v2/").status_code == 200

    throttled = [e for e in events(server, 2000) if e["topic"] == "dockyard.LoginGuard.Throttled"]
    stubb = [e for e in throttled if e.get("user") == "stubb"]
    assert len(stubb) == 1, throttled
    assert stubb[0]["address"] == "127.0.0.1" and stubb[0]["failures"] == 5
    assert datetime.fromisoformat(stubb[0]["until"]) > datetime.now(UTC)
    assert any(e.get("user") == "nobody-else" for e in throttled)


def test_a_lockout_holds_in_every_process(crew: Crew) -> None:
    """Failures are counted per process; the lock-out one process records holds in all of them
    (a second `dockyard serve` on the same data stands for another worker or replica)."""
    server, user = crew.server, "fedallah"
    create_user(server, user, "fedallah-right-pw")
    other = DockyardServer(server.data_dir, server.database_url, server.admin_password)
    other.start()
    try:
        with httpx.Client(base_url=other.url, timeout=60) as http:
            assert http.get("/v2/", auth=(user, "fedallah-right-pw")).status_code == 200
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for attempt in range(5):
                assert http.get("/v2/", auth=(user, f"wrong-{attempt}")).status_code == 401
            assert http.get("/v2/", auth=(user, "fedallah-right-pw")).status_code == 429
        with httpx.Client(base_url=other.url, timeout=60) as http:
            # The other process has seen no failure of its own, and its cache knows the right
            # password; a new password check (here a wrong one) meets the recorded lock-out.
            r = http.get("/v2/", auth=(user, "another-wrong-pw"))
            assert r.status_code == 429 and r.json()["errors"][0]["code"] == "TOOMANYREQUESTS", r.text
            assert r.json()["errors"][0]["detail"]["retryAfterSeconds"] > 0
            # From then on that process refuses the user outright, the right password included.
            assert http.get("/v2/", auth=(user, "fedallah-right-pw")).status_code == 429
    finally:
        other.stop()
