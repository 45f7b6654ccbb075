"""The ``provisioning_state`` connection: where the engine keeps its state between cycles.

Connection shape (declared by ``providers/entra-provisioning``): extra ``sqlite_path`` for a
SQLite file, otherwise PostgreSQL from host, port, schema (database), login and password; extra
``sqlalchemy_url`` overrides both. URI forms work too (``postgresql://user:pw@host:5432/db``,
``sqlite:////abs/path.db``). The engine's ``state_url_from_connection`` turns it into a
SQLAlchemy URL; this hook finds the connection and opens the engine's ``StateStore``.

Without a ``provisioning_state`` connection the store is the CLI's default SQLite file,
``<repository>/.state/provisioning.db``, with the path made absolute so that Airflow processes,
whose working directories differ, all open the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy.engine import make_url

from entra_provisioning.hooks.connection import read_connection
from include.provisioning.settings import REPO_ROOT, STATE_CONN_ID, state_url_from_connection
from include.provisioning.state import StateStore

DEFAULT_STATE_PATH = REPO_ROOT / ".state" / "provisioning.db"


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: the caller's message explains; show no part of it
        return "(unparseable URL)"


class ProvisioningStateHook(BaseHook):
    """The engine's state store, configured by a ``provisioning_state`` connection.

    :param state_conn_id: the connection (default ``provisioning_state``; when that one is not
        defined anywhere, the default SQLite file is used, see the module docstring).
    """

    conn_name_attr = "state_conn_id"
    default_conn_name = STATE_CONN_ID
    conn_type = "provisioning_state"
    hook_name = "Provisioning state store"

    def __init__(self, state_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state_conn_id = state_conn_id

    def get_url(self) -> str:
        """SQLAlchemy URL of the store (``sqlite:///...`` or ``postgresql+psycopg2://...``).

        Raises ``SettingsError`` (naming the connection) when the connection gives neither a
        SQLite path nor a PostgreSQL host, and ``AirflowNotFoundException`` when a connection id
        other than the default is not defined.
        """
        try:
            conn = read_connection(self.state_conn_id)
        except AirflowNotFoundException:
            if self.state_conn_id != STATE_CONN_ID:
                raise
            self.log.info("No %r connection; using the default state store %s", STATE_CONN_ID, DEFAULT_STATE_PATH)
            return f"sqlite:///{DEFAULT_STATE_PATH}"
        return state_url_from_connection(conn)

    def get_store(self) -> StateStore:
        """An open ``StateStore`` (schema created or checked); close it, or use it in ``with``.

        Raises the engine's ``StateError`` when the database cannot be opened or is newer than
        this code.
        """
        return StateStore(self.get_url())

    def get_conn(self) -> StateStore:
        """Airflow's generic accessor: same as ``get_store``."""
        return self.get_store()

    def test_connection(self) -> tuple[bool, str]:
        """Open the store and read the newest cycle. Returns ``(ok, message)``; never raises.

        Creates nothing: a SQLite file that does not exist is reported (the first cycle creates it
        when its folder exists; a missing folder is most likely a typo in the path)."""
        url = None
        try:
            url = self.get_url()
            missing = _missing_sqlite(url)
            if missing is not None:
                return missing
            with StateStore(url) as store:
                newest = store.cycles(limit=1)
                dialect = store.dialect
        except Exception as exc:  # the api-server shows the message to the person who pressed Test
            where = f" at {redacted(url)}" if url else ""
            return False, (
                f"connection {self.state_conn_id!r}: cannot open the state store{where}: {type(exc).__name__}: {exc}"
            )
        last = f"last cycle {newest[0].cycle_id} ({newest[0].status.value})" if newest else "no cycle recorded yet"
        return True, f"state store {redacted(url)} opened ({dialect}); {last}"


def _missing_sqlite(url: str) -> tuple[bool, str] | None:
    """The Test button's answer for a SQLite file that does not exist yet, without creating it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).expanduser()
    if path.exists():
        return None
    if not path.parent.is_dir():
        return False, f"state store {path}: the folder {path.parent} does not exist (check the path)"
    return True, f"state store {path} does not exist yet; the first cycle creates it in {path.parent}"
