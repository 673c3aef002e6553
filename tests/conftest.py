"""Shared test configuration. Warnings are errors (pyproject); slow tiers have markers.

Loopback ports: every suite keeps to its own share, all below the kernel's ephemeral range
(Linux: 32768-60999), because a listening port inside that range can be taken at any moment by
the local end of some outgoing connection, and a server then fails with "address in use".
  manifests (live dashboard) 19000-19499   clone 20000-20999   sidecar 21000-21999
  local set 22000-22999   probes 23000-23999   demo 13306+ (scripts/demo)
"""
