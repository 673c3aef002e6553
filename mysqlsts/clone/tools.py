"""The backup tools per flavor and the exact commands mysqlsts runs (pure).

MariaDB: mariabackup + mbstream. MySQL: Percona xtrabackup + xbstream (same options). Passwords
go in a 0600 `--defaults-extra-file`, which must be the first argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mysqlsts.core.version import Flavor
from mysqlsts.errors import ConfigError


@dataclass(frozen=True)
class BackupTool:
    backup: str  # takes and prepares backups
    stream: str  # extracts the xbstream format


TOOLS = {
    Flavor.MARIADB: BackupTool(backup="mariabackup", stream="mbstream"),
    Flavor.MYSQL: BackupTool(backup="xtrabackup", stream="xbstream"),
}


def tool_for(flavor: str) -> BackupTool:
    try:
        return TOOLS[flavor]
    except KeyError:
        raise ConfigError(f"unknown flavor {flavor!r}; expected one of {sorted(TOOLS)}") from None


def _option_value(value: str) -> str:
    # Option files take double-quoted values with backslash escapes; newlines cannot be quoted.
    if "\n" in value or "\r" in value:
        raise ConfigError("the backup password contains a line break, which option files reject")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def credentials_cnf(user: str, password: str) -> str:
    """Option-file text with the backup account; written 0600, passed as --defaults-extra-file."""
    return f"[client]\nuser={_option_value(user)}\npassword={_option_value(password)}\n"


def backup_argv(
    tool: BackupTool, credentials_file: Path, target_dir: Path, data_dir: Path,
    host: str, port: int, parallel: int,
) -> list[str]:
    """A streaming backup of the local server to stdout.

    --slave-info is always on: a replica donor then records its primary's coordinates, and a
    primary simply has none (the tool notes that and carries on). No --safe-slave-backup: it
    stops the replica's SQL thread and needs more privileges, while InnoDB-only row-based
    replication under the tool's backup locks is consistent without it.
    """
    return [
        tool.backup,
        f"--defaults-extra-file={credentials_file}",  # must come first
        "--backup",
        "--stream=xbstream",
        f"--target-dir={target_dir}",
        f"--datadir={data_dir}",
        f"--host={host}",
        f"--port={port}",
        "--slave-info",
        f"--parallel={max(1, parallel)}",
    ]


def extract_argv(tool: BackupTool, staging: Path, parallel: int) -> list[str]:
    return [tool.stream, "-x", "-C", str(staging), f"--parallel={max(1, parallel)}"]


def prepare_argv(tool: BackupTool, staging: Path, use_memory: str) -> list[str]:
    return [tool.backup, "--prepare", f"--target-dir={staging}", f"--use-memory={use_memory}"]
