"""Connection settings, read the way Airflow reads them.

The engine runs both inside Airflow and from its own CLI. Both read the same
``AIRFLOW_CONN_<ID>`` environment variables (JSON or URI form, as Airflow accepts them), so
the sandbox's ``--env-file`` output works unchanged in either place. Inside Airflow the hooks
in ``plugins/`` build the same ``ConnectionSettings`` from Airflow's own connection objects.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from include.provisioning.errors import ConfigurationError

GRAPH_CONN_ID = "msgraph_default"
SALESFORCE_CONN_ID = "salesforce_default"
STATE_CONN_ID = "provisioning_state"
DEFAULT_STATE_URL = "sqlite:///.state/provisioning.db"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING_PATH = REPO_ROOT / "include" / "mappings" / "salesforce_user.yaml"
DEFAULT_SUITE_PATH = REPO_ROOT / "include" / "expectations" / "entra_users.json"


class SettingsError(ConfigurationError, ValueError):
    """A connection or setting is missing or malformed; the message says which and how to fix it."""


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
"""The one vocabulary of yes/no settings (environment, env files, Airflow extras and Variables)."""


def parse_bool(value: Any, name: str) -> bool:
    """A yes/no setting: a bool, or one of ``TRUE_WORDS`` / ``FALSE_WORDS`` (any case). Raises
    ``SettingsError`` naming the setting for anything else (``flase`` must not mean false)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise SettingsError(f"{name} must be true or false ({', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}), got {value!r}")


@dataclass(frozen=True)
class NumberRange:
    """The values a numeric setting allows: whole numbers or any finite number, between
    ``minimum`` and ``maximum`` (inclusive; either may be None for no bound), or strictly above
    ``minimum`` when ``above_minimum`` (a timeout of 0 s would fail every request). ``meaning``
    is added to the error message (``a share: 0.4 is 40 %``) so a percentage typed as 40 is
    recognised for what it is."""

    whole: bool = False
    minimum: float | None = 0
    maximum: float | None = None
    above_minimum: bool = False
    meaning: str = ""

    def allows(self, number: float) -> bool:
        if self.minimum is not None and (number <= self.minimum if self.above_minimum else number < self.minimum):
            return False
        return self.maximum is None or number <= self.maximum

    def describe(self) -> str:
        """``a whole number ≥ 0``, ``a number from 0 to 1 (a share: 0.4 is 40 %)``, ``a number > 0``."""
        noun = "a whole number" if self.whole else "a number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            text = f"{noun} from {_plain(low)} to {_plain(high)}"
        elif low is not None:
            text = f"{noun} {'>' if self.above_minimum else '≥'} {_plain(low)}"
        elif high is not None:
            text = f"{noun} ≤ {_plain(high)}"
        else:
            text = noun
        return f"{text} ({self.meaning})" if self.meaning else text


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


SHARE = NumberRange(minimum=0, maximum=1, meaning="a share: 0.4 is 40 %")
"""A fraction of a whole (stop and hold thresholds); 40 for 40 % would disable the check."""
COUNT = NumberRange(whole=True, minimum=0)
"""A count of users, failures or records."""
SECONDS = NumberRange(minimum=0, above_minimum=True, meaning="seconds")
"""A timeout: 0 would fail every request at once."""
MINUTES = NumberRange(minimum=0, above_minimum=True, meaning="minutes")
"""A lease's time to live: 0 would expire the lease as it is taken."""
PORT = NumberRange(whole=True, minimum=0, maximum=65535, meaning="0: none")
"""A connection's TCP port; 0 is none, as Airflow stores a connection without one (3.3.2's connection
list sends 0 for a missing port, and ``scripts/demo_services.sh`` writes it)."""


def parse_number(value: Any, name: str, allowed: NumberRange) -> int | float:
    """The one parser of numeric settings (environment, env files, Airflow Variables, connection
    extras, DAG params): an int or float, or text Python reads as one (``" 5 "``, ``"0.25"``,
    ``"1e3"``). Whole settings give an int (``5.0`` is 5). Raises ``SettingsError`` naming the
    setting, the value and ``allowed.describe()`` for text that is no number, a bool, NaN or an
    infinity, a fraction where a whole number is expected, and any value outside the range."""
    problem = SettingsError(f"{name}={value!r}: expected {allowed.describe()}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise problem
    number: int | float
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise problem from None
    else:
        number = value
    if isinstance(number, float):
        if not math.isfinite(number) or (allowed.whole and not number.is_integer()):
            raise problem
        if allowed.whole:
            number = int(number)
    if not allowed.allows(number):
        raise problem
    return number if allowed.whole else float(number)


def parse_verify(value: Any, name: str) -> str | bool | None:
    """TLS verification: None (unset: the client's default), a yes/no word (``parse_bool``), or the
    path of a CA bundle, which must exist (``verify=on`` is not a file named "on"). Raises
    ``SettingsError`` naming the setting."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in TRUE_WORDS | FALSE_WORDS:
        return parse_bool(text, name)
    if not Path(text).is_file():
        raise SettingsError(
            f"{name}={text!r} is neither true/false nor the path of a CA bundle file that exists on this machine"
        )
    return text


@dataclass(frozen=True)
class ConnectionSettings:
    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def require(self, *names: str) -> None:
        """Fail with one message naming every missing field (``login``, ``extra.tenant_id``...)."""
        missing = []
        for name in names:
            if name.startswith("extra."):
                if self.extra.get(name[6:]) in (None, ""):
                    missing.append(name)
            elif getattr(self, name) in (None, ""):
                missing.append(name)
        if missing:
            raise SettingsError(
                f"connection {self.conn_id!r} lacks {', '.join(missing)} "
                f"(set AIRFLOW_CONN_{self.conn_id.upper()} or the Airflow connection)"
            )


def _from_json(conn_id: str, raw: str) -> ConnectionSettings:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"AIRFLOW_CONN_{conn_id.upper()} must be a JSON object")
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"AIRFLOW_CONN_{conn_id.upper()}: extra is not valid JSON: {exc}") from exc
    port = data.get("port")
    return ConnectionSettings(
        conn_id=conn_id,
        conn_type=data.get("conn_type"),
        host=data.get("host"),
        port=_port(conn_id, port),
        schema=data.get("schema"),
        login=data.get("login"),
        password=data.get("password"),
        extra=dict(extra),
    )


def _port(conn_id: str, value: Any) -> int | None:
    """A connection's port through ``parse_number`` (``PORT``); None for none (unset, empty or 0)."""
    if value in (None, ""):
        return None
    return int(parse_number(value, f"AIRFLOW_CONN_{conn_id.upper()}: port", PORT)) or None


def _uri_port(conn_id: str, netloc: str) -> int | None:
    """The port of a URI's ``netloc`` (``urlsplit`` raises a bare ValueError for ``:abc`` or
    ``:70000``, without the setting's name)."""
    found = re.search(r":([^:\]]*)$", netloc.rpartition("@")[2])
    return _port(conn_id, found.group(1)) if found else None


def _from_uri(conn_id: str, raw: str) -> ConnectionSettings:
    parts = urlsplit(raw)
    extra: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "__extra__":
            extra.update(json.loads(value))
        else:
            extra[key] = value
    return ConnectionSettings(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_") or None,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=_uri_port(conn_id, parts.netloc),
        schema=unquote(parts.path.lstrip("/")) or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        extra=extra,
    )


def connection_from_env(conn_id: str, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
    """Read ``AIRFLOW_CONN_<CONN_ID>`` (JSON or URI form)."""
    env = os.environ if environ is None else environ
    raw = env.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not raw:
        raise SettingsError(
            f"connection {conn_id!r} is not configured: set AIRFLOW_CONN_{conn_id.upper()} "
            "(the sandbox writes it: .venv/bin/python -m include.sandbox up --env-file FILE)"
        )
    raw = raw.strip()
    return _from_json(conn_id, raw) if raw.startswith("{") else _from_uri(conn_id, raw)


def state_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """SQLAlchemy URL of the state store: ``AIRFLOW_CONN_PROVISIONING_STATE`` or a local SQLite file."""
    env = os.environ if environ is None else environ
    raw = env.get(f"AIRFLOW_CONN_{STATE_CONN_ID.upper()}")
    if not raw:
        return env.get("PROVISIONING_STATE_URL", DEFAULT_STATE_URL)
    raw = raw.strip()
    if raw.startswith("{"):
        return state_url_from_connection(_from_json(STATE_CONN_ID, raw))
    if raw.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg2://" + raw.split("://", 1)[1]
    return raw


def state_url_from_connection(conn: ConnectionSettings) -> str:
    """SQLAlchemy URL of the state store from a ``provisioning_state`` connection (the Airflow
    hook and ``AIRFLOW_CONN_PROVISIONING_STATE`` in JSON form both come here).

    In order: extra ``sqlalchemy_url`` as given; SQLite when extra ``sqlite_path`` is set or the
    type is ``sqlite`` (path in host, or in schema as Airflow parses ``sqlite:///path``); else
    PostgreSQL from host, port, schema (database), login and password, URL-quoted. Raises
    ``SettingsError`` naming the connection when it gives neither a SQLite path nor a host.
    """
    extra = conn.extra or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    sqlite_path = extra.get("sqlite_path") or ((conn.host or conn.schema) if conn.conn_type == "sqlite" else None)
    if sqlite_path:
        return f"sqlite:///{sqlite_path}"
    if not conn.host:
        raise SettingsError(
            f"connection {conn.conn_id!r} names no state database: set extra.sqlite_path (SQLite) or "
            "host, port, schema (database), login and password (PostgreSQL)"
        )
    user = quote(conn.login or "", safe="")
    auth = f"{user}:{quote(conn.password, safe='')}@" if conn.password else (f"{user}@" if user else "")
    port = f":{conn.port}" if conn.port else ""
    return f"postgresql+psycopg2://{auth}{conn.host}{port}/{quote(conn.schema or '', safe='')}"


@dataclass(frozen=True)
class SyncOptions:
    """Knobs of a cycle. Defaults follow Entra where it has one; each can be overridden by an
    ``AIRFLOW_VAR_PROVISIONING_<NAME>`` variable (Airflow Variables from the environment), within
    its range in ``SYNC_OPTION_RANGES`` (shares are fractions: 0.4 is 40 %)."""

    max_quarantine_share: float = 0.4
    """Stop before any write when more than this share of in-scope users fails validation."""
    deletion_threshold_count: int = 500
    """Hold back all deactivations of a cycle when there are more than this many..."""
    deletion_threshold_share: float = 0.2
    """...or when they exceed this share of the users this product manages."""
    import_roles: bool = False
    """Make every Salesforce Profile an assignable app role before extracting."""
    quarantine_min_failures: int = 5000
    """Entra's quarantine is considered only from this many failed writes in a cycle..."""
    quarantine_failure_share: float = 0.4
    """...and starts above this share of the cycle's writes failing..."""
    quarantine_failure_count: int = 40000
    """...or above this many failures."""
    quarantine_auth_failures: int = 2
    """Consecutive runs failing to authenticate that quarantine the job."""
    quarantine_backoff_hours: float = 24.0
    """How long automatic runs wait once the job is quarantined (Entra: once a day)."""
    escrow_schedule_hours: tuple[float, ...] = (6, 12, 24) + (24,) * 27
    """Waits between retries of a failed record: Entra's 6 h, 12 h, 24 h, then daily to 28 days."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncOptions:
        """Read ``AIRFLOW_VAR_PROVISIONING_<NAME>`` variables from the environment."""
        env = os.environ if environ is None else environ
        return cls.from_lookup(lambda name: env.get(f"AIRFLOW_VAR_{name.upper()}"), "AIRFLOW_VAR_")

    @classmethod
    def from_lookup(cls, lookup: Callable[[str], str | None], source: str = "") -> SyncOptions:
        """Read each knob through ``lookup("provisioning_<name>")`` (an Airflow Variable getter, or
        the environment); ``source`` prefixes the name in error messages. Numbers go through
        ``parse_number`` within ``SYNC_OPTION_RANGES``. Raises one ``SettingsError`` naming every
        variable whose value does not parse or is out of range, with the value and the range."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, allowed in SYNC_OPTION_RANGES.items():
            raw = lookup(f"provisioning_{name}")
            if raw is not None:
                shown = f"{source}PROVISIONING_{name.upper()}" if source else f"provisioning_{name}"
                try:
                    values[name] = parse_number(raw, shown, allowed)
                except SettingsError as exc:
                    problems.append(str(exc))
        if problems:
            # every bad knob at once: a new user fixing them one run at a time gives up
            raise SettingsError("; ".join(problems))
        raw_roles = lookup("provisioning_import_roles")
        if raw_roles is not None:
            shown = f"{source}PROVISIONING_IMPORT_ROLES" if source else "provisioning_import_roles"
            values["import_roles"] = parse_bool(raw_roles, shown)
        return cls(**values)


SYNC_OPTION_RANGES: dict[str, NumberRange] = {
    "max_quarantine_share": SHARE,
    "deletion_threshold_count": COUNT,
    "deletion_threshold_share": SHARE,
    "quarantine_min_failures": COUNT,
    "quarantine_failure_share": SHARE,
    "quarantine_failure_count": COUNT,
    # one failed run is the least that can count as "consecutive failures"; 0 would quarantine
    # a job that never failed
    "quarantine_auth_failures": NumberRange(whole=True, minimum=1),
    # 0 h is allowed: automatic runs retry at once (Entra waits a day)
    "quarantine_backoff_hours": NumberRange(minimum=0),
}
"""The numeric ``SyncOptions`` read from Variables and the values each allows. Shares are fractions
(Entra's thresholds are percentages of users: 40 % is 0.4); counts are whole and ≥ 0."""


def read_env_file(path: Path) -> dict[str, str]:
    """Read shell-style ``KEY=VALUE`` lines (the sandbox's ``--env-file`` output, or a hand-written
    file) without touching ``os.environ``; values may be shell-quoted."""
    if not path.exists():
        raise SettingsError(f"env file {path} does not exist")
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, raw = stripped.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, got {line[:60]!r}")
        try:
            parts = shlex.split(raw)
        except ValueError as exc:
            raise SettingsError(f"{path}:{number}: {exc}") from exc
        values[key.strip()] = " ".join(parts)
    return values
