"""Sealed JSON records in a store (pure): a backup's manifest, a binlog segment's index record.

A record is its canonical JSON (sorted keys, no spaces) plus a `seal` over it: an HMAC-SHA256
under a key derived from the encryption key when the data is encrypted (an edit by anyone
without the key is refused), else a plain SHA-256 (an accidental edit or a torn write is
refused). One definition, so both kinds of record are sealed and checked alike.

A large document (an index checkpoint) may instead be sealed over its bytes as stored
(`seal_bytes`): the reader checks those bytes before it parses them, and never serialises
the body again to check it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal(body: dict[str, Any], seal_key: bytes | None) -> str:
    return seal_bytes(canonical(body), seal_key)


def seal_bytes(data: bytes, seal_key: bytes | None) -> str:
    """The seal of `data` exactly as stored."""
    sealing = Sealing(seal_key)
    sealing.update(data)
    return sealing.seal()


class Sealing:
    """A seal over bytes fed piece by piece (a document too large to hold whole)."""

    def __init__(self, seal_key: bytes | None) -> None:
        self._kind = "sha256:" if seal_key is None else "hmac-sha256:"
        self._mac = hashlib.sha256() if seal_key is None else hmac.new(seal_key,
                                                                       digestmod=hashlib.sha256)

    def update(self, data: bytes) -> None:
        self._mac.update(data)

    def seal(self) -> str:
        return self._kind + self._mac.hexdigest()

    def holds(self, presented: str) -> bool:
        """Whether `presented` is the seal of the bytes so far (compared in constant time)."""
        return hmac.compare_digest(str(presented), self.seal())


def sealed(body: dict[str, Any], seal_key: bytes | None) -> bytes:
    """The record's bytes: the body with its seal."""
    return canonical({**body, "seal": seal(body, seal_key)})


def seal_holds(body: dict[str, Any], presented: str, seal_key: bytes | None) -> bool:
    """Whether `presented` is the body's seal (compared in constant time)."""
    return hmac.compare_digest(str(presented), seal(body, seal_key))
