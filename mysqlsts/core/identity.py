"""Who this pod is: ordinal, server-id and role, derived from its StatefulSet name."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from mysqlsts.errors import ConfigError

# server_id is an unsigned 32-bit integer; 0 means "no id" and stops replication.
SERVER_ID_MAX = 2**32 - 1

# A DNS label (RFC 1123, as Kubernetes names pods and Services): these names end up in DNS
# names and in cnf files, where a newline would be a line of its own.
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_POD_NAME = re.compile(rf"(?P<statefulset>{_LABEL})-(?P<ordinal>[0-9]+)")
_SERVICE = re.compile(_LABEL)


class Role(enum.StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"


@dataclass(frozen=True)
class Identity:
    statefulset: str
    ordinal: int
    server_id: int
    service: str

    @property
    def pod_name(self) -> str:
        return f"{self.statefulset}-{self.ordinal}"

    @property
    def role(self) -> Role:
        return Role.PRIMARY if self.ordinal == 0 else Role.REPLICA

    @property
    def is_primary(self) -> bool:
        return self.role is Role.PRIMARY

    @property
    def report_host(self) -> str:
        """The pod's stable DNS name under the headless Service."""
        return f"{self.pod_name}.{self.service}"


def parse_pod_name(pod_name: str) -> tuple[str, int]:
    """Split `mysql-2` into ("mysql", 2); the StatefulSet controller names pods this way."""
    match = _POD_NAME.fullmatch(pod_name)
    if match is None or len(pod_name) > 63:
        raise ConfigError(
            f"pod name {pod_name!r} does not end in -<ordinal> or is not a DNS label "
            "(expected e.g. mysql-0)"
        )
    return match["statefulset"], int(match["ordinal"])


def server_id_for(ordinal: int, base: int) -> int:
    server_id = base + ordinal
    if base < 1 or server_id > SERVER_ID_MAX:
        raise ConfigError(
            f"server-id {base} + ordinal {ordinal} is outside 1..{SERVER_ID_MAX}"
        )
    return server_id


def check_service(service: str) -> str:
    if not _SERVICE.fullmatch(service):
        raise ConfigError(
            f"service {service!r} is not a DNS label (lower-case letters, digits and '-', "
            "at most 63)"
        )
    return service


def identify(pod_name: str, service: str, server_id_base: int) -> Identity:
    statefulset, ordinal = parse_pod_name(pod_name)
    check_service(service)
    return Identity(statefulset, ordinal, server_id_for(ordinal, server_id_base), service)
