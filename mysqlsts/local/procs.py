"""Small helpers shared by the pod, the supervisor and the CLI side: the console script,
log tails, the readiness probe, free ports."""

from __future__ import annotations

import shutil
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mysqlsts.adapters import tools


def console_script() -> tuple[str, ...]:
    """How to run `mysqlsts`: the console script beside this interpreter, as pods would."""
    beside = Path(sys.executable).parent / "mysqlsts"
    if beside.exists():
        return (str(beside),)
    found = shutil.which("mysqlsts")
    return (found,) if found else (sys.executable, "-m", "mysqlsts")


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


@dataclass(frozen=True)
class Readiness:
    """The kubelet's readiness probe: GET /readyz answered 200, else why not (its one-line
    answer; None when nothing answered, e.g. while the pod is still in its init steps)."""

    ready: bool
    reason: str | None = None


def probe_readiness(host: str, port: int, timeout: float = 1.0) -> Readiness:
    try:
        with urllib.request.urlopen(  # noqa: S310 (loopback http)
            f"http://{host}:{port}/readyz", timeout=timeout
        ) as response:
            return Readiness(response.status == 200)
    except urllib.error.HTTPError as exc:
        with exc:
            answer = exc.read(1024).decode(errors="replace").strip().splitlines()
        return Readiness(False, answer[0] if answer else f"/readyz answered {exc.code}")
    except (urllib.error.URLError, OSError, ValueError):
        return Readiness(False)


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
