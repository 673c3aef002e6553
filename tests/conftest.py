"""Shared test configuration. Warnings are errors (pyproject); slow tiers have markers.

The helpers tests share are modules of the package `tests` (pyproject puts the repository root
on pytest's path), imported as `tests.ports`, `tests.servers`, `tests.localset`, ... — the same
modules the benches import.

Loopback ports: every suite and bench keeps to its own share (tests/ports.py, SHARES), all below
the kernel's ephemeral range (Linux: 32768-60999), because a listening port inside that range
can be taken at any moment by the local end of some outgoing connection, and a server then
fails with "address in use". A port handed out is reserved across processes (pytest-xdist
workers, other runs) until released. The demo uses 13306+ (scripts/demo).
"""
