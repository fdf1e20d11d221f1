"""The API console and the contract: `/openapi.json` documents every `/api/v0/` route with its
models; `/docs` (Swagger UI) loads only assets the server itself serves (no internet needed);
errors are problem documents under `/api/v0/` and stay OCI errors under `/v2/`."""

from __future__ import annotations

import re

from tests.integration.api_v0_support import API, problem

# (method, path, has a request body)
ROUTES = {
    ("post", "/accounts", True), ("get", "/accounts", False), ("get", "/accounts/{name}", False),
    ("patch", "/accounts/{name}", True), ("delete", "/accounts/{name}", False),
    ("post", "/accounts/{org}/teams", True), ("get", "/accounts/{org}/teams", False),
    ("get", "/accounts/{org}/teams/{team}", False), ("delete", "/accounts/{org}/teams/{team}", False),
    ("get", "/accounts/{org}/teams/{team}/members", False),
    ("put", "/accounts/{org}/teams/{team}/members/{user}", False),
    ("delete", "/accounts/{org}/teams/{team}/members/{user}", False),
    ("post", "/accounts/{user}/tokens", True), ("get", "/accounts/{user}/tokens", False),
    ("delete", "/accounts/{user}/tokens/{token_id}", False),
    ("get", "/repositories", False), ("post", "/repositories/{namespace}", True),
    ("get", "/repositories/{namespace}", False), ("get", "/repositories/{namespace}/{repo}", False),
    ("patch", "/repositories/{namespace}/{repo}", True), ("delete", "/repositories/{namespace}/{repo}", False),
    ("get", "/repositories/{namespace}/{repo}/tags", False),
    ("delete", "/repositories/{namespace}/{repo}/tags/{tag}", False),
    ("get", "/repositories/{namespace}/{repo}/teamAccess", False),
    ("put", "/repositories/{namespace}/{repo}/teamAccess/{team}", True),
    ("delete", "/repositories/{namespace}/{repo}/teamAccess/{team}", False),
    ("get", "/settings/auth", False), ("put", "/settings/auth", True), ("post", "/settings/auth/ldap/test", True),
    ("get", "/settings/general", False), ("put", "/settings/general", True),
    ("get", "/settings/storage", False), ("put", "/settings/storage", True),
    ("get", "/settings/gc", False), ("put", "/settings/gc", True), ("post", "/gc/run", True), ("get", "/gc/runs", False),
    ("get", "/gc/runs/{run_id}", False),
    ("post", "/webhooks", True), ("get", "/webhooks", False), ("get", "/webhooks/{webhook_id}", False),
    ("delete", "/webhooks/{webhook_id}", False), ("get", "/webhooks/{webhook_id}/deliveries", False),
    ("post", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", False),
    ("get", "/events", False), ("get", "/events/stream", False), ("get", "/audit/public-key", False), ("get", "/projections", False),
    ("post", "/projections/{name}/retry", False),
    ("get", "/search", False), ("post", "/repositories/{namespace}/{repo}/tags/{tag}/restore", True),
    ("post", "/repositories/{namespace}/{repo}/restore", False),
    ("get", "/repositories/{namespace}/{repo}/tags/{tag}/history", False),
    ("get", "/repositories/{namespace}/{repo}/activity", False), ("get", "/accounts/{name}/access", False),
    ("get", "/logs", False),
    ("put", "/settings/tls", True),
}

# Routes anyone may call that answer a PEM document (the audit checkpoints' public key).
PUBLIC_PEM = {("get", "/audit/public-key")}
# Routes that answer Server-Sent Events rather than a JSON model (the change feed).
EVENT_STREAMS = {("get", "/events/stream")}


def test_openapi_lists_every_route_with_its_models(shared_server) -> None:
    with shared_server.client(auth=None) as anonymous:
        spec = anonymous.get("/openapi.json").json()
    documented = {(method, path[len(API):], "requestBody" in op)
                  for path, ops in spec["paths"].items() if path.startswith(API) for method, op in ops.items()}
    assert documented == ROUTES
    schemas = spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        if not path.startswith(API):
            continue
        for method, op in ops.items():
            if (method, path[len(API):]) in PUBLIC_PEM:  # no credentials, a PEM body, errors still problems
                assert op["summary"] and not op.get("security"), (method, path)
                assert "application/x-pem-file" in op["responses"]["200"]["content"], (method, path)
                continue
            assert op["summary"] and op["security"] == [{"basic": []}, {"accessToken": []}], (method, path)
            if (method, path[len(API):]) in EVENT_STREAMS:
                assert "text/event-stream" in op["responses"]["200"]["content"], (method, path)
                continue
            success = [code for code in op["responses"] if code.startswith("2")]
            assert len(success) == 1, (method, path)
            if success[0] != "204":
                schema = op["responses"][success[0]]["content"]["application/json"]["schema"]
                schema = schema.get("items", schema) if schema.get("type") == "array" else schema  # a list of them
                assert "$ref" in schema, f"{method} {path} answers no named response model"
                ref = schema["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas, (method, path)
            problem_doc = op["responses"]["4XX"]["content"]["application/problem+json"]["schema"]
            assert problem_doc == {"$ref": "#/components/schemas/Problem"}
    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["properties"])
    assert schemas["TeamAccessChange"]["properties"]["accessLevel"]["enum"] == ["read-only", "read-write", "admin"]
    assert "bindPassword" not in schemas["LdapSettingsView"]["properties"]
    assert {"basic", "accessToken"} == set(spec["components"]["securitySchemes"])


def test_the_console_needs_no_internet(shared_server) -> None:
    with shared_server.client(auth=None) as anonymous:
        r = anonymous.get("/docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        assert "SwaggerUIBundle" in html
        assert "http://" not in html and "https://" not in html and "//cdn" not in html
        references = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert len(references) >= 4 and "/openapi.json" in references
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            asset = anonymous.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 100, reference
        kinds = {ref.rsplit(".", 1)[1]: anonymous.get(ref).headers["content-type"] for ref in references}
        assert kinds["js"].startswith(("text/javascript", "application/javascript"))
        assert kinds["css"].startswith("text/css")


def test_errors_are_problems_under_api_v0_and_oci_errors_under_v2(shared_server) -> None:
    with shared_server.client() as admin:
        body = problem(admin.get(f"{API}/no/such/route"), 404)
        assert body["type"] == "about:blank"
        problem(admin.delete(f"{API}/settings/auth"), 405)
        r = admin.get("/v2/nothing/here/manifests/latest")
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        assert r.json()["errors"][0]["code"] in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN")
    with shared_server.client(auth=None) as anonymous:
        r = anonymous.get("/v2/")
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Bearer ")
