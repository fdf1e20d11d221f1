"""Webhook delivery: each subscription follows the audit trail from its own position and is sent
every later event it asked for, in log order, at least once, in Distribution's notification
envelope, signed with its secret.

- One leader across replicas (`runner.Leadership("webhooks")`); the others stand by.
- A subscription's position (`webhook_positions`) advances only past an event its receiver
  acknowledged (2xx) or that it is not to be told about; a failure is retried, with exponential
  backoff from `base_delay` up to `max_delay` seconds, and nothing after it is sent until it
  succeeds: a receiver that was down gets everything, in order, when it returns. The failed
  attempts in a row and the next attempt's time are kept in the same row, written with the
  attempt's record in one transaction: a restarted runner neither retries a down receiver
  early nor starts its backoff over.
- Nothing about a repository the subscription's owner cannot read now (`domain.access`; for
  deletes, as if the repository still existed).
- Every attempt is recorded (`webhook_deliveries`: status code or error, the body sent), for
  the delivery history and redelivery; the runner keeps a subscription's latest `history`
  attempts and every failed one whose event is not delivered yet, and prunes the rest.
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
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import orjson

from dockyard.commands.webhooks import Subscription, subscriptions
from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.webhook import kind_of, secret_id
from dockyard.projections.audit_queries import EVERYTHING, AuditFilter
from dockyard.projections.dialect import Dialect
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.registry_queries import RegistryQueries
from dockyard.projections.runner import Leadership

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
SIGNATURE = "X-Dockyard-Signature"
BATCH = 100
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS webhook_positions (webhook TEXT PRIMARY KEY, position {bigint} NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms {bigint} NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, webhook TEXT NOT NULL, "
    "position {bigint} NOT NULL, event_id TEXT NOT NULL, action TEXT NOT NULL, attempted_at TEXT NOT NULL, "
    "status INTEGER, error TEXT, body TEXT NOT NULL, redelivery INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook, attempted_at)",
)
# Columns a table made by an earlier version lacks (added on start).
_STATE_COLUMNS = {"attempts": "INTEGER NOT NULL DEFAULT 0", "next_attempt_ms": "{bigint} NOT NULL DEFAULT 0"}
_NEWEST_FIRST = "attempted_at DESC, position DESC, id DESC"


def _add_missing_columns(dialect: Dialect, cursor: Any, table: str, columns: dict[str, str]) -> None:
    if dialect.name == "postgres":
        for name, ddl in columns.items():
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {ddl.format(bigint=dialect.bigint)}")
        return
    cursor.execute(f"PRAGMA table_info({table})")
    present = {r["name"] if isinstance(r, dict) or hasattr(r, "keys") else r[1] for r in cursor.fetchall()}
    for name, ddl in columns.items():
        if name not in present:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN {name} {ddl.format(bigint=dialect.bigint)}")


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


@dataclass(frozen=True)
class DeliveryState:
    """A subscription's row in `webhook_positions`: the last event it is done with, and while a
    delivery fails, how many attempts failed in a row and when (ms since the epoch, on the
    runner's clock) the next is due."""

    position: int
    attempts: int = 0
    next_attempt_ms: int = 0


class WebhookDelivery:
    def __init__(self, registry: Any, read_side: Any, secrets: Any, registry_view: RegistryQueries,
                 identity_view: IdentityQueries, source: str = "", clock: Callable[[], float] = time.time,
                 base_delay: float = 1.0, max_delay: float = 300.0, timeout: float = 10.0, idle: float = 1.0,
                 history: int = 500) -> None:
        """`registry_view`: what a manifest's envelope says of it; `identity_view`: who may read what
        now (a subscriber sees what it may read). `history`: how many of a subscription's latest
        delivery attempts are kept (with every failed one whose event has not been delivered yet);
        the runner prunes older ones."""
        self.registry, self.read_side, self.secrets = registry, read_side, secrets
        self.registry_view, self.identity_view = registry_view, identity_view
        self.source, self.clock = source, clock
        self.base_delay, self.max_delay, self.timeout, self.idle = base_delay, max_delay, timeout, idle
        self.history = max(1, history)
        self.datastore, self.dialect = registry.recorder.datastore, registry.dialect
        with self.dialect.creating(self.datastore) as cursor:
            for statement in _TABLES:
                cursor.execute(statement.format(bigint=self.dialect.bigint))
            _add_missing_columns(self.dialect, cursor, "webhook_positions", _STATE_COLUMNS)
        self._leadership = Leadership(registry, "webhooks")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- delivery state and history ---------------------------------------------------------------

    def states(self) -> dict[str, DeliveryState]:
        """Every subscription's delivery state, by webhook id (none yet: not in the answer)."""
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute("SELECT webhook, position, attempts, next_attempt_ms FROM webhook_positions")
            return {r["webhook"]: DeliveryState(int(r["position"]), int(r["attempts"]), int(r["next_attempt_ms"]))
                    for r in cursor.fetchall()}

    def position(self, webhook: str, start: int) -> int:
        found = self.states().get(webhook)
        return found.position if found else start

    def _set_state(self, cursor: Any, webhook: str, state: DeliveryState) -> None:
        cursor.execute(self.dialect.sql(
            "INSERT INTO webhook_positions (webhook, position, attempts, next_attempt_ms) "
            "VALUES (%(w)s, %(p)s, %(a)s, %(n)s) ON CONFLICT (webhook) DO UPDATE SET position = excluded.position, "
            "attempts = excluded.attempts, next_attempt_ms = excluded.next_attempt_ms"),
            {"w": webhook, "p": state.position, "a": state.attempts, "n": state.next_attempt_ms})

    def _advance(self, webhook: str, position: int) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            self._set_state(cursor, webhook, DeliveryState(position))

    def _insert_delivery(self, cursor: Any, webhook: str, position: int, event_id: str, action: str,
                         status: int | None, error: str | None, body: bytes, redelivery: bool = False) -> str:
        delivery = uuid.uuid4().hex
        cursor.execute(self.dialect.sql(
            "INSERT INTO webhook_deliveries (id, webhook, position, event_id, action, attempted_at, status, "
            "error, body, redelivery) VALUES (%(id)s, %(w)s, %(p)s, %(e)s, %(a)s, %(at)s, %(s)s, %(err)s, "
            "%(b)s, %(r)s)"),
            {"id": delivery, "w": webhook, "p": position, "e": event_id, "a": action,
             "at": _iso(self.clock()), "s": status, "err": error, "b": body.decode(), "r": int(redelivery)})
        return delivery

    def _prune(self, cursor: Any, webhook: str, delivered: int) -> None:
        """Drop the subscription's attempts beyond its latest `history`, but none about an event
        after `delivered` (failed, and not delivered yet)."""
        cursor.execute(self.dialect.sql(
            "DELETE FROM webhook_deliveries WHERE webhook = %(w)s AND position <= %(p)s AND id NOT IN ("
            "SELECT id FROM webhook_deliveries WHERE webhook = %(w)s "
            f"ORDER BY {_NEWEST_FIRST} LIMIT %(n)s)"), {"w": webhook, "p": delivered, "n": self.history})

    def _settle(self, webhook: str, position: int, event_id: str, action: str, status: int | None,
                error: str | None, body: bytes, state: DeliveryState) -> None:
        """Record one attempt, the subscription's new `state` and the pruned history, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            self._insert_delivery(cursor, webhook, position, event_id, action, status, error, body)
            self._set_state(cursor, webhook, state)
            self._prune(cursor, webhook, state.position)

    def deliveries(self, webhook: str, limit: int = 100, after: tuple[str, int, str] | None = None
                   ) -> list[dict[str, Any]]:
        """The latest attempts, newest first: up to `limit` of them after `after` (the
        `cursor_key` of the last one of the previous page)."""
        where = "" if after is None else " AND (attempted_at, position, id) < (%(at)s, %(p)s, %(id)s)"
        at, position, delivery = after or ("", 0, "")
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                "SELECT id, position, event_id, action, attempted_at, status, error, redelivery "
                f"FROM webhook_deliveries WHERE webhook = %(w)s{where} ORDER BY {_NEWEST_FIRST} LIMIT %(n)s"),
                {"w": webhook, "n": limit, "at": at, "p": position, "id": delivery})
            return [dict(r) for r in cursor.fetchall()]

    @staticmethod
    def cursor_key(delivery: dict[str, Any]) -> tuple[str, int, str]:
        return str(delivery["attempted_at"]), int(delivery["position"]), str(delivery["id"])

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
        with self.datastore.transaction(commit=True) as cursor:
            new = self._insert_delivery(cursor, subscription.id, row["position"], row["event_id"], row["action"],
                                        status, error, row["body"].encode(), redelivery=True)
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
        account = self.identity_view.user(owner)
        if account is None or not account.get("active", True):
            return False
        principal = Principal(owner, account.get("role") or "none")
        facts = self.identity_view.repository_facts(owner, repository)
        if notified_kind(row) == "delete":
            facts = replace(facts, exists=True)  # it was readable until it went
        return access.may_read(principal, repository, facts)

    def deliver_due(self) -> bool:
        """One pass over every subscription not waiting out a backoff (kept in its delivery
        state, so a restarted runner waits it out too): send what is due, in order, stopping
        at a subscription's first failure. Whether anything was sent."""
        sent = False
        now_ms = int(self.clock() * 1000)
        states = self.states()
        for sub in subscriptions(self.registry).values():
            state = states.get(sub.id) or DeliveryState(sub.position)
            if state.attempts and now_ms < state.next_attempt_ms:
                continue
            sent |= self._deliver(sub, state)
        return sent

    def _deliver(self, sub: Subscription, state: DeliveryState | None = None) -> bool:
        """Send what is due to `sub` from `state` (read when not given), whether or not a backoff runs."""
        state = state or self.states().get(sub.id) or DeliveryState(sub.position)
        rows = self.read_side.audit.page(AuditFilter(namespace=None if sub.repository else sub.namespace,
                                                     repository=sub.repository, after=state.position),
                                         EVERYTHING, BATCH)
        sent = passed_over = False
        for row in rows:
            kind = notified_kind(row)
            if kind is None or kind not in sub.events or not self._readable(sub.owner, row):
                # Not to be told: passed over, written with the next attempt or after the batch.
                state, passed_over = DeliveryState(row["position"]), True
                continue
            passed_over = False
            message = envelope(sub, row, self.source, self.registry_view.manifest_facts)
            body = orjson.dumps({"events": [message]})
            status, error = self._post(sub, body)
            sent = True
            if status is None or not 200 <= status < 300:
                failed = state.attempts + 1
                delay = min(self.max_delay, self.base_delay * 2 ** (failed - 1))
                state = DeliveryState(state.position, failed, int((self.clock() + delay) * 1000))
                self._settle(sub.id, row["position"], message["id"], kind, status, error, body, state)
                log.info("webhook %s: delivery of %s failed (%s); retry in %.1f s", sub.id, row["position"],
                         status or error, delay)
                return sent
            state = DeliveryState(row["position"])
            self._settle(sub.id, row["position"], message["id"], kind, status, error, body, state)
        if passed_over:
            self._advance(sub.id, state.position)
        return sent

    # -- following ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._leadership.interrupt()  # a standby waiting for the lead stops at once
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._leadership.stand_by(self._stop, self.idle):
                continue
            try:
                while not self._stop.is_set():
                    folded = self.read_side.positions.position("audit")
                    if not self.deliver_due():
                        # Idle: until the trail moves on, or a backoff may be due. A failed audit
                        # projection answers at once: then wait out the rest of `idle` here.
                        started = time.monotonic()
                        if not self.read_side.wait("audit", folded + 1, self.idle, self._stop):
                            self._stop.wait(max(0.0, self.idle - (time.monotonic() - started)))
            except Exception:  # noqa: BLE001 - database gone: give up the lead, stand by, retry
                log.warning("webhook delivery: giving up the lead", exc_info=True)
            finally:
                self._leadership.release()
        self._leadership.close()


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat()
