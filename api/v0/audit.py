"""`/api/v0/audit/public-key`: the Ed25519 public key that verifies the audit chain's signed
checkpoints (PEM). Public by nature: an auditor fetches it once, keeps it, and runs
`dockyard audit verify --public-key FILE` against the database or an export, with no server."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/public-key", summary="The public key of the audit checkpoints (PEM)",
            response_class=Response, responses={200: {"content": {"application/x-pem-file": {}}}})
async def public_key(svc: ServicesDep) -> Response:
    key = await run_in_threadpool(svc.secrets.audit_signing_key)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Response(pem, media_type="application/x-pem-file")
