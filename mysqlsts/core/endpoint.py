"""HOST:PORT as the options spell a server's address (pure)."""

from __future__ import annotations


def host_port(text: str) -> tuple[str, int] | None:
    """(host, port) from `text`, or None when it is not HOST:PORT with a port in 1-65535.
    The last colon splits, so an IPv6 host written as `[::1]:3306` keeps its brackets."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return host, int(port)
