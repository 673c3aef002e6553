"""The `--s3-*` option group of `local up`, `local backup` and `local restore` (the same group as
`mysqlsts backup`'s: clone.store_options.S3Options) turned into the set's recorded StoreAccess
and back: into the S3 settings its commands open the store with, and the options its pods get
as variables."""

from __future__ import annotations

from pathlib import Path

from mysqlsts.clone.store_options import S3Options
from mysqlsts.local.spec import StoreAccess
from mysqlsts.store.settings import S3Settings


def _path(path: Path | None) -> str:
    # Absolute: the pods and the supervisor run in other directories than the command.
    return "" if path is None else str(path.absolute())


def recorded(s3: S3Options) -> StoreAccess:
    return StoreAccess(endpoint=s3.s3_endpoint, region=s3.s3_region,
                       path_style=s3.s3_path_style,
                       access_key_file=_path(s3.s3_access_key_file),
                       secret_key_file=_path(s3.s3_secret_key_file))


def options(access: StoreAccess) -> S3Options:
    return S3Options(
        s3_endpoint=access.endpoint, s3_region=access.region, s3_path_style=access.path_style,
        s3_access_key_file=Path(access.access_key_file) if access.access_key_file else None,
        s3_secret_key_file=Path(access.secret_key_file) if access.secret_key_file else None)


def settings(access: StoreAccess) -> S3Settings:
    return options(access).settings()


def given_or(s3: S3Options, access: StoreAccess) -> StoreAccess:
    """The options given on the command line, or the set's recorded ones when none was."""
    return access if s3 == S3Options() else recorded(s3)
