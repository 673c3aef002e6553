"""Where the other pods of the set are reached.

The one place that maps an ordinal to network addresses. In Kubernetes that is
`<statefulset>-<n>.<service>` on the standard ports; the local replica set points the same
template at loopback with a per-ordinal port stride. Nothing else differs between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.errors import ConfigError

PORT_MAX = 65535


@dataclass(frozen=True)
class PeerAddress:
    ordinal: int
    host: str
    mysql_port: int
    clone_port: int
    http_port: int


@dataclass(frozen=True)
class PeerDirectory:
    statefulset: str
    service: str
    # Defaults live with the options (options.PeerOptions), not here.
    host_template: str
    mysql_port: int
    clone_port: int
    http_port: int
    # Added per ordinal to every port: 0 in Kubernetes (each pod has its own IP),
    # non-zero when all pods share one loopback address.
    port_stride: int

    def __post_init__(self) -> None:
        try:
            self.host_template.format(statefulset="s", ordinal=0, service="svc")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"peer host template {self.host_template!r} is invalid: may use only "
                "{statefulset}, {ordinal} and {service}"
            ) from exc

    def address(self, ordinal: int) -> PeerAddress:
        if ordinal < 0:
            raise ValueError(f"ordinal must be >= 0, got {ordinal}")
        host = self.host_template.format(
            statefulset=self.statefulset, ordinal=ordinal, service=self.service
        )
        offset = ordinal * self.port_stride
        ports = {name: getattr(self, name) + offset
                 for name in ("mysql_port", "clone_port", "http_port")}
        for name, port in ports.items():
            if port > PORT_MAX:
                raise ConfigError(
                    f"{name.replace('_', ' ')} {getattr(self, name)} + ordinal {ordinal} × "
                    f"stride {self.port_stride} = {port} is past {PORT_MAX}"
                )
        return PeerAddress(ordinal=ordinal, host=host, **ports)

    def primary(self) -> PeerAddress:
        return self.address(0)


@dataclass(frozen=True)
class SrvTarget:
    """One answer of a DNS SRV lookup of the headless Service: a pod and a port."""

    host: str
    port: int
