"""``docker-compose.yaml``, ``Dockerfile`` and ``.dockerignore``, checked without Docker (no engine here).

- The compose file is validated by a compose client's ``config`` when one is installed (Debian's
  ``docker-compose`` or the ``docker compose`` plugin, neither needs an engine for it) and always
  read with PyYAML for its structure: the services of Airflow's official file, ``x-airflow-common``
  merged into each Airflow service, healthchecks, ``depends_on`` conditions, profiles, one JWT
  secret, the image built from the Dockerfile.
- Its commands are the ones the tests run: each Airflow command (service commands, healthchecks,
  the image's default) is parsed by the installed Airflow's own CLI parser under the compose
  environment (CeleryExecutor); the sandbox's and the SMTP catcher's commands go through their own
  ``main`` with only the servers left out; ``airflow-init``'s and ``airflow-sandbox-init``'s
  commands run for real against PostgreSQL.
- The Dockerfile installs ``requirements.txt`` with ``constraints.txt`` (the tree installed here),
  the provider package and what the product runs, with the project's Airflow configuration
  (``scripts/airflow_env.sh``); ``.dockerignore`` lets exactly that into the build context.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from tests.airflow.airflow_env import airflow_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGE_ROOT = "/opt/airflow"
"""Where the Dockerfile puts the repository (also AIRFLOW_HOME)."""

AIRFLOW_SERVICES = {
    "airflow-apiserver": "airflow api-server",
    "airflow-scheduler": "airflow scheduler",
    "airflow-dag-processor": "airflow dag-processor",
    "airflow-worker": "airflow celery worker",
    "airflow-triggerer": "airflow triggerer",
}
"""The long-running Airflow services of the official file and their commands."""
PROFILES = {"sandbox": {"sandbox", "airflow-sandbox-init"}, "mail": {"smtp-catcher"}}
DELIBERATE_OVERRIDES = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
}
"""Where the deployment differs from scripts/airflow_env.sh, and why (see docker-compose.yaml): the
executor of the official file, and a DAG that waits to be unpaused after a person checked its connections."""
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


# -- reading the files ---------------------------------------------------------------------------


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution (``${VAR}``, ``${VAR:-default}``, ``$$``) through a value."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        found = env.get(name)
        if found is None or (found == "" and op and op.startswith(":")):
            if op and op.endswith("?"):
                raise ValueError(f"${{{name}}} is required: {arg}")
            return arg or ""
        return found

    return _VARIABLE.sub(substitute, value)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as compose reads it: YAML merge keys applied, variables substituted
    (defaults unless ``env`` sets them)."""
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")), env or {})


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def command_lines(argv: list[str]) -> list[list[str]]:
    """The commands a service runs: ``bash -c "A && B && exec C"`` is A, B and C."""
    if argv[:2] != ["bash", "-c"]:
        return [argv]
    lines = [shlex.split(part) for part in argv[2].split("&&")]
    return [line[1:] if line[0] == "exec" else line for line in lines]


def healthcheck_lines(test: list[str]) -> list[list[str]]:
    if test[0] == "CMD":
        return [test[1:]]
    assert test[0] == "CMD-SHELL", test
    return [shlex.split(part) for part in test[1].split("||")]


def all_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv)`` for every command in the compose file and the image's default command."""
    found = []
    for name, service in SERVICES.items():
        if "command" in service:
            found.extend((name, line) for line in command_lines(argv_of(service["command"])))
        if "healthcheck" in service:
            for line in healthcheck_lines(service["healthcheck"]["test"]):
                found.append((f"{name} healthcheck", line))
    found.append(("Dockerfile CMD", json.loads(dockerfile_instructions()["CMD"][-1])))
    return found


def dockerfile_instructions() -> dict[str, list[str]]:
    """Instruction → its arguments, in order (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            found.setdefault(instruction.upper(), []).append(" ".join(rest.split()))
    return found


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in dockerfile_instructions()["ENV"]:
        env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def script_environment(tmp_path: Path) -> dict[str, str]:
    """What scripts/airflow_env.sh exports, with the repository and AIRFLOW_HOME at IMAGE_ROOT."""
    home = tmp_path / "airflow-home"
    return {
        key: IMAGE_ROOT if key == "AIRFLOW_HOME" else value.replace(str(REPO_ROOT), IMAGE_ROOT)
        for key, value in airflow_environment(home).items()
    }


def local_environment(container_env: dict[str, str], home: Path) -> dict[str, str]:
    """A container's environment for a process on this machine: the image's code paths at the
    repository, AIRFLOW_HOME and the volumes under ``home``."""

    def local(value: str) -> str:
        if value == IMAGE_ROOT or value.startswith(tuple(f"{IMAGE_ROOT}/{d}" for d in ("dags", "plugins", "include"))):
            return value.replace(IMAGE_ROOT, str(REPO_ROOT), 1)
        return value.replace(IMAGE_ROOT, str(home), 1) if value.startswith(IMAGE_ROOT) else value

    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update({key: local(value) for key, value in container_env.items()})
    env["AIRFLOW_HOME"] = str(home)
    if os.environ.get("PYTHONPATH"):  # what this test process imports stays importable
        env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{os.environ['PYTHONPATH']}"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def service_environment(name: str) -> dict[str, str]:
    """What a container of service ``name`` starts with: the image's ENV, then the service's."""
    return {**dockerfile_env(), **{key: str(value) for key, value in SERVICES[name].get("environment", {}).items()}}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


COMPOSE_NEEDS = {
    "apache-airflow-providers-celery": "CeleryExecutor, `airflow celery worker` and the worker's healthcheck",
    "asyncpg": "the async engine Airflow derives for a PostgreSQL metadata database (postgresql+asyncpg)",
}
"""Distributions the deployment needs beyond what the development machines use (SQLite, LocalExecutor)."""
REQUIRED = pins(REPO_ROOT / "requirements.txt")


# -- a compose client, when one is installed -----------------------------------------------------


def compose_client() -> list[str] | None:
    """``docker compose`` (plugin) or ``docker-compose`` (Debian's package), whichever works."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return command
    return None


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    """The file as the installed compose client reads it (all profiles), after ``config --quiet``
    accepted it with each combination of profiles."""
    client = compose_client()
    assert client is not None, (
        "no compose client: `bash scripts/setup.sh --tests` installs Debian's docker-compose (as root), "
        "or install it yourself"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    base = [*client, "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]
    for profiles in ([], ["sandbox"], ["mail"], ["sandbox", "mail"]):
        flags = [flag for profile in profiles for flag in ("--profile", profile)]
        result = subprocess.run(
            [*base, *flags, "config", "--quiet"], capture_output=True, text=True, env=env, check=False
        )
        assert result.returncode == 0, f"{' '.join(client)} config {' '.join(flags)}:\n{result.stderr}"
    result = subprocess.run(
        [*base, "--profile", "sandbox", "--profile", "mail", "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def test_a_compose_client_reads_the_file_as_this_test_does(compose_config: dict[str, Any]) -> None:
    their = compose_config["services"]
    assert set(their) == set(SERVICES)
    for name, service in SERVICES.items():
        # The client writes its output for re-use, with $ escaped again.
        if "command" in service:
            assert argv_of(interpolate(their[name]["command"], {})) == argv_of(service["command"]), name
        theirs = {key: str(value) for key, value in their[name].get("environment", {}).items()}
        assert interpolate(theirs, {}) == {key: str(v) for key, v in service.get("environment", {}).items()}, name
        assert their[name].get("profiles", []) == service.get("profiles", []), name


# -- structure -----------------------------------------------------------------------------------


def test_the_services_of_airflows_official_file_plus_the_optional_profiles() -> None:
    always = {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}
    assert {name for name, s in SERVICES.items() if not s.get("profiles")} == always
    for profile, names in PROFILES.items():
        assert {name for name, s in SERVICES.items() if profile in s.get("profiles", [])} == names
    for name, command in AIRFLOW_SERVICES.items():
        assert argv_of(SERVICES[name]["command"]) == command.split(), name
    assert "x-airflow-common" in COMPOSE and "x-project-image" in COMPOSE


def test_every_service_of_the_project_runs_the_image_built_from_the_dockerfile() -> None:
    project = [name for name, s in SERVICES.items() if name not in ("postgres", "redis")]
    assert len(project) == 9
    images = {SERVICES[name]["image"] for name in project}
    assert images == {"entra-salesforce-provisioning:local"}
    for name in project:
        assert SERVICES[name]["build"] == "." and SERVICES[name]["init"] is True, name
    assert DOCKERFILE.is_file()


def test_airflow_services_share_one_configuration_from_x_airflow_common() -> None:
    common = COMPOSE["x-airflow-common"]["environment"]
    airflow = [*AIRFLOW_SERVICES, "airflow-init", "airflow-sandbox-init"]
    for name in airflow:
        env = SERVICES[name]["environment"]
        assert {key: env[key] for key in common} == common, f"{name} overrides x-airflow-common"
        assert SERVICES[name]["volumes"] == COMPOSE["x-airflow-common"]["volumes"], name
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # One JWT secret and one API secret key for every component, whatever .env says.
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        custom = load_compose({key: "from-dot-env"})["services"]
        assert {custom[name]["environment"][key] for name in airflow} == {"from-dot-env"}, key
        assert len(common[key]) >= 32, key
    # Every address names a service of this file.
    postgres = SERVICES["postgres"]["environment"]
    login = f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres/{postgres['POSTGRES_DB']}"
    assert common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"postgresql+psycopg2://{login}"
    assert common["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+postgresql://{login}"
    assert common["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    assert common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "8080:8080" in SERVICES["airflow-apiserver"]["ports"]


def test_the_image_and_the_services_carry_the_projects_airflow_configuration(tmp_path: Path) -> None:
    project = script_environment(tmp_path)
    assert dockerfile_env().items() >= project.items(), "the Dockerfile's ENV differs from scripts/airflow_env.sh"
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        effective = service_environment(name)
        differs = {key: effective[key] for key, value in project.items() if effective[key] != value}
        assert differs == DELIBERATE_OVERRIDES, name
    assert project["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert project["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_healthchecks_and_start_order_follow_the_official_file() -> None:
    for name, service in SERVICES.items():
        if name not in ("airflow-init", "airflow-sandbox-init"):
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
            assert service["restart"] == "always", name
        else:
            assert "restart" not in service and "healthcheck" not in service, name
    base = {"postgres": "service_healthy", "redis": "service_healthy"}
    for name in AIRFLOW_SERVICES:
        wanted = {**base, "airflow-init": "service_completed_successfully"}
        if name == "airflow-worker":
            wanted["airflow-apiserver"] = "service_healthy"
        assert {dep: c["condition"] for dep, c in SERVICES[name]["depends_on"].items()} == wanted, name
    assert {dep: c["condition"] for dep, c in SERVICES["airflow-init"]["depends_on"].items()} == base
    sandbox_init = {dep: c["condition"] for dep, c in SERVICES["airflow-sandbox-init"]["depends_on"].items()}
    assert sandbox_init == {**base, "airflow-init": "service_completed_successfully", "sandbox": "service_healthy"}
    # A service without a profile never waits for one with a profile (compose refuses to start it
    # when that profile is off).
    profiled = {name for name, s in SERVICES.items() if s.get("profiles")}
    for name, service in SERVICES.items():
        if not service.get("profiles"):
            assert not profiled & set(service.get("depends_on", {})), name
    health = " ".join(SERVICES["airflow-apiserver"]["healthcheck"]["test"])
    assert "http://localhost:8080/api/v2/monitor/health" in health


def test_the_state_store_lives_in_its_own_database_on_the_postgres_service() -> None:
    from include.provisioning.settings import state_url_from_env

    init_env = SERVICES["airflow-init"]["environment"]
    url = state_url_from_env({"AIRFLOW_CONN_PROVISIONING_STATE": init_env["AIRFLOW_CONN_PROVISIONING_STATE"]})
    postgres = SERVICES["postgres"]["environment"]
    login = f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
    assert url == f"postgresql+psycopg2://{login}@postgres:5432/provisioning"
    assert postgres["POSTGRES_DB"] != "provisioning"


def test_smtp_default_reaches_the_catcher_of_the_mail_profile() -> None:
    from scripts.smtp_catcher import DEFAULT_FROM, DEFAULT_TO, smtp_connection

    argv = argv_of(SERVICES["smtp-catcher"]["command"])
    port = int(argv[argv.index("--port") + 1])
    init_env = SERVICES["airflow-init"]["environment"]
    assert json.loads(init_env["AIRFLOW_CONN_SMTP_DEFAULT"]) == smtp_connection("smtp-catcher", port)
    assert smtp_connection("smtp-catcher", port)["extra"]["from_email"] == DEFAULT_FROM
    assert init_env["AIRFLOW_VAR_PROVISIONING_NOTIFICATION_EMAIL"] == DEFAULT_TO
    assert str(port) in [str(p) for p in SERVICES["smtp-catcher"]["expose"]]


def test_the_sandbox_env_file_and_ca_travel_through_the_shared_volume() -> None:
    (up,) = [line for line in command_lines(argv_of(SERVICES["sandbox"]["command"])) if line[3:4] == ["up"]]
    env_file, ca_dir = up[up.index("--env-file") + 1], up[up.index("--ca-dir") + 1]
    init = argv_of(SERVICES["airflow-sandbox-init"]["command"])
    assert init[init.index("--env-file") + 1] == env_file
    assert SERVICES["sandbox"]["healthcheck"]["test"] == ["CMD", "test", "-f", env_file]
    assert up[up.index("--public-host") + 1] == "sandbox"
    assert {str(p) for p in SERVICES["sandbox"]["expose"]} == {
        up[up.index("--graph-port") + 1],
        up[up.index("--salesforce-port") + 1],
    }
    # Everyone who reads the env file or the CA it names mounts the volume they are on.
    for name in ["sandbox", "airflow-sandbox-init", *AIRFLOW_SERVICES]:
        (shared,) = [v.split(":")[1] for v in SERVICES[name]["volumes"] if v.startswith("shared:")]
        assert env_file.startswith(f"{shared}/") and ca_dir.startswith(f"{shared}/"), name
    bundle = COMPOSE["x-airflow-common"]["environment"]["REQUESTS_CA_BUNDLE"]
    assert bundle.startswith(f"{shared}/")


# -- every command is one the tests run ------------------------------------------------------------

COMMAND_KINDS = {
    ("airflow",): "test_airflow_commands_parse_with_the_installed_airflow",
    ("python", "-m", "include.sandbox"): "test_the_sandbox_command_parses_with_the_sandbox_cli",
    ("python", "scripts/smtp_catcher.py"): "test_the_smtp_catcher_command_parses_with_the_catchers_own_main",
    ("python", "scripts/compose_init.py"): "test_the_init_services_commands_run_against_postgresql",
    ("python", "-c"): "compiled by test_every_command_is_one_the_tests_run",
    ("celery", "--app", CELERY_APP): "test_the_workers_healthcheck_names_the_celery_app_of_the_installed_provider",
    ("rm", "-f"): "shell: removes the sandbox's env file of an earlier run",
    ("test", "-f"): "shell: the sandbox's readiness (its env file)",
    ("pg_isready",): "the postgres image's own",
    ("redis-cli", "ping"): "the redis image's own",
}
"""Each kind of command in the file, and the test that runs or parses it."""


def test_every_command_is_one_the_tests_run() -> None:
    """A command added to the file without a test that runs or parses it fails here."""
    for where, argv in all_commands():
        kinds = [prefix for prefix in COMMAND_KINDS if tuple(argv[: len(prefix)]) == prefix]
        assert kinds, f"{where}: {shlex.join(argv)} is run or parsed by no test (see COMMAND_KINDS)"
        if argv[:2] == ["python", "-c"]:
            compile(argv[2], where, "exec")
        if argv[:1] in (["pg_isready"], ["redis-cli"]):
            assert where.split()[0] in ("postgres", "redis"), where


def _airflow_commands() -> list[Any]:
    params = []
    for where, argv in all_commands():
        if argv[0] != "airflow":
            continue
        params.append(pytest.param(argv, id=f"{where}: {' '.join(argv)}"))
    return params


PARSE_SCRIPT = r"""
import contextlib, importlib, io, json, sys
from airflow.cli import cli_parser

parser = cli_parser.get_parser()
results = {}
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
        results[" ".join(argv)] = "ok"
    except SystemExit:
        results[" ".join(argv)] = err.getvalue().strip()[-500:]
try:
    module, _, name = sys.argv[2].rpartition(".")
    app = getattr(importlib.import_module(module), name)
    from celery.bin.celery import celery as celery_cli
    results["celery app"] = "ok" if type(app).__name__ == "Celery" and "inspect" in celery_cli.commands else repr(app)
except Exception as exc:
    results["celery app"] = repr(exc)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def airflow_parse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every ``airflow ...`` command of the file through the installed Airflow's CLI parser, in one
    process configured like an Airflow container of the file (CeleryExecutor: the ``celery``
    commands exist only then). Parsing runs nothing; the command's own tests run it."""
    home = tmp_path_factory.mktemp("airflow-parse")
    env = local_environment(service_environment("airflow-worker"), home)
    commands = [argv[1:] for _, argv in all_commands() if argv[0] == "airflow"]
    result = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, json.dumps(commands), CELERY_APP],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", _airflow_commands())
def test_airflow_commands_parse_with_the_installed_airflow(argv: list[str], airflow_parse: dict[str, str]) -> None:
    assert airflow_parse[" ".join(argv[1:])] == "ok"


def test_the_workers_healthcheck_names_the_celery_app_of_the_installed_provider(
    airflow_parse: dict[str, str],
) -> None:
    worker = " ".join(SERVICES["airflow-worker"]["healthcheck"]["test"])
    assert f"celery --app {CELERY_APP} inspect ping" in worker
    assert airflow_parse["celery app"] == "ok"


def test_requirements_pin_what_the_compose_deployment_needs() -> None:
    assert "psycopg2-binary" in REQUIRED  # postgresql+psycopg2: metadata, Celery results, state store
    missing = {name: why for name, why in COMPOSE_NEEDS.items() if name not in REQUIRED}
    assert missing == {}


def test_the_sandbox_command_parses_with_the_sandbox_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.sandbox import __main__ as sandbox_cli

    lines = command_lines(argv_of(SERVICES["sandbox"]["command"]))
    assert [line[:2] for line in lines] == [["rm", "-f"], ["python", "-m"], ["python", "-m"]]
    calls: list[Any] = []
    monkeypatch.setattr(sandbox_cli, "_generate", lambda args: calls.append(args) or 0)
    monkeypatch.setattr(sandbox_cli, "_up", lambda args: calls.append(args) or 0)
    for line in lines[1:]:
        assert line[:3] == ["python", "-m", "include.sandbox"]
        assert sandbox_cli.main(line[3:]) == 0
    generate, up = calls
    assert (generate.users, generate.seed) == (2000, 42)
    assert up.tenant == generate.out / "tenant.json" and up.org == generate.out / "org.json"
    assert (up.host, up.public_host, up.graph_port, up.salesforce_port) == ("0.0.0.0", "sandbox", 9443, 9444)


def test_the_smtp_catcher_command_parses_with_the_catchers_own_main(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import smtp_catcher

    class CatcherStartedError(Exception):
        pass

    started: dict[str, Any] = {}

    class Catcher:  # the server itself is tested with the real one (tests/airflow/test_notify.py)
        def __init__(self, host: str, port: int, **kwargs: Any) -> None:
            started.update(host=host, port=port, **kwargs)

        def __enter__(self) -> None:
            raise CatcherStartedError

        def __exit__(self, *exc: object) -> None:
            pass

    argv = argv_of(SERVICES["smtp-catcher"]["command"])
    assert argv[:2] == ["python", "scripts/smtp_catcher.py"]
    monkeypatch.setattr(smtp_catcher, "MailCatcher", Catcher)
    monkeypatch.setattr(smtp_catcher.signal, "signal", lambda *args: None)
    with pytest.raises(CatcherStartedError):
        smtp_catcher.main(argv[2:])
    assert (started["host"], started["port"]) == ("0.0.0.0", 1025)
    assert str(started["folder"]).startswith(f"{IMAGE_ROOT}/shared/")


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, list[str]]]:
    """A throwaway database on 127.0.0.1:5432 for Airflow's metadata; also drops whatever other
    database name the test appends to the returned list."""
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    name = f"compose_airflow_{uuid.uuid4().hex[:10]}"
    created = [name]
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, created
    finally:
        with admin.cursor() as cursor:
            for database in created:
                cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.postgres
def test_compose_init_creates_the_state_database_once(postgres_database: tuple[str, list[str]]) -> None:
    from scripts.compose_init import ensure_state_database, split_settings

    _, created = postgres_database
    name = f"compose_state_{uuid.uuid4().hex[:10]}"
    created.append(name)
    state = {"conn_type": "provisioning_state", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}
    env = {"AIRFLOW_CONN_PROVISIONING_STATE": json.dumps(state)}
    assert ensure_state_database(env) == name
    assert ensure_state_database(env) is None  # there already
    assert ensure_state_database({}) is None  # no connection: the engine's SQLite file
    connections, variables = split_settings({**env, "AIRFLOW_CONN_X": "smtp://h:25", "AIRFLOW_VAR_Y": "1", "Z": "2"})
    assert connections == {"provisioning_state": state, "x": "smtp://h:25"}
    assert variables == {"y": "1"}


@pytest.mark.postgres
def test_the_init_services_commands_run_against_postgresql(
    tmp_path: Path, postgres_database: tuple[str, list[str]]
) -> None:
    """airflow-init's and airflow-sandbox-init's commands as written, with the compose environment;
    only the addresses change (PostgreSQL on 127.0.0.1 for the service "postgres")."""
    from include.sandbox.core.envfile import sandbox_settings, write_env_file
    from include.sandbox.core.tls import ensure_tls
    from tests.sandbox_process import FIXTURES

    metadata_db, created = postgres_database
    state_db = f"compose_state_{uuid.uuid4().hex[:10]}"
    created.append(state_db)
    local_pg = "postgres@127.0.0.1:5432"
    env = local_environment(service_environment("airflow-init"), tmp_path)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"postgresql+psycopg2://{local_pg}/{metadata_db}"
    state = json.loads(env["AIRFLOW_CONN_PROVISIONING_STATE"])
    assert (state["host"], state["schema"]) == ("postgres", "provisioning")
    state.update(host="127.0.0.1", login="postgres", password=None, schema=state_db)
    env["AIRFLOW_CONN_PROVISIONING_STATE"] = json.dumps(state)
    bundle = Path(env["REQUESTS_CA_BUNDLE"])
    assert bundle == tmp_path / "shared" / "trust-bundle.pem"

    for argv in command_lines(argv_of(SERVICES["airflow-init"]["command"])):
        _run(argv, env)
    import certifi

    assert bundle.read_text() == Path(certifi.where()).read_text()

    # What the sandbox writes, here without starting it: its env file and CA in the shared volume.
    up = command_lines(argv_of(SERVICES["sandbox"]["command"]))[-1]
    env_file = Path(local_environment({"F": up[up.index("--env-file") + 1]}, tmp_path)["F"])
    ca_dir = Path(local_environment({"F": up[up.index("--ca-dir") + 1]}, tmp_path)["F"])
    tls = ensure_tls(ca_dir)
    tenant = json.loads((FIXTURES / "example-tenant.json").read_text())
    org = json.loads((FIXTURES / "example-org.json").read_text())
    env_file.parent.mkdir(parents=True, exist_ok=True)
    write_env_file(
        env_file, sandbox_settings(tenant, org, "https://sandbox:9443", "https://sandbox:9444", tls.ca_bundle)
    )
    sandbox_env = local_environment(service_environment("airflow-sandbox-init"), tmp_path)
    sandbox_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    (line,) = command_lines(argv_of(SERVICES["airflow-sandbox-init"]["command"]))
    line = [str(env_file) if arg.endswith("sandbox.env") else arg for arg in line]
    _run(line, sandbox_env)
    assert tls.ca_bundle.read_text().strip() in bundle.read_text()
    assert Path(certifi.where()).read_text().strip()[:2000] in bundle.read_text()

    with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=metadata_db) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT conn_id, conn_type, host FROM connection ORDER BY conn_id")
        connections = {conn_id: (conn_type, host) for conn_id, conn_type, host in cursor.fetchall()}
        cursor.execute("SELECT key FROM variable ORDER BY key")
        variables = [key for (key,) in cursor.fetchall()]
    assert connections == {
        "msgraph_default": ("msgraph", "sandbox"),
        "provisioning_state": ("provisioning_state", "127.0.0.1"),
        "salesforce_default": ("salesforce", None),
        "smtp_default": ("smtp", "smtp-catcher"),
    }
    assert variables == ["entra_service_principal_id", "provisioning_notification_email"]
    with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=state_db):
        pass  # airflow-init created the state store's database


# -- the Dockerfile and its build context ----------------------------------------------------------


def test_the_image_installs_the_pinned_tree_the_tests_run_against() -> None:
    instructions = dockerfile_instructions()
    assert re.fullmatch(r"python:3\.11-slim(-bookworm)?", instructions["FROM"][0])
    assert sys.version_info[:2] == (3, 11)
    runs = [run for run in instructions["RUN"] if "pip install" in run]
    assert runs == [
        "pip install -r requirements.txt -c constraints.txt",
        "pip install --no-deps ./providers/entra-provisioning",
    ]
    copies = instructions["COPY"]
    assert copies[0] == "requirements.txt constraints.txt ./", "the pins come first: code changes keep that layer"
    # Every direct pin is the one of the resolved tree, and that tree is what is installed here.
    constraints = pins(REPO_ROOT / "constraints.txt")
    for name, version in pins(REPO_ROOT / "requirements.txt").items():
        assert constraints.get(name) == version, name
    drift = {name: (version, importlib.metadata.version(name)) for name, version in constraints.items()}
    assert {name: pair for name, pair in drift.items() if pair[0] != pair[1]} == {}


def test_the_image_holds_what_the_commands_run_and_runs_as_a_user() -> None:
    instructions = dockerfile_instructions()
    copied = {args.split()[0] for args in instructions["COPY"][1:]}
    assert copied == {"providers/entra-provisioning", "dags", "plugins", "include", "scripts"}
    for _, argv in all_commands():
        for arg in argv:
            if arg.startswith("scripts/"):
                assert (REPO_ROOT / arg).is_file(), arg
    assert instructions["WORKDIR"] == [IMAGE_ROOT]
    (user,) = instructions["USER"]
    assert user not in ("root", "0")
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert text.rindex("\nRUN ") < text.index("\nUSER "), "installs run before the switch to the user"


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    parts = path.split("/")
    for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        raw = line.strip()
        if not raw or raw.startswith("#"):
            continue
        negate, pattern = raw.startswith("!"), raw.lstrip("!")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    sources = [
        "requirements.txt",
        "constraints.txt",
        "providers/entra-provisioning",
        "dags",
        "plugins",
        "include",
        "scripts",
    ]
    for path in tracked.splitlines():
        wanted = any(path == source or path.startswith(f"{source}/") for source in sources)
        assert _dockerignore_excludes(path) is not wanted, path
    for path in (".venv/bin/python", "providers/entra-provisioning/build/lib/x.py", "include/__pycache__/x.pyc"):
        assert _dockerignore_excludes(path), path
