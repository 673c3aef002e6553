"""Typed records from the JSON files the tool writes and later reads back.

A record is a dataclass of plain values (int, float, bool, str, enums, optionals, nested
records, and mappings keyed by int). `decode` turns the bytes of a file into one, checking
every field, so that undecodable bytes, a truncated file or a wrongly typed field become one
`RecordError` that names the file and the field, never a traceback further on. Pure.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from mysqlsts.errors import ConfigError

T = TypeVar("T")


class RecordError(ConfigError):
    """A file the tool reads back does not hold the record it should."""


def parse_object(data: bytes | str, what: str) -> dict[str, Any]:
    """`data` as a JSON object; `what` names the file in the error."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise RecordError(f"{what} is not UTF-8 text (byte {exc.start})") from exc
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise RecordError(f"{what} is not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise RecordError(f"{what} holds a JSON {type(loaded).__name__}, not an object")
    return loaded


def parse_count(data: bytes, what: str) -> int:
    """A file holding one non-negative integer (a counter, a pid)."""
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise RecordError(f"{what} does not hold a number (undecodable bytes)") from None
    if not text.isdigit():
        raise RecordError(f"{what} does not hold a number: {_shown(text)}")
    return int(text)


def decode(cls: type[T], data: bytes | str, what: str) -> T:
    """The record of type `cls` that `data` (a file's bytes) holds."""
    return from_fields(cls, parse_object(data, what), what)


def from_fields(cls: type[T], body: Mapping[str, Any], what: str) -> T:
    """Build dataclass `cls` from a parsed JSON object: unknown or missing fields and values of
    the wrong type are refused. The class's own checks (`__post_init__`) run as usual."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise RecordError(f"{what} has unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, field in known.items():
        if name in body:
            values[name] = _value(hints[name], body[name], f"{what}: {name}")
        elif (field.default is dataclasses.MISSING
              and field.default_factory is dataclasses.MISSING):
            raise RecordError(f"{what} lacks the field {name}")
    try:
        return cls(**values)
    except (TypeError, ValueError, ConfigError) as exc:  # the record's own checks
        raise RecordError(f"{what}: {exc}") from exc


def to_fields(record: Any) -> dict[str, Any]:
    """A record as a JSON-ready object (enums by value; mapping keys become strings in JSON)."""
    return dataclasses.asdict(record)


def encode(record: Any) -> str:
    return json.dumps(to_fields(record), indent=2, sort_keys=True) + "\n"


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) != 1:
            raise TypeError(f"unsupported record field type {hint!r}")
        return _value(options[0], value, where)
    if origin in (dict, Mapping):
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise RecordError(f"{where} is {_shown(value)}, not an object")
        return {_key(key_type, key, where): _value(value_type, item, f"{where}.{key}")
                for key, item in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in hint)
            raise RecordError(f"{where} is {_shown(value)}, not one of {allowed}") from None
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise RecordError(f"{where} is {_shown(value)}, not an object")
        return from_fields(hint, value, where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint in (int, float, str, bool):
        raise RecordError(f"{where} is {_shown(value)}, not {_kind(hint)}")
    raise TypeError(f"unsupported record field type {hint!r}")


def _key(key_type: Any, key: str, where: str) -> Any:
    if key_type is int:
        try:
            return int(key)
        except ValueError:
            raise RecordError(f"{where} has the key {key!r}, not an integer") from None
    return key


def _kind(hint: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[hint]


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
