"""The proof that a down node's mysqld takes no writes, before its pods move.

Default proof: the set's primary Lease unchanged for its duration + the sidecars' self-fence +
`--lease-margin` (decide.py's `lease` guard; the holder has shut its server down by then), and
for pods that hold no Lease, storage whose force-detach cuts the old node off (`storage`). The
sidecar's isolation fence (a primary that reaches neither the API nor a peer for
`--isolation-fence-after` turns read-only) comes on top, so the window must also outlast it.
Stronger proofs: `--fence-command` (exit 0 only when the machine is powered off) and a person's
`mysqlsts takeover fence NODE`.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import timedelta
from pathlib import Path

from mysqlsts.takeover.model import PrimaryLease

log = logging.getLogger(__name__)

FENCE_MARGIN = timedelta(seconds=60)  # slack for clocks and probe periods


def window_problem(node_down_after: timedelta, isolation_fence_after: timedelta) -> str | None:
    """Why `node_down_after` does not leave the isolation fence time to close, or None."""
    needed = 2 * isolation_fence_after + FENCE_MARGIN
    if node_down_after >= needed:
        return None
    return (
        f"--node-down-after {int(node_down_after.total_seconds())}s is too short: the old "
        f"primary turns read-only only after --isolation-fence-after "
        f"{int(isolation_fence_after.total_seconds())}s, so a takeover must wait at least twice "
        f"that plus {int(FENCE_MARGIN.total_seconds())}s ({int(needed.total_seconds())}s)"
    )


def lease_window_problem(node_down_after: timedelta, lease: PrimaryLease,
                         margin: timedelta) -> str | None:
    """Why `node_down_after` is shorter than the primary Lease's window (its duration + the
    sidecars' self-fence, read from the Lease itself, + margin), or None. The Lease's own rule
    still holds a takeover back until the window has passed; a shorter node window only makes
    the controller's settings say something the Lease contradicts."""
    if lease.problem:
        return None
    window = lease.window(margin)
    if node_down_after >= window:
        return None
    return (
        f"--node-down-after {int(node_down_after.total_seconds())}s is shorter than the primary "
        f"Lease {lease.where}'s window: its duration {int(lease.duration.total_seconds())}s + "
        f"the sidecars' self-fence {lease.self_fence.total_seconds():g}s + --lease-margin "
        f"{int(margin.total_seconds())}s = {window.total_seconds():g}s"
    )


def run_fence_command(command: Path, node: str, timeout: float) -> tuple[bool, str]:
    """Run `command NODE`: (True, why) only when it exits 0, i.e. the machine is powered off."""
    try:
        done = subprocess.run(
            [str(command), node], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return False, f"{command} {node} gave no answer in {timeout:g}s"
    except OSError as exc:
        return False, f"{command} could not run: {exc.strerror or exc}"
    last = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:] or [""]
    if done.returncode == 0:
        return True, f"{command.name} says powered off: {last[0]}".rstrip(": ")
    return False, f"{command.name} exited {done.returncode}: {last[0]}".rstrip(": ")
