"""The local set's backups: `local backup` takes one from a replica's donor into the set's
store (through clone.to_backup, as `mysqlsts backup` does); `local restore` checks a store's
backup before a new one-pod set is made whose mysql-0 restores it (clone.from_backup, in the
pod's own clone step)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mysqlsts.adapters.fs import read_secret
from mysqlsts.clone.from_backup import check_restorable, choose_backup
from mysqlsts.clone.point_in_time import choose_latest, plan_for
from mysqlsts.clone.to_backup import backup_from_donor
from mysqlsts.core import backup_donor
from mysqlsts.core.backup_donor import DonorCandidate
from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.core.pitr import Target
from mysqlsts.core.store_url import parse_store_url
from mysqlsts.core.version import Flavor
from mysqlsts.errors import ConfigError
from mysqlsts.local import store_access
from mysqlsts.local.render import PodView
from mysqlsts.local.spec import HOST, SetLayout, SetSpec, StoreAccess
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.open import open_store

# Seconds `local backup` keeps asking a busy donor (one that serves a clone right now).
DONOR_DEADLINE = 120.0


def choose_donor(pods: Sequence[PodView], replicas: int, statefulset: str = "mysql") -> PodView:
    """The pod core.backup_donor chooses (the highest-ordinal ready replica; the primary only
    when the set has one pod), from the pods as `local status` sees them."""
    by_ordinal = {pod.ordinal: pod for pod in pods}
    try:
        chosen = backup_donor.choose_donor(
            [DonorCandidate(pod.ordinal, pod.ready, pod.reason) for pod in pods], replicas,
            statefulset)
    except ConfigError as error:
        raise ConfigError(f"{error}; see `local status`") from None
    return by_ordinal[chosen.ordinal]


def the_store(spec: SetSpec, layout: SetLayout, access: StoreAccess) -> ObjectStore:
    if not spec.store:
        raise ConfigError(f"{layout.root} has no store: create the set with `local up --store "
                          "URL` (a file:///dir or s3://bucket/prefix)")
    return open_store(spec.store, store_access.settings(access))


def take(layout: SetLayout, spec: SetSpec, donor: PodView, store: ObjectStore) -> Manifest:
    return backup_from_donor(
        store, None, DonorAddress(donor.ordinal, HOST, donor.address.clone_port),
        read_secret(layout.secret("clone-token"), "clone token"),
        set_name=spec.statefulset, flavor=Flavor.MARIADB, deadline_seconds=DONOR_DEADLINE,
        compression="auto")


def prepare_store(url: str) -> None:
    """`local up --store`: a file:// store's directory is made if missing (the local set's
    embedded store); an s3:// one is only parsed here."""
    parsed = parse_store_url(url)
    if parsed.scheme == "file":
        directory = Path("/" + parsed.prefix)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the store directory {directory}: "
                              f"{exc.strerror}") from None


def recovery_to_restore(url: str, target: Target, access: StoreAccess) -> str:
    """The store URL `local restore --to-gtid/--to-time` recovers from, once the recovery is
    planned (RecoveryRefused naming the window, or a missing segment, before any set is
    made). mysql-0's clone step plans it again and applies it."""
    plan_for(open_store(url, store_access.settings(access)), None, target)
    return url


def latest_to_restore(url: str, access: StoreAccess) -> tuple[str, str, str]:
    """`local restore` with no target and no backup: the latest recoverable point (the newest
    backup and the archive's contiguous run after it), as (what mysql-0's clone step restores
    from, the GTID it recovers to or "", the line naming the point). Pinned, as a
    backup is: a recovery to that point's GTID, else `URL@BACKUP_ID` (checked whole), so a
    re-created mysql-0 never restores to another point."""
    latest = choose_latest(open_store(url, store_access.settings(access)), None)
    if latest.plan is not None:
        return url, latest.plan.stop_gtid, latest.said
    return backup_to_restore(url, latest.manifest.backup_id, access), "", latest.said


def backup_to_restore(url: str, wanted: str, access: StoreAccess) -> str:
    """`STORE_URL@BACKUP_ID` of the backup `local restore` is to restore (the newest unless
    `wanted`), checked whole (manifest, every part) before any set is made."""
    store = open_store(url, store_access.settings(access))
    manifest = choose_backup(store, None, wanted)
    check_restorable(store, manifest, None)
    if manifest.flavor != Flavor.MARIADB:
        raise ConfigError(f"backup {manifest.backup_id} is {manifest.flavor}; a local set "
                          "runs mariadb")
    return f"{url}@{manifest.backup_id}"
