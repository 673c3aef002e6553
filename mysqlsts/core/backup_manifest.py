"""A backup's manifest: what it holds and how to check it, written last as its commit marker.

The manifest is canonical JSON (sorted keys, no spaces) with a `seal`: an HMAC-SHA256 of the
rest under a key derived from the at-rest encryption key when the backup is encrypted (an edit
by anyone without the key is refused), else a plain SHA-256 (an accidental edit or a torn write
is refused). `parse_manifest` refuses anything not exactly as written, and `missing_or_wrong`
compares it with what the store lists, so a restore refuses a damaged backup before it
prepares anything. Each part's SHA-256 is checked again as the part is read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from mysqlsts.core.backup_layout import is_backup_id, part_name
from mysqlsts.core.sealed_json import seal_holds, sealed
from mysqlsts.errors import MysqlstsError

FORMAT = 1


class ManifestError(MysqlstsError):
    """A manifest that is not exactly as written, or a backup whose parts do not match it."""


@dataclass(frozen=True)
class Part:
    name: str  # relative to the store's prefix
    size: int
    sha256: str  # hex, of the bytes as stored


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    set_name: str
    flavor: str
    server_version: str
    gtid: str  # the backup's position: gtid_binlog_pos of the donor at the backup's end
    start_time: str  # ISO-8601 UTC
    end_time: str
    parts: tuple[Part, ...]
    compression: str  # of the stream inside the parts ("zstd", "none")
    key_id: str  # "" when the parts are not encrypted at rest
    format: int = FORMAT

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def end(self) -> datetime:
        return datetime.fromisoformat(self.end_time)


def _body(manifest: Manifest) -> dict[str, Any]:
    body = asdict(manifest)
    body["parts"] = [asdict(part) for part in manifest.parts]
    return body


def render_manifest(manifest: Manifest, seal_key: bytes | None) -> bytes:
    """The manifest's bytes; `seal_key` is required exactly when the backup has a key id."""
    if bool(manifest.key_id) != (seal_key is not None):
        raise ValueError("an encrypted backup's manifest is sealed with its key, only then")
    _check(manifest)
    body = _body(manifest)
    return sealed(body, seal_key) + b"\n"


def parse_manifest(data: bytes, backup: str, seal_key_for: Any = None) -> Manifest:
    """The manifest of `backup` from its bytes. `seal_key_for(key_id)` gives the seal key of an
    encrypted backup (raising ManifestError for a wrong key); anything not exactly as written
    is a ManifestError naming the backup."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        seal = raw.pop("seal")
        parts = tuple(Part(str(p["name"]), int(p["size"]), str(p["sha256"]))
                      for p in raw["parts"])
        fields = {key: raw[key] for key in raw if key != "parts"}
        manifest = Manifest(parts=parts, **fields)
    except (ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"backup {backup}: the manifest is unreadable ({error})") from None
    if manifest.format != FORMAT:
        raise ManifestError(f"backup {backup}: manifest format {manifest.format} is not "
                            f"{FORMAT}, which this version reads")
    try:
        key = seal_key_for(manifest.key_id) if manifest.key_id else None
    except ManifestError as error:  # e.g. the key file holds another key
        raise ManifestError(f"backup {backup} was {error}") from None
    if manifest.key_id and key is None:
        raise ManifestError(f"backup {backup} is encrypted (key id {manifest.key_id}): "
                            "no key given")
    if not seal_holds(_body(manifest), seal, key):
        raise ManifestError(f"backup {backup}: the manifest was altered or written with "
                            "another key (its seal does not match)")
    if manifest.backup_id != backup:
        raise ManifestError(f"backup {backup}: the manifest names backup "
                            f"{manifest.backup_id}")
    _check(manifest)
    return manifest


def _check(manifest: Manifest) -> None:
    problems = []
    if not is_backup_id(manifest.backup_id):
        problems.append(f"bad id {manifest.backup_id!r}")
    if not manifest.parts:
        problems.append("no parts")
    for number, part in enumerate(manifest.parts, start=1):
        if part.name != part_name(manifest.backup_id, number):
            problems.append(f"part {number} is named {part.name!r}")
        if part.size <= 0 or len(part.sha256) != 64:
            problems.append(f"part {number} has no size or checksum")
    try:
        if datetime.fromisoformat(manifest.end_time) < datetime.fromisoformat(
                manifest.start_time):
            problems.append("it ends before it starts")
    except ValueError:
        problems.append("bad times")
    if problems:
        raise ManifestError(f"backup {manifest.backup_id}: invalid manifest: "
                            + "; ".join(problems))


def missing_or_wrong(manifest: Manifest, listed: dict[str, int]) -> list[str]:
    """What the store's listing (name → size) lacks or holds differently from the manifest."""
    problems = []
    for part in manifest.parts:
        size = listed.get(part.name)
        if size is None:
            problems.append(f"{part.name} is missing")
        elif size != part.size:
            problems.append(f"{part.name} holds {size} bytes, the manifest says {part.size}")
    return problems


def key_problem(manifest: Manifest, key_id: str | None) -> str | None:
    """Why the key given (its id; None: no key) cannot open this backup, or None. With a key
    given, an unencrypted backup is refused too: its plain SHA-256 seal can be written by
    anyone who can write to the store, so it proves nothing about who wrote it."""
    if key_id is not None and not manifest.key_id:
        return (f"backup {manifest.backup_id} is not encrypted, yet a key was given: refused, "
                "as an unencrypted manifest proves nothing about who wrote it")
    if manifest.key_id and key_id != manifest.key_id:
        given = "no key" if key_id is None else f"key id {key_id}"
        return (f"backup {manifest.backup_id} was encrypted with key id {manifest.key_id}; "
                f"{given} was given")
    return None
