"""One error tree for the engine, by what the caller should do about it.

- :class:`ConfigurationError` — a setting, connection, mapping table or suite is wrong, or the
  credentials are refused. Retrying cannot help: fail now and say what to fix. The Airflow layer
  turns these into a task failure without retries.
- :class:`TransientError` — the service or the state store may answer next time (throttling
  beyond the retry budget, 5xx, a busy lease). Airflow retries these with exponential backoff.
- :class:`RecordError` — one record cannot be processed (an expression fails on its values, a
  value Bulk API 2.0 cannot carry). Never fatal: the record is quarantined or escrowed with the
  reason and the cycle goes on.

Anything else is a bug or an unexpected failure; callers treat it like a transient error
(retried a bounded number of times) and show the traceback. Modelled on dlt's terminal/transient
split (``dlt.common.exceptions``).
"""

from __future__ import annotations

from typing import Any


class ProvisioningError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigurationError(ProvisioningError):
    """Fix the configuration; retrying the same thing cannot succeed."""


class AuthenticationError(ConfigurationError):
    """A service refused the credentials of a connection (the message names the connection)."""


class UnknownUserError(ConfigurationError):
    """Provision on demand named a user Entra ID does not have: ``GET /users/{id | userPrincipalName}``
    answered 404 (a typo, or a deleted user; Entra's "provision on demand" only offers users of the
    directory). Retrying the same name cannot help. ``user`` is the name as given."""

    def __init__(self, user: str) -> None:
        super().__init__(
            f"Entra ID has no user {user} (Graph: 404 for GET /users/{{id | userPrincipalName}}); check the name"
        )
        self.user = user


class TransientError(ProvisioningError):
    """Worth retrying later: the service, the network or another writer may let it through."""


class RecordError(ProvisioningError):
    """One record cannot be processed; it is quarantined or escrowed, never fatal to a cycle."""


class LeaseBusyError(TransientError):
    """Another holder has the writer lease; try again later (the message names the holder).
    ``lease`` is that holder's ``state.lease.Lease``."""

    def __init__(self, lease: Any) -> None:
        super().__init__(lease.describe())
        self.lease = lease


class LeaseLostError(TransientError):
    """This holder no longer has the writer lease (it expired and another run took it, or it was
    released)."""


class JobQuarantinedError(ProvisioningError):
    """The job is quarantined (Entra's quarantine) and this automatic run must wait; ``quarantine``
    is the ``state.job_quarantine.JobQuarantine`` that says why and until when."""

    def __init__(self, quarantine: Any) -> None:
        super().__init__(quarantine.describe())
        self.quarantine = quarantine


class MissingArtifactError(ProvisioningError):
    """A stage's input is not in the cycle's workspace: the stage that writes it did not run for
    this cycle (see ``workspace.py``)."""


def is_configuration_error(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a configuration error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigurationError):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


FAILURE_KINDS = ("configuration", "transient", "unexpected")
"""What a failed stage's error was, by what to do about it (the tree above): fix the configuration,
wait for the service (Airflow retries), or read the traceback (retried like a transient one)."""


def failure_kind(exc: BaseException) -> str:
    """``FAILURE_KINDS`` member for ``exc`` (its cause chain decides a configuration error)."""
    if is_configuration_error(exc):
        return "configuration"
    if isinstance(exc, TransientError):
        return "transient"
    return "unexpected"
