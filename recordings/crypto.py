"""Encryption at rest for recordings: tenant data keys and the "CCR1" record stream.

Every byte of a recording on disk is encrypted with its tenant's random 256-bit
data key; the data key itself is stored in the database wrapped (AES-GCM) by the
deployment's master key, with the tenant id bound in as associated data so a
wrapped key copied to another tenant's row does not unwrap.

CCR1 (see docs/design/recordings.md)::

    header = b"CCR1" + nonce prefix (8 random bytes)
    record = length (4 bytes big-endian, ciphertext incl. 16-byte tag) + ciphertext
    nonce  = nonce prefix + record index (4 bytes big-endian)
    aad    = header + record index + final flag (1 byte)

Authenticating the index stops records being reordered or spliced between
files; the final flag on the last record of a finished file makes truncation at
a record boundary detectable. Finished files use fixed plaintext records of
``RECORD_SIZE`` (all full but the last), so ``EncryptedFile`` finds any byte
range from the file size alone and decrypts only the records it needs (HTTP
Range). Journals are written one record per append and have no final record.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recordings.errors import RecordingCorrupt, RecordingKeyError

KEY_SIZE = 32
MAGIC = b"CCR1"
HEADER_SIZE = len(MAGIC) + 8
RECORD_SIZE = 65536
TAG_SIZE = 16
# Largest plaintext record accepted: a damaged length field must not make a reader allocate gigabytes.
MAX_RECORD = 1 << 24
_LENGTH = struct.Struct(">I")
_OVERHEAD = _LENGTH.size + TAG_SIZE  # bytes a record adds to its plaintext
_WRAP_NONCE = 12
_MAX_RECORDS = 1 << 32  # the record index is 4 bytes; reusing a nonce would break GCM


class Sink(Protocol):
    """Where encrypted or encoded bytes go: a binary file, or another writer stacked on one."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


def generate_key() -> bytes:
    """A new random tenant data key (AES-256)."""
    return os.urandom(KEY_SIZE)


def _key_aad(tenant_id: int) -> bytes:
    return f"callcenter tenant data key {tenant_id}".encode()


def wrap_key(master: bytes, data_key: bytes, tenant_id: int) -> bytes:
    """``data_key`` sealed by the master key for storage in the tenant's row: nonce + ciphertext + tag."""
    if len(data_key) != KEY_SIZE:
        raise ValueError(f"data key must be {KEY_SIZE} bytes, got {len(data_key)}")
    nonce = os.urandom(_WRAP_NONCE)
    return nonce + AESGCM(master).encrypt(nonce, data_key, _key_aad(tenant_id))


def unwrap_key(master: bytes, wrapped: bytes, tenant_id: int) -> bytes:
    """The tenant's data key; RecordingKeyError when the master key or tenant does not match."""
    if len(wrapped) != _WRAP_NONCE + KEY_SIZE + TAG_SIZE:
        raise RecordingKeyError(f"wrapped data key of tenant {tenant_id} has the wrong length ({len(wrapped)})")
    try:
        return AESGCM(master).decrypt(wrapped[:_WRAP_NONCE], wrapped[_WRAP_NONCE:], _key_aad(tenant_id))
    except InvalidTag:
        raise RecordingKeyError(f"data key of tenant {tenant_id} does not unwrap with this master key") from None


def load_master_key(value: str) -> bytes:
    """The master key from its settings form (base64 of 32 bytes); the message never echoes the secret."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("recording master key is not valid base64 (expected base64 of 32 random bytes)") from None
    if len(key) != KEY_SIZE:
        raise ValueError(f"recording master key must be base64 of {KEY_SIZE} bytes, it decodes to {len(key)} bytes")
    return key


def _nonce(header: bytes, index: int) -> bytes:
    return header[len(MAGIC):] + index.to_bytes(4, "big")


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of file (raw files and pipes may return short reads)."""
    data = inp.read(n)
    while len(data) < n:
        more = inp.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _check_header(header: bytes) -> None:
    if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
        raise RecordingCorrupt("not a CCR1 stream (bad or missing header)")


class EncryptedWriter:
    """Encrypts what is written into CCR1 records on ``out`` (which stays open: the caller owns it).

    With ``record_size`` (finished files) ``write`` buffers and emits full
    records only once more data follows, so ``close()`` can put the final flag
    on the record holding the last bytes. With ``record_size=None`` (journals)
    every ``write_record`` is one record, handed to ``out`` at once.
    """

    def __init__(self, out: Sink, key: bytes, record_size: int | None = RECORD_SIZE) -> None:
        if record_size is not None and not 0 < record_size <= MAX_RECORD:
            raise ValueError(f"record size must be 1..{MAX_RECORD}, got {record_size}")
        self._out = out
        self._aead = AESGCM(key)
        self._record_size = record_size
        self._header = MAGIC + os.urandom(HEADER_SIZE - len(MAGIC))
        self._index = 0
        self._buffer = bytearray()
        self._closed = False
        out.write(self._header)

    def _emit(self, plaintext: bytes, final: bool) -> None:
        if self._closed:
            raise ValueError("write to a closed EncryptedWriter")
        if len(plaintext) > MAX_RECORD:
            raise ValueError(f"record of {len(plaintext)} bytes exceeds {MAX_RECORD}")
        if self._index >= _MAX_RECORDS:
            raise OverflowError("CCR1 stream has run out of record numbers")
        sealed = self._aead.encrypt(_nonce(self._header, self._index), plaintext,
                                    _aad(self._header, self._index, final))
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)  # one write: a crash tears at most this record
        self._index += 1

    def write(self, data: bytes) -> int:
        """Buffer ``data``; emit the full records that are certainly not the last one."""
        size = self._record_size
        if size is None:
            raise ValueError("this writer makes one record per write_record() call")
        self._buffer += data
        if len(self._buffer) > size:
            full = (len(self._buffer) - 1) // size
            for i in range(full):
                self._emit(bytes(self._buffer[i * size:(i + 1) * size]), final=False)
            del self._buffer[:full * size]
        return len(data)

    def write_record(self, data: bytes) -> None:
        """Encrypt ``data`` as one record now (journal appends)."""
        if self._record_size is not None:
            raise ValueError("this writer makes fixed-size records: use write()")
        self._emit(data, final=False)

    def flush(self) -> None:
        """Flush ``out`` (the records emitted so far; a partial fixed-size record stays buffered)."""
        self._out.flush()

    def close(self, final: bool = True) -> None:
        """Emit what is buffered, as the final record when ``final`` (a finished file), then flush ``out``."""
        if self._buffer or final:
            self._emit(bytes(self._buffer), final=final)
            self._buffer.clear()
        self._closed = True
        self.flush()


class RecordReader:
    """Decrypts the records of a CCR1 stream in order, from ``inp``'s current position.

    ``require_final=True`` (finished files): a bad tag, a torn or missing
    record, a missing final record or data after it raise RecordingCorrupt.
    ``require_final=False`` (journals): iteration stops quietly at the first
    torn or unauthenticated record, and ``truncated`` is True afterwards when
    that happened (False when the stream ended cleanly). A bad stream header
    raises RecordingCorrupt in both modes.
    """

    def __init__(self, inp: BinaryIO, key: bytes, *, require_final: bool) -> None:
        self._inp = inp
        self._aead = AESGCM(key)
        self._require_final = require_final
        self.truncated = False

    def _damaged(self, message: str) -> None:
        if self._require_final:
            raise RecordingCorrupt(message)
        self.truncated = True

    def _open(self, header: bytes, index: int, sealed: bytes) -> tuple[bytes, bool] | None:
        """(plaintext, final flag), or None when the record is not authentic under either flag."""
        for final in (False, True):
            try:
                return self._aead.decrypt(_nonce(header, index), sealed, _aad(header, index, final)), final
            except InvalidTag:
                continue
        return None

    def __iter__(self) -> Iterator[bytes]:
        header = _read_exact(self._inp, HEADER_SIZE)
        _check_header(header)
        index = 0
        while True:
            prefix = _read_exact(self._inp, _LENGTH.size)
            if not prefix:
                if self._require_final:
                    raise RecordingCorrupt(f"file ends after {index} records without a final record (truncated)")
                return
            length = _LENGTH.unpack(prefix)[0] if len(prefix) == _LENGTH.size else -1
            if not TAG_SIZE <= length <= MAX_RECORD + TAG_SIZE:
                self._damaged(f"record {index}: torn or invalid length")
                return
            sealed = _read_exact(self._inp, length)
            if len(sealed) < length:
                self._damaged(f"record {index} is torn (file truncated)")
                return
            opened = self._open(header, index, sealed)
            if opened is None:
                self._damaged(f"record {index} fails authentication (tampered, wrong key or torn)")
                return
            plaintext, final = opened
            yield plaintext
            if final:
                if self._inp.read(1):
                    self._damaged(f"data after the final record {index}")
                return
            index += 1


def iter_records(inp: BinaryIO, key: bytes, *, require_final: bool) -> Iterator[bytes]:
    """The plaintext records of ``inp``; use RecordReader directly to learn whether a journal was truncated."""
    return iter(RecordReader(inp, key, require_final=require_final))


class EncryptedFile:
    """Random access to a finished fixed-record CCR1 file: size and byte ranges without decrypting it all.

    The record size is taken from the first record's length (all records but
    the last are full), so the layout follows from the file size. Each record
    is authenticated when read, the last one with the final flag, so
    truncation, splicing and tampering raise RecordingCorrupt. Every read seeks
    first: several iterators over one file object may interleave.
    """

    def __init__(self, inp: BinaryIO, key: bytes) -> None:
        self._inp = inp
        self._aead = AESGCM(key)
        inp.seek(0)
        self._header = _read_exact(inp, HEADER_SIZE)
        _check_header(self._header)
        body = inp.seek(0, os.SEEK_END) - HEADER_SIZE
        inp.seek(HEADER_SIZE)
        prefix = _read_exact(inp, _LENGTH.size)
        if len(prefix) < _LENGTH.size:
            raise RecordingCorrupt("CCR1 file has no records (truncated)")
        (first,) = _LENGTH.unpack(prefix)
        if not TAG_SIZE <= first <= MAX_RECORD + TAG_SIZE or _LENGTH.size + first > body:
            raise RecordingCorrupt("CCR1 file: invalid first record length or truncated")
        self._record_size = first - TAG_SIZE
        if _LENGTH.size + first == body:
            self._count, last = 1, self._record_size
        else:
            if self._record_size == 0:
                raise RecordingCorrupt("CCR1 file: empty record before the last one")
            full, rest = divmod(body, self._record_size + _OVERHEAD)
            if rest == 0:
                self._count, last = full, self._record_size
            elif rest >= _OVERHEAD:
                self._count, last = full + 1, rest - _OVERHEAD
            else:
                raise RecordingCorrupt("CCR1 file: size does not match its record layout (truncated)")
        self._last_size = last
        self.size = (self._count - 1) * self._record_size + last

    def _record(self, index: int) -> bytes:
        final = index == self._count - 1
        expected = (self._last_size if final else self._record_size) + TAG_SIZE
        self._inp.seek(HEADER_SIZE + index * (self._record_size + _OVERHEAD))
        data = _read_exact(self._inp, _LENGTH.size + expected)
        if len(data) < _LENGTH.size + expected or _LENGTH.unpack_from(data)[0] != expected:
            raise RecordingCorrupt(f"record {index}: length does not match the file layout")
        try:
            return self._aead.decrypt(_nonce(self._header, index), data[_LENGTH.size:],
                                      _aad(self._header, index, final))
        except InvalidTag:
            raise RecordingCorrupt(f"record {index} fails authentication (tampered, truncated or wrong key)") from None

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes ``start`` to ``end`` (exclusive), decrypting only the records they fall in."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range {start}-{end} outside 0-{self.size}")
        return self._range(start, end)

    def _range(self, start: int, end: int) -> Iterator[bytes]:
        if start == end:
            return
        size = self._record_size
        for index in range(start // size, (end - 1) // size + 1):
            base = index * size
            yield self._record(index)[max(start - base, 0):end - base]

    def __iter__(self) -> Iterator[bytes]:
        """All plaintext, record by record (every record verified, even for an empty file)."""
        for index in range(self._count):
            yield self._record(index)
