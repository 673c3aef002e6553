"""The `mysqlsts` command: parses and wires only; each command lives with its capability.

Commands are imported on first use so the long-running sidecar never loads what it does not run.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from mysqlsts import __version__
from mysqlsts.core.cnf import ServerMemory, parse_memory_quantity
from mysqlsts.errors import MysqlstsError
from mysqlsts.logs import configure
from mysqlsts.options import (
    build_identity,
    data_dir_option,
    env,
    flavor_option,
    pod_options,
    root_password_file_option,
)

_LAZY_COMMANDS = {
    "clone": "mysqlsts.clone.command:clone",
    "sidecar": "mysqlsts.sidecar.command:sidecar",
    "local": "mysqlsts.local.command:local",
    "status": "mysqlsts.status.command:status",
}


class OperatorError(click.ClickException):
    """An expected failure, shown as one line on stderr."""

    def __init__(self, error: MysqlstsError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]  # per instance, by error kind


def _memory_quantity(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_memory_quantity(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _LAZY_COMMANDS:
            module, attr = _LAZY_COMMANDS[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MysqlstsError as error:
            raise OperatorError(error) from error


@click.group(cls=_Group)
@click.version_option(__version__)
@click.option(
    "--log-level", envvar=env("LOG_LEVEL"), default="info", show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def cli(log_level: str) -> None:
    """Init, clone and replication sidecar for MySQL/MariaDB StatefulSets."""
    configure(log_level)


@cli.command()
@pod_options
@click.option(
    "--config-map-dir", envvar=env("CONFIG_MAP_DIR"), type=click.Path(path_type=Path),
    default=Path("/mnt/config-map"), show_default=True,
    help="Mounted ConfigMap with master.cnf and slave.cnf.",
)
@click.option(
    "--conf-dir", envvar=env("CONF_DIR"), type=click.Path(path_type=Path),
    default=Path("/mnt/conf.d"), show_default=True,
    help="Where the server reads extra cnf files (its conf.d).",
)
@click.option(
    "--server-memory-limit", envvar=env("SERVER_MEMORY_LIMIT"), callback=_memory_quantity,
    metavar="BYTES", default=None, show_envvar=True,
    help="The server container's memory limit (downward API limits.memory, or e.g. 2Gi); "
    "sizes innodb_buffer_pool_size. Unset: the server's default.",
)
@click.option(
    "--buffer-pool-percent", envvar=env("BUFFER_POOL_PERCENT"), type=click.IntRange(5, 90),
    default=60, show_default=True, show_envvar=True,
    help="Share of --server-memory-limit given to the InnoDB buffer pool.",
)
@flavor_option
def init(
    config_map_dir: Path, conf_dir: Path, server_memory_limit: int | None,
    buffer_pool_percent: int, flavor: str, **kw: Any,
) -> None:
    """Write the role's cnf, server-id.cnf and the buffer pool size for this pod (init
    container)."""
    from mysqlsts.init import run_init

    identity = build_identity(kw)
    memory = None
    if server_memory_limit:
        memory = ServerMemory(server_memory_limit, buffer_pool_percent, flavor)
    result = run_init(identity, config_map_dir, conf_dir, memory)
    pool = "" if result.memory_cnf is None else f" buffer_pool={result.memory_cnf.name}"
    click.echo(
        f"init: {identity.pod_name} is {identity.role} server_id={identity.server_id} "
        f"cnf={result.role_cnf.name}{pool} conf_dir={conf_dir}",
        err=True,
    )


@cli.command()
@data_dir_option
@root_password_file_option
def bootstrap(data_dir: Path, root_password_file: Path) -> None:
    """Initialise an empty data dir with a root password (MariaDB; before mariadbd starts)."""
    from mysqlsts.adapters.fs import read_secret
    from mysqlsts.bootstrap import bootstrap_data_dir

    done = bootstrap_data_dir(data_dir, read_secret(root_password_file, "root password"))
    click.echo(
        f"bootstrap: {'initialised' if done else 'already initialised'} data_dir={data_dir}",
        err=True,
    )


def main() -> None:
    cli(prog_name="mysqlsts")
