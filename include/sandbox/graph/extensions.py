"""Custom data on emulated users: the fifteen extension attributes and directory extensions.

How Graph v1.0 shapes them, and so the emulator:

- ``onPremisesExtensionAttributes`` is a complex property with fifteen String fields,
  ``extensionAttribute1`` to ``extensionAttribute15``, each at most 1,024 characters
  (https://learn.microsoft.com/en-us/graph/api/resources/onpremisesextensionattributes). A
  ``$select`` that names it returns all fifteen, unset ones null, and a PATCH that names some
  fields changes those and keeps the others ("store data in extensionAttribute1 and delete
  existing data from extensionAttribute13": https://learn.microsoft.com/en-us/graph/extensibility-overview).
  A fixture or control-API record may hold any of the fifteen; it is served whole. Delta items
  carry it whole too (a complex property always has a value).
- A directory extension ``extension_{appId}_{name}`` is returned only when ``$select`` names it,
  and not at all for a user without a value: setting it to null deletes it (same page,
  "Update or delete directory extensions"). Its value is a String, Integer, LargeInteger,
  Boolean, DateTime (ISO 8601 text) or Binary (base64 text), or a list of them when
  multi-valued (https://learn.microsoft.com/en-us/graph/api/resources/extensionproperty). The
  emulator keeps no registry of definitions: any ``extension_`` name is accepted, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

EXTENSION_ATTRIBUTES_PROPERTY = "onPremisesExtensionAttributes"
EXTENSION_ATTRIBUTES = tuple(f"extensionAttribute{number}" for number in range(1, 16))
EXTENSION_ATTRIBUTE_MAX_LENGTH = 1024
_EMPTY_EXTENSION_ATTRIBUTES: dict[str, None] = dict.fromkeys(EXTENSION_ATTRIBUTES)
_SCALARS = (str, int, bool)


def is_directory_extension(name: str) -> bool:
    return name[:10].lower() == "extension_"


def is_custom_data(name: str) -> bool:
    """Properties whose rendering differs from a plain property's (see the module docstring)."""
    return name == EXTENSION_ATTRIBUTES_PROPERTY or is_directory_extension(name)


def extension_attributes(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """``onPremisesExtensionAttributes`` as Graph returns it: all fifteen fields, unset ones null."""
    whole = dict(_EMPTY_EXTENSION_ATTRIBUTES)
    if value:
        whole.update(value)
    return whole


def add_custom_data(item: dict[str, Any], user: Mapping[str, Any], properties: Iterable[str]) -> dict[str, Any]:
    """Add the selected custom-data ``properties`` of ``user`` to ``item`` as Graph shapes them."""
    for name in properties:
        if name == EXTENSION_ATTRIBUTES_PROPERTY:
            item[name] = extension_attributes(user.get(name))
        elif (value := user.get(name)) is not None:  # a directory extension without a value is left out
            item[name] = value
    return item


def user_renderer(
    properties: list[str], render_plain: Callable[[Mapping[str, Any], list[str]], dict[str, Any]]
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function giving a user's selected ``properties``: plain ones through ``render_plain``
    (unchanged, and as fast, when nothing custom is selected), custom data as Graph shapes it."""
    custom = [name for name in properties if is_custom_data(name)]
    if not custom:
        return lambda user: render_plain(user, properties)
    plain = [name for name in properties if name not in custom]
    return lambda user: add_custom_data(render_plain(user, plain), user, custom)


def custom_data_problem(user: Mapping[str, Any]) -> str | None:
    """Why ``user``'s custom data breaks Graph's types, or None. Checks only the custom-data keys."""
    for name, value in user.items():
        if name == EXTENSION_ATTRIBUTES_PROPERTY:
            problem = _extension_attributes_problem(value)
        elif is_directory_extension(name):
            problem = _directory_extension_problem(value)
        else:
            continue
        if problem:
            return f"{name}: {problem}"
    return None


def _extension_attributes_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"must be an object of extensionAttribute1..extensionAttribute15, found {value!r}"
    for field, text in value.items():
        if field not in _EMPTY_EXTENSION_ATTRIBUTES:
            return f"{field!r} is not one of extensionAttribute1..extensionAttribute15"
        if text is not None and not isinstance(text, str):
            return f"{field} must be text or null, found {text!r}"
        if isinstance(text, str) and len(text) > EXTENSION_ATTRIBUTE_MAX_LENGTH:
            return f"{field} holds {len(text)} characters; Graph stores at most {EXTENSION_ATTRIBUTE_MAX_LENGTH}"
    return None


def _directory_extension_problem(value: Any) -> str | None:
    if value is None or isinstance(value, _SCALARS):
        return None
    if isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value):
        return None
    return (
        "a directory extension holds text (String, DateTime, Binary), a whole number, true/false "
        f"or a list of them, found {value!r}"
    )


def merged_patch(user: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``onPremisesExtensionAttributes`` merged into the user's current fields (a
    PATCH changes only the fields it names). Raises ValueError naming a value Graph would refuse."""
    problem = custom_data_problem(body)
    if problem:
        raise ValueError(problem)
    merged = dict(body)
    patch = body.get(EXTENSION_ATTRIBUTES_PROPERTY)
    if patch is not None:
        merged[EXTENSION_ATTRIBUTES_PROPERTY] = {**(user.get(EXTENSION_ATTRIBUTES_PROPERTY) or {}), **patch}
    return merged
