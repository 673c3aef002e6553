"""The exceptions mysqlsts raises on purpose, and how any error becomes one log line.

Every `MysqlstsError` reaching the CLI becomes one line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""


class MysqlstsError(Exception):
    """An expected failure with a message fit for an operator."""

    exit_code = 1


class ConfigError(MysqlstsError):
    """Bad input: a flag, an environment variable, a mounted file."""

    exit_code = 2


class CloneError(MysqlstsError):
    """A clone that could not be completed; the data dir holds no finished clone."""


def describe(error: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """An error as one short line; `secrets` are masked (a server's syntax error quotes the
    statement it choked on, password literal included)."""
    args: tuple[object, ...] = tuple(getattr(error, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # pymysql: (errno, message)
        text = f"({args[0]}) {args[1]}"
    else:
        text = str(error) or type(error).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())
