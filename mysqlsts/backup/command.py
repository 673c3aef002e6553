"""`mysqlsts backup ...`: parse, wire, print."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from mysqlsts.options import PATH, option, use
from mysqlsts.store.settings import S3Settings


@dataclass(frozen=True)
class StoreOptions:
    store: str = option("", "Object store URL: s3://bucket[/prefix] or file:///dir.",
                        show_default=False)
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

    def check(self) -> None:
        if not self.store:
            raise click.UsageError("--store is required (s3://bucket[/prefix] or file:///dir)")

    def s3(self) -> S3Settings:
        return S3Settings(endpoint=self.s3_endpoint, region=self.s3_region,
                          path_style=self.s3_path_style,
                          access_key_file=self.s3_access_key_file,
                          secret_key_file=self.s3_secret_key_file)



@click.group()
def backup() -> None:
    """Backups in an object store (s3:// or file://)."""


@backup.command("list")
@use(StoreOptions, "store")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")
def list_backups(store: StoreOptions, as_json: bool) -> None:
    """The store's backups (those with a manifest), their GTID, time and size, and the
    recoverable window; damaged and incomplete ones are named."""
    from mysqlsts.backup.catalog import read_catalog
    from mysqlsts.core.backup_catalog import catalog_json, catalog_table
    from mysqlsts.store.open import open_store

    catalog = read_catalog(open_store(store.store, store.s3()))
    if as_json:
        click.echo(json.dumps(catalog_json(catalog), indent=2))
    else:
        click.echo("\n".join(catalog_table(catalog)))
