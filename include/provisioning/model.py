"""The typed model of one provisioning cycle: the contracts between the stages.

Stages exchange pandas DataFrames (fast at a million rows) whose columns are fixed here, and
small dataclasses for everything a person reads (summaries, log entries). Keeping the column
names in one module is what lets extract, validate, mapping, diff, load and state be written
and tested separately.

Frames
------
USERS frame (extract → validate → mapping): one row per Entra user considered this cycle.
  ``id``                      Entra object id (unique)
  Graph attribute columns     named exactly as in Graph (``userPrincipalName``, ``mail``, ...);
                              nulls are None/NaN (test with ``pandas.isna``)
  ``appRoleAssignments``      list[str]: distinct role *values* of the user's assignments, direct
                              and through (nested) groups; the default access role is
                              ``DEFAULT_ACCESS_ROLE_VALUE``
  ``assignedVia``             str: where the roles come from, for people ("direct",
                              "group:Sales EMEA", joined with "; ")
  ``IsSoftDeleted``           bool: Entra's flag — unassigned, accountEnabled false, soft-deleted,
                              permanently deleted, or out of the scoping filter
  ``scopeReason``             str | None: None when in scope, else one of SCOPE_REASONS

MAPPED frame (mapping → diff): one row per USERS row that mapped without error.
  ``id``                      Entra object id
  one column per target field Salesforce ``User`` field names (``Username``, ``LastName``, ...,
                              ``IsActive``) plus the pseudo field ``ProfileName`` until roles
                              resolve it into ``ProfileId``
  Rows whose expressions failed are not in the frame; they become ``Quarantined`` entries.

ORG frame (Salesforce snapshot in full mode): ``Id`` plus the target fields, as Bulk 2.0 query
returns them (strings; booleans "true"/"false"; nulls None).

SNAPSHOT frame (state store, what this product applied): ``entra_id``, ``sf_id``,
``match_value`` (value of the winning matching attribute), ``is_active`` (bool), ``fields``
(dict target field → value as last applied).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_ACCESS_ROLE_VALUE = "msiam_access"
"""Value Entra gives the default access role of gallery apps (it has no entry in appRoles)."""

SCOPE_REASONS = ("unassigned", "disabled", "soft-deleted", "deleted", "out-of-scope")

NULL_MARKER = "#N/A"
"""Bulk API 2.0: sets a field to null on update (an empty value is ignored). Only the CSV writer
produces it, from a typed null (``None``); it is never a value inside the engine."""


class Guard(StrEnum):
    """Which writes a rule (an expectation of the suite, a rule of the mapping table) guards.

    Entra applies a mapping "Always" or "Only during object creation", and skips a null source
    attribute on update, so a value only a create needs (e.g. ``mail`` for Salesforce's required
    Email) must not block an update of an existing user; ``both`` is for values whose absence or
    shape is wrong whatever the write (the identity, a malformed address)."""

    CREATE = "create"
    UPDATE = "update"
    BOTH = "both"


class Mode(StrEnum):
    AUTO = "auto"
    FULL = "full"
    INCREMENTAL = "incremental"


class Action(StrEnum):
    """Provisioning-log actions, Entra's names plus Reactivate."""

    CREATE = "Create"
    UPDATE = "Update"
    DISABLE = "Disable"
    REACTIVATE = "Reactivate"
    STAGED_DELETE = "StagedDelete"
    """A deactivation held back by the accidental-deletion threshold."""
    QUARANTINE = "Quarantine"
    OTHER = "Other"


class Status(StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    SKIPPED = "Skipped"
    WARNING = "Warning"


class CycleStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    """Stopped on purpose before writing (validation failure share, dry run)."""


DRY_RUN_REASON = "dry run: nothing was written"
"""The reason a dry run's cycle records for not writing. Such a cycle is STOPPED inside the engine
but is no stopped cycle to a person (``report.planned_dry_run``): the command line calls it a dry run
and exits 0, while a dry run that validation stopped is reported as stopped (exit 3)."""


@dataclass(frozen=True, slots=True, init=False)
class FieldChange:
    """One field's old → new value. Slots: a first sync of a million users holds millions of these."""

    old: Any
    new: Any

    def __init__(self, old: Any, new: Any) -> None:
        # The slots' own setters: a frozen dataclass's __init__ looks each up by name through
        # object.__setattr__, a third of building a million creates' changes (measured).
        _SET_OLD(self, old)
        _SET_NEW(self, new)


_SET_OLD = FieldChange.__dict__["old"].__set__
_SET_NEW = FieldChange.__dict__["new"].__set__


@dataclass(slots=True)
class QuarantinedUser:
    """A source user held out of this cycle because its data is bad; the reasons name the rules."""

    entra_id: str
    user_principal_name: str | None
    reasons: list[str]
    display_name: str | None = None
    """Entra's ``displayName``, when the stage that held the user out had it."""


@dataclass(slots=True)
class PlannedChange:
    """One Salesforce write the diff decided on (or held back)."""

    entra_id: str
    user_principal_name: str | None
    action: Action
    sf_id: str | None
    changes: dict[str, FieldChange]
    """Target field → old/new of what is sent; for creates old is None; empty when unchanged. In an
    update ``new`` None is a clear (a ``clear_when_null`` field whose source became null or ""):
    the typed null the CSV writer sends as Bulk's ``#N/A`` and the log and snapshot keep as null."""
    match_value: str | None = None
    """Value of the matching attribute that linked (or will link) the Salesforce user."""
    desired: dict[str, Any] = field(default_factory=dict)
    """Every target field's value this product wants (after defaults): becomes the snapshot."""
    roles: list[str] = field(default_factory=list)
    """The user's app role values this cycle (the snapshot keeps them to spot role changes)."""
    display_name: str | None = None
    """Entra's ``displayName``; for a user the directory no longer has, the last one the
    provisioning log knew, else the Salesforce user's ``FirstName LastName`` (``stages._name_the_gone``)."""


@dataclass
class Plan:
    creates: list[PlannedChange] = field(default_factory=list)
    updates: list[PlannedChange] = field(default_factory=list)
    deactivations: list[PlannedChange] = field(default_factory=list)
    reactivations: list[PlannedChange] = field(default_factory=list)
    held_back: list[PlannedChange] = field(default_factory=list)
    held_back_reason: str | None = None
    unchanged: list[PlannedChange] = field(default_factory=list)
    """Users that need no write (action OTHER): matched and equal, or out of scope with no
    active Salesforce user. Kept so the snapshot learns matched users on a first sync."""
    quarantined: list[QuarantinedUser] = field(default_factory=list)
    """Users the diff holds out with a reason instead of writing (two creates with one Username,
    an ambiguous match, a Salesforce user another Entra user is linked to)."""

    def writes(self) -> list[PlannedChange]:
        return [*self.creates, *self.updates, *self.deactivations, *self.reactivations]


@dataclass(slots=True)
class RecordResult:
    """What Salesforce said about one written record."""

    entra_id: str
    action: Action
    sf_id: str | None
    ok: bool
    error_code: str | None = None
    error_message: str | None = None
    unprocessed: bool = False
    created: bool = False
    """Salesforce's ``sf__Created`` for a successful row (True for an insert)."""


SALESFORCE_ID_KEY = 15
"""Salesforce ids compare on their first 15 characters (the 18-character form adds a
case-insensitive checksum; "What are Salesforce IDs composed of?", Salesforce Help)."""


def salesforce_id_key(sf_id: str) -> str:
    """The form two Salesforce ids are compared in: the 15-character, case-sensitive id."""
    return sf_id[:SALESFORCE_ID_KEY]


def salesforce_name(fields: Mapping[str, Any]) -> str | None:
    """A Salesforce ``User``'s name from its fields: ``FirstName LastName``, as the compound field
    ``Name`` joins them (Salesforce Help, "Compound Fields": Name), or None when neither is set
    (the mapping does not manage them, or the record is empty)."""
    parts = [fields.get(name) for name in ("FirstName", "LastName")]
    words = [str(part).strip() for part in parts if isinstance(part, str) and part.strip()]
    return " ".join(words) or None


def user_label(display_name: str | None, user_principal_name: str | None, entra_id: str) -> str:
    """How the product names a user to a person, everywhere it lists one (the cycle report, the
    dry-run table, the Provisioning page's lists and steps): ``Display name (UPN)``, as Entra's
    provisioning log shows a user by name and UPN. Without a display name (a row written before
    schema version 7) the UPN alone; without a UPN (a user known by object id only) the object id
    in its place. Empty strings count as missing. The page's script mirrors this rule
    (``userLabel`` in ``plugins/entra_provisioning/ui/static/provisioning.js``)."""
    who = user_principal_name or entra_id
    return f"{display_name} ({who})" if display_name else who


@dataclass(slots=True)
class LogEntry:
    """One provisioning-log row (one user action in one cycle)."""

    cycle_id: str
    action: Action
    status: Status
    entra_id: str
    user_principal_name: str | None
    sf_id: str | None
    changes: dict[str, FieldChange]
    error_code: str | None
    error_message: str | None
    at: dt.datetime
    display_name: str | None = None
    """The user's name as the planned change or quarantine had it (``PlannedChange.display_name``);
    searchable by prefix in the Provisioning page (schema version 7)."""


@dataclass
class CycleSummary:
    """Counts of one cycle. ``in_scope`` is the sum of the outcome counts, by construction."""

    cycle_id: str
    mode: Mode
    status: CycleStatus
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    quarantined: int = 0
    escrowed: int = 0
    held_back: int = 0
    reactivated: int = 0
    """Of ``updated``: the users re-enabled (``IsActive`` back to true); a detail, not an outcome
    of its own, so ``in_scope`` does not count it twice."""
    reason: str | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def in_scope(self) -> int:
        return (
            self.created
            + self.updated
            + self.unchanged
            + self.deactivated
            + self.quarantined
            + self.escrowed
            + self.held_back
        )


@dataclass
class Watermark:
    """Where the next incremental cycle starts: Graph's delta link, valid only for the mapping
    (and scoping) it was built under — a different fingerprint forces a full cycle."""

    delta_link: str | None
    mapping_fingerprint: str | None
    updated_at: dt.datetime


@dataclass
class EscrowEntry:
    """A user whose last write failed (or was not processed) and is retried in a later cycle."""

    entra_id: str
    action: Action
    attempts: int
    """Failed attempts so far; 0 when Salesforce never processed the record (due immediately)."""
    first_failed_at: dt.datetime
    next_attempt_at: dt.datetime
    error_code: str | None = None
    error_message: str | None = None
    last_cycle_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Who one row of a Bulk job is, kept with the job when it is submitted: what a crashed run's
    provisioning-log row needs once a later cycle settles the job (the crashed run's plan is gone)."""

    user_principal_name: str | None
    action: Action
    display_name: str | None = None


@dataclass
class PendingJob:
    """A Bulk 2.0 job recorded before its upload, so a crashed run's job is found and settled."""

    job_id: str
    cycle_id: str
    operation: str
    key_field: str
    keys: dict[str, str]
    """Value of ``key_field`` in each uploaded CSV row → Entra object id."""
    state: str = "recorded"
    created_at: dt.datetime | None = None
    records: dict[str, JobRecord] = field(default_factory=dict)
    """Entra object id → who the row is (UPN, planned action); empty for a job recorded by a
    version that did not keep it."""
