"""Settings, from `DOCKYARD_*` environment variables or the command line (pydantic-settings)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dockyard.domain.account import MIN_PASSWORD_LENGTH


class Settings(BaseSettings):
    """Everything Dockyard reads at start-up.

    With no `database_url` metadata lives in SQLite under `data_dir`; with no `storage`, blobs
    live under `data_dir/blobs`. That is the embedded default: no other service needed.
    """

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="ignore")

    data_dir: str = "./data"
    listen: str = "127.0.0.1:5000"
    database_url: str | None = None
    storage: str | None = None
    admin_password: str | None = None
    # The URL clients use to reach the registry (token realm); derived from each request if unset.
    public_url: str | None = None
    token_service: str = "dockyard"
    token_ttl_seconds: int = 300
    # Worker processes; 0 (unset) means the default chosen in `_default_workers`.
    workers: int = Field(0, ge=0)
    # Upload sessions not finished this long after they started are deleted, checked every
    # `upload_purge_interval_hours` (0 turns the check off). Distribution's defaults.
    upload_purge_age_hours: float = 168.0
    upload_purge_interval_hours: float = 24.0
    log_level: str = "info"
    tls: bool = False  # serve HTTPS on the listen address (api/tls.py)
    tls_cert: str | None = None  # PEM chain; with tls_key. Neither: a certificate from the local CA
    tls_key: str | None = None
    # What this process's log lines are tagged with in the shared `Logs` view (api/shared_logs.py);
    # unset: hostname:pid. Every worker of a `dockyard serve` shares it.
    replica_name: str | None = None
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per log line (api/log_format.py)
    # The password policy: the least number of characters a password may have (API, portal, CLI).
    password_min_length: int = Field(MIN_PASSWORD_LENGTH, ge=1)
    # A portal session ends after this long without a request.
    portal_idle_minutes: float = 30.0
    # Sign a checkpoint of the audit chain after this many events (or 60 s of event time).
    audit_checkpoint_every: int = 1000
    # A webhook's delivery history keeps its latest this many attempts (and every failed one
    # whose event is not delivered yet); the delivery runner prunes the rest.
    webhook_history: int = 500
    # Open upload sessions one user (an anonymous client: one address) may hold; 429 beyond.
    # A push uses up to ~5 at once; abandoned ones count until purged, hence the margin.
    max_upload_sessions_per_user: int = 1000
    # Request limits the HTTP server enforces before the app sees a request (api/http_limits.py).
    # nginx reads at most 4 x 8 KiB of request line and headers, Apache at most 100 header fields.
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    header_timeout_seconds: float = 10.0  # from connect, or a request's first byte, to its last header
    keepalive_timeout_seconds: int = 5  # an idle connection between requests (uvicorn's default)
    body_stall_timeout_seconds: float = 60.0  # no byte of a request body for this long (nginx: 60 s)

    @model_validator(mode="after")
    def _default_workers(self) -> Settings:
        """One worker per core, as Distribution uses every core, on PostgreSQL and SQLite alike.
        (SQLite had one until its writers queued outside the library's pool for up to
        `DOCKYARD_SQLITE_WRITE_WAIT`: before, two workers' concurrent pushes ran out the
        library's 5 s wait. With two, quiet: small-image pushes 52 against 37.5 images/s and
        manifest GETs 1,907 against 1,159 req/s: benchmarks/RESULTS.md, session 4.)"""
        if self.workers == 0:
            self.workers = os.cpu_count() or 1
        return self

    @property
    def storage_url(self) -> str:
        return self.storage or "file://" + os.path.join(os.path.abspath(self.data_dir), "blobs")

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])
