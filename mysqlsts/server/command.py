"""`mysqlsts server`: parse and wire; the supervision is supervise.py's."""

from __future__ import annotations

import sys

import click

from mysqlsts.adapters.fs import read_secret
from mysqlsts.adapters.tools import program
from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.core.lease import FENCE_FILE
from mysqlsts.options import DataDirOptions, RootPasswordOptions, WatchdogOptions, use
from mysqlsts.server.supervise import ServerSupervisor


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@use(DataDirOptions, "data")
@use(RootPasswordOptions, "root")
@use(WatchdogOptions, "watchdog")
@click.argument("mariadbd_args", nargs=-1, type=click.UNPROCESSED)
def server(data: DataDirOptions, root: RootPasswordOptions, watchdog: WatchdogOptions,
           mariadbd_args: tuple[str, ...]) -> None:
    """The server container's main process: initialise an empty data dir (as `mysqlsts
    bootstrap`), then run mariadbd with MARIADBD_ARGS (after `--`) as its child, pass it
    SIGTERM/SIGINT/SIGQUIT/SIGHUP, exit with its status, and stop it when the sidecar's
    heartbeat file stays unchanged for --watchdog-timeout; the stop bound it enforces is
    written beside that file (`<file>.bound`) for the sidecar's self-fence claim. Starts no
    server while the primary lease fence's marker is in the data dir, nor, when the heartbeat
    file is already there (a container restart inside the pod), before its content changes."""
    done = bootstrap_data_dir(data.data_dir, read_secret(root.root_password_file,
                                                         "root password"))
    click.echo(f"bootstrap: {'initialised' if done else 'already initialised'} "
               f"data_dir={data.data_dir}", err=True)
    supervisor = ServerSupervisor(
        [program("mariadbd"), *mariadbd_args], watchdog.file, watchdog.timings(),
        grace=watchdog.watchdog_grace, poll=watchdog.poll, bound_file=watchdog.bound_file,
        fence=data.data_dir / FENCE_FILE,
    )
    sys.exit(supervisor.run())
