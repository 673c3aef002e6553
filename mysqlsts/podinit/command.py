"""`mysqlsts init` and `mysqlsts bootstrap`: parse and wire; the work is init.py's and
bootstrap.py's."""

from __future__ import annotations

import click

from mysqlsts.adapters.fs import read_secret
from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.core.cnf import ServerMemory
from mysqlsts.init import run_init
from mysqlsts.options import (
    DataDirOptions,
    FlavorOptions,
    InitOptions,
    PodOptions,
    RootPasswordOptions,
    use,
)


@click.command()
@use(PodOptions, "pod")
@use(InitOptions, "options")
@use(FlavorOptions, "flavor")
def init(pod: PodOptions, options: InitOptions, flavor: FlavorOptions) -> None:
    """Write the role's cnf, server-id.cnf and the buffer pool size for this pod (init
    container)."""
    identity = pod.identity()
    memory = None
    if options.server_memory_limit:
        memory = ServerMemory(
            options.server_memory_limit, options.buffer_pool_percent, flavor.flavor
        )
    result = run_init(identity, options.config_map_dir, options.conf_dir, memory)
    pool = "" if result.memory_cnf is None else f" buffer_pool={result.memory_cnf.name}"
    click.echo(
        f"init: {identity.pod_name} is {identity.role} server_id={identity.server_id} "
        f"cnf={result.role_cnf.name}{pool} conf_dir={options.conf_dir}",
        err=True,
    )


@click.command()
@use(DataDirOptions, "data")
@use(RootPasswordOptions, "root")
def bootstrap(data: DataDirOptions, root: RootPasswordOptions) -> None:
    """Initialise an empty data dir with a root password (MariaDB; before mariadbd starts)."""
    done = bootstrap_data_dir(data.data_dir, read_secret(root.root_password_file,
                                                         "root password"))
    click.echo(
        f"bootstrap: {'initialised' if done else 'already initialised'} "
        f"data_dir={data.data_dir}",
        err=True,
    )
