"""The `mysqlsts` command: parses and wires only; each command lives with its capability (the
init container's two, `init` and `bootstrap`, in `podinit/`; the server container's
`server` in `server/`).

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
from mysqlsts.options import env


def _init() -> click.Command:
    from mysqlsts.podinit.command import init

    return init


def _bootstrap() -> click.Command:
    from mysqlsts.podinit.command import bootstrap

    return bootstrap


def _server() -> click.Command:
    from mysqlsts.server.command import server

    return server


def _clone() -> click.Command:
    from mysqlsts.clone.command import clone

    return clone


def _sidecar() -> click.Command:
    from mysqlsts.sidecar.command import sidecar

    return sidecar


def _checksum() -> click.Command:
    from mysqlsts.consistency.command import checksum

    return checksum


def _local() -> click.Command:
    from mysqlsts.local.command import local

    return local


def _takeover() -> click.Command:
    from mysqlsts.takeover.command import takeover

    return takeover


def _status() -> click.Command:
    from mysqlsts.status.command import status

    return status


def _archive() -> click.Command:
    from mysqlsts.archive.command import archive

    return archive


def _backup() -> click.Command:
    from mysqlsts.backup.command import backup

    return backup


_CAPABILITIES: dict[str, Callable[[], click.Command]] = {
    "init": _init,
    "bootstrap": _bootstrap,
    "server": _server,
    "archive": _archive,
    "backup": _backup,
    "clone": _clone,
    "sidecar": _sidecar,
    "checksum": _checksum,
    "local": _local,
    "takeover": _takeover,
    "status": _status,
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


def main() -> None:
    cli(prog_name="mysqlsts")


class _KubectlPlugin(_Group):
    """`kubectl mysqlsts ...`: only the commands that make sense beside kubectl."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return ["status"]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return _status() if name == "status" else None


@click.group(cls=_KubectlPlugin)
def _kubectl_plugin() -> None:
    """mysqlsts as a kubectl plugin: `kubectl mysqlsts status`."""


def kubectl_main() -> None:
    """The `kubectl-mysqlsts` console script, which kubectl runs as a plugin."""
    _kubectl_plugin(prog_name="kubectl mysqlsts")
