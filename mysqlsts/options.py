"""Click options shared by the commands, each also an environment variable.

Env names are explicit (`MYSQLSTS_DATA_DIR`, not click's per-command auto names) so one
Kubernetes env block serves every container of the pod.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mysqlsts.core.identity import Identity, identify
from mysqlsts.core.peers import PeerDirectory
from mysqlsts.settings import Accounts, Flavor, LocalServer, SecretFiles

F = TypeVar("F", bound=Callable[..., Any])

SECRETS_DIR = Path("/etc/mysqlsts/secrets")


def env(name: str) -> str:
    return f"MYSQLSTS_{name}"


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


pod_options = _stack(
    click.option(
        "--pod-name",
        envvar=[env("POD_NAME"), "POD_NAME"],
        default=socket.gethostname,
        show_default="$POD_NAME, else the hostname",
        help="This pod's name, <statefulset>-<ordinal>.",
    ),
    click.option(
        "--service", envvar=env("SERVICE"), default="mysql", show_default=True,
        help="The headless Service that names the pods.",
    ),
    click.option(
        "--server-id-base", envvar=env("SERVER_ID_BASE"), type=click.IntRange(min=1),
        default=100, show_default=True, help="server-id = base + ordinal.",
    ),
)

peer_options = _stack(
    click.option(
        "--peer-host-template", envvar=env("PEER_HOST_TEMPLATE"),
        default="{statefulset}-{ordinal}.{service}", show_default=True,
        help="How a peer's host is named from {statefulset}, {ordinal}, {service}.",
    ),
    click.option(
        "--mysql-port", envvar=env("MYSQL_PORT"), type=click.IntRange(1, 65535),
        default=3306, show_default=True, help="Server port (ordinal 0's, with a stride).",
    ),
    click.option(
        "--clone-port", envvar=env("CLONE_PORT"), type=click.IntRange(1, 65535),
        default=3307, show_default=True, help="Port of the sidecar's backup stream.",
    ),
    click.option(
        "--http-port", envvar=env("HTTP_PORT"), type=click.IntRange(1, 65535),
        default=8080, show_default=True, help="Port of the sidecar's probes and metrics.",
    ),
    click.option(
        "--peer-port-stride", envvar=env("PEER_PORT_STRIDE"), type=click.IntRange(min=0),
        default=0, show_default=True,
        help="Added per ordinal to every port (local sets on one address).",
    ),
)

root_password_file_option = click.option(
    "--root-password-file", envvar=env("ROOT_PASSWORD_FILE"), type=click.Path(path_type=Path),
    default=SECRETS_DIR / "root-password", show_default=True,
)

secret_options = _stack(
    root_password_file_option,
    click.option(
        "--replication-password-file", envvar=env("REPLICATION_PASSWORD_FILE"),
        type=click.Path(path_type=Path), default=SECRETS_DIR / "replication-password",
        show_default=True,
    ),
    click.option(
        "--backup-password-file", envvar=env("BACKUP_PASSWORD_FILE"),
        type=click.Path(path_type=Path), default=SECRETS_DIR / "backup-password",
        show_default=True,
    ),
    click.option(
        "--clone-token-file", envvar=env("CLONE_TOKEN_FILE"), type=click.Path(path_type=Path),
        default=SECRETS_DIR / "clone-token", show_default=True,
    ),
    click.option("--replication-user", envvar=env("REPLICATION_USER"), default="repl",
                 show_default=True),
    click.option("--backup-user", envvar=env("BACKUP_USER"), default="mysqlsts_backup",
                 show_default=True),
)

data_dir_option = click.option(
    "--data-dir", envvar=env("DATA_DIR"), type=click.Path(path_type=Path),
    default=Path("/var/lib/mysql"), show_default=True, help="The server's data directory.",
)

flavor_option = click.option(
    "--flavor", envvar=env("FLAVOR"), type=click.Choice(Flavor.ALL), default=Flavor.MARIADB,
    show_default=True, help="Server family; selects the backup tool and SQL dialect.",
)

local_server_options = _stack(
    click.option(
        "--local-host", envvar=env("LOCAL_HOST"), default="127.0.0.1", show_default=True,
        help="Where this pod's own server listens.",
    ),
)


def build_identity(kw: dict[str, Any]) -> Identity:
    return identify(kw["pod_name"], kw["service"], kw["server_id_base"])


def build_peers(kw: dict[str, Any], identity: Identity) -> PeerDirectory:
    return PeerDirectory(
        statefulset=identity.statefulset,
        service=identity.service,
        host_template=kw["peer_host_template"],
        mysql_port=kw["mysql_port"],
        clone_port=kw["clone_port"],
        http_port=kw["http_port"],
        port_stride=kw["peer_port_stride"],
    )


def build_secrets(kw: dict[str, Any]) -> SecretFiles:
    return SecretFiles(
        root_password=kw["root_password_file"],
        replication_password=kw["replication_password_file"],
        backup_password=kw["backup_password_file"],
        clone_token=kw["clone_token_file"],
    )


def build_accounts(kw: dict[str, Any]) -> Accounts:
    return Accounts(replication_user=kw["replication_user"], backup_user=kw["backup_user"])


def build_local_server(kw: dict[str, Any], identity: Identity, peers: PeerDirectory) -> LocalServer:
    """The pod's own server: on its own host, at its own ordinal's port."""
    return LocalServer(host=kw["local_host"], port=peers.address(identity.ordinal).mysql_port)
