"""A lease record kept in an object store that has only create-only writes: one object per
generation, `<prefix><generation, 12 digits>`, the highest generation being the record.

This is the compare-and-swap of adapters/lease_store.py on a store without one: `read` returns
the highest generation's record and that generation as its version; `write` creates the next
generation create-only (two writers after the same version: one wins, the other meets
`ObjectExists`), then lists again and succeeds only if its generation is still the highest (a
writer whose version is stale re-creates a generation that was cleaned away: below the
highest, it is no record and the write is a conflict). Each object holds a random token, so
two writers never write equal bytes (a create-only put of equal bytes counts as done).
Generations older than the one before the newest are removed by the writer.
"""

from __future__ import annotations

import json
import secrets

from mysqlsts.adapters.lease_store import LeaseConflict, LeaseUnavailable
from mysqlsts.core.lease import LeaseRecord
from mysqlsts.core.records import RecordError, parse_object
from mysqlsts.store.base import ObjectExists, ObjectStore, StoreError, read_all

NO_RECORD = "0"
_DIGITS = 12


class ObjectLeaseStore:
    """The LeaseStore interface over an ObjectStore. The timeout is the store's own (its
    client's timeouts): a store error is LeaseUnavailable, counted as a renew that did not
    happen."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def describe(self) -> str:
        return f"{self.store.describe()} {self.prefix}"

    def _generations(self) -> list[int]:
        found = []
        for info in self.store.list(self.prefix):
            tail = info.name[len(self.prefix):]
            if len(tail) == _DIGITS and tail.isdigit():
                found.append(int(tail))
        return sorted(found)

    def _name(self, generation: int) -> str:
        return f"{self.prefix}{generation:0{_DIGITS}d}"

    def read(self, timeout: float) -> tuple[LeaseRecord | None, str]:
        try:
            generations = self._generations()
            if not generations:
                return None, NO_RECORD
            name = self._name(generations[-1])
            body = parse_object(read_all(self.store, name), name)
            return LeaseRecord.from_dict(body["record"]), str(generations[-1])
        except StoreError as exc:
            raise LeaseUnavailable(f"cannot read the lease in {self.describe()}: {exc}") from exc
        except (RecordError, KeyError, TypeError, ValueError) as exc:
            raise LeaseUnavailable(f"{self.describe()} does not hold a lease: {exc}") from exc

    def write(self, record: LeaseRecord, expected: str, timeout: float) -> str:
        generation = int(expected) + 1
        body = json.dumps({"record": record.as_dict(), "token": secrets.token_hex(8)},
                          sort_keys=True) + "\n"
        try:
            self.store.put_new(self._name(generation), body.encode())
        except ObjectExists:
            raise LeaseConflict(f"{self.describe()} changed (generation {generation} "
                                "taken)") from None
        except StoreError as exc:
            raise LeaseUnavailable(f"cannot write the lease in {self.describe()}: "
                                   f"{exc}") from exc
        try:
            generations = self._generations()
        except StoreError as exc:
            raise LeaseUnavailable(f"cannot list the lease in {self.describe()}: "
                                   f"{exc}") from exc
        if not generations or generations[-1] != generation:
            raise LeaseConflict(f"{self.describe()} changed (generation "
                                f"{generations[-1] if generations else 0} after ours, "
                                f"{generation})")
        for old in generations[:-2]:
            try:
                self.store.delete(self._name(old))
            except StoreError:
                break  # cleaned at the next write
        return str(generation)
