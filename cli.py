"""The `dockyard` command: `serve`, and the admin verbs admins script.

    dockyard serve --data-dir DIR --listen HOST:PORT [--database-url URL] [--storage URL]
    dockyard projections rebuild [--data-dir DIR | --database-url URL]
    dockyard projections status
    dockyard audit query|export [filters]
    dockyard events tail [-n N]
    dockyard gc run [--dry-run] [--explain] [--grace-hours H]
    dockyard storage migrate --to URL [--from URL]
    dockyard users list|create NAME [--role R]|set-role NAME --role R|set-password NAME|deactivate NAME|activate NAME
    dockyard uploads purge [--older-than-hours H] [--dry-run]
    dockyard backup DIR | restore DIR [--storage URL]

`serve` creates its data directory (or the tables in its PostgreSQL database) on first start.
Every other verb works on an existing one: it says on stderr which one it uses, and refuses
one that is not there (run it where `serve` ran, or pass --data-dir / --database-url).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from dockyard import cli_read

if TYPE_CHECKING:  # pydantic and the settings are imported where they are used: not in serve's supervisor
    from dockyard.api.settings import Settings


class CliError(Exception):
    """A problem the user can fix: printed as one line (`error: …`), exit status 2."""


def _settings(args: argparse.Namespace) -> Settings:
    from dockyard.api.settings import Settings

    overrides = {k: v for k, v in {
        "data_dir": getattr(args, "data_dir", None), "listen": getattr(args, "listen", None),
        "database_url": getattr(args, "database_url", None), "storage": getattr(args, "storage", None),
        "workers": getattr(args, "workers", None), "log_format": getattr(args, "log_format", None),
        "tls": getattr(args, "tls", None) or None, "tls_cert": getattr(args, "tls_cert", None),
        "tls_key": getattr(args, "tls_key", None),
    }.items() if v is not None}
    return Settings(**overrides)


def _open_registry(settings: Settings):  # noqa: ANN202
    """The `Registry` of an event log that already exists; says on stderr which one it is."""
    from dockyard import bootstrap
    from dockyard.commands import store_location

    problem = store_location.missing_event_log(settings.data_dir, settings.database_url)
    if problem:
        raise CliError(f"{problem}; run this where `dockyard serve` ran, or pass --data-dir or --database-url "
                       "(DOCKYARD_DATA_DIR, DOCKYARD_DATABASE_URL)")
    print(f"dockyard: using {store_location.describe(settings.data_dir, settings.database_url)}", file=sys.stderr)
    return bootstrap.open_registry(settings.data_dir, settings.database_url)


def _exported(settings: Settings) -> dict[str, str]:
    """The environment that hands the settings to worker processes (they rebuild Settings)."""
    return {f"DOCKYARD_{field.upper()}": str(value) for field, value in settings.model_dump().items()
            if value is not None}


def _check_stores(settings: Settings) -> None:
    """Refuse, in one line and before anything is created, a storage or database URL that cannot work."""
    from dockyard.commands import store_location
    from dockyard.storage import StorageConfigError, open_store

    if settings.database_url:  # first: a filesystem store, once opened, has created its folder
        problem = store_location.database_unreachable(settings.database_url)
        if problem:
            raise CliError(problem)
    try:
        open_store(settings.storage_url)
    except StorageConfigError as exc:
        raise CliError(f"storage: {exc}") from None


def _bind(settings: Settings) -> socket.socket:
    """A socket bound to `--listen` and listening, for uvicorn to serve on.

    Bound here rather than inside uvicorn so that a busy or invalid address is one line and
    exit status 2 before anything is created, and "serving on" is printed only once the port
    is ours (connections that arrive before the app has started wait in the backlog).
    """
    try:
        host, port = settings.host.strip("[]"), settings.port
    except (ValueError, IndexError):
        raise CliError(f"--listen {settings.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:5000") from None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        hint = ("; another process is listening there: stop it or choose another address with --listen"
                if getattr(exc, "errno", None) == errno.EADDRINUSE else "")
        raise CliError(f"cannot listen on {settings.listen}: {reason}{hint}") from None
    sock.set_inheritable(True)
    return sock


def serve(args: argparse.Namespace) -> int:
    """Run the registry: first-start work in a short-lived child process, then the workers.

    Everything that needs the application (settings, the stores, the event log, the first admin,
    TLS files) runs in a child forked for it (`_prepare`): it prints what serve says at start
    (the admin password, once; "serving on") or its one-line error, and hands this process the
    bound socket and what uvicorn needs. So this process, which stays for the server's life as
    the supervisor of `--workers N` (supervisor.py), holds neither the app nor uvicorn: each
    worker imports them itself (worker.py). With one worker this process is the worker.
    Exit status: the child's when it fails (2 for a `CliError`), else as before: 3 when one
    worker's app did not start, 0 after a stop.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        ours.close()
        os._exit(_prepare_child(args, theirs))
    theirs.close()
    try:
        received, fds, _, _ = socket.recv_fds(ours, 1 << 16, 1)
        while more := ours.recv(1 << 16):
            received += more
    except KeyboardInterrupt:  # Ctrl-C reached the child too: it stops, and so do we
        received, fds = b"", []
    finally:
        ours.close()
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status != 0 or not fds:
        for fd in fds:
            os.close(fd)
        return status if status > 0 else 128 - status if status < 0 else 1
    plan = json.loads(received)
    sock = socket.socket(fileno=fds[0])
    os.environ.update(plan.pop("env"))  # the settings, for the workers (they rebuild Settings)
    metrics_dir = _metrics_dir()
    if plan["workers"] > 1:
        from dockyard.supervisor import Supervisor, configure_logging

        configure_logging(plan)
        Supervisor(sock, plan).run()
    else:
        import uvicorn

        from dockyard.worker import STARTUP_FAILURE, config, tune_malloc

        tune_malloc()
        server = uvicorn.Server(config(plan))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)  # the application did not start (logged above)
    if metrics_dir.startswith(tempfile.gettempdir() + os.sep + "dockyard-metrics-"):
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _prepare_child(args: argparse.Namespace, channel: socket.socket) -> int:
    """`serve`'s child: `_prepare`, then the socket and the plan to the parent; the exit status."""
    try:
        sock, plan = _prepare(args)
        socket.send_fds(channel, [json.dumps(plan).encode()], [sock.fileno()])
        return 0
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # as an uncaught exception would: its traceback, status 1
        import traceback

        traceback.print_exc()
        return 1
    finally:
        channel.close()
        sys.stdout.flush()
        sys.stderr.flush()


def _prepare(args: argparse.Namespace) -> tuple[socket.socket, dict[str, Any]]:
    """What `serve` does before uvicorn starts: bind, check the stores, create the admin on first
    start, TLS files; says so on stdout. The bound socket, and the plan for the parent (JSON)."""
    from dockyard import bootstrap
    from dockyard.commands.accounts import ADMIN
    from dockyard.domain.errors import InvalidRequest

    settings = _settings(args)
    sock = _bind(settings)  # first: the filesystem store, once opened, has created its folder
    _check_stores(settings)
    # First start: create the admin once, here, before any worker runs.
    registry = bootstrap.open_registry(settings.data_dir, settings.database_url)
    try:
        accounts = bootstrap.accounts(registry, settings)
        admin_existed = accounts.identity_view.user(ADMIN) is not None
        generated = accounts.ensure_admin(settings.admin_password)
        tls_files = _tls_files(settings, registry)
    except InvalidRequest as exc:  # DOCKYARD_ADMIN_PASSWORD breaks the password policy
        raise CliError(f"DOCKYARD_ADMIN_PASSWORD: {exc.message}") from None
    finally:
        registry.close()
    if generated:
        print(f"Created user 'admin' with password: {generated}\n(shown once; set DOCKYARD_ADMIN_PASSWORD "
              "to choose it on a fresh data directory)", flush=True)
    elif settings.admin_password and admin_existed:
        print("WARNING:  DOCKYARD_ADMIN_PASSWORD ignored: user 'admin' already exists here, with the password "
              "it was given then (change it with `dockyard users set-password admin`)", file=sys.stderr, flush=True)
    scheme = "https" if tls_files else "http"
    print(f"Dockyard serving on {scheme}://{settings.listen} (data: {os.path.abspath(settings.data_dir)}, "
          f"metadata: {'PostgreSQL' if settings.database_url else 'SQLite'})", flush=True)
    tls = None if tls_files is None else {"certfile": tls_files[0], "keyfile": tls_files[1],
                                          "generated": not settings.tls_cert}
    return sock, {"env": _exported(settings), "host": settings.host, "port": settings.port,
                  "workers": settings.workers, "log_level": settings.log_level, "log_format": settings.log_format,
                  "keepalive": settings.keepalive_timeout_seconds, "tls": tls}


def _tls_files(settings: Settings, registry: Any) -> tuple[str, str] | None:
    """(certificate chain, key) files for --tls: the given ones, or a certificate from the local
    CA for the domain name (Settings > General), else the listen host. None without --tls."""
    if not settings.tls:
        return None
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise CliError("--tls-cert and --tls-key go together")
        for path in (settings.tls_cert, settings.tls_key):
            if not os.path.isfile(path):
                raise CliError(f"--tls: no file {path}")
        return settings.tls_cert, settings.tls_key
    from pathlib import Path

    from dockyard.api import tls
    from dockyard.commands.general_settings import General
    from dockyard.commands.secrets import SecretStore

    name = General(registry).domain_name() or settings.host
    chain, key = tls.leaf(SecretStore(registry), name)
    return tls.write_pair(Path(settings.data_dir) / "tls", chain, key)


def _metrics_dir() -> str:
    """The folder where every worker's metrics go (prometheus-client's multiprocess mode), emptied
    now so that an earlier run's counts are not added to this one's: PROMETHEUS_MULTIPROC_DIR if
    the operator set it, else a fresh temporary folder removed when serve ends. Set before
    prometheus-client is imported here or in a worker: it reads the variable on import."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="dockyard-metrics-")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def rebuild(args: argparse.Namespace) -> int:
    if getattr(args, "names", None) or getattr(args, "all", False):
        return cli_read.projections_rebuild(args)
    from dockyard.projections.rebuild import rebuild_registry_view

    registry = _open_registry(_settings(args))
    try:
        count = rebuild_registry_view(registry)
    finally:
        registry.close()
    print(f"registry view rebuilt from {count} events")
    return 0


def tail(args: argparse.Namespace) -> int:
    import importlib
    import pkgutil

    import orjson

    import dockyard.domain

    # Every aggregate module, so that every stored topic resolves (e.g. dockyard.LoginGuard.*).
    for module in pkgutil.iter_modules(dockyard.domain.__path__):
        importlib.import_module(f"dockyard.domain.{module.name}")
    registry = _open_registry(_settings(args))
    try:
        last = registry.recorder.max_notification_id() or 0
        start = max(0, last - args.n)
        for n in registry.recorder.select_notifications(start, args.n, inclusive_of_start=False):
            event = registry.mapper.to_domain_event(n)
            state = {k: v for k, v in event.__dict__.items() if k not in ("payload",)}
            line = {"position": n.id, "topic": n.topic, **{k: str(v) if not isinstance(v, int | list | dict | None)
                                                              else v for k, v in state.items()}}
            print(orjson.dumps(line).decode())
    finally:
        registry.close()
    return 0


def _registry(args: argparse.Namespace):  # noqa: ANN202
    return _open_registry(_settings(args))


def backup_cmd(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from dockyard.commands.backup import BackupError, backup

    settings = _settings(args)
    _open_registry(settings).close()  # refuses a data dir or database that is not there, says which
    try:
        report = backup(settings.data_dir, settings.database_url, Path(args.out))
    except (BackupError, OSError) as exc:
        raise CliError(f"backup: {exc}") from None
    print(json.dumps(report))
    return 0


def restore_cmd(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from dockyard.commands.backup import BackupError, restore
    from dockyard.storage import blob_key, open_store

    settings = _settings(args)
    store = open_store(settings.storage_url)
    try:
        report = restore(Path(args.source), settings.data_dir, settings.database_url,
                         lambda digest: store.exists(blob_key(digest)))
    except (BackupError, OSError, KeyError, ValueError) as exc:
        raise CliError(f"restore: {exc}") from None
    print(json.dumps(report))
    if report["missingBlobs"]:
        print(f"dockyard: {len(report['missingBlobs'])} referenced blobs are not in {settings.storage_url}: "
              "the images using them will not pull until they are copied there", file=sys.stderr)
    return 0


def _blob_store(settings: Settings, registry):  # noqa: ANN001, ANN202 - a Registry; a BlobStore
    """The store the registry uses: Settings > Storage when one was chosen at run time, else --storage.
    A store that cannot be opened is a one-line `CliError` naming what is wrong."""
    from dockyard import bootstrap
    from dockyard.commands.secrets import SecretStore
    from dockyard.storage import StorageConfigError, StorageError, open_store

    setting = bootstrap.storage_setting(registry, SecretStore(registry))
    try:
        return setting.open_current() if setting.version() else open_store(settings.storage_url)
    except (StorageConfigError, StorageError) as exc:
        raise CliError(f"storage: {exc}") from None


def _read_password(name: str) -> str:
    """The password for `name`: DOCKYARD_USER_PASSWORD, else asked on the terminal (never read from a pipe)."""
    import getpass

    password = os.environ.get("DOCKYARD_USER_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise CliError(f"no terminal to ask for the password of {name!r}: set DOCKYARD_USER_PASSWORD")
    try:
        return getpass.getpass(f"password for {name}: ")
    except (EOFError, KeyboardInterrupt):
        raise CliError("no password given") from None


def users(args: argparse.Namespace) -> int:
    """`dockyard users list|create|set-role|set-password|deactivate|activate`."""
    from dockyard import bootstrap
    from dockyard.domain.errors import DomainError

    registry = _registry(args)
    try:
        # The invariants are the commands': the password policy, the last active admin, namespaces.
        accounts = bootstrap.accounts(registry, _settings(args))
        if args.verb == "list":
            for row in accounts.identity_view.accounts("user"):
                print(f"{row['name']}\t{row['role']}\t{row['source']}\t{'active' if row['active'] else 'inactive'}")
            return 0
        password = None
        if args.verb in ("create", "set-password"):
            password = _read_password(args.name)
        if args.verb == "create":
            accounts.create_user(args.name, password or "", args.role)
        elif args.verb == "set-role":
            accounts.update_user(args.name, role=args.role)
        elif args.verb == "set-password":
            accounts.update_user(args.name, password=password or "")
        else:
            accounts.update_user(args.name, active=args.verb == "activate")
        print(f"{args.verb}: {args.name}")
        return 0
    except DomainError as exc:
        print(f"error: {exc.message} {exc.detail or ''}", file=sys.stderr)
        return 1
    finally:
        registry.close()


def uploads(args: argparse.Namespace) -> int:
    """`dockyard uploads purge`: delete upload sessions abandoned longer than the age given."""
    from datetime import timedelta

    from dockyard import bootstrap
    from dockyard.gc.upload_purge import purge_uploads

    settings = _settings(args)
    registry = _registry(args)  # first: opening a filesystem store creates its folder
    try:
        store = _blob_store(settings, registry)
        sessions = bootstrap.upload_sessions(store, registry)
        hours = settings.upload_purge_age_hours if args.older_than_hours is None else args.older_than_hours
        purged = purge_uploads(sessions, timedelta(hours=hours), dry_run=args.dry_run)
        for upload_id in purged:
            print(upload_id)
        print(f"{'would purge' if args.dry_run else 'purged'} {len(purged)} upload session(s) "
              f"started more than {hours:g} h ago", file=sys.stderr)
        return 0
    finally:
        registry.close()


def gc(args: argparse.Namespace) -> int:
    """`dockyard gc run [--dry-run] [--explain]`: one garbage collection now, with a progress bar;
    the report (and, with --explain, why each blob stays or goes) as JSON on stdout."""
    import orjson
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dockyard.domain.errors import DomainError
    from dockyard.gc.collector import GarbageCollector

    settings = _settings(args)
    registry = _registry(args)  # first: opening a filesystem store creates its folder
    try:
        store = _blob_store(settings, registry)
        collector = GarbageCollector(registry, store)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=None if sys.stderr.isatty() else _quiet_console(), transient=False) as bar:
            tasks: dict[str, object] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    label = "mark (events)" if phase == "mark" else "sweep (blobs)"
                    tasks[phase] = bar.add_task(label, total=total or 1)
                bar.update(tasks[phase], completed=done if total else 1, total=total or 1)  # type: ignore[arg-type]

            report = collector.run(dry_run=args.dry_run, grace_hours=args.grace_hours, progress=progress)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        registry.close()
    print(orjson.dumps(report.as_dict(explain=args.explain), option=orjson.OPT_INDENT_2).decode())
    print(f"{'would delete' if args.dry_run else 'deleted'} {report.candidates if args.dry_run else report.deleted} "
          f"blob(s), kept {report.kept}, {report.bytes_freed} bytes freed, {len(report.errors)} error(s)",
          file=sys.stderr)
    return 1 if report.errors else 0


def _quiet_console():  # noqa: ANN202 - rich's Console, imported lazily
    """Not a terminal: rich draws nothing live, only the finished bars."""
    from rich.console import Console

    return Console(file=sys.stderr, force_terminal=False)


def _chosen_store(settings: Settings):  # noqa: ANN202 - (url, BlobStore) or None
    """The URL and store chosen under Settings > Storage, if the registry has an event log and one
    was chosen; None otherwise. A chosen store that cannot be opened is a one-line `CliError`."""
    from dockyard import bootstrap
    from dockyard.commands import store_location
    from dockyard.commands.secrets import SecretStore
    from dockyard.storage import StorageError

    if store_location.missing_event_log(settings.data_dir, settings.database_url):
        return None
    registry = bootstrap.open_registry(settings.data_dir, settings.database_url)
    try:
        setting = bootstrap.storage_setting(registry, SecretStore(registry))
        if not setting.version():
            return None
        try:
            return setting.current()["url"], setting.open_current()
        except StorageError as exc:
            raise CliError(f"storage: the store chosen under Settings > Storage: {exc}") from None
    finally:
        registry.close()


def storage(args: argparse.Namespace) -> int:
    """`dockyard storage migrate --to URL`: copy every blob to another store, verified, resumable."""
    from urllib.parse import urlparse

    from dockyard.storage import StorageConfigError, open_store
    from dockyard.storage.migrate import migrate, progress_bar

    settings = _settings(args)
    source_url, chosen = args.source or settings.storage_url, None
    if not args.source:  # the store the registry uses: Settings > Storage when one was chosen at run time
        chosen = _chosen_store(settings)
        if chosen is not None:
            source_url = f"{chosen[0]} (Settings > Storage)"
    parsed = urlparse(source_url)
    if chosen is None and parsed.scheme in ("", "file") and \
            not os.path.isdir(parsed.path if parsed.scheme else source_url):
        print(f"error: no blobs at {source_url}: name the data directory (--data-dir) or --from URL", file=sys.stderr)
        return 2
    try:
        source, destination = chosen[1] if chosen else open_store(source_url), open_store(args.to)
    except StorageConfigError as exc:
        print(f"error: storage: {exc}", file=sys.stderr)
        return 2
    print(f"migrating blobs from {source_url} to {args.to}", file=sys.stderr)
    state = migrate(source, destination, progress_bar())
    for key, reason in state.failed.items():
        print(f"failed: {key}: {reason}", file=sys.stderr)
    print(f"copied {state.copied} blob(s) ({state.copied_bytes / 2**20:.1f} MiB), {state.skipped} already there, "
          f"{len(state.failed)} failed", file=sys.stderr)
    return 1 if state.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockyard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="embedded SQLite and blobs live here (DOCKYARD_DATA_DIR)")
        p.add_argument("--database-url", help="postgresql://user:pass@host:port/db (DOCKYARD_DATABASE_URL)")

    p = sub.add_parser("serve", help="run the registry")
    common(p)
    p.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:5000)")
    p.add_argument("--storage", help="blob storage URL (default file://DATA_DIR/blobs)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--tls", action="store_true", help="serve HTTPS (DOCKYARD_TLS=1)")
    p.add_argument("--tls-cert", help="PEM certificate chain (default: one from Dockyard's own CA)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--log-format", choices=("text", "json"), help="log lines as text (default) or JSON lines")
    p.set_defaults(func=serve)

    p = sub.add_parser("projections", help="read models")
    psub = p.add_subparsers(dest="verb", required=True)
    r = psub.add_parser("rebuild", help="replay read models from the log: the inline registry view (no NAME), "
                        "or NAME/--all (followed ones into fresh tables, then an atomic swap)")
    common(r)
    r.set_defaults(func=rebuild)
    cli_read.add_rebuild_arguments(r)
    cli_read.add_status_parser(psub, common)
    cli_read.add_parsers(sub, common)

    p = sub.add_parser("events", help="the event log")
    esub = p.add_subparsers(dest="verb", required=True)
    t = esub.add_parser("tail", help="print the last N events as JSON lines")
    common(t)
    t.add_argument("-n", type=int, default=20)
    t.set_defaults(func=tail)

    p = sub.add_parser("uploads", help="blob upload sessions")
    usub = p.add_subparsers(dest="verb", required=True)
    u = usub.add_parser("purge", help="delete sessions abandoned longer than --older-than-hours")
    common(u)
    u.add_argument("--storage", help="blob storage URL (default file://DATA_DIR/blobs)")
    u.add_argument("--older-than-hours", type=float, help="default DOCKYARD_UPLOAD_PURGE_AGE_HOURS or 168")
    u.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    u.set_defaults(func=uploads)

    p = sub.add_parser("backup", help="copy the metadata online, with the list of blobs it references")
    common(p)
    p.add_argument("out", help="an empty or new directory")
    p.set_defaults(func=backup_cmd)
    p = sub.add_parser("restore", help="restore a backup into a new data directory or an empty database")
    common(p)
    p.add_argument("source", help="a directory written by `dockyard backup`")
    p.add_argument("--storage", help="blob storage URL to check for the referenced blobs (default file://DATA_DIR/blobs)")
    p.set_defaults(func=restore_cmd)

    p = sub.add_parser("gc", help="garbage collection")
    gsub = p.add_subparsers(dest="verb", required=True)
    g = gsub.add_parser("run", help="mark from the log, sweep unreferenced blobs from storage")
    common(g)
    g.add_argument("--storage", help="blob storage URL (default file://DATA_DIR/blobs)")
    g.add_argument("--dry-run", action="store_true", help="decide, delete nothing")
    g.add_argument("--explain", action="store_true", help="say for each blob why it stays or goes")
    g.add_argument("--grace-hours", type=float, help="override the recorded grace period")
    g.set_defaults(func=gc)

    p = sub.add_parser("storage", help="blob storage")
    ssub = p.add_subparsers(dest="verb", required=True)
    m = ssub.add_parser("migrate", help="copy every blob to another store (verified; run again to resume)")
    common(m)
    m.add_argument("--to", required=True, help="the destination storage URL")
    m.add_argument("--from", dest="source", help="the source storage URL (default: the store chosen under "
                   "Settings > Storage, else --storage, DOCKYARD_STORAGE or file://DATA_DIR/blobs)")
    m.add_argument("--storage", help=argparse.SUPPRESS)
    m.set_defaults(func=storage)

    p = sub.add_parser("users", help="manage users (password from DOCKYARD_USER_PASSWORD or a prompt)")
    usub = p.add_subparsers(dest="verb", required=True)
    for verb, needs_role in (("list", False), ("create", True), ("set-role", True), ("set-password", False),
                             ("deactivate", False), ("activate", False)):
        u = usub.add_parser(verb)
        common(u)
        if verb != "list":
            u.add_argument("name")
        if needs_role:
            u.add_argument("--role", choices=["none", "read-only", "read-write", "admin"],
                           required=verb == "set-role", default="none")
        u.set_defaults(func=users)

    args = parser.parse_args(argv)
    import getpass

    from dockyard.domain.actor import Actor, current_actor

    # Rule 6: an admin verb's events name the OS user. Not `serve`'s: there each request names
    # its own caller, and what runs on its own (first-start admin, GC, purges) is `system`.
    token = None if args.func is serve else current_actor.set(Actor(getpass.getuser(), "local"))
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if token is not None:
            current_actor.reset(token)


if __name__ == "__main__":
    sys.exit(main())
