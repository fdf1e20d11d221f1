"""Webhook delivery: each subscription follows the audit trail from its own position and is sent
every later event it asked for, in log order, at least once, in Distribution's notification
envelope, signed with its secret.

- One leader across replicas (`runner.Leadership("webhooks")`); the others stand by.
- A subscription's position (`webhook_positions`) advances only past an event its receiver
  acknowledged (2xx) or that it is not to be told about; a failure is retried, with exponential
  backoff from `base_delay` up to `max_delay` seconds, and nothing after it is sent until it
  succeeds: a receiver that was down gets everything, in order, when it returns.
- Nothing about a repository the subscription's owner cannot read now (`domain.access`; for
  deletes, as if the repository still existed).
- Every attempt is recorded (`webhook_deliveries`: status code or error, the body sent), for
  the delivery history and redelivery.
- Time comes from `clock` (tests move it); idle, the loop waits on the audit projection's
  position rather than spinning.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson

from dockyard.commands.webhooks import Subscription, subscriptions
from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.webhook import kind_of, secret_id
from dockyard.projections.audit_queries import EVERYTHING, AuditFilter
from dockyard.projections.runner import Leadership

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
SIGNATURE = "X-Dockyard-Signature"
BATCH = 100
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS webhook_positions (webhook TEXT PRIMARY KEY, position {bigint} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, webhook TEXT NOT NULL, "
    "position {bigint} NOT NULL, event_id TEXT NOT NULL, action TEXT NOT NULL, attempted_at TEXT NOT NULL, "
    "status INTEGER, error TEXT, body TEXT NOT NULL, redelivery INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook, attempted_at)",
)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _details(row: dict[str, Any]) -> dict[str, Any]:
    details = row["details"]
    return orjson.loads(details) if isinstance(details, str) else dict(details)


def notified_kind(row: dict[str, Any]) -> str | None:
    """The notification kind of an audit row (`domain.webhook.kind_of`; None: not notified)."""
    return kind_of(row["action"], _details(row))


def envelope(subscription: Subscription, row: dict[str, Any], source: str,
             manifest_facts: Callable[[str, str], tuple[str, int] | None]) -> dict[str, Any]:
    """Distribution's notification for one audit row; the id is stable across retries.

    `target` as Distribution fills it for a manifest: `mediaType`, `digest`, `size` and `length`
    (the manifest's bytes), `repository`, `url`, and `tag` when the event names one (a push by
    digest names none). `manifest_facts(repository, digest)` gives the media type and size when
    the event itself does not carry them (a tag's events name only the digest). `request` says
    from which address (and to which host), `actor` who, `source` which registry.
    """
    details = _details(row)
    digest, repository = row["digest"], row["repository"]
    target: dict[str, Any] = {"repository": repository}
    if digest:
        media_type, size = details.get("media_type"), details.get("size")
        if media_type is None or size is None:
            media_type, size = manifest_facts(repository, digest) or (MANIFEST, None)
        target.update(mediaType=media_type, digest=digest, size=size, length=size,
                      url=f"{source}/v2/{repository}/manifests/{digest}")
    if row["tag"]:
        target["tag"] = row["tag"]
    host = urlsplit(source).netloc
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:{subscription.id}:{row['position']}")),
            "timestamp": row["recorded_at"], "action": notified_kind(row), "target": target,
            "request": {"addr": row["client_address"], "host": host}, "actor": {"name": row["actor"]},
            "source": {"addr": host}}


class WebhookDelivery:
    def __init__(self, registry: Any, read_side: Any, secrets: Any, source: str = "",
                 clock: Callable[[], float] = time.time, base_delay: float = 1.0, max_delay: float = 300.0,
                 timeout: float = 10.0, idle: float = 1.0) -> None:
        self.registry, self.read_side, self.secrets = registry, read_side, secrets
        self.source, self.clock = source, clock
        self.base_delay, self.max_delay, self.timeout, self.idle = base_delay, max_delay, timeout, idle
        self.datastore, self.dialect = registry.recorder.datastore, registry.dialect
        with self.datastore.transaction(commit=True) as cursor:
            for statement in _TABLES:
                cursor.execute(statement.format(bigint=self.dialect.bigint))
        self._leadership = Leadership(registry, "webhooks")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures: dict[str, tuple[int, float]] = {}  # webhook -> (failed attempts, retry at)

    # -- positions and history ----------------------------------------------------------------

    def position(self, webhook: str, start: int) -> int:
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql("SELECT position FROM webhook_positions WHERE webhook = %(w)s"),
                           {"w": webhook})
            rows = cursor.fetchall()
        return int(rows[0]["position"]) if rows else start

    def _advance(self, webhook: str, position: int) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.dialect.sql(
                "INSERT INTO webhook_positions (webhook, position) VALUES (%(w)s, %(p)s) "
                "ON CONFLICT (webhook) DO UPDATE SET position = excluded.position"), {"w": webhook, "p": position})

    def _record(self, webhook: str, position: int, event_id: str, action: str, status: int | None,
                error: str | None, body: bytes, redelivery: bool = False) -> str:
        delivery = uuid.uuid4().hex
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.dialect.sql(
                "INSERT INTO webhook_deliveries (id, webhook, position, event_id, action, attempted_at, status, "
                "error, body, redelivery) VALUES (%(id)s, %(w)s, %(p)s, %(e)s, %(a)s, %(at)s, %(s)s, %(err)s, "
                "%(b)s, %(r)s)"),
                {"id": delivery, "w": webhook, "p": position, "e": event_id, "a": action,
                 "at": _iso(self.clock()), "s": status, "err": error, "b": body.decode(), "r": int(redelivery)})
        return delivery

    def deliveries(self, webhook: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest attempts, newest first."""
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                "SELECT id, position, event_id, action, attempted_at, status, error, redelivery "
                "FROM webhook_deliveries WHERE webhook = %(w)s ORDER BY attempted_at DESC, position DESC "
                "LIMIT %(n)s"), {"w": webhook, "n": limit})
            return [dict(r) for r in cursor.fetchall()]

    def redeliver(self, subscription: Subscription, delivery: str) -> dict[str, Any] | None:
        """Send a recorded delivery's body again now (recorded as a redelivery); None if unknown."""
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                "SELECT position, event_id, action, body FROM webhook_deliveries WHERE id = %(id)s "
                "AND webhook = %(w)s"), {"id": delivery, "w": subscription.id})
            rows = cursor.fetchall()
        if not rows:
            return None
        row = rows[0]
        status, error = self._post(subscription, row["body"].encode())
        new = self._record(subscription.id, row["position"], row["event_id"], row["action"], status, error,
                           row["body"].encode(), redelivery=True)
        return {"id": new, "status": status, "error": error}

    # -- sending ---------------------------------------------------------------------------------

    def _post(self, subscription: Subscription, body: bytes) -> tuple[int | None, str | None]:
        secret = self.secrets.get(secret_id(subscription.id)) or ""
        request = urllib.request.Request(subscription.url, data=body, method="POST", headers={
            "Content-Type": MEDIA_TYPE, SIGNATURE: sign(secret, body), "User-Agent": "Dockyard-Webhooks"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                return int(response.status), None
        except urllib.error.HTTPError as exc:
            return int(exc.code), None
        except (OSError, ValueError) as exc:
            return None, str(exc)[:500]

    def _readable(self, owner: str, row: dict[str, Any]) -> bool:
        repository = row["repository"]
        if not repository:
            return False
        account = self.registry.identity.user(owner)
        if account is None or not account.get("active", True):
            return False
        principal = Principal(owner, account.get("role") or "none")
        facts = self.registry.identity.repository_facts(owner, repository)
        if notified_kind(row) == "delete":
            facts = replace(facts, exists=True)  # it was readable until it went
        return access.may_read(principal, repository, facts)

    def deliver_due(self) -> bool:
        """One pass over every subscription not waiting out a backoff: send what is due, in
        order, stopping at a subscription's first failure. Whether anything was sent."""
        sent = False
        now = self.clock()
        for sub in subscriptions(self.registry).values():
            failed, retry_at = self._failures.get(sub.id, (0, 0.0))
            if failed and now < retry_at:
                continue
            sent |= self._deliver(sub)
        return sent

    def _deliver(self, sub: Subscription) -> bool:
        after = self.position(sub.id, sub.position)
        rows = self.read_side.audit.page(AuditFilter(namespace=None if sub.repository else sub.namespace,
                                                     repository=sub.repository, after=after), EVERYTHING, BATCH)
        sent = False
        for row in rows:
            kind = notified_kind(row)
            if kind is None or kind not in sub.events or not self._readable(sub.owner, row):
                self._advance(sub.id, row["position"])
                continue
            message = envelope(sub, row, self.source, self.registry.queries.manifest_facts)
            body = orjson.dumps({"events": [message]})
            status, error = self._post(sub, body)
            self._record(sub.id, row["position"], message["id"], kind, status, error, body)
            sent = True
            if status is None or not 200 <= status < 300:
                failed = self._failures.get(sub.id, (0, 0.0))[0] + 1
                delay = min(self.max_delay, self.base_delay * 2 ** (failed - 1))
                self._failures[sub.id] = (failed, self.clock() + delay)
                log.info("webhook %s: delivery of %s failed (%s); retry in %.1f s", sub.id, row["position"],
                         status or error, delay)
                return sent
            self._failures.pop(sub.id, None)
            self._advance(sub.id, row["position"])
        return sent

    # -- following ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._leadership.try_acquire_safely():
                self._stop.wait(self.idle)
                continue
            try:
                while not self._stop.is_set():
                    folded = self.read_side.positions.position("audit")
                    if not self.deliver_due():
                        # Idle: until the trail moves on, or a backoff may be due. A failed audit
                        # projection answers at once: then wait out the rest of `idle` here.
                        started = time.monotonic()
                        if not self.read_side.wait("audit", folded + 1, self.idle):
                            self._stop.wait(max(0.0, self.idle - (time.monotonic() - started)))
            except Exception:  # noqa: BLE001 - database gone: give up the lead, stand by, retry
                log.warning("webhook delivery: giving up the lead", exc_info=True)
            finally:
                self._leadership.release()


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat()
