"""Small helpers shared by the pod, the supervisor and the CLI side: the console script,
log tails, free ports (the readiness probe is adapters.readyz)."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from mysqlsts.adapters import tools
from mysqlsts.adapters.process import ProcessGroup
from mysqlsts.local.records import PodRecord
from mysqlsts.local.spec import SetLayout
from mysqlsts.local.store import pod_records


def console_script() -> tuple[str, ...]:
    """How to run `mysqlsts`: the console script beside this interpreter, as pods would."""
    beside = Path(sys.executable).parent / "mysqlsts"
    if beside.exists():
        return (str(beside),)
    found = shutil.which("mysqlsts")
    return (found,) if found else (sys.executable, "-m", "mysqlsts")


def running_pods(layout: SetLayout, records: Mapping[int, PodRecord] | None = None,
                 ) -> dict[int, ProcessGroup]:
    """The pods whose process runs, by ordinal, whoever started them: their records (read now
    unless given) name the leader of each pod's process group (the set's directory in its
    command line guards against a recycled pid)."""
    if records is None:
        records = pod_records(layout)
    groups = {o: ProcessGroup.adopt(r.pid, str(layout.root)) for o, r in records.items()}
    return {o: group for o, group in groups.items() if group.running()}


def last_line(path: Path, since: int = 0, skip: tuple[str, ...] = ()) -> str | None:
    """The last non-empty line written to `path` after byte offset `since`, passing over lines
    that contain any of `skip` (e.g. mariadbd's closing "Aborting", which says nothing)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(since, size - 8192))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None
    return tools.last_line(tail, skip)


def ports_in_use(host: str, ports: list[int]) -> list[int]:
    """Ports some other process listens on. In Kubernetes every pod has its own address; here
    a port taken by anyone else would make a probe or a client reach the wrong server."""
    taken = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                taken.append(port)
    return taken
