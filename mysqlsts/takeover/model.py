"""The takeover's plain values: what the controller sees, its settings, and what it decides."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# The taint of KEP-2268 (non-graceful node shutdown, GA in Kubernetes 1.28).
OUT_OF_SERVICE_KEY = "node.kubernetes.io/out-of-service"
OUT_OF_SERVICE_VALUE = "nodeshutdown"
OUT_OF_SERVICE_EFFECT = "NoExecute"
TAINT_MIN_VERSION = (1, 28)

# Annotations and labels this controller reads or writes.
TAKEOVER_ANNOTATION = "mysqlsts.io/takeover"  # what we did to a node, and when (JSON)
FENCED_ANNOTATION = "mysqlsts.io/fenced"  # a person confirmed the machine is off
EXCLUDE_LABEL = "mysqlsts.io/takeover-exclude"  # never act on this node
PAUSE_ANNOTATION = "mysqlsts.io/takeover-paused"  # on the set's namespace: act on nothing


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
    ready_since: datetime | None  # its lastTransitionTime
    lease_renewed: datetime | None  # the node Lease's renewTime in kube-node-lease
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    resource_version: str = ""

    def has_out_of_service_taint(self) -> bool:
        return any(t.same(OUT_OF_SERVICE) for t in self.taints)

    def record(self) -> Record | None:
        return Record.parse(self.annotations.get(TAKEOVER_ANNOTATION))


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    node: str | None  # spec.nodeName
    claims: tuple[str, ...] = ()  # PVC names
    volumes: tuple[str, ...] = ()  # the bound PV names
    pinned_to: tuple[str, ...] = ()  # nodes its local/hostPath volumes live on


@dataclass(frozen=True)
class VolumeAttachmentView:
    name: str
    node: str
    volume: str  # PV name


@dataclass(frozen=True)
class ClusterView:
    nodes: tuple[NodeView, ...]
    pods: tuple[PodView, ...]  # the watched set's pods
    version: tuple[int, int]  # the API server's (major, minor)
    paused: bool  # the pause annotation is on the set's namespace
    attachments: tuple[VolumeAttachmentView, ...] = ()  # only read for --action delete-pods

    def pods_on(self, node: str) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.node == node)


class Action(enum.StrEnum):
    TAINT = "taint"
    DELETE_PODS = "delete-pods"
    DELETE_NODE = "delete-node"
    UNTAINT = "untaint"
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
class Settings:
    """The decision core's settings; defaults live on `TakeoverOptions` (command.py)."""

    node_down_after: timedelta
    healthy_after: timedelta
    max_unhealthy: int
    cooldown: timedelta
    action: Action
    dry_run: bool


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

    def sentence(self) -> str:
        if self.action is Action.SKIP:
            return f"node={self.node} skip {self.would} guard={self.guard}: {self.reason}"
        failed = f" FAILED: {self.error}" if self.error else ""
        return f"node={self.node} {self.action}: {self.reason}{failed}"
