"""The `mysqlsts` command: parses and wires only; each command lives with its capability.

A capability's command is imported when that command runs (plain imports, in the loaders
below), so the long-running sidecar never loads the local set, the clone receiver or a client
it does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mysqlsts import __version__
from mysqlsts.errors import MysqlstsError
from mysqlsts.logs import configure
from mysqlsts.options import (
    DataDirOptions,
    InitOptions,
    PodOptions,
    RootPasswordOptions,
    env,
    use,
)


def _clone() -> click.Command:
    from mysqlsts.clone.command import clone

    return clone


def _sidecar() -> click.Command:
    from mysqlsts.sidecar.command import sidecar

    return sidecar


def _local() -> click.Command:
    from mysqlsts.local.command import local

    return local


def _takeover() -> click.Command:
    from mysqlsts.takeover.command import takeover

    return takeover


_CAPABILITIES: dict[str, Callable[[], click.Command]] = {
    "clone": _clone,
    "sidecar": _sidecar,
    "local": _local,
    "takeover": _takeover,
}


class OperatorError(click.ClickException):
    """An expected failure, shown as one line on stderr."""

    def __init__(self, error: MysqlstsError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]  # per instance, by error kind


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_CAPABILITIES])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _CAPABILITIES:
            return _CAPABILITIES[name]()
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MysqlstsError as error:
            raise OperatorError(error) from error


@click.group(cls=_Group)
@click.version_option(__version__)
@click.option(
    "--log-level", envvar=env("LOG_LEVEL"), show_envvar=True, default="info",
    show_default=True, type=click.Choice(["debug", "info", "warning", "error"],
                                         case_sensitive=False),
)
def cli(log_level: str) -> None:
    """Init, clone and replication sidecar for MySQL/MariaDB StatefulSets."""
    configure(log_level)


@cli.command()
@use(PodOptions, "pod")
@use(InitOptions, "options")
def init(pod: PodOptions, options: InitOptions) -> None:
    """Write the role's cnf and server-id.cnf for this pod (init container)."""
    from mysqlsts.init import run_init

    identity = pod.identity()
    result = run_init(identity, options.config_map_dir, options.conf_dir)
    click.echo(
        f"init: {identity.pod_name} is {identity.role} server_id={identity.server_id} "
        f"cnf={result.role_cnf.name} conf_dir={options.conf_dir}",
        err=True,
    )


@cli.command()
@use(DataDirOptions, "data")
@use(RootPasswordOptions, "root")
def bootstrap(data: DataDirOptions, root: RootPasswordOptions) -> None:
    """Initialise an empty data dir with a root password (MariaDB; before mariadbd starts)."""
    from mysqlsts.adapters.fs import read_secret
    from mysqlsts.bootstrap import bootstrap_data_dir

    done = bootstrap_data_dir(data.data_dir, read_secret(root.root_password_file,
                                                         "root password"))
    click.echo(
        f"bootstrap: {'initialised' if done else 'already initialised'} "
        f"data_dir={data.data_dir}",
        err=True,
    )


def main() -> None:
    cli(prog_name="mysqlsts")
