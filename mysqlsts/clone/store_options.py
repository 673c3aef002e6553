"""The options that reach an object store and open its backups, shared by `mysqlsts clone
--from-backup` and the `mysqlsts backup` commands (flag, environment variable, default)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.pitr import Target
from mysqlsts.errors import ConfigError
from mysqlsts.options import PATH, option
from mysqlsts.store.settings import S3Settings


@dataclass(frozen=True)
class S3Options:
    s3_endpoint: str = option("", "S3 endpoint URL (MinIO, Ceph RGW, GCS interop); empty: "
                              "AWS.", show_default=False)
    s3_region: str = option("", "S3 region; empty: AWS_REGION, else us-east-1.",
                            show_default=False)
    s3_path_style: bool = option(False, "Address the bucket in the path, not the host name "
                                 "(MinIO, Ceph RGW).", is_flag=True)
    s3_access_key_file: Path | None = option(
        None, "File holding the S3 access key id; with --s3-secret-key-file. Neither: the "
        "standard chain (environment, IRSA / workload identity, instance role).", type=PATH,
        show_default=False)
    s3_secret_key_file: Path | None = option(None, "File holding the S3 secret key.",
                                             type=PATH, show_default=False)

    def settings(self) -> S3Settings:
        return S3Settings(endpoint=self.s3_endpoint, region=self.s3_region,
                          path_style=self.s3_path_style,
                          access_key_file=self.s3_access_key_file,
                          secret_key_file=self.s3_secret_key_file)


@dataclass(frozen=True)
class FromBackupOptions:
    from_backup: str = option(
        "", "Restore from a backup instead of cloning a peer: STORE_URL[@BACKUP_ID] (the "
        "newest by default); ordinal 0 too (a set created from a backup).", show_default=False)
    encryption_key_file: Path | None = option(
        None, "File holding the backups' encryption key (at least 16 bytes; its id is "
        "recorded in each manifest). None: not encrypted.", type=PATH, show_default=False)
    to_gtid: str = option(
        "", "With --from-backup: point-in-time recovery through this GTID (inclusive; or "
        "one per domain: the binlog prefix through the last of them), from the newest backup "
        "before it and the store's binlog archive.", show_default=False)
    to_time: str = option(
        "", "With --from-backup: point-in-time recovery to the last transaction committed at "
        "or before this ISO-8601 time (with Z or an offset).", show_default=False)


def keys_from_file(path: Path | None) -> BackupKeys | None:
    """The backup keys derived from a Secret file, or None without one."""
    if path is None:
        return None
    try:
        return BackupKeys.from_secret(path.read_bytes().strip())
    except OSError as error:
        raise ConfigError(f"cannot read backup encryption key file {path}: "
                          f"{error.strerror}") from None


def recovery_target(to_gtid: str, to_time: str) -> Target | None:
    """The point-in-time target of --to-gtid or --to-time (None without either), or
    ConfigError in a sentence."""
    from mysqlsts.core.pitr import parse_target_gtid, parse_time

    if to_gtid and to_time:
        raise ConfigError("give --to-gtid or --to-time, not both")
    try:
        if to_gtid:
            return Target(gtid=parse_target_gtid(to_gtid))
        if to_time:
            return Target(time=parse_time(to_time))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return None


def split_backup_url(text: str) -> tuple[str, str]:
    """`STORE_URL[@BACKUP_ID]` as (url, id or ""): the id is what follows the last '@' when
    it looks like a backup id (a URL never holds credentials, so '@' is free for this)."""
    from mysqlsts.core.backup_layout import is_backup_id

    url, _, backup = text.rpartition("@")
    if url and is_backup_id(backup):
        return url, backup
    return text, ""
