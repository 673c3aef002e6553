"""The watchdog's verdict (pure): may the server keep running, judged from the sidecar's
heartbeat file as the watchdog saw it over time.

The sidecar rewrites the file with a changing content only while its server is allowed to run
(sidecar/watchdog.py). The watchdog reads the content and notes, on ITS OWN monotonic clock,
when it last saw it change; the file's mtime and the stamp inside it are never compared with
that clock (another process's clock, and a hung writer's). A content present before the server
started counts for nothing: only a change seen since proves a living sidecar.

- no change seen yet: RUN for `startup` seconds after the server started, then STOP;
- a change seen: RUN until the content has stayed unchanged for `timeout` seconds, then STOP.

Before the server starts (`may_start`), two rules keep a container restarted by a kubelet that
is cut off from the API server (Ready=Unknown: the controller may be moving the pod) from
starting a server no sidecar vouches for:

- the primary lease fence's marker in the data dir (core/lease.py, FENCE_FILE) holds: WAIT
  until the sidecar holds the lease again and removes it;
- a heartbeat file present when the watchdog began means a restart inside the pod (the emptyDir
  outlives its containers; a pod's first start finds none): WAIT until its content changes,
  then judge with `timeout` from that change, with no startup allowance.

The watchdog's stop bound (`stop_bound`: poll + timeout + grace) is what the primary's sidecar
claims on top of its renew deadline as the self-fence time. `mysqlsts server` writes the bound
it enforces to a file beside the heartbeat (`format_bound`), and the sidecar claims what it
reads there (`parse_bound`, `self_fence_claim`), never its own settings: the two containers'
settings can differ, and an image without `mysqlsts server` enforces none.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, replace

# `mysqlsts server`'s exit code when its watchdog stopped the server (mariadbd's own are 0 and
# 1, or 128 + a signal), so whoever restarts it can tell the two apart.
WATCHDOG_EXIT = 3

_DECIMAL = re.compile(r"\d+(\.\d+)?")


class Verdict(enum.StrEnum):
    RUN = "run"
    STOP = "stop"


@dataclass(frozen=True)
class WatchdogTimings:
    """Seconds: the longest silence of a living sidecar, and the allowance before its first
    heartbeat (the server's start, the sidecar's own start)."""

    timeout: float = 10.0
    startup: float = 120.0


@dataclass(frozen=True)
class Beats:
    """What the watchdog saw of the file: `content` last read (None: missing or unreadable),
    and when (its monotonic clock) it first saw that content; `changed` once a content other
    than the one present at the start was seen; `left_over`: a content was there at the start
    (a file an earlier run of the container left)."""

    started: float
    content: bytes | None
    since: float
    changed: bool = False
    left_over: bool = False


def begin(now: float, content: bytes | None) -> Beats:
    """The watchdog starts (with the server) and reads the file once."""
    return Beats(started=now, content=content, since=now, left_over=content is not None)


def may_start(beats: Beats, *, fence: str | None) -> tuple[bool, str]:
    """Whether mariadbd may start now, with the reason (one line for the log). `fence`: the
    lease fence's marker, when it exists (None: no fence)."""
    if fence is not None:
        return False, (f"the primary lease fence holds ({fence}); waiting for the sidecar to "
                       f"hold the lease")
    if beats.changed:
        return True, "the sidecar's heartbeat changed: it vouches for the server"
    if beats.left_over:
        return False, ("a restart inside the pod (the heartbeat file outlives the container); "
                       "waiting for the sidecar's heartbeat to change")
    return True, "the pod's first start: no heartbeat yet"


def launched(beats: Beats, now: float) -> Beats:
    """The server starts at `now`: the startup allowance counts from here, not from the
    watchdog's begin (it may have waited long for a fence to go)."""
    return replace(beats, started=now)


def seen(beats: Beats, content: bytes | None, now: float) -> Beats:
    """After reading `content` at `now`: a new content restarts the silence. A file that went
    missing or unreadable is not a heartbeat (its content did not change to anything)."""
    if content is None or content == beats.content:
        return beats
    return replace(beats, content=content, since=now, changed=True)


def decide(beats: Beats, now: float, timings: WatchdogTimings) -> tuple[Verdict, str]:
    """RUN or STOP, with the reason (one line for the log)."""
    if not beats.changed:
        waited = now - beats.started
        if waited < timings.startup:
            return Verdict.RUN, (f"waiting for the sidecar's first heartbeat "
                                 f"({waited:.1f}s of {timings.startup:g}s)")
        return Verdict.STOP, (f"no heartbeat from the sidecar within {timings.startup:g}s of "
                              f"the server's start")
    silent = now - beats.since
    if silent < timings.timeout:
        return Verdict.RUN, f"heartbeat {silent:.1f}s ago"
    return Verdict.STOP, (f"the sidecar's heartbeat has not changed for {silent:.1f}s "
                          f"(timeout {timings.timeout:g}s)")


def next_check(beats: Beats, now: float, timings: WatchdogTimings, poll: float) -> float:
    """Seconds until the watchdog should read again: every `poll`, and exactly at the moment
    the current verdict would turn, so a stop is never a poll late."""
    turns = (beats.started + timings.startup if not beats.changed
             else beats.since + timings.timeout)
    return max(0.0, min(poll, turns - now))


def stop_bound(timeout: float, *, poll: float, grace: float) -> float:
    """The longest a server runs after the sidecar's last heartbeat: the change seen within a
    poll, the timeout, the grace before SIGKILL."""
    return poll + timeout + grace


def format_bound(seconds: float) -> str:
    """The bound file's content: a decimal number of seconds (no exponent), rounded up to the
    microsecond so it never says less than the watchdog takes."""
    micro = math.ceil(round(seconds * 1_000_000, 3))  # round(): 13.5 stays 13.5, not 13.500001
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}".rstrip("0").rstrip(".") + "\n"


def parse_bound(content: bytes) -> float:
    """Seconds from a bound file's content; ValueError (a short reason) unless it is one positive
    decimal number (a trailing newline allowed)."""
    try:
        text = content.decode("ascii").removesuffix("\n")
    except UnicodeDecodeError:
        raise ValueError("not a decimal number of seconds") from None
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a decimal number of seconds: {text[:40]!r}")
    seconds = float(text)
    if seconds <= 0:
        raise ValueError(f"not a positive number of seconds: {text!r}")
    return seconds


def self_fence_claim(renew_deadline: float, bound: float | None) -> float:
    """The self-fence time a primary's sidecar claims: its renew deadline + the stop bound its
    server's watchdog enforces; 0 (none claimed) when no watchdog states one."""
    return 0.0 if bound is None else renew_deadline + bound
