"""How long each node has been silent, and the set's primary Lease unchanged, on a clock we
trust.

A node is silent while its Ready condition is Unknown (the node lifecycle controller's verdict)
and its kubelet's Lease does not change. The kubelet's own stamps are compared for change only:
its clock may be minutes off. The duration is counted on the controller's monotonic clock from
the first time this controller saw the silence, so a restarted controller observes a full
window before it acts; `--once`, which observes only once, counts from the Unknown transition
stamped by the node lifecycle controller to the API server's own time (both the control
plane's clocks). The primary Lease is watched the same way: by its resourceVersion on the
monotonic clock, or for `--once` from kube-apiserver's newest managedFields stamp to its Date.
Pure: the clocks are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from mysqlsts.takeover.model import NodeView, PrimaryLease

_Key = tuple[datetime | None, str | None]  # (the Unknown transition, the node Lease renewal)


class SilenceWatch:
    def __init__(self) -> None:
        self._since: dict[str, tuple[_Key, float]] = {}

    def observe(self, nodes: Iterable[NodeView], monotonic: float) -> dict[str, timedelta]:
        """Seconds of silence per Ready=Unknown node, as this controller has watched it."""
        seen: dict[str, tuple[_Key, float]] = {}
        for node in nodes:
            if node.ready != "Unknown":
                continue
            key = (node.ready_since, node.lease_renewal)
            earlier = self._since.get(node.name)
            seen[node.name] = earlier if earlier and earlier[0] == key else (key, monotonic)
        self._since = seen
        return {name: timedelta(seconds=monotonic - start) for name, (_, start) in seen.items()}


def silence_by_control_plane(nodes: Iterable[NodeView], api_now: datetime
                             ) -> dict[str, timedelta]:
    """For a single pass: from the node lifecycle controller's Unknown stamp to the API
    server's Date. A kubelet that renewed its Lease after that stamp is alive, but one pass
    cannot see a change, so this trusts the node lifecycle controller's verdict alone."""
    return {n.name: max(api_now - n.ready_since, timedelta(0)) for n in nodes
            if n.ready == "Unknown" and n.ready_since is not None}


class LeaseWatch:
    """How long the primary Lease has stayed at one resourceVersion, as this controller saw it:
    from the first pass that read that version (a restarted controller starts from nothing, so
    it watches a full window itself)."""

    def __init__(self) -> None:
        self._seen: tuple[str, float] | None = None

    def observe(self, lease: PrimaryLease | None, monotonic: float) -> timedelta | None:
        """None when the Lease was not read or proves nothing. A failed read forgets nothing:
        resourceVersions never repeat, so the same version read later was unchanged since."""
        if lease is None or lease.problem or not lease.resource_version:
            return None
        if self._seen is None or self._seen[0] != lease.resource_version:
            self._seen = (lease.resource_version, monotonic)
        return timedelta(seconds=monotonic - self._seen[1])


# managedFields times and the Date header are whole seconds: the write may have happened up to
# a second after its stamp says.
STAMP_GRANULARITY = timedelta(seconds=1)


def lease_quiet_by_control_plane(lease: PrimaryLease | None, api_now: datetime | None
                                 ) -> timedelta | None:
    """For a single pass: from the Lease's last write as kube-apiserver stamped it (the newest
    managedFields time) to the API server's Date. No stamp or no Date: not measurable."""
    if lease is None or lease.problem or lease.written is None or api_now is None:
        return None
    return max(api_now - lease.written - STAMP_GRANULARITY, timedelta(0))
