"""`mysqlsts local`: a replica set of real servers on loopback, run through the pods' own
commands. Parses and wires only; the work is in setdir, preflight, daemon, waiting, observe,
pod_verbs, and in the supervisor and the pod processes."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import click

from mysqlsts.clone.store_options import S3Options, recovery_target
from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.local import backups, daemon, pod_verbs, preflight, setdir, store_access, waiting
from mysqlsts.local.observe import observe
from mysqlsts.local.procs import console_script
from mysqlsts.local.render import render_table, status_document
from mysqlsts.local.spec import (
    DEFAULT_BASE_PORT,
    DEFAULT_PORT_STRIDE,
    SetLayout,
    SetSpec,
    StoreAccess,
)
from mysqlsts.local.store import load_spec
from mysqlsts.options import use

log = logging.getLogger(__name__)

# A new set's size when `up` is not given --replicas (an existing set keeps its own).
NEW_SET_REPLICAS = 3

_dir_option = click.option(
    "--dir", "directory", required=True, type=click.Path(path_type=Path, file_okay=False),
    help="The set's directory: spec, secrets, pods' data dirs and logs.",
)
_timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
    help="Seconds to wait for every pod to be ready.",
)


def _layout(directory: Path) -> SetLayout:
    return SetLayout(directory.absolute())


@click.group()
def local() -> None:
    """A local replica set: real mariadbd pods on loopback ports, kept by a supervisor."""


@local.command()
@_dir_option
@click.option(
    "--replicas", type=click.IntRange(min=1), default=None,
    help=f"Number of pods  [default: {NEW_SET_REPLICAS} for a new set, else the set's own]",
)
@click.option(
    "--base-port", type=click.IntRange(1024, 65535), default=None,
    help=f"mysql port of mysql-0 (clone +1, http +2)  [default: {DEFAULT_BASE_PORT}, "
    "or the set's own]",
)
@click.option(
    "--peer-port-stride", type=click.IntRange(min=3), default=None,
    help=f"Ports between ordinals  [default: {DEFAULT_PORT_STRIDE}, or the set's own]",
)
@click.option(
    "--cnf-dir", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
    help="master.cnf and slave.cnf for a new set's ConfigMap (an existing set keeps its own)  "
    "[default: the project's images/cnf/mariadb]",
)
@click.option(
    "--store", default=None,
    help="Object store for `local backup`: file:///dir (made if missing) or "
    "s3://bucket[/prefix]  [default: none for a new set, else the set's own]",
)
@use(S3Options, "s3")
@_timeout_option
def up(
    directory: Path, replicas: int | None, base_port: int | None, peer_port_stride: int | None,
    cnf_dir: Path | None, store: str | None, s3: S3Options, timeout: float,
) -> None:
    """Create (or resume) the set and wait until REPLICAS pods are ready."""
    layout = _layout(directory)
    if store is not None:
        backups.prepare_store(store)  # a bad URL is one line before anything is made
    elif s3 != S3Options():
        raise ConfigError("the --s3-* options go with --store: how the set reaches its store")
    with setdir.up_lock(layout):
        spec, cnf_dir = _wanted(layout, replicas, base_port, peer_port_stride, cnf_dir, store,
                                store_access.recorded(s3))
        since = _start_supervisor(layout, spec, cnf_dir)
    _converge(layout, spec, timeout, since)
    click.echo(render_table(observe(layout, spec)))


def _start_supervisor(layout: SetLayout, spec: SetSpec, cnf_dir: Path) -> float:
    """Under `up_lock`: make or resume the set's files and start its supervisor; when."""
    preflight.check_capacity(layout, spec)
    if daemon.supervisor_pid(layout) is None:
        preflight.check_ports(layout, spec)
    since = time.time()
    setdir.prepare(layout, spec, cnf_dir)
    pid = daemon.start_supervisor(layout, console_script())
    click.echo(f"local: supervisor pid {pid} for {layout.root}; waiting for {spec.replicas} pods",
               err=True)
    return since


def _wanted(
    layout: SetLayout, replicas: int | None, base_port: int | None,
    peer_port_stride: int | None, cnf_dir: Path | None, store: str | None,
    access: StoreAccess,
) -> tuple[SetSpec, Path]:
    """The spec `up` asks for and the cnf dir it is made with: a new set's from the flags, an
    existing set's own, where flags may only ask for other replicas (or give a set without a
    store one)."""
    if not layout.spec.exists():
        spec = SetSpec(
            replicas=replicas or NEW_SET_REPLICAS,
            base_port=base_port or DEFAULT_BASE_PORT,
            port_stride=peer_port_stride or DEFAULT_PORT_STRIDE,
            store=store or "",
            s3=access,
        )
        return spec, cnf_dir or setdir.default_cnf_dir()
    existing = load_spec(layout)
    for flag, wanted, have in (("--base-port", base_port, existing.base_port),
                               ("--peer-port-stride", peer_port_stride, existing.port_stride)):
        if wanted is not None and wanted != have:
            raise ConfigError(f"{layout.root} was created with {flag} {have}, not {wanted}")
    if store is not None and existing.store and store != existing.store:
        raise ConfigError(f"{layout.root} was created with --store {existing.store}, not "
                          f"{store}")
    if store is not None and existing.store and access not in (existing.s3, StoreAccess()):
        raise ConfigError(f"{layout.root} reaches its store {existing.store} with the --s3-* "
                          "options it was given then: give the same ones, or none")
    restored_from = existing.restore_from.split("@", 1)[0].rstrip("/")
    if store is not None and restored_from and store.rstrip("/") == restored_from:
        # Its transactions after the restore point are another history than the archive's
        # after it: the same sequence numbers, other transactions.
        raise ConfigError(f"{layout.root} was restored from {restored_from}: it cannot "
                          "archive into the store it was restored from; give it another")
    if cnf_dir is not None:
        setdir.check_cnf_dir(layout, cnf_dir)
    # The set keeps the ConfigMap it was made with.
    wanted_spec = replace(existing.scaled(replicas or existing.replicas),
                          store=existing.store or store or "",
                          s3=existing.s3 if existing.store or store is None else access)
    return wanted_spec, layout.config_map


def _converge(layout: SetLayout, spec: SetSpec, timeout: float, since: float) -> None:
    """Wait for the set; when that fails, the set stops growing where it is ready."""
    try:
        waiting.wait_converged(layout, spec, timeout, since)
    except MysqlstsError as exc:
        kept = waiting.settle_at_ready(layout, spec)
        if kept < spec.replicas:
            raise MysqlstsError(
                f"{exc}; the set stays at {kept} ready pod(s) and creates no more: fix the "
                f"cause, then ask again for {spec.replicas}"
            ) from exc
        raise


@local.command()
@_dir_option
@click.option("--replicas", type=click.IntRange(min=0), required=True)
@_timeout_option
def scale(directory: Path, replicas: int, timeout: float) -> None:
    """Change the number of pods and wait until the set has converged."""
    layout = _layout(directory)
    spec = load_spec(layout).scaled(replicas)
    if daemon.supervisor_pid(layout) is None:
        raise ConfigError(f"no supervisor runs for {layout.root}; run `local up` first")
    preflight.check_capacity(layout, spec)
    since = time.time()
    setdir.prepare(layout, spec, layout.config_map)
    _converge(layout, spec, timeout, since)
    click.echo(render_table(observe(layout, spec)))


@local.command()
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(directory: Path, as_json: bool) -> None:
    """Show every pod: role, phase, readiness, addresses."""
    layout = _layout(directory)
    view = observe(layout, load_spec(layout))
    click.echo(json.dumps(status_document(view), indent=2) if as_json else render_table(view))


@local.command()
@_dir_option
@click.argument("ordinal", type=click.IntRange(min=0))
def kill(directory: Path, ordinal: int) -> None:
    """SIGKILL every process of one pod at once, like a node crash."""
    layout = _layout(directory)
    spec = load_spec(layout)
    pgid = pod_verbs.kill_pod(layout, spec, ordinal)
    click.echo(f"local: killed {spec.pod_name(ordinal)} (process group {pgid})", err=True)


@local.command()
@_dir_option
@click.argument("ordinal", type=click.IntRange(min=0))
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the pod to stop.")
def stop(directory: Path, ordinal: int, timeout: float) -> None:
    """Keep one pod down, as if its node were gone, until `local start`; its data stays."""
    layout = _layout(directory)
    spec = load_spec(layout)
    name = spec.pod_name(ordinal)
    if pod_verbs.stop_pod(layout, spec, ordinal, timeout):
        click.echo(f"local: {name} is stopped and kept down; `local start --dir {layout.root} "
                   f"{ordinal}` brings it back", err=True)
    else:
        click.echo(f"local: no supervisor runs for {layout.root}; {name} stays down when "
                   "`local up` resumes the set", err=True)


@local.command()
@_dir_option
@click.argument("ordinal", type=click.IntRange(min=0))
@_timeout_option
def start(directory: Path, ordinal: int, timeout: float) -> None:
    """Bring back a pod that `local stop` keeps down, and wait until it is ready."""
    layout = _layout(directory)
    spec = load_spec(layout)
    pod_verbs.start_pod(layout, spec, ordinal, timeout)
    click.echo(f"local: {spec.pod_name(ordinal)} is back and ready", err=True)


@local.command()
@_dir_option
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for each replica to apply the pass.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None,
              help="Rows per chunk  [default: the sidecar's --consistency-chunk-rows]")
def checksum(directory: Path, timeout: float, chunk_rows: int | None) -> None:
    """Run a consistency pass on mysql-0 now and print each running pod's result; exit 1 if
    any pod differs from the primary or could not be read."""
    from mysqlsts.local.checksum import checksum as check

    layout = _layout(directory)
    result = check(layout, load_spec(layout), timeout, chunk_rows)
    click.echo(f"local: pass on mysql-0: {result.check.sentence()}", err=True)
    for line in result.lines():
        click.echo(line)
    raise SystemExit(result.exit_code)


@local.command("backup")
@_dir_option
@use(S3Options, "s3")
def backup_command(directory: Path, s3: S3Options) -> None:
    """A base backup of the set into its store (`up --store`), taken from the highest-ordinal
    ready replica (mysql-0 only in a one-pod set); prints the backup id. The --s3-* options,
    when given, replace the set's own (`up`'s) for this backup."""
    layout = _layout(directory)
    spec = load_spec(layout)
    # No store: one line before any donor is asked.
    store = backups.the_store(spec, layout, store_access.given_or(s3, spec.s3))
    donor = backups.choose_donor(observe(layout, spec).pods, spec.replicas,
                                 spec.statefulset)
    manifest = backups.take(layout, spec, donor, store)
    click.echo(f"local backup: complete id={manifest.backup_id} gtid={manifest.gtid} "
               f"bytes={manifest.size} parts={len(manifest.parts)} donor={donor.name} "
               f"store={store.describe()}", err=True)
    click.echo(manifest.backup_id)


@local.command("restore")
@_dir_option
@click.option("--from", "source", required=True,
              help="The store to restore from: file:///dir or s3://bucket[/prefix].")
@click.option("--backup", "backup_id", default="",
              show_default="the latest recoverable point",
              help="Restore this backup alone (no archived transaction after it).")
@click.option("--to-gtid", default="", help="Recover to this GTID (inclusive): the newest "
              "backup before it, then the store's binlog archive.")
@click.option("--to-time", default="", help="Recover to the last transaction committed at or "
              "before this ISO-8601 time (with Z or an offset).")
@click.option(
    "--base-port", type=click.IntRange(1024, 65535), default=DEFAULT_BASE_PORT,
    show_default=True, help="mysql port of the new set's mysql-0 (clone +1, http +2).",
)
@use(S3Options, "s3")
@_timeout_option
def restore_command(directory: Path, source: str, backup_id: str, to_gtid: str, to_time: str,
                    base_port: int, s3: S3Options, timeout: float) -> None:
    """Create and start a one-pod set in DIR whose mysql-0 is restored from a backup (or
    recovered to a point in time: with no target and no --backup, the latest the store
    holds), and wait until it is ready. DIR must not be a set already."""
    layout = _layout(directory)
    if layout.spec.exists():
        raise ConfigError(f"{layout.root} is already a local set; restore into a new directory")
    target = recovery_target(to_gtid, to_time)
    if target is not None and backup_id:
        raise ConfigError("--backup and --to-gtid/--to-time exclude each other: a recovery "
                          "chooses its backup")
    # The backup (or the recovery) is chosen and checked before anything is made.
    access = store_access.recorded(s3)  # mysql-0's clone step reaches the store with it
    if target is None and backup_id:
        restore_from = backups.backup_to_restore(source, backup_id, access)
    elif target is None:
        restore_from, to_gtid, said = backups.latest_to_restore(source, access)
        click.echo(f"local {said}", err=True)
    else:
        restore_from = backups.recovery_to_restore(source, target, access)
    spec = SetSpec(replicas=1, base_port=base_port, restore_from=restore_from,
                   restore_to_gtid=to_gtid.strip(), restore_to_time=to_time.strip(),
                   s3=access)
    with setdir.up_lock(layout):
        if layout.spec.exists():
            raise ConfigError(f"{layout.root} is already a local set; restore into a new "
                              "directory")
        since = _start_supervisor(layout, spec, setdir.default_cnf_dir())
    _converge(layout, spec, timeout, since)
    point = f" to {target}" if target is not None else ""
    if to_gtid and target is None:
        point = f" to the latest recoverable point, GTID {to_gtid}"
    click.echo(f"local restore: {layout.root} runs mysql-0 restored from {restore_from}"
               f"{point}", err=True)
    click.echo(render_table(observe(layout, spec)))


@local.command()
@_dir_option
@click.option("--purge", is_flag=True, help="Then remove the directory, data and all.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True)
def down(directory: Path, purge: bool, timeout: float) -> None:
    """Stop every pod gracefully (highest ordinal first), then the supervisor."""
    layout = _layout(directory)
    load_spec(layout)  # refuses a directory that is not a set, before touching it
    daemon.stop_supervisor(layout, timeout)
    orphans = daemon.stop_orphans(layout)
    if orphans:
        click.echo(f"local: stopped pods no supervisor watched: {orphans}", err=True)
    if purge:
        setdir.purge(layout)
    click.echo(f"local: {layout.root} is down" + (" and removed" if purge else ""), err=True)


@local.command("_supervise", hidden=True)
@_dir_option
def supervise(directory: Path) -> None:
    """The supervisor daemon (started by `up`)."""
    from mysqlsts.local.supervisor import Supervisor

    raise SystemExit(Supervisor(_layout(directory), console_script()).run())


@local.command("_pod", hidden=True)
@_dir_option
@click.option("--ordinal", type=click.IntRange(min=0), required=True)
def pod(directory: Path, ordinal: int) -> None:
    """One pod (started by the supervisor)."""
    from mysqlsts.local.plan import plan_pod
    from mysqlsts.local.pod import PodRunner

    layout = _layout(directory)
    spec = load_spec(layout)
    plan = plan_pod(spec, layout, ordinal, console_script())
    raise SystemExit(PodRunner(plan, layout.pod(plan.name), os.environ).run())
