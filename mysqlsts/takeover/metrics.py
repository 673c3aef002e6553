"""The controller's metrics (docs/metrics.md lists them): one registry per controller."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class TakeoverMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.nodes_down = Gauge(
            "mysqlsts_takeover_nodes_down",
            "Nodes down: Ready=Unknown past --node-down-after as the controller observed it, or "
            "fenced by hand for this outage.",
            registry=self.registry,
        )
        self.actions = Counter(
            "mysqlsts_takeover_actions",
            "Actions carried out, by action and result (ok, error).",
            ["action", "result"], registry=self.registry,
        )
        self.leader = Gauge(
            "mysqlsts_takeover_leader", "1 while this replica holds the leader Lease.",
            registry=self.registry,
        )
        self.skips = Counter(
            "mysqlsts_takeover_skips",
            "Actions a guard stopped, by the guard's name.", ["reason"], registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
