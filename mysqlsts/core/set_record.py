"""Whose data a data dir holds: the set a clone recorded in it, against the set this pod is in.

A clone writes `SET_RECORD` (the StatefulSet and its Service) into the staging dir, so it moves
into place with the data. A reused volume (a PVC of another set, a data dir copied by hand)
then carries someone else's name, and the clone step refuses it before a server starts on it.
Data without a record (a primary bootstrapped by the server image, data from before records,
another server's data) proves nothing by itself; the sidecar decides it by the local server's
answer to this set's root password: a refusal there means the data's accounts are not this
set's. Either way it is one sentence, and the data stays as it is.
"""

from __future__ import annotations

from mysqlsts.core.identity import Identity

SET_RECORD = "mysqlsts-set"
# MySQL's and MariaDB's "Access denied for user": the password does not open this server.
ACCESS_DENIED = 1045
_LEAVE = ("left untouched: give the pod an empty volume (delete its PVC if that data is not "
          "needed), or restore the root password the data was made with")


def set_name(identity: Identity) -> str:
    """The set a pod belongs to: its StatefulSet under its Service (both DNS labels)."""
    return f"{identity.statefulset}.{identity.service}"


def render_set_record(name: str) -> str:
    return f"{name}\n"


def parse_set_record(text: str) -> str:
    """The recorded name; whatever else the file holds counts as another set's."""
    return text.strip()


def recorded_elsewhere(recorded: str | None, this_set: str) -> str | None:
    """Before a server starts (the clone step): the one line when the data dir was recorded by
    another set, else None (no record is no evidence)."""
    if recorded is None or recorded == this_set:
        return None
    shown = recorded if len(recorded) <= 130 else recorded[:127] + "..."
    return (f"data dir is not this set's: set {shown!r} made it, this pod is in set "
            f"{this_set!r}; {_LEAVE}")


def root_refused(errno: int | None, recorded: str | None, this_set: str) -> str | None:
    """Once the server runs (the sidecar): the one line when its refusal of this set's root
    password shows whose data it is, else None (any other error is retried as before)."""
    if errno != ACCESS_DENIED:
        return None
    elsewhere = recorded_elsewhere(recorded, this_set)
    if elsewhere is not None:
        return elsewhere
    if recorded is None:
        return ("data dir is not this set's: its server refuses this set's root password and "
                f"no clone of set {this_set!r} made it (another server's data on a reused "
                f"volume?); {_LEAVE}")
    return (f"data dir was cloned in set {this_set!r} but its server refuses the Secret's root "
            "password: root-password changed in the Secret only (change it in the server "
            "first, docs/deploy.md), a set of the same name left this volume, or MySQL data "
            "restored from a backup, which keeps the backup's root password (docs/backup.md); "
            + _LEAVE)
