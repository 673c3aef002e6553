"""The takeover's plain values: what the controller sees, its settings, and what it decides."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

# The taint of KEP-2268 (non-graceful node shutdown, GA in Kubernetes 1.28).
OUT_OF_SERVICE_KEY = "node.kubernetes.io/out-of-service"
OUT_OF_SERVICE_VALUE = "nodeshutdown"
OUT_OF_SERVICE_EFFECT = "NoExecute"
TAINT_MIN_VERSION = (1, 28)

# Annotations and labels this controller reads or writes.
TAKEOVER_ANNOTATION = "mysqlsts.io/takeover"  # what we did to a node, and when (JSON)
FENCED_ANNOTATION = "mysqlsts.io/fenced"  # a person confirmed the machine is off (JSON)
HISTORY_ANNOTATION = "mysqlsts.io/takeover-history"  # on the leader Lease: our takeovers (JSON)
EXCLUDE_LABEL = "mysqlsts.io/takeover-exclude"  # never act on this node
PAUSE_ANNOTATION = "mysqlsts.io/takeover-paused"  # on the set's namespace: act on nothing
# On the set's primary Lease, written by the sidecars (docs/contract.md): the longest time after
# a renew began that the holder's server may still accept a write (decimal seconds).
SELF_FENCE_ANNOTATION = "mysqlsts.io/self-fence-seconds"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str | None
    effect: str
    time_added: str | None = None  # kept as the API wrote it, so a rewrite changes nothing

    def same(self, other: Taint) -> bool:
        return (self.key, self.value, self.effect) == (other.key, other.value, other.effect)


OUT_OF_SERVICE = Taint(OUT_OF_SERVICE_KEY, OUT_OF_SERVICE_VALUE, OUT_OF_SERVICE_EFFECT)


@dataclass(frozen=True)
class NodeView:
    name: str
    ready: str  # the Ready condition's status: "True", "False" or "Unknown"
    # Its lastTransitionTime. For Unknown it is stamped by the node lifecycle controller (the
    # control plane's clock); it also names the outage: a new NotReady spell, a new stamp.
    ready_since: datetime | None
    # The node Lease's renewTime as written by the kubelet: compared for change only, never
    # against a clock (the kubelet's clock may be anything).
    lease_renewal: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    resource_version: str = ""
    uid: str = ""

    def has_out_of_service_taint(self) -> bool:
        return any(t.same(OUT_OF_SERVICE) for t in self.taints)

    def record(self) -> Record | None:
        return Record.parse(self.annotations.get(TAKEOVER_ANNOTATION))

    def fence(self) -> ManualFence | None:
        return ManualFence.parse(self.annotations.get(FENCED_ANNOTATION))

    def fenced_now(self) -> bool:
        """A person confirmed that the machine is off for this very outage: the fence names
        the NotReady transition it confirms, and the node has not been Ready since."""
        fence = self.fence()
        return (fence is not None and self.ready == "Unknown" and self.ready_since is not None
                and fence.outage >= self.ready_since)


@dataclass(frozen=True)
class ManualFence:
    """`mysqlsts takeover fence NODE`: who confirmed that the machine is off, and for which
    outage (the Ready condition's lastTransitionTime when they confirmed it)."""

    outage: datetime
    by: str
    at: datetime

    def to_json(self) -> str:
        return json.dumps({"outage": self.outage.isoformat(), "by": self.by,
                           "at": self.at.isoformat()}, sort_keys=True)

    @staticmethod
    def parse(text: str | None) -> ManualFence | None:
        """None for a missing or unparseable annotation (the old `TIME by WHO` form included:
        it names no outage, so it proves nothing about this one)."""
        if not text:
            return None
        try:
            raw = json.loads(text)
            return ManualFence(datetime.fromisoformat(raw["outage"]), str(raw["by"]),
                               datetime.fromisoformat(raw["at"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class VolumeSource:
    """What serves one of a pod's bound PersistentVolumes: its CSI driver, or for an in-tree
    volume the kind of its source (`nfs`, `rbd`, `iscsi`, `hostPath`, ...)."""

    volume: str  # the PV name
    driver: str
    csi: bool

    def describe(self) -> str:
        return f"{self.volume}: {'CSI driver ' if self.csi else 'in-tree '}{self.driver}"


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    node: str | None  # spec.nodeName
    claims: tuple[str, ...] = ()  # PVC names
    volumes: tuple[str, ...] = ()  # the bound PV names
    pinned_to: tuple[str, ...] = ()  # nodes its local/hostPath volumes live on
    uid: str = ""  # deletes carry it as a precondition: never the replacement of this pod
    unreadable: str = ""  # why its volumes could not be read (its node is then skipped)
    sources: tuple[VolumeSource, ...] = ()  # what serves its bound volumes (read as `volumes`)


@dataclass(frozen=True)
class PrimaryLease:
    """The set's primary Lease as read: who may keep the primary writable (`<pod>/<uid>`, ""
    when free), its version, duration and the holders' self-fence deadline. `problem` says why
    it proves nothing (missing, unreadable, no self-fence annotation); `written` is the newest
    managedFields time, which kube-apiserver stamps on every write (the control plane's clock)."""

    where: str  # namespace/name, for people
    holder: str = ""
    resource_version: str = ""
    duration: timedelta = timedelta(0)
    self_fence: timedelta = timedelta(0)
    written: datetime | None = None
    problem: str = ""

    def holder_pod(self) -> tuple[str, str]:
        """(pod name, pod uid) of the holder; the uid is "" when the holder names none."""
        name, _, uid = self.holder.partition("/")
        return name, uid

    def window(self, margin: timedelta) -> timedelta:
        """How long the Lease must stay unchanged before its holder has provably fenced itself:
        a holder that stopped renewing is fenced within self-fence of its last renew's start,
        and nobody else may take the Lease before its duration."""
        return self.duration + self.self_fence + margin


def primary_lease(where: str, *, holder: str | None, resource_version: str,
                  duration_seconds: int | None, annotations: Mapping[str, str],
                  written: Iterable[datetime | None]) -> PrimaryLease:
    """The Lease's plain fields as a PrimaryLease (pure): a missing or unparseable self-fence
    annotation is a problem (its holders did not say how long they may still write)."""
    stamps = [w for w in written if w is not None]
    lease = PrimaryLease(where, holder or "", resource_version,
                         timedelta(seconds=max(duration_seconds or 0, 0)),
                         written=max(stamps, default=None))
    text = annotations.get(SELF_FENCE_ANNOTATION)
    if text is None:
        return replace(lease, problem=(
            f"the primary Lease {where} carries no {SELF_FENCE_ANNOTATION} annotation: no "
            "sidecar said how long its server may still write after losing the Lease"))
    try:
        seconds = float(text)
        if not math.isfinite(seconds) or seconds <= 0:  # a holder's bound is never 0
            raise ValueError(text)
        self_fence = timedelta(seconds=seconds)
    except (ValueError, OverflowError):
        return replace(lease, problem=(
            f"the primary Lease {where} has {SELF_FENCE_ANNOTATION}={text!r}, not a positive "
            "number of seconds"))
    return replace(lease, self_fence=self_fence)


@dataclass(frozen=True)
class VolumeAttachmentView:
    name: str
    node: str
    volume: str  # PV name
    uid: str = ""  # its delete's precondition


@dataclass(frozen=True)
class ClusterView:
    nodes: tuple[NodeView, ...]
    pods: tuple[PodView, ...]  # the watched set's pods
    version: tuple[int, int]  # the API server's (major, minor)
    paused: bool  # the pause annotation is on the set's namespace
    attachments: tuple[VolumeAttachmentView, ...] = ()  # only read for --action delete-pods
    primary_lease: PrimaryLease | None = None  # None: not read (then it proves nothing)

    def pods_on(self, node: str) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.node == node)


class Action(enum.StrEnum):
    TAINT = "taint"
    DELETE_PODS = "delete-pods"
    DELETE_NODE = "delete-node"
    UNTAINT = "untaint"
    UNFENCE = "unfence"  # the node is Ready again: its manual fence has served
    SKIP = "skip"  # a guard stopped an action: reported like one
    WAIT = "wait"  # not down long enough yet: logged only


TAKEOVER_ACTIONS = (Action.TAINT, Action.DELETE_PODS, Action.DELETE_NODE)


@dataclass(frozen=True)
class Record:
    """What the annotation `mysqlsts.io/takeover` says this controller did to a node."""

    action: Action
    at: datetime
    taint_added: bool

    def to_json(self) -> str:
        return json.dumps(
            {"action": str(self.action), "at": self.at.isoformat(), "taintAdded": self.taint_added},
            sort_keys=True,
        )

    @staticmethod
    def parse(text: str | None) -> Record | None:
        """None for a missing or foreign annotation: the controller then treats the node as
        untouched (and never removes a taint it cannot prove it added)."""
        if not text:
            return None
        try:
            raw = json.loads(text)
            return Record(Action(raw["action"]), datetime.fromisoformat(raw["at"]),
                          bool(raw.get("taintAdded", False)))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class HistoryEntry:
    """One takeover, kept on the leader Lease so that a new leader inherits the cooldown and
    still counts a deleted Node as unhealthy."""

    node: str
    action: Action
    at: datetime


HISTORY_KEPT = timedelta(hours=24)


def history_to_json(entries: tuple[HistoryEntry, ...]) -> str:
    return json.dumps([{"node": e.node, "action": str(e.action), "at": e.at.isoformat()}
                       for e in entries], sort_keys=True)


def history_parse(text: str | None) -> tuple[HistoryEntry, ...]:
    """The entries that parse; a damaged annotation reads as no history (the nodes' own
    records still hold the cooldown)."""
    if not text:
        return ()
    try:
        raw = json.loads(text)
        return tuple(HistoryEntry(str(e["node"]), Action(e["action"]),
                                  datetime.fromisoformat(e["at"])) for e in raw)
    except (ValueError, KeyError, TypeError):
        return ()


def history_after(entries: tuple[HistoryEntry, ...], entry: HistoryEntry
                  ) -> tuple[HistoryEntry, ...]:
    """`entries` plus `entry`, without the ones older than HISTORY_KEPT."""
    return tuple(e for e in (*entries, entry) if entry.at - e.at <= HISTORY_KEPT)


@dataclass(frozen=True)
class Settings:
    """The decision core's settings; defaults live on `TakeoverOptions` (command.py)."""

    node_down_after: timedelta
    healthy_after: timedelta
    max_unhealthy: int
    cooldown: timedelta
    action: Action
    dry_run: bool
    # The primary Lease's proof: the margin added to its duration + self-fence window, and the
    # CSI drivers whose force-detach cuts the old node off its volume (replicas have no fence).
    lease_margin: timedelta
    detach_fenced_drivers: frozenset[str]
    # A --fence-command is set: every takeover first needs it to say the machine is off, a
    # stronger proof than the Lease's window and the storage (the machine is off).
    power_fence: bool


@dataclass(frozen=True)
class Decision:
    node: str
    action: Action
    reason: str
    guard: str = ""  # for SKIP: the guard's name (the metric label)
    would: Action | None = None  # for SKIP: the action the guard stopped
    pods: tuple[PodView, ...] = ()  # for DELETE_PODS
    attachments: tuple[str, ...] = ()  # for DELETE_PODS: VolumeAttachment names
    error: str = ""  # set when carrying it out failed
    # For a takeover on the default proof: the primary Lease's resourceVersion its `lease`
    # guard judged; the controller re-reads the Lease before acting and skips if it moved.
    # None: a power fence proves it (or not a takeover), nothing to re-read.
    lease_version: str | None = None

    def sentence(self) -> str:
        if self.action is Action.SKIP:
            return f"node={self.node} skip {self.would} guard={self.guard}: {self.reason}"
        failed = f" FAILED: {self.error}" if self.error else ""
        return f"node={self.node} {self.action}: {self.reason}{failed}"
