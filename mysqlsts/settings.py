"""Settings shared by several commands: plain frozen values, built once at the CLI edge.

Pure data: defaults live with the options that set them (`options.py`), and the Secret files
named here are read by `secrets.py`, never by a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mysqlsts.core.version import Flavor

__all__ = ["Accounts", "Flavor", "LocalServer", "SecretFiles"]


@dataclass(frozen=True)
class SecretFiles:
    """Paths of mounted Secret files (their values are never held here, nor logged)."""

    root_password: Path
    replication_password: Path
    backup_password: Path
    clone_token: Path


@dataclass(frozen=True)
class Accounts:
    replication_user: str
    backup_user: str
    root_user: str = "root"  # the bootstrapped administrator; not an option


@dataclass(frozen=True)
class LocalServer:
    """How the sidecar and the backup tool reach the pod's own server."""

    host: str
    port: int
