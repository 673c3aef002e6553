"""Quoting for the few places where a value must be pasted into SQL text (a `--bootstrap`
script, a statement whose grammar takes no placeholder); everywhere else values are bound."""

from __future__ import annotations


def quote_literal(value: str) -> str:
    """A single-quoted string literal, backslashes and quotes escaped (the server's default
    sql_mode, without NO_BACKSLASH_ESCAPES)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """A backquoted identifier, embedded backquotes doubled."""
    return "`" + name.replace("`", "``") + "`"
