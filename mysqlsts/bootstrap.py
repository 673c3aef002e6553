"""`mysqlsts bootstrap`: initialise the primary's empty data dir, as the official images'
entrypoints do, for images and local sets that have no such entrypoint (MariaDB only).

Crash-safe through `fill_data_dir`: a bootstrap killed halfway is wiped and redone, never
started as a server with no root password.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from mysqlsts.adapters.datadir import fill_data_dir, state_of, wipe_incomplete
from mysqlsts.adapters.tools import program, user_args
from mysqlsts.core.datadir import DataDirState
from mysqlsts.core.sql import quote_literal
from mysqlsts.errors import ConfigError, MysqlstsError

log = logging.getLogger(__name__)


def root_account_sql(password: str) -> bytes:
    """SQL for `mariadbd --bootstrap`: a root that logs in with the password, from anywhere."""
    quoted = quote_literal(password)
    return (
        # install-db also creates password-less root@127.0.0.1, @::1 and @<hostname>, which
        # would match before root@'%'; and anonymous users. Neither may survive.
        "DELETE FROM mysql.global_priv WHERE User = '' "
        "OR (User = 'root' AND Host <> 'localhost');\n"
        "FLUSH PRIVILEGES;\n"
        f"ALTER USER 'root'@'localhost' IDENTIFIED BY {quoted};\n"
        f"CREATE USER 'root'@'%' IDENTIFIED BY {quoted};\n"
        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n"
    ).encode()


def _run(argv: list[str], stdin: bytes | None, what: str) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise MysqlstsError(f"{what} failed with exit code {result.returncode}: {tail[0]}")


def _initialise(staging: Path, root_password: str) -> None:
    _run(
        [program("mariadb-install-db"), "--no-defaults", f"--datadir={staging}", *user_args(),
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        None,
        "mariadb-install-db",
    )
    # The password travels on stdin, never on a command line.
    _run(
        # No --log-error: the server's complaints go to stderr, where _run reports them.
        [program("mariadbd"), "--no-defaults", "--bootstrap", f"--datadir={staging}",
         *user_args()],
        root_account_sql(root_password),
        "setting the root password",
    )


def bootstrap_data_dir(data_dir: Path, root_password: str) -> bool:
    """Initialise `data_dir` if it is empty; True when it did, False when already initialised."""
    state = state_of(data_dir)
    if state is DataDirState.INITIALIZED:
        return False
    if state is DataDirState.UNKNOWN:
        raise ConfigError(
            f"data dir {data_dir} holds files that are not a server's data dir; "
            "refusing to initialise over them"
        )
    if state is DataDirState.INCOMPLETE:
        log.warning("data dir %s holds an interrupted initialisation; redoing it", data_dir)
        wipe_incomplete(data_dir)
    fill_data_dir(data_dir, lambda staging: _initialise(staging, root_password))
    return True
