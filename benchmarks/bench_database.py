"""The PostgreSQL database a benchmark fills: a URL without a database name
(`postgresql://postgres@127.0.0.1:5432`) gets a fresh `dockyard_bench_<hex>`, dropped at the end;
a named database, or no URL (SQLite), is used as it is."""

from __future__ import annotations

import uuid


def _server(url: str) -> str:
    return url.rstrip("/") + "/postgres"


def fresh_database(url: str | None) -> tuple[str | None, str | None]:
    """(the URL to open, the name of the database made for it, to pass to `drop_database`)."""
    if not url or url.rstrip("/").count("/") != 2:  # SQLite, or a database named already
        return url, None
    import psycopg

    name = "dockyard_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(_server(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rstrip("/") + "/" + name, name


def drop_database(url: str | None, name: str | None) -> None:
    """Drop `name` (made by `fresh_database(url)`); nothing when None."""
    if url and name:
        import psycopg

        with psycopg.connect(_server(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
