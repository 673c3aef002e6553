"""Settings shared by several commands, built once at the CLI edge and passed down frozen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mysqlsts.adapters.fs import read_secret
from mysqlsts.core.version import Flavor

__all__ = ["Accounts", "Flavor", "LocalServer", "SecretFiles"]


@dataclass(frozen=True)
class SecretFiles:
    """Paths of mounted Secret files. Values are read when needed and never logged."""

    root_password: Path
    replication_password: Path
    backup_password: Path
    clone_token: Path

    def root(self) -> str:
        return read_secret(self.root_password, "root password")

    def replication(self) -> str:
        return read_secret(self.replication_password, "replication password")

    def backup(self) -> str:
        return read_secret(self.backup_password, "backup password")

    def token(self) -> str:
        return read_secret(self.clone_token, "clone token")


@dataclass(frozen=True)
class Accounts:
    root_user: str = "root"
    replication_user: str = "repl"
    backup_user: str = "mysqlsts_backup"


@dataclass(frozen=True)
class LocalServer:
    """How the sidecar and the backup tool reach the pod's own server."""

    host: str = "127.0.0.1"
    port: int = 3306
