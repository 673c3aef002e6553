"""The isolation fence's I/O: probe the API endpoint and the peers, and fence or lift.

A worker of its own (a probe round can take a few timeouts, the sidecar's loop must not wait
for it): each round probes, updates `last_contact_at`, asks core.fence.decide and acts. What it
publishes (`fenced`, the reason) is read by /readyz and the metrics.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql

from mysqlsts.core.endpoint import host_port
from mysqlsts.core.fence import FenceAction, FenceDecision, Reachability, decide, last_contact
from mysqlsts.core.lease import read_only_statements
from mysqlsts.core.peers import PeerAddress
from mysqlsts.errors import describe
from mysqlsts.options import IsolationOptions
from mysqlsts.sidecar.worker import Worker

log = logging.getLogger(__name__)

Connect = Callable[[], "pymysql.connections.Connection[Any]"]

# Threads that are the server's own or replication's: never killed by the fence.
_SYSTEM_COMMANDS = ("Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL", "Slave_worker",
                    "Daemon", "Connect")
_WRITERS = (
    "SELECT t.trx_mysql_thread_id FROM information_schema.innodb_trx t "
    "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
    "WHERE t.trx_rows_modified > 0 AND p.id <> CONNECTION_ID() "
    "AND p.user NOT IN ('system user', 'event_scheduler') "
    f"AND p.command NOT IN ({', '.join(['%s'] * len(_SYSTEM_COMMANDS))})"
)


def api_reachable(endpoint: str, timeout: float) -> bool:
    """A TCP connection and a TLS handshake to host:port; no credentials, no certificate check
    (reaching the API server at all is the question, not trusting it)."""
    address = host_port(endpoint)
    if address is None:
        return False
    host, port = address
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ValueError):
        return False


def peer_reachable(peer: PeerAddress, timeout: float) -> bool:
    """Any HTTP answer from the peer's sidecar /livez (even a 503: the network reaches it)."""
    conn = http.client.HTTPConnection(peer.host, peer.http_port, timeout=timeout)
    try:
        conn.request("GET", "/livez")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _set_read_only(conn: pymysql.connections.Connection[Any], on: bool, is_mysql: bool) -> None:
    with conn.cursor() as cur:
        for statement in read_only_statements(on, is_mysql):
            cur.execute(statement)


def kill_writers(conn: pymysql.connections.Connection[Any]) -> int:
    killed = 0
    with conn.cursor() as cur:
        cur.execute(_WRITERS, _SYSTEM_COMMANDS)
        for row in cur.fetchall():
            try:
                cur.execute("KILL %s", (int(row["trx_mysql_thread_id"]),))
                killed += 1
            except pymysql.MySQLError:
                pass  # ended on its own meanwhile
    return killed


class IsolationFence(Worker):
    """A primary's fence: `--isolation-*` (IsolationOptions) and the peers it probes, every
    `interval` seconds; `is_mysql`: MySQL also has super_read_only."""

    def __init__(self, options: IsolationOptions, *, peers: Sequence[PeerAddress],
                 interval: float, is_mysql: bool, connect: Connect, clock: Callable[[], float],
                 stop: threading.Event, lift: Callable[[], None] | None = None) -> None:
        super().__init__("fence", stop)
        self.options = options
        self.peers = tuple(peers)  # every other pod of the set
        self._interval = interval
        self._is_mysql = is_mysql
        self._probe_timeout = min(2.0, options.isolation_fence_after / 4)
        self._connect = connect
        self._clock = clock
        # With a primary lease, the lease worker alone makes the server writable: lifting this
        # fence only tells it (`lift`), so read_only never goes off while the lease is not held.
        self._lift = lift
        self.fenced = False  # True only while a fence WE set is in place
        self.last_contact_at = clock()
        self.latest: Reachability | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fence-probe")

    @property
    def set_size(self) -> int:
        return len(self.peers) + 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def probe(self) -> Reachability:
        endpoint, timeout = self.options.isolation_api_endpoint, self._probe_timeout
        api = self._pool.submit(api_reachable, endpoint, timeout) if endpoint else None
        peers = [self._pool.submit(peer_reachable, p, timeout) for p in self.peers]
        return Reachability(at=self._clock(), api=api.result() if api is not None else None,
                            peers=sum(1 for f in peers if f.result()))

    def round(self) -> float:
        self.decide()
        return self._interval

    def decide(self) -> FenceDecision:
        """Probe, decide, act: one round."""
        probe = self.probe() if self.set_size > 1 else None
        if probe is not None:
            self.latest = probe
            self.last_contact_at = last_contact(self.last_contact_at, probe)
        decision = decide(self._clock(), last_contact_at=self.last_contact_at, latest=probe,
                          window=self.options.isolation_fence_after, set_size=self.set_size,
                          fenced=self.fenced)
        if decision.action is not FenceAction.NONE:
            self._act(decision)
        return decision

    def _act(self, decision: FenceDecision) -> None:
        fence = decision.action is FenceAction.FENCE
        if not fence and self._lift is not None:
            self.fenced = False
            self._lift()
            log.warning("isolation fence lifted; the primary lease decides when the server is "
                        "writable again: %s", decision.reason)
            return
        try:
            conn = self._connect()
            try:
                if fence:
                    # The flag before the statement: the lease worker, lifting read-only on
                    # another thread, looks at it again after its own statement and undoes it
                    # (sidecar/lease.py), so the last word is always read-only.
                    self.fenced = True
                    # Read-only first (no new writes), then end the transactions holding
                    # writes, which read_only does not stop from committing.
                    _set_read_only(conn, True, self._is_mysql)
                    killed = kill_writers(conn)
                    log.warning("isolation fence: server set read-only, %d write transaction(s) "
                                "killed: %s", killed, decision.reason)
                else:
                    _set_read_only(conn, False, self._is_mysql)
                    self.fenced = False
                    log.warning("isolation fence lifted, server writable again: %s",
                                decision.reason)
            finally:
                conn.close()
        except (pymysql.MySQLError, OSError) as exc:
            # Retried next round: the decision is the same while nothing changes (a fence
            # that may not be in place is not counted as one).
            if fence:
                self.fenced = False
            log.warning("isolation fence could not %s the server: %s",
                        "fence" if fence else "lift the fence on", describe(exc))
