"""Quoting for the few places where a value must be pasted into SQL text (a `--bootstrap`
script, a statement whose grammar takes no placeholder); everywhere else values are bound."""

from __future__ import annotations

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r",
            "\x1a": "\\Z"}


def quote_literal(value: str) -> str:
    """A single-quoted string literal, backslashes, quotes and the characters a line-based
    reader (`--bootstrap`) or a C string would cut at escaped (the server's default sql_mode,
    without NO_BACKSLASH_ESCAPES)."""
    return "'" + "".join(_ESCAPES.get(char, char) for char in value) + "'"


def quote_identifier(name: str) -> str:
    """A backquoted identifier, embedded backquotes doubled."""
    return "`" + name.replace("`", "``") + "`"
