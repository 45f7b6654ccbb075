"""Encoding of the values the state store keeps as JSON text, and small coercions.

Field values arrive from DataFrames, so they may be numpy scalars, ``NaN``, ``pd.NA`` or
``pd.Timestamp``; they are stored as plain JSON (numbers, strings, booleans, null) so the
snapshot compares equal to the next cycle's desired values however they were typed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import orjson
import pandas as pd

from include.provisioning.errors import ConfigurationError, ProvisioningError
from include.provisioning.model import FieldChange

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class StateError(ProvisioningError, RuntimeError):
    """The state store refused an operation or found data it cannot trust; the message says why."""


class StateConfigError(StateError, ConfigurationError):
    """The state database cannot be used as configured (URL, driver, schema version)."""


def _default(value: Any) -> Any:
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, FieldChange):
        return [value.old, value.new]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__}: {value!r}")


json_bytes: Callable[[Any], bytes] = functools.partial(orjson.dumps, default=_default, option=_OPTIONS)
"""``dumps`` as UTF-8 bytes, for encoding many values at once; a value JSON cannot hold raises
orjson's ``TypeError`` unnamed (``dumps`` names the record)."""


def dumps(value: Any, *, what: str) -> str:
    """JSON text of ``value``; ``what`` names the record and field in the error a bad value raises."""
    try:
        return json_bytes(value).decode()
    except TypeError as exc:
        raise StateError(f"{what}: cannot be stored as JSON ({exc})") from exc


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def changes_json(changes: Mapping[str, FieldChange], *, what: str) -> str:
    """``{field: [old, new]}``, the provisioning log's shape for changed properties."""
    if type(changes) is JsonChanges:  # already this very text
        return changes.text
    # Tuples: orjson writes them as arrays, and they are cheaper to build than lists.
    return dumps({name: (change.old, change.new) for name, change in changes.items()}, what=what)


class JsonObject(Mapping[str, Any]):
    """A JSON object kept as the text ``dumps`` made of it, read-only, decoded again on each
    access (nothing decoded is kept): the commit holds a million users' desired values only to
    store them again as that same text, and reads one field of each.

    Equal to a mapping with the same items, like a dict."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> dict[str, Any]:
        """The decoded object (a new dict each time)."""
        return orjson.loads(self.text)

    def __getitem__(self, key: str) -> Any:
        return self.value()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.value().get(key, default)

    def items(self) -> Any:
        return self.value().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self.value())

    def __len__(self) -> int:
        return len(self.value())

    def __bool__(self) -> bool:
        return self.text != "{}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text})"

    def flag(self, key: str) -> bool | None:
        """``get(key)`` when it is JSON ``true`` or ``false``, read off the text without decoding
        it; None when it is anything else, absent, or the text is not one this can read safely
        (the caller then asks ``get``). The commit reads ``IsActive`` of a million users' desired
        values: decoding each whole object for it was a fifth of the commit's own Python.

        Safe on ``dumps``' compact text with no nested object (one ``{``): a ``"key":`` preceded
        by ``{`` or ``,`` is then a top-level key (inside a string a quote is escaped, so ``,"``
        cannot occur there, and an array holds no keys); it must occur once (a repeated key's
        last value wins when decoded)."""
        text = self.text
        marker = f'"{key}":'
        at = text.find(marker)
        if at < 1 or text[at - 1] not in "{," or text.count("{") != 1 or text.find(marker, at + 1) != -1:
            return None
        start = at + len(marker)
        if text.startswith("true", start) and text[start + 4 : start + 5] in (",", "}"):
            return True
        if text.startswith("false", start) and text[start + 5 : start + 6] in (",", "}"):
            return False
        return None


def new_values(changes: Mapping[str, FieldChange]) -> dict[str, Any]:
    """``{field: new value}`` of one change, in the changes' order (the values a Bulk row sends).
    Changes kept as the log's ``{field: [old, new]}`` text (``JsonChanges``: ``STORED_PLAN``, what
    the load reads) are taken from the decoded JSON directly: no ``FieldChange`` is built for a
    value only sent once, and each ``[old, new]`` pair is replaced by its new value in the dict
    the JSON decoded to (a second dict per row cost a third of ``stages.bulk_rows``' CPU).

    Raises ``TypeError``/``IndexError`` for a text whose values are not ``[old, new]`` pairs."""
    if type(changes) is JsonChanges:
        values: dict[str, Any] = loads(changes.text)
        for name, pair in values.items():  # the same keys: replacing values while iterating is safe
            values[name] = pair[1]
        return values
    return {name: change.new for name, change in changes.items()}


_T = TypeVar("_T")


class ListView(Sequence[_T]):
    """A read-only sequence over the list ``_list`` gives (decoded, or read, when asked for):
    ``JsonArray``'s and ``stages.CommittedLog``'s ``Sequence`` methods."""

    __slots__ = ()

    def _list(self) -> list[_T]:
        raise NotImplementedError

    def __getitem__(self, index: Any) -> Any:
        return self._list()[index]

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[_T]:
        return iter(self._list())


class JsonArray(ListView[Any]):
    """A JSON array kept as the text ``dumps`` made of it, read-only, decoded again on each access
    (like ``JsonObject``): the commit stores a million users' roles as the plan file's text, so
    decoding each list only to encode it again was wasted (a twentieth of the commit's Python).

    Equal to a list with the same items (and to another ``JsonArray`` with equal items)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> list[Any]:
        """The decoded list (a new one each time)."""
        return orjson.loads(self.text)

    _list = value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonArray):
            return self.value() == other.value()
        return self.value() == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are unhashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text})"


class JsonChanges(JsonObject):
    """``{field: FieldChange}`` kept as the log's ``{field: [old, new]}`` text (``changes_json``
    gives it back as it is)."""

    __slots__ = ()

    def value(self) -> dict[str, FieldChange]:
        return changes_from_json(self.text)


def changes_from_json(text: str | None) -> dict[str, FieldChange]:
    raw = loads(text) or {}
    return {name: FieldChange(pair[0], pair[1]) for name, pair in raw.items()}


class _NewTexts(dict[str, FieldChange]):
    """``FieldChange(None, text)``, one per distinct text. Only ``str`` values are kept:
    ``True == 1 == 1.0`` would otherwise hand back a change of the wrong type."""

    def __missing__(self, new: Any) -> FieldChange:
        change = FieldChange(None, new)
        if type(new) is str:
            self[new] = change
        return change


class ChangesDecoder:
    """``changes_from_json`` of many texts (a plan's), in batches, with equal changes shared.

    ``FieldChange`` is immutable, so the creates that set a field to the same text (a locale, a
    profile, a department) can hold one object: a first sync's million creates need far fewer
    objects, built in less time. Fields whose values hardly repeat (usernames, addresses) are
    told apart on the first texts and built directly: looking such values up costs more than
    it saves.
    """

    LEARN = 1_000
    """Texts the first batch looks at to find the fields whose values hardly repeat."""

    def __init__(self) -> None:
        self._texts = _NewTexts()
        self._distinct: set[str] | None = None

    def __call__(self, texts: Iterable[str | bytes | None]) -> list[dict[str, FieldChange]]:
        raws = [loads(text) or {} for text in texts]
        if self._distinct is None:
            self._distinct = self._distinct_fields(raws[: self.LEARN])
        shared, distinct = self._texts, self._distinct
        try:
            return [
                {
                    name: FieldChange(pair[0], pair[1]) if pair[0] is not None or name in distinct else shared[pair[1]]
                    for name, pair in raw.items()
                }
                for raw in raws
            ]
        except TypeError:  # an unhashable value (a list) somewhere: nothing shared in this batch
            return [{name: FieldChange(pair[0], pair[1]) for name, pair in raw.items()} for raw in raws]

    @staticmethod
    def _distinct_fields(raws: list[dict[str, Any]]) -> set[str]:
        """Fields set (from nothing) to a text that is new at least every other time."""
        texts: dict[str, set[str]] = {}
        counts: dict[str, int] = {}
        for raw in raws:
            for name, pair in raw.items():
                if isinstance(pair, list) and len(pair) == 2 and pair[0] is None and type(pair[1]) is str:
                    texts.setdefault(name, set()).add(pair[1])
                    counts[name] = counts.get(name, 0) + 1
        return {name for name, seen in texts.items() if 2 * len(seen) > counts[name]}


def plain(value: Any) -> Any:
    """A field value as the snapshot keeps it: every flavour of null becomes None. A clear is the
    typed null already (``FieldChange(old, None)``); text, even ``"#N/A"``, is data and stays."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def to_bool(value: Any, *, default: bool) -> bool:
    """Salesforce booleans come as True/False, "true"/"false" (Bulk CSV) or numpy bools."""
    value = plain(value)
    if value is None:
        return default
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return default  # "" is Bulk CSV's null
    return bool(value)


def utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
