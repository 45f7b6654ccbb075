"""First-start set-up of the Docker Compose deployment (``docker-compose.yaml``), after ``airflow db migrate``.

    python scripts/compose_init.py airflow                        # service airflow-init
    python scripts/compose_init.py sandbox --env-file FILE        # service airflow-sandbox-init (profile sandbox)

``airflow``:

- creates the state store's PostgreSQL database when it does not exist: the one the
  ``AIRFLOW_CONN_PROVISIONING_STATE`` of this process's environment names (through the server's
  ``postgres`` maintenance database); the engine creates its tables on first use;
- stores every ``AIRFLOW_CONN_*`` and ``AIRFLOW_VAR_*`` of its environment in Airflow's metadata
  database unless one with that id is there already: they are defaults, what a person changed
  in the UI stays;
- writes certifi's CA bundle to ``--trust-bundle`` (default ``$REQUESTS_CA_BUNDLE``, which every
  Airflow service of the deployment names) unless that file exists.

``sandbox``: waits for the env file of ``python -m include.sandbox up --env-file FILE``, stores its
connections and variables, replacing earlier ones (the sandbox is what this deployment talks to
now), and rewrites ``--trust-bundle`` as certifi's bundle plus the sandbox CA, so the Salesforce
provider's Test button (which verifies with whatever ``requests`` trusts) accepts the emulator.

Connections and variables go through ``airflow connections import`` and ``airflow variables
import``, one call each, as ``scripts/standalone.sh`` stores them: in the database the UI lists them
and a person can edit and test them, where environment variables would win and stay hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python scripts/compose_init.py`
    sys.path.insert(0, str(REPO_ROOT))

from include.provisioning.settings import state_url_from_env  # noqa: E402
from include.sandbox.core.envfile import read_env_file, write_trust_bundle  # noqa: E402

CONN_PREFIX = "AIRFLOW_CONN_"
VAR_PREFIX = "AIRFLOW_VAR_"
MAINTENANCE_DATABASE = "postgres"


def split_settings(settings: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The connections (``AIRFLOW_CONN_<ID>``: JSON as a dict, a URI as given) and variables
    (``AIRFLOW_VAR_<KEY>``) among ``settings``, keyed by lower-case id as ``airflow ... import`` takes them."""
    connections: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for key, value in settings.items():
        if key.startswith(CONN_PREFIX):
            text = value.strip()
            connections[key[len(CONN_PREFIX) :].lower()] = json.loads(text) if text.startswith("{") else text
        elif key.startswith(VAR_PREFIX):
            variables[key[len(VAR_PREFIX) :].lower()] = value
    return connections, variables


def airflow_command() -> str:
    """The ``airflow`` next to this interpreter (a virtualenv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("airflow")
    return str(beside) if beside.exists() else "airflow"


def store_in_airflow(connections: Mapping[str, Any], variables: Mapping[str, str], *, overwrite: bool) -> None:
    """Import into Airflow's metadata database; ``overwrite=False`` keeps what is there already."""
    airflow = airflow_command()
    # The files hold secrets: a private temporary folder, removed at once.
    with tempfile.TemporaryDirectory(prefix="compose-init-") as tmp:
        if connections:
            path = Path(tmp) / "connections.json"
            path.write_text(json.dumps(connections), encoding="utf-8")
            flags = ["--overwrite"] if overwrite else []
            subprocess.run([airflow, "connections", "import", *flags, str(path)], check=True)
        if variables:
            path = Path(tmp) / "variables.json"
            path.write_text(json.dumps(variables), encoding="utf-8")
            action = "overwrite" if overwrite else "skip"
            subprocess.run([airflow, "variables", "import", "--action-on-existing-key", action, str(path)], check=True)


def ensure_state_database(environ: Mapping[str, str]) -> str | None:
    """Create the PostgreSQL database the ``provisioning_state`` connection names, if missing.

    Returns the name of the database it created, or None (it existed, or the store is SQLite)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(state_url_from_env(environ))
    if url.get_backend_name() != "postgresql" or not url.database:
        return None
    engine = create_engine(url.set(database=MAINTENANCE_DATABASE), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database})
            if found:
                return None
            conn.execute(text(f"CREATE DATABASE {conn.dialect.identifier_preparer.quote(url.database)}"))
    finally:
        engine.dispose()
    return url.database


def write_default_trust_bundle(out: Path) -> bool:
    """certifi's bundle at ``out`` unless the file exists (the sandbox's may be there already)."""
    if out.exists():
        return False
    import certifi

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.copyfile(certifi.where(), tmp)
    tmp.replace(out)
    return True


def wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {path} did not appear within {timeout:.0f} s (is the sandbox service running?)")
        time.sleep(0.5)


def init_airflow(args: argparse.Namespace) -> int:
    created = ensure_state_database(os.environ)
    if created:
        print(f"Created the state store's database {created!r}", flush=True)
    connections, variables = split_settings(os.environ)
    store_in_airflow(connections, variables, overwrite=False)
    if args.trust_bundle and write_default_trust_bundle(args.trust_bundle):
        print(f"Wrote the CA bundle {args.trust_bundle}", flush=True)
    return 0


def init_sandbox(args: argparse.Namespace) -> int:
    wait_for_file(args.env_file, args.wait)
    settings = read_env_file(args.env_file)
    connections, variables = split_settings(settings)
    store_in_airflow(connections, variables, overwrite=True)
    if args.trust_bundle:
        # Base: certifi's bundle (environ={}), not REQUESTS_CA_BUNDLE, which names this very file.
        write_trust_bundle(Path(settings["SANDBOX_CA_BUNDLE"]), out=args.trust_bundle, environ={})
        print(f"Wrote the CA bundle {args.trust_bundle} (certifi's and the sandbox CA)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/compose_init.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    default_bundle = Path(os.environ["REQUESTS_CA_BUNDLE"]) if os.environ.get("REQUESTS_CA_BUNDLE") else None
    bundle_help = "the CA bundle to write (default: $REQUESTS_CA_BUNDLE; none when unset)"

    airflow = sub.add_parser("airflow", help="state database, default connections and variables, CA bundle")
    airflow.add_argument("--trust-bundle", type=Path, default=default_bundle, help=bundle_help)
    airflow.set_defaults(func=init_airflow)

    sandbox = sub.add_parser("sandbox", help="the sandbox's connections and variables, and its CA")
    sandbox.add_argument("--env-file", type=Path, required=True, help="the sandbox's env file (up --env-file)")
    sandbox.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the env file")
    sandbox.add_argument("--trust-bundle", type=Path, default=default_bundle, help=bundle_help)
    sandbox.set_defaults(func=init_sandbox)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
