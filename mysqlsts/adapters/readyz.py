"""Asking a sidecar's /readyz over HTTP, as the kubelet's readiness probe does: the local set's
supervisor and status, and `mysqlsts backup --donor auto` choosing its donor."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    """GET /readyz answered 200, else why not (its one-line answer; None when nothing
    answered, e.g. while the pod is still in its init steps)."""

    ready: bool
    reason: str | None = None


def probe_readiness(host: str, port: int, timeout: float = 1.0) -> Readiness:
    try:
        with urllib.request.urlopen(  # noqa: S310 (http to a pod's sidecar)
            f"http://{host}:{port}/readyz", timeout=timeout
        ) as response:
            return Readiness(response.status == 200)
    except urllib.error.HTTPError as exc:
        with exc:
            answer = exc.read(1024).decode(errors="replace").strip().splitlines()
        return Readiness(False, answer[0] if answer else f"/readyz answered {exc.code}")
    except (urllib.error.URLError, OSError, ValueError):
        return Readiness(False)
