#!/usr/bin/env bash
# Run Dockyard on its embedded default: SQLite metadata and filesystem blobs under ./data,
# listening on 127.0.0.1:5000. No other service is needed. Extra arguments go to
# `dockyard serve` (e.g. --listen 0.0.0.0:5000, --database-url postgresql://...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_venv
cd "$ROOT"
exec "$VENV/bin/dockyard" serve --data-dir "${DOCKYARD_DATA_DIR:-./data}" \
  --listen "${DOCKYARD_LISTEN:-127.0.0.1:5000}" "$@"
