"""`/api/v0/settings/tls` (global admins): upload the PEM certificate chain and key that
`dockyard serve --tls` serves instead of the one it generates. Refused (400) unless the key is the
first certificate's, it is valid now and its names cover the domain name (else the listen host).
Kept in the secret store (never in the log); every worker of every replica loads it within seconds."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from dockyard.api import tls
from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, require_token_admin
from dockyard.api.v0.schemas import Model
from dockyard.commands.certificates import check_uploaded

router = APIRouter(prefix="/settings/tls", tags=["settings"])


class TlsUpload(Model):
    certificate_chain: str = Field(max_length=65536, description="PEM: the server's certificate first.")
    private_key: str = Field(max_length=16384, description="PEM, unencrypted: the first certificate's key.")


class TlsCertificate(Model):
    subject: str
    not_after: str


@router.put("", summary="Upload the TLS certificate chain and key to serve (global admins)")
async def upload_tls(body: TlsUpload, principal: GlobalAdmin, svc: ServicesDep) -> TlsCertificate:
    require_token_admin(principal)

    def store() -> TlsCertificate:
        name = svc.general.domain_name() or svc.settings.host
        leaf = check_uploaded(body.certificate_chain, body.private_key, name)
        svc.secrets.put(tls.UPLOADED_KEY, body.private_key)
        svc.secrets.put(tls.UPLOADED_CHAIN, body.certificate_chain)
        return TlsCertificate(subject=leaf.subject.rfc4514_string(), not_after=leaf.not_valid_after_utc.isoformat())

    return await run_in_threadpool(store)
