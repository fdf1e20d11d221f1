#!/usr/bin/env bash
# Run Dockyard on its embedded default: SQLite metadata and filesystem blobs under ./data,
# listening on 127.0.0.1:5000. No other service is needed. Extra arguments go to
# `dockyard serve` (e.g. --listen 0.0.0.0:5000, --database-url postgresql://...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_venv
cd "$ROOT"
DATA_DIR=${DOCKYARD_DATA_DIR:-./data}
# The admin verbs are not on PATH: say where they are and which data they will find.
echo "Admin commands: $VENV/bin/dockyard --help (run from $ROOT, or add --data-dir $(realpath -m "$DATA_DIR"))" >&2
exec "$VENV/bin/dockyard" serve --data-dir "$DATA_DIR" \
  --listen "${DOCKYARD_LISTEN:-127.0.0.1:5000}" "$@"
