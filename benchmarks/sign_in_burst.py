#!/usr/bin/env python3
"""Parallel sign-ins with the same credentials on a cold cache — what a pull's parallel token
requests do once the remembered sign-in expired — counted and timed.

    .venv/bin/python benchmarks/sign_in_burst.py [LABEL] [--threads 8] [--bursts 5]

Real argon2 parameters, SQLite in a temp dir. Prints the argon2 checks of each burst and the
median wall and process CPU per burst. PYTHONPATH at an exported tree measures another commit.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from typing import Any

from argon2 import PasswordHasher

from dockyard.bootstrap import registry_on, views
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("label", nargs="?", default="")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--bursts", type=int, default=5)
    a = p.parse_args()
    checks = [0]
    verify = PasswordHasher.verify

    def counting(self: PasswordHasher, *args: Any) -> Any:
        checks[0] += 1
        return verify(self, *args)

    with tempfile.TemporaryDirectory() as data:
        registry = registry_on(event_store_env(data, None))
        try:
            registry_view, identity_view = views(registry)
            accounts = Accounts(registry, identity_view, Identity(registry, registry_view, identity_view),
                                AccessTokens(registry, identity_view))
            accounts.create_user("kara", "kara-password", "read-write")
            PasswordHasher.verify = counting  # type: ignore[method-assign]
            walls, cpus, counts = [], [], []
            for _ in range(a.bursts):
                accounts.forget_cached()
                checks[0] = 0
                threads = [threading.Thread(target=accounts.authenticate, args=("kara", "kara-password"))
                           for _ in range(a.threads)]
                c0, t0 = time.process_time(), time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                counts.append(checks[0])
        finally:
            PasswordHasher.verify = verify  # type: ignore[method-assign]
            registry.close()
    print(f"{a.label} argon2 checks per burst {counts}, wall ms median {statistics.median(walls) * 1000:.0f}, "
          f"cpu ms median {statistics.median(cpus) * 1000:.0f}")


if __name__ == "__main__":
    main()
