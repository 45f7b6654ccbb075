#!/usr/bin/env bash
# Create or refresh the project's environment: .venv at the repository root with the pinned
# Python dependencies and the project's provider package; with --tests (scripts/test.sh) also the
# Node packages the jsforce contract test uses (the demo needs no Node), docker-compose and Debian's
# chromium for the browser test.
# Idempotent and quick when nothing changed (stamps hold the hashes of the dependency files and
# of the local provider package).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11 is required (python3.11 or python3 on PATH)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(pick_python)
  echo "==> creating .venv with $py"
  "$py" -m venv .venv
fi

stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-dev.txt constraints.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python dependencies (pinned by constraints.txt)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
  echo "$want" > "$stamp"
fi

# Debian's docker-compose validates docker-compose.yaml without a Docker engine (tests/test_compose.py).
if [ "${1:-}" = "--tests" ] && ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing docker-compose from Debian's packages (validates docker-compose.yaml)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  else
    echo "error: the tests validate docker-compose.yaml with a compose client; install docker-compose" >&2
    exit 1
  fi
fi

# Debian's chromium for the browser test (Playwright drives the system browser at this path; the
# project never downloads a browser with `playwright install`).
if [ "${1:-}" = "--tests" ] && [ ! -x /usr/lib/chromium/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium from Debian's packages (browser test of the Provisioning page)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "error: the browser test needs Debian's chromium (/usr/lib/chromium/chromium); apt-get install chromium" >&2
    exit 1
  fi
fi

# Node packages only for the tests (the jsforce contract test): `setup.sh --tests`.
if [ "${1:-}" = "--tests" ] && [ -f tests/js/package-lock.json ]; then
  node_stamp=.venv/.node-stamp
  node_want=$(sha256sum tests/js/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ] || [ ! -d tests/js/node_modules ]; then
    if ! command -v npm >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing Node.js and npm from Debian's packages (jsforce contract test)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
      else
        echo "error: npm is needed for the jsforce contract test; install Node.js >= 18" >&2
        exit 1
      fi
    fi
    echo "==> installing Node packages for tests/js (npm ci)"
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
    echo "$node_want" > "$node_stamp"
  fi
fi

# The project's own Airflow provider (connection types msgraph and provisioning_state; see
# providers/entra-provisioning/pyproject.toml). Installed as a regular package, like any provider
# in a production image; its own stamp reinstalls it whenever a file of it changes.
provider=providers/entra-provisioning
provider_stamp=.venv/.provider-stamp
provider_want=$(find "$provider" -type f -not -path '*/build/*' -not -path '*.egg-info/*' -not -path '*/__pycache__/*' \
  -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$provider_stamp" 2>/dev/null)" != "$provider_want" ]; then
  echo "==> installing the local Airflow provider ($provider)"
  .venv/bin/python -m pip install --quiet --no-deps --force-reinstall "./$provider"
  echo "$provider_want" > "$provider_stamp"
fi
# The project's own code is importable from the virtualenv in every process, whatever its working
# directory or Airflow's sys.path handling: the engine (`include`, at the repository root) and the
# Airflow glue (`entra_provisioning`, in plugins/, which the DAG file imports). A .pth file is what an
# editable install writes; rewritten on every run, so a moved checkout stays right.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$PWD" "$PWD/plugins" > "$site/entra_salesforce_provisioning.pth"

echo "==> environment ready: .venv ($(.venv/bin/python --version))"
