"""A real Airflow server for the tests and the benchmark commands: ``airflow standalone`` (or
``airflow api-server`` alone) in its own AIRFLOW_HOME, configured by ``scripts/airflow_env.sh`` like
every Airflow command of the project.

``AirflowServer(home, extra_env).start()`` picks a free port, starts the command in a new process
group, waits until ``/api/v2/monitor/health`` reports the wanted components healthy, and logs in
through SimpleAuthManager (``POST /auth/token`` with the password Airflow generated in
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``). ``stop()`` sends SIGINT to the
main process (SIGTERM would leave the standalone's children running) and then cleans up whatever
of its process group is still alive.

Everything the processes print goes to ``log_path``; failures quote its tail.

``airflow_environment(home)`` is the project's Airflow configuration (``scripts/airflow_env.sh``),
read from the script itself so the tests, the benchmarks and the documented commands cannot drift
apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]

STANDALONE_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
"""What ``/api/v2/monitor/health`` must report healthy before ``airflow standalone`` is usable."""
API_SERVER_COMPONENTS = ("metadatabase",)
"""An api-server alone has no scheduler; its database is what it needs."""


def airflow_environment(airflow_home: Path) -> dict[str, str]:
    """The variables ``scripts/airflow_env.sh`` exports for ``airflow_home`` (only those it sets)."""
    script = f'. "{REPO_ROOT}/scripts/airflow_env.sh" "{airflow_home}" >/dev/null; env -0'
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"}).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("AIRFLOW") or k == "PYTHONPATH"}


def sandbox_airflow_env(settings: Mapping[str, str], home: Path) -> dict[str, str]:
    """What Airflow processes need to work against a running sandbox, for ``extra_env``.

    ``settings`` are the sandbox's env-file values (``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``,
    ``SANDBOX_*``). Added: ``REQUESTS_CA_BUNDLE`` at a bundle that also trusts the sandbox CA (the
    Salesforce provider's hook verifies with whatever requests trusts), and a
    ``provisioning_state`` connection to a SQLite file in ``home``, so a server never writes the
    repository's own ``.state/``.
    """
    from include.sandbox.core.envfile import write_trust_bundle

    state = {"conn_type": "provisioning_state", "extra": {"sqlite_path": str(home / "provisioning-state.db")}}
    return {
        **settings,
        "REQUESTS_CA_BUNDLE": str(write_trust_bundle(Path(settings["SANDBOX_CA_BUNDLE"]))),
        "AIRFLOW_CONN_PROVISIONING_STATE": json.dumps(state),
    }


def free_port() -> int:
    """A TCP port nothing listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_sigint() -> None:
    # A shell that starts a job in the background sets SIGINT to "ignore", and exec keeps that;
    # Python then never raises KeyboardInterrupt and Airflow would not stop on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class AirflowServer:
    """One Airflow server process tree for tests.

    :param home: AIRFLOW_HOME (created; holds airflow.cfg, the SQLite database, logs, ``server.log``).
    :param extra_env: variables on top of the project's Airflow environment, e.g. the sandbox's
        ``AIRFLOW_CONN_*`` settings or ``AIRFLOW__CORE__TEST_CONNECTION``; they win over everything.
    :param command: the ``airflow`` subcommand, ``("standalone",)`` or ``("api-server",)``.
    :param components: health components that must be healthy before ``start`` returns
        (default: all of them for standalone, the database for an api-server).
    """

    def __init__(
        self,
        home: Path,
        extra_env: Mapping[str, str] | None = None,
        *,
        command: tuple[str, ...] = ("standalone",),
        components: Iterable[str] | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.home = home
        self.command = command
        self.components = tuple(
            components or (STANDALONE_COMPONENTS if command[0] == "standalone" else API_SERVER_COMPONENTS)
        )
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "server.log"
        self.headers: dict[str, str] = {}
        self.env = self._environment(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    def _environment(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        # Start from the test process's environment without its own Airflow settings (conftest
        # points those at the in-process AIRFLOW_HOME), then the project's configuration for this
        # home, then what a test server needs, then the caller's variables.
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        venv_bin = str(Path(sys.executable).parent)
        base["PATH"] = f"{venv_bin}{os.pathsep}{base.get('PATH', '')}"  # standalone runs "airflow" by name
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**base, **airflow_environment(self.home)}
        env.update(
            {
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                # Tasks reach the execution API at [api] base_url; the default names port 8080.
                "AIRFLOW__API__BASE_URL": f"{self.url}/",
                # The scheduler and the triggerer serve task logs on fixed ports (8793, 8794) by
                # default: two servers on one machine (parallel sessions) would collide.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # The scheduler signs task tokens that the api-server checks: one secret for both.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        env.update(extra_env)
        return env

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> AirflowServer:
        """Start, wait for health and log in. Raises ``RuntimeError`` with the log's tail when the
        process dies or is not healthy within ``startup_timeout`` seconds (the tree is stopped)."""
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "airflow"), *self.command],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, so stop() reaches every child
                preexec_fn=_default_sigint,  # noqa: PLW1509 (only resets a signal disposition)
            )
        finally:
            log.close()
        try:
            self._wait_healthy()
            self.headers = {"Authorization": f"Bearer {self._token()}"}
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"airflow {' '.join(self.command)} exited with {self.proc.returncode}:\n{self.tail()}"
                    )
                try:
                    health = client.get("/api/v2/monitor/health")
                    if health.status_code == 200:
                        body = health.json()
                        states = {name: (body.get(name) or {}).get("status") for name in self.components}
                        if all(state == "healthy" for state in states.values()):
                            return
                        last = f"health: {states}"
                    else:
                        last = f"health answered {health.status_code}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"airflow {' '.join(self.command)} not healthy after {self.startup_timeout:.0f}s ({last}):\n"
                        f"{self.tail()}"
                    )
                time.sleep(0.5)

    def _token(self) -> str:
        """A JWT for the generated ``admin`` user (SimpleAuthManager writes the password file
        before it serves; an env-configured user list is read the same way)."""
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + 30
        while not password_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{password_file} was not written:\n{self.tail()}")
            time.sleep(0.2)
        username, password = next(iter(json.loads(password_file.read_text()).items()))
        answer = httpx.post(f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST /auth/token answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["access_token"])

    def stop(self, grace: float = 40.0) -> int | None:
        """Stop the tree; returns the main process's exit status (None if it never started).

        SIGINT goes to the main process only: ``airflow standalone`` then sends SIGTERM to each
        component and waits for them. Signalling the whole group as well delivers SIGINT and
        SIGTERM to each component at once, which left the triggerer deadlocked (observed on 3.3.2).
        Whatever is left in the group after ``grace`` seconds gets SIGTERM, then SIGKILL.
        """
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None:
            return None
        return stop_group(self.proc, signal.SIGINT, grace, escalate=(signal.SIGTERM, signal.SIGKILL))

    def __enter__(self) -> AirflowServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- talking to it ----------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` on ``url`` carrying the JWT (closed by ``stop``)."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, headers=self.headers, timeout=120)
        return self._client

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request, e.g. ``server.api("POST", "/api/v2/connections/test", json=...)``."""
        return self.client.request(method, path, **kwargs)

    def tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server's log (for failure messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def stop_group(
    proc: subprocess.Popen[bytes], first: signal.Signals, grace: float, *, escalate: tuple[signal.Signals, ...]
) -> int | None:
    """Stop a process started with ``start_new_session`` and every process of its group.

    ``first`` goes to the leader only; after ``grace`` seconds each of ``escalate`` goes to the whole
    group in turn (10 s apart); whatever outlived the leader then gets SIGTERM, then SIGKILL.
    Returns the leader's exit status."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    if proc.poll() is None:
        proc.send_signal(first)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            for n, sig in enumerate(escalate):
                _signal_group(pgid, sig)
                try:
                    proc.wait(timeout=None if n == len(escalate) - 1 else 10)
                    break
                except subprocess.TimeoutExpired:
                    continue
    for sig in (signal.SIGTERM, signal.SIGKILL, None):  # children that outlived the leader
        deadline = time.monotonic() + 10
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _group_members(pgid) or sig is None:
            break  # (after SIGKILL, the wait above gives the kernel time to end them on a busy machine)
        _signal_group(pgid, sig)
    return proc.returncode


def group_members(pgid: int) -> list[int]:
    """Processes still alive in the group ``pgid``."""
    return _group_members(pgid)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of group ``pgid``, read from /proc (Linux)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members
