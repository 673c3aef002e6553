"""`mysqlsts takeover`: parses and wires only. Every option is also a MYSQLSTS_TAKEOVER_* or
MYSQLSTS_* environment variable."""

from __future__ import annotations

import getpass
import logging
import secrets
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.options import IsolationOptions, option, use
from mysqlsts.takeover.fence import window_problem
from mysqlsts.takeover.model import TAKEOVER_ACTIONS, Action, Settings

log = logging.getLogger(__name__)

# Cloud block storage whose force-detach (the out-of-service taint, a VolumeAttachment delete)
# detaches the disk from the old machine at the provider: a replica left running there loses
# its volume. NFS, RBD, iSCSI and the like stay mounted (docs/takeover.md, "Storage").
DETACH_FENCED_DRIVERS = ("ebs.csi.aws.com", "pd.csi.storage.gke.io", "disk.csi.azure.com")


def _own(name: str, default: Any, help_text: str, **kwargs: Any) -> Any:
    """An option of the controller's own, read from MYSQLSTS_TAKEOVER_<NAME>."""
    return option(default, help_text, env=f"TAKEOVER_{name}", **kwargs)


def _seconds(name: str, default: int, help_text: str, minimum: int = 0) -> Any:
    return _own(name, default, f"{help_text} (seconds).", type=click.IntRange(min=minimum))


@dataclass(frozen=True)
class TakeoverOptions:
    namespace: str = _own("NAMESPACE", "default", "Namespace of the watched StatefulSet's pods.")
    selector: str = _own("SELECTOR", "app.kubernetes.io/name=mysql",
                         "Label selector of the watched pods.")
    statefulset: str = _own("STATEFULSET", "mysql", "Only Running or Pending pods this "
                            "StatefulSet controls count.")
    node_down_after: int = _seconds("NODE_DOWN_AFTER", 300, "A node is down once Ready has "
                                    "been Unknown and its Lease unchanged this long, as "
                                    "observed by the controller")
    # The sidecars' own option and variable: one value for both sides of the fence.
    isolation_fence_after: int = option(
        IsolationOptions().isolation_fence_after,
        "The sidecars' isolation fence window (seconds): an isolated primary turns read-only "
        "after it. --node-down-after must be at least twice this plus 60.",
        type=click.IntRange(min=1),
    )
    primary_lease_name: str = _own(
        "PRIMARY_LEASE_NAME", "mysql-primary", "The set's primary Lease, in --namespace: a "
        "holder's pod moves only once it has stayed unchanged for its duration + the sidecars' "
        "self-fence + --lease-margin.")
    lease_margin: int = _seconds("LEASE_MARGIN", 10, "Added to the primary Lease's duration "
                                 "and self-fence before its holder counts as fenced")
    detach_fenced_drivers: str = _own(
        "DETACH_FENCED_DRIVERS", ",".join(DETACH_FENCED_DRIVERS),
        "CSI drivers (or in-tree volume kinds), comma-separated, whose force-detach cuts the old "
        "node off the volume: pods holding no primary Lease move on the default proof only on "
        "these; empty: none.", empty_is_a_value=True)
    healthy_after: int = _seconds("HEALTHY_AFTER", 60, "Ready this long before our taint comes "
                                  "off a returned node")
    max_unhealthy: int = _own("MAX_UNHEALTHY", 1, "Act only while at most this many nodes are "
                              "down (and never more than half).", type=click.IntRange(min=0))
    cooldown: int = _seconds("COOLDOWN", 300, "At most one takeover per this long")
    action: str = _own(
        "ACTION", str(Action.TAINT),
        "taint: the out-of-service taint (Kubernetes >= 1.28); delete-pods: force-delete the "
        "pods and their VolumeAttachments; delete-node: UNSAFE, see docs/takeover.md.",
        type=click.Choice([str(a) for a in TAKEOVER_ACTIONS]),
    )
    dry_run: bool = _own("DRY_RUN", False, "Decide and report, write nothing (no Lease, no "
                         "Event).", is_flag=True, show_default=False)
    fence_command: Path | None = _own(
        "FENCE_COMMAND", None, "Run as `PATH NODE` before a takeover; it must exit 0 only when "
        "the machine is off.", type=click.Path(path_type=Path, dir_okay=False, exists=True),
        show_default=False,
    )
    fence_timeout: int = _seconds("FENCE_TIMEOUT", 60, "How long the fence command may take",
                                  minimum=1)
    once: bool = _own("ONCE", False, "One reconcile pass: one line per decision on stdout, then "
                      "exit.", is_flag=True, show_default=False)
    interval: int = _seconds("INTERVAL", 10, "Between passes", minimum=1)
    lease_duration: int = _seconds("LEASE_DURATION", 30, "The leader Lease's duration",
                                   minimum=2)
    renew_deadline: int = _seconds("RENEW_DEADLINE", 20, "The leader stops acting when it "
                                   "could not renew its Lease for this long; shorter than "
                                   "--lease-duration", minimum=1)
    lease_name: str = _own("LEASE_NAME", "mysqlsts-takeover", "The leader-election Lease.")
    lease_namespace: str = _own(
        "LEASE_NAMESPACE", "default", "Namespace of the leader Lease and the Events (the "
        "controller's own).", fallback_env=("POD_NAMESPACE",),
    )
    identity: str = _own("IDENTITY", None, "This replica's name in the Lease.",
                         fallback_env=("POD_NAME",), factory=socket.gethostname,
                         show_default="$POD_NAME, else the hostname")
    api_timeout: float = _own(
        "API_TIMEOUT", 10.0, "Deadline of each Kubernetes API request (seconds); keep it well "
        "under --lease-duration.", type=click.FloatRange(min=0.5),
    )
    http_port: int = _own("HTTP_PORT", 8080, "/livez, /readyz, /metrics; 0 for none.",
                          type=click.IntRange(0, 65535))

    def settings(self) -> Settings:
        return Settings(
            node_down_after=timedelta(seconds=self.node_down_after),
            healthy_after=timedelta(seconds=self.healthy_after),
            max_unhealthy=self.max_unhealthy,
            cooldown=timedelta(seconds=self.cooldown),
            action=Action(self.action),
            dry_run=self.dry_run,
            lease_margin=timedelta(seconds=self.lease_margin),
            detach_fenced_drivers=frozenset(
                d.strip() for d in self.detach_fenced_drivers.split(",") if d.strip()),
            power_fence=self.fence_command is not None,
        )


@dataclass(frozen=True)
class ManualFenceOptions:
    by: str = _own("FENCED_BY", None, "Who confirms it (kept in the annotation).",
                   factory=getpass.getuser, show_default="the current user")


@click.group(invoke_without_command=True)
@use(TakeoverOptions, "options")
@click.pass_context
def takeover(ctx: click.Context, /, options: TakeoverOptions) -> None:
    """Move the set's pods off a node that is really down (docs/takeover.md)."""
    if ctx.invoked_subcommand is not None:
        return
    problem = window_problem(timedelta(seconds=options.node_down_after),
                             timedelta(seconds=options.isolation_fence_after))
    if problem:
        raise ConfigError(problem)
    if options.renew_deadline >= options.lease_duration:
        raise ConfigError(
            f"--renew-deadline {options.renew_deadline}s must be shorter than --lease-duration "
            f"{options.lease_duration}s: the leader must stop before a standby may start")
    from mysqlsts.kubeapi import connect
    from mysqlsts.takeover.kube import TakeoverApi

    settings = options.settings()
    # `--once` inside the leader's pod inherits its POD_NAME: as that name it would renew the
    # Deployment's Lease as a second leader. A one-off run is a candidate of its own.
    identity = f"{options.identity}-once-{secrets.token_hex(3)}" if options.once else \
        options.identity
    api = connect(in_cluster_first=True, request_timeout=options.api_timeout).api
    takeover_api = TakeoverApi(
        api, namespace=options.namespace, selector=options.selector,
        statefulset=options.statefulset, own_namespace=options.lease_namespace,
        lease_name=options.lease_name, identity=identity,
        read_attachments=settings.action is Action.DELETE_PODS,
        primary_lease_name=options.primary_lease_name)
    _check_lease_window(takeover_api, settings, options)
    _run(takeover_api, settings, options)


def _check_lease_window(takeover_api: Any, settings: Settings, options: TakeoverOptions
                        ) -> None:
    """Refuse to start when --node-down-after is shorter than the primary Lease's window, read
    from the Lease (the sidecars' own duration and self-fence, not a flag of ours). An
    unreadable Lease is not a settings problem: a takeover on the default proof is then a skip
    with the guard `lease` and this reason (and an API that does not answer fails the pass)."""
    from mysqlsts.takeover.fence import lease_window_problem

    lease = takeover_api.read_primary_lease()
    problem = lease_window_problem(settings.node_down_after, lease, settings.lease_margin)
    if problem:
        raise ConfigError(problem)


def _one_pass(controller: Any) -> list[Any]:
    """--once: an API server that cannot be reached or refuses is one line, not a traceback
    (the loop instead logs it and tries again next pass)."""
    from mysqlsts.kubeapi import API_FAILURES, describe_failure

    try:
        decisions: list[Any] = controller.run_pass(report_all=True)
    except API_FAILURES as exc:
        raise MysqlstsError(f"the Kubernetes API failed: {describe_failure(exc)}") from exc
    finally:
        controller.release()
    return decisions


def _run(takeover_api: Any, settings: Settings, options: TakeoverOptions) -> None:
    from mysqlsts.takeover.controller import Controller, Loop
    from mysqlsts.takeover.http import serve
    from mysqlsts.takeover.metrics import TakeoverMetrics

    loop = Loop(interval=timedelta(seconds=options.interval),
                lease_duration=timedelta(seconds=options.lease_duration),
                renew_deadline=timedelta(seconds=options.renew_deadline),
                fence_command=options.fence_command,
                fence_timeout=timedelta(seconds=options.fence_timeout), once=options.once)
    controller = Controller(takeover_api, settings, loop, TakeoverMetrics())
    if options.once:
        decisions = _one_pass(controller)
        standby = not settings.dry_run and (controller.lease is None or
                                            controller.lease.holder != takeover_api.identity)
        for decision in decisions:
            click.echo(decision.sentence())
        if standby:
            click.echo(f"standby: the Lease {options.lease_name} is held by another replica")
        elif not decisions:
            click.echo("nothing to do: no watched pod on a node that is not Ready")
        if any(d.error for d in decisions):
            raise SystemExit(1)
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the loop acts on it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if options.http_port:
        server = serve("0.0.0.0", options.http_port, controller.livez, controller.readyz,
                       controller.metrics.render)
    log.info("takeover: watching %s in namespace %s, action=%s dry_run=%s",
             options.selector, options.namespace, settings.action, settings.dry_run)
    controller.run(stop)
    if server is not None:
        server.shutdown()
        server.server_close()


@takeover.command()
@click.argument("node")
@use(ManualFenceOptions, "manual")
def fence(node: str, manual: ManualFenceOptions) -> None:
    """Record that NODE's machine is powered off for its current outage, so the controller may
    act at once. The confirmation names the outage (the node's Ready=Unknown transition): it
    is ignored once the node has been Ready since, and removed when it is Ready again."""
    from mysqlsts.kubeapi import API_FAILURES, connect, describe_failure
    from mysqlsts.takeover.controller import utc_now
    from mysqlsts.takeover.kube import NotDown, TakeoverApi

    api = connect(in_cluster_first=True).api
    takeover_api = TakeoverApi(api, namespace="", selector="", statefulset="",
                               own_namespace="", lease_name="", identity=manual.by,
                               read_attachments=False, primary_lease_name="")
    try:
        confirmed = takeover_api.fence(node, manual.by, utc_now())
    except NotDown as exc:
        raise MysqlstsError(str(exc)) from exc
    except API_FAILURES as exc:
        raise MysqlstsError(f"the Kubernetes API failed: {describe_failure(exc)}") from exc
    click.echo(f"fenced: node {node} marked as powered off by {manual.by} for the outage "
               f"since {confirmed.outage.isoformat()}; the controller may now move its pods")
