# Shared by serve.sh and test.sh: install what is missing, on a fresh Debian/Ubuntu machine too.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

as_root() {  # run a command as root (directly, or through sudo for a normal user)
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {  # apt_install PKG... — only those not yet installed
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "${missing[@]}"
}

ensure_venv() {  # ensure_venv [EXTRAS] — the project venv with dockyard installed (editable)
  local extras=${1:-}
  if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "Dockyard needs Python 3.11 or newer as python3" >&2; exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
  fi
  local stamp="$VENV/.installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    [ -f "$VENV/.installed" ] || echo "installing Dockyard and its dependencies into $VENV (first start only)" >&2
    quiet_pip "$VENV" install --upgrade pip
    quiet_pip "$VENV" install -e "$ROOT${extras:+[$extras]}"
    "$VENV/bin/python" -c "import dockyard.api.app" && touch "$stamp"
  fi
}

quiet_pip() {  # quiet_pip VENV PIP-ARGS... — pip -q, without the two notices that are not for the user:
  # - "Location '…' is ignored": this machine's pip.conf names local indexes some packages are not in;
  # - setuptools' "Editable installation." (an InformationOnly warning that recent pip, 26.3 here, prints):
  #   setuptools says it when it installs a package whose folder is not named after it through an
  #   import hook. Ours is the repository root mapped to `dockyard` (package-dir in pyproject.toml);
  #   the hook is what keeps `import dockyard` pointing at this tree, so the notice tells us nothing.
  local venv=$1; shift
  PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/python" -m pip -q "$@" 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
}
