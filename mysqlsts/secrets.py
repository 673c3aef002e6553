"""The values of the mounted Secret files, read when needed so a rotated file takes effect
without a restart; an unreadable or empty file is one clear error naming the file, never its
content."""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.adapters.fs import read_secret
from mysqlsts.settings import SecretFiles


@dataclass(frozen=True)
class Secrets:
    files: SecretFiles

    def root(self) -> str:
        return read_secret(self.files.root_password, "root password")

    def replication(self) -> str:
        return read_secret(self.files.replication_password, "replication password")

    def backup(self) -> str:
        return read_secret(self.files.backup_password, "backup password")

    def token(self) -> str:
        return read_secret(self.files.clone_token, "clone token")
