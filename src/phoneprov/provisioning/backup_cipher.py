"""A backup encrypted with a passphrase: scrypt, then AES-256-GCM in 1 MiB chunks.

Fernet would need the whole archive in memory (firmware images make it large),
so the archive is sealed as a stream of chunks, each with its own GCM tag (the
STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár, 2015):

    header   MAGIC (8) | log2 N, r, p of scrypt (3) | salt (16) | nonce prefix (7)
    chunk    length (4, big-endian; top bit set on the last chunk) | ciphertext + tag

The key is scrypt(passphrase, salt; N = 2^16, r = 8, p = 1), 32 bytes: 64 MiB
of memory per guess. A chunk's nonce is the prefix, its number (4 bytes) and a
last-chunk byte, and every chunk authenticates the header, so chunks cannot be
reordered, dropped, cut short or moved between archives without failing, and
an archive that ends before its last chunk is reported as cut short.
"""

from __future__ import annotations

import os
import struct
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from phoneprov.errors import InputError

MAGIC = b"PPBKAES1"
CHUNK = 1 << 20
_HEADER = struct.Struct(">8sBBB16s7s")
_LENGTH = struct.Struct(">I")
_LAST = 0x80000000
_TAG = 16
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 16, 8, 1
_DAMAGED = "Check that the file is the whole archive `phoneprov backup` wrote, and the passphrase."


def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> AESGCM:
    if not 10 <= log2_n <= 22 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise InputError("the encrypted backup names scrypt parameters out of range", _DAMAGED)
    kdf = Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p)
    return AESGCM(kdf.derive(passphrase.encode("utf-8")))


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", number, 1 if last else 0)


class EncryptingWriter:
    """A write-only file object: what is written goes encrypted to ``sink``.

    ``finish`` writes the last chunk; an archive without it does not decrypt.
    """

    def __init__(self, sink: IO[bytes], passphrase: str) -> None:
        salt, prefix = os.urandom(16), os.urandom(7)
        self._header = _HEADER.pack(MAGIC, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt, prefix)
        self._aead = _key(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        self._sink, self._prefix = sink, prefix
        self._buffer = bytearray()
        self._number = 0
        sink.write(self._header)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: a chunk is written when full (tarfile calls this)."""

    def finish(self) -> None:
        """Encrypt what is buffered as the last chunk (possibly empty)."""
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _emit(self, plain: bytes, *, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._number, last), plain, self._header)
        self._sink.write(_LENGTH.pack(len(sealed) | (_LAST if last else 0)) + sealed)
        self._number += 1


class DecryptingReader:
    """A read-only file object over an archive ``EncryptingWriter`` wrote.

    Raises InputError for a wrong passphrase, a damaged chunk, or an archive
    cut short or with bytes after its last chunk.
    """

    def __init__(self, source: IO[bytes], passphrase: str) -> None:
        header = source.read(_HEADER.size)
        if len(header) != _HEADER.size or not header.startswith(MAGIC):
            raise InputError("this is not an encrypted phoneprov backup", _DAMAGED)
        _, log2_n, r, p, salt, prefix = _HEADER.unpack(header)
        self._aead = _key(passphrase, salt, log2_n, r, p)
        self._source, self._header, self._prefix = source, header, prefix
        self._plain = b""
        self._number = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._plain) < size):
            self._plain += self._next_chunk()
        if size < 0:
            size = len(self._plain)
        out, self._plain = self._plain[:size], self._plain[size:]
        return out

    def _next_chunk(self) -> bytes:
        raw = self._source.read(_LENGTH.size)
        if len(raw) != _LENGTH.size:
            raise InputError(
                "the encrypted backup is cut short (its last chunk is missing)", _DAMAGED
            )
        (word,) = _LENGTH.unpack(raw)
        last, length = bool(word & _LAST), word & ~_LAST
        sealed = self._source.read(length) if _TAG <= length <= CHUNK + _TAG else b""
        if len(sealed) != length or length < _TAG:
            raise InputError("the encrypted backup is cut short or damaged", _DAMAGED)
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._number, last), sealed, self._header
            )
        except InvalidTag:
            if self._number == 0:
                raise InputError(
                    "cannot decrypt the backup: wrong passphrase, or the archive is damaged",
                    "Give the passphrase the backup was made with (--passphrase-stdin).",
                ) from None
            raise InputError(
                f"chunk {self._number} of the encrypted backup is damaged", _DAMAGED
            ) from None
        self._number += 1
        if last:
            self._done = True
            if self._source.read(1):
                raise InputError("the encrypted backup has bytes after its end", _DAMAGED)
        return plain
