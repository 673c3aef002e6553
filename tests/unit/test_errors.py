import threading

import pymysql

from mysqlsts.adapters.db import LocalConnection
from mysqlsts.errors import ConfigError, describe
from mysqlsts.options import HeartbeatOptions
from mysqlsts.sidecar.heartbeat import HeartbeatWriter
from mysqlsts.sidecar.observe import ServerObserver


def test_describe_masks_secrets_a_server_error_quotes():
    error = pymysql.err.ProgrammingError(
        1064, "You have an error in your SQL syntax near 'IDENTIFIED BY 's3cr\\'et'\n at line 1")
    text = describe(error, ("s3cr\\'et", ""))
    assert "s3cr" not in text and "***" in text
    assert text.startswith("(1064) ") and "\n" not in text


def test_describe_plain_exception():
    assert describe(ConfigError("cannot read clone token file /x")) == (
        "cannot read clone token file /x")


def _unreadable_secret():
    raise ConfigError("root password file /etc/mysqlsts/secrets/root-password is empty")


def test_an_unreadable_secret_is_a_failed_heartbeat_not_a_dead_thread():
    writer = HeartbeatWriter(HeartbeatOptions(), connection=LocalConnection(_unreadable_secret),
                             target=lambda: 100, on_written=lambda at: None,
                             clock=lambda: 0.0, stop=threading.Event())
    assert writer.beat() is False


def test_an_unreadable_secret_is_a_failed_observation_not_a_dead_loop(tmp_path):
    observer = ServerObserver(connection=LocalConnection(_unreadable_secret), is_primary=True,
                              data_dir=tmp_path, heartbeat_database="mysqlsts")
    observation = observer.observe(lambda: 5.0)
    assert observation.up is False and "is empty" in observation.error
