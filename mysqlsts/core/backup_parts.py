"""How a backup part is stored: zstd-compressed, then sealed with AES-256-GCM at rest (pure).

The key comes from a Secret file. From it HKDF derives three values: the part key, the key
that seals the manifest, and a key id recorded in the manifest (it names the key without
revealing it, so a wrong key is one clear line before anything is downloaded). Each part is

    b"MSB1" | nonce (12 random bytes) | AES-256-GCM(zstd(plain)) with the part's name as AAD

so a part moved to another name or another backup does not open. Without a key the part is
b"MSB0" | zstd(plain). The SHA-256 the manifest records is of the stored bytes, checked before
anything is opened.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mysqlsts.errors import MysqlstsError

COMPRESSION = "zstd"
_SEALED = b"MSB1"
_PLAIN = b"MSB0"
_NONCE = 12
_LEVEL = 3
MAX_PART = 256 * 1024 * 1024  # a decompressed part never exceeds this (bounded memory)


class PartError(MysqlstsError):
    """A stored part that does not open: corrupt, moved, or sealed with another key."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mysqlsts-backup-v1",
                info=purpose).derive(secret)


@dataclass(frozen=True)
class BackupKeys:
    part_key: bytes
    seal_key: bytes
    key_id: str

    @classmethod
    def from_secret(cls, secret: bytes) -> BackupKeys:
        if len(secret) < 16:
            raise MysqlstsError("the backup encryption key must hold at least 16 bytes "
                                "(e.g. 32 random bytes, base64)")
        return cls(_derive(secret, b"part"), _derive(secret, b"manifest"),
                   _derive(secret, b"key-id").hex()[:16])


def pack_part(name: str, plain: bytes, keys: BackupKeys | None,
              nonce: bytes | None = None) -> bytes:
    packed = zstandard.ZstdCompressor(level=_LEVEL).compress(plain)
    if keys is None:
        return _PLAIN + packed
    nonce = nonce if nonce is not None else os.urandom(_NONCE)
    return _SEALED + nonce + AESGCM(keys.part_key).encrypt(nonce, packed, name.encode())


def unpack_part(name: str, stored: bytes, keys: BackupKeys | None) -> bytes:
    head, body = stored[:4], stored[4:]
    if head == _SEALED:
        if keys is None:
            raise PartError(f"{name} is encrypted and no key was given")
        try:
            packed = AESGCM(keys.part_key).decrypt(body[:_NONCE], body[_NONCE:], name.encode())
        except InvalidTag:
            raise PartError(f"{name} does not open with this key (corrupt, moved, or sealed "
                            "with another key)") from None
    elif head == _PLAIN:
        packed = body
    else:
        raise PartError(f"{name} is not a backup part")
    try:
        return zstandard.ZstdDecompressor().decompress(packed, max_output_size=MAX_PART)
    except zstandard.ZstdError as error:
        raise PartError(f"{name} does not decompress: {error}") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
