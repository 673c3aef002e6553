"""The exceptions mysqlsts raises on purpose.

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
