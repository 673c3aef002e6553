"""`mysqlsts bootstrap`: initialise the primary's empty data dir, as the official images'
entrypoints do, for images and local sets that have no such entrypoint (MariaDB only); and
`adopt_root`, which gives restored data this set's root password the same way.

Crash-safe through `fill_data_dir`: a bootstrap killed halfway is wiped and redone, never
started as a server with no root password.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mysqlsts.adapters.datadir import fill_data_dir, state_of, wipe_incomplete
from mysqlsts.adapters.tools import program, run_tool, user_args
from mysqlsts.core.datadir import Fill, plan_fill
from mysqlsts.core.sql import quote_literal
from mysqlsts.errors import ConfigError

log = logging.getLogger(__name__)

# The server's closing words after an error, which say nothing of its cause.
_UNTELLING = ("[ERROR] Aborting",)


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


def adopt_root_sql(password: str) -> bytes:
    """SQL for `mariadbd --bootstrap` on restored data: root (localhost and '%') opens with
    this set's password, as if this set had bootstrapped it; other accounts stay as they were
    (the sidecar sets the replication and backup accounts' passwords from its Secret)."""
    quoted = quote_literal(password)
    return b"FLUSH PRIVILEGES;\n" + b"".join(
        (f"CREATE USER IF NOT EXISTS 'root'@{host} IDENTIFIED BY {quoted};\n"
         f"ALTER USER 'root'@{host} IDENTIFIED BY {quoted};\n"
         f"GRANT ALL PRIVILEGES ON *.* TO 'root'@{host} WITH GRANT OPTION;\n").encode()
        for host in ("'localhost'", "'%'"))


def adopt_root(data_dir: Path, root_password: str) -> None:
    """Set root's password in a prepared data dir no server runs on (a restore's staging dir).
    No binary log is open (--no-defaults), so nothing of this reaches a binlog or the GTID
    state."""
    _run_bootstrap(data_dir, "adopting the restored data (setting this set's root password)",
                   adopt_root_sql(root_password), root_password)


def _initialise(staging: Path, root_password: str) -> None:
    run_tool(
        [program("mariadb-install-db"), "--no-defaults", f"--datadir={staging}", *user_args(),
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        "mariadb-install-db",
        skip=_UNTELLING,
    )
    _run_bootstrap(staging, "setting the root password", root_account_sql(root_password),
                   root_password)


def _run_bootstrap(data_dir: Path, what: str, sql: bytes, password: str) -> None:
    """`mariadbd --bootstrap` on a data dir no server runs on. The SQL, which holds the
    password, travels on stdin, never on a command line, and never reaches the error."""
    run_tool(
        # No --log-error: the server's complaints go to stderr, where run_tool reports them.
        [program("mariadbd"), "--no-defaults", "--bootstrap", f"--datadir={data_dir}",
         *user_args()],
        what, stdin=sql, skip=_UNTELLING, secrets=(password,),
    )


def bootstrap_data_dir(data_dir: Path, root_password: str) -> bool:
    """Initialise `data_dir` if it is empty; True when it did, False when already initialised."""
    try:
        fill = plan_fill(state_of(data_dir), "initialise")
    except ConfigError as exc:
        raise ConfigError(f"{exc} (data dir {data_dir})") from exc
    if fill is Fill.SKIP:
        return False
    if fill is Fill.REDO:
        log.warning("data dir %s holds an interrupted initialisation; redoing it", data_dir)
        wipe_incomplete(data_dir)
    fill_data_dir(data_dir, lambda staging: _initialise(staging, root_password))
    return True
