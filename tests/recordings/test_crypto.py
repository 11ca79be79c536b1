"""Tenant key wrapping and the CCR1 encrypted stream: round trips, tampering, truncation, range reads."""

from __future__ import annotations

import base64
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings.crypto import (
    HEADER_SIZE,
    RECORD_SIZE,
    EncryptedFile,
    EncryptedWriter,
    RecordReader,
    generate_key,
    iter_records,
    load_master_key,
    unwrap_key,
    wrap_key,
)
from recordings.errors import RecordingCorrupt, RecordingError, RecordingKeyError

KEY = bytes(range(32))
OVERHEAD = 4 + 16


def encrypt(data: bytes, record_size: int | None = RECORD_SIZE, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    writer = EncryptedWriter(out, key, record_size)
    writer.write(data)
    writer.close()
    return out.getvalue()


def decrypt(blob: bytes, key: bytes = KEY) -> bytes:
    return b"".join(iter_records(io.BytesIO(blob), key, require_final=True))


def journal(records: list[bytes]) -> bytes:
    out = io.BytesIO()
    writer = EncryptedWriter(out, KEY, record_size=None)
    for record in records:
        writer.write_record(record)
    writer.close(final=False)
    return out.getvalue()


def test_data_key_wraps_and_unwraps() -> None:
    master, data_key = generate_key(), generate_key()
    assert len(data_key) == 32 and data_key != master
    wrapped = wrap_key(master, data_key, 7)
    assert data_key not in wrapped
    assert wrap_key(master, data_key, 7) != wrapped  # random nonce
    assert unwrap_key(master, wrapped, 7) == data_key


def test_unwrap_with_wrong_master_or_tenant_fails() -> None:
    master, data_key = generate_key(), generate_key()
    wrapped = wrap_key(master, data_key, 7)
    with pytest.raises(RecordingKeyError):
        unwrap_key(generate_key(), wrapped, 7)
    with pytest.raises(RecordingKeyError):
        unwrap_key(master, wrapped, 8)
    with pytest.raises(RecordingKeyError):
        unwrap_key(master, wrapped[:-1], 7)
    assert issubclass(RecordingKeyError, RecordingError) and issubclass(RecordingCorrupt, RecordingError)


def test_load_master_key() -> None:
    key = os.urandom(32)
    assert load_master_key(base64.b64encode(key).decode() + "\n") == key
    with pytest.raises(ValueError, match="not valid base64"):
        load_master_key("not base64 at all!")
    with pytest.raises(ValueError, match="16 bytes"):
        load_master_key(base64.b64encode(os.urandom(16)).decode())


@pytest.mark.parametrize("length", [0, 1, RECORD_SIZE - 1, RECORD_SIZE, RECORD_SIZE + 1, 3 * RECORD_SIZE])
def test_stream_round_trip_and_layout(length: int) -> None:
    data = os.urandom(length)
    blob = encrypt(data)
    assert decrypt(blob) == data
    # all records full but the last, which carries the remaining data and the final flag (never an extra empty one)
    records = max(1, -(-length // RECORD_SIZE))
    assert len(blob) == HEADER_SIZE + records * OVERHEAD + length
    if length >= 32:
        assert data[:32] not in blob
    encrypted = EncryptedFile(io.BytesIO(blob), KEY)
    assert encrypted.size == length
    assert b"".join(encrypted) == data


def test_writes_of_any_size_give_the_same_records() -> None:
    data = os.urandom(1000)
    out = io.BytesIO()
    writer = EncryptedWriter(out, KEY, record_size=64)
    for i in range(0, len(data), 37):
        writer.write(data[i:i + 37])
    writer.close()
    assert len(out.getvalue()) == HEADER_SIZE + 16 * OVERHEAD + 1000
    assert decrypt(out.getvalue()) == data


def test_wrong_key_is_corrupt() -> None:
    blob = encrypt(b"secret audio" * 100)
    with pytest.raises(RecordingCorrupt):
        decrypt(blob, key=generate_key())
    with pytest.raises(RecordingCorrupt):
        b"".join(EncryptedFile(io.BytesIO(blob), generate_key()))


@pytest.mark.parametrize("where", ["magic", "nonce prefix", "length", "ciphertext", "tag", "last record"])
def test_tampered_byte_is_corrupt(where: str) -> None:
    data = os.urandom(300)
    blob = bytearray(encrypt(data, record_size=100))
    offset = {"magic": 0, "nonce prefix": 6, "length": HEADER_SIZE + 3, "ciphertext": HEADER_SIZE + 4 + 50,
              "tag": HEADER_SIZE + 4 + 100 + 5, "last record": len(blob) - 1}[where]
    blob[offset] ^= 0x01
    with pytest.raises(RecordingCorrupt):
        decrypt(bytes(blob))
    with pytest.raises(RecordingCorrupt):
        b"".join(EncryptedFile(io.BytesIO(bytes(blob)), KEY))


def test_truncated_finished_file_is_corrupt() -> None:
    blob = encrypt(os.urandom(300), record_size=100)
    record = 100 + OVERHEAD
    for cut in (len(blob) - 1, HEADER_SIZE + 2 * record, HEADER_SIZE + record, HEADER_SIZE + 5, HEADER_SIZE, 5):
        with pytest.raises(RecordingCorrupt):
            decrypt(blob[:cut])
        with pytest.raises(RecordingCorrupt):
            b"".join(EncryptedFile(io.BytesIO(blob[:cut]), KEY))


def test_records_cannot_be_reordered_or_followed_by_data() -> None:
    blob = encrypt(os.urandom(300), record_size=100)
    record = 100 + OVERHEAD
    first, second = blob[HEADER_SIZE:HEADER_SIZE + record], blob[HEADER_SIZE + record:HEADER_SIZE + 2 * record]
    swapped = blob[:HEADER_SIZE] + second + first + blob[HEADER_SIZE + 2 * record:]
    with pytest.raises(RecordingCorrupt):
        decrypt(swapped)
    with pytest.raises(RecordingCorrupt, match="after the final"):
        decrypt(blob + b"x")
    # a record from another file (other nonce prefix) does not authenticate here
    other = encrypt(os.urandom(300), record_size=100)
    with pytest.raises(RecordingCorrupt):
        decrypt(blob[:HEADER_SIZE] + other[HEADER_SIZE:])


def test_journal_stream_stops_quietly_at_a_torn_record() -> None:
    records = [b"H{}", b"A" + os.urandom(321), b"E{}"]
    blob = journal(records)
    reader = RecordReader(io.BytesIO(blob), KEY, require_final=False)
    assert list(reader) == records and not reader.truncated
    for cut in (len(blob) - 1, len(blob) - 18, len(blob) - (3 + OVERHEAD) + 2):
        reader = RecordReader(io.BytesIO(blob[:cut]), KEY, require_final=False)
        assert list(reader) == records[:2] and reader.truncated
    garbled = bytearray(blob)
    garbled[-1] ^= 0xFF
    reader = RecordReader(io.BytesIO(bytes(garbled)), KEY, require_final=False)
    assert list(reader) == records[:2] and reader.truncated
    with pytest.raises(RecordingCorrupt):  # a journal has no final record
        list(iter_records(io.BytesIO(blob), KEY, require_final=True))
    with pytest.raises(RecordingCorrupt):  # not even a header
        list(RecordReader(io.BytesIO(blob[:5]), KEY, require_final=False))


def test_writer_modes_are_not_mixed() -> None:
    with pytest.raises(ValueError):
        EncryptedWriter(io.BytesIO(), KEY, record_size=None).write(b"x")
    with pytest.raises(ValueError):
        EncryptedWriter(io.BytesIO(), KEY).write_record(b"x")
    writer = EncryptedWriter(io.BytesIO(), KEY)
    writer.close()
    with pytest.raises(ValueError):
        writer.close()


PLAIN = os.urandom(5 * 64 + 17)
SMALL_RECORDS = encrypt(PLAIN, record_size=64)
BIG = os.urandom(2 * RECORD_SIZE + 999)
BIG_RECORDS = encrypt(BIG)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_range_reads_equal_the_plaintext_slice(data: st.DataObject) -> None:
    encrypted = EncryptedFile(io.BytesIO(SMALL_RECORDS), KEY)
    start = data.draw(st.integers(0, len(PLAIN)))
    end = data.draw(st.integers(start, len(PLAIN)))
    assert b"".join(encrypted.read_range(start, end)) == PLAIN[start:end]


@pytest.mark.parametrize("start,end", [(0, 1), (RECORD_SIZE - 10, RECORD_SIZE + 10), (RECORD_SIZE, 2 * RECORD_SIZE),
                                       (1, len(BIG)), (len(BIG) - 1, len(BIG)), (5, 5)])
def test_range_reads_with_real_record_size(start: int, end: int) -> None:
    encrypted = EncryptedFile(io.BytesIO(BIG_RECORDS), KEY)
    assert encrypted.size == len(BIG)
    assert b"".join(encrypted.read_range(start, end)) == BIG[start:end]


def test_range_read_decrypts_only_its_records() -> None:
    blob = bytearray(SMALL_RECORDS)
    blob[HEADER_SIZE + 10] ^= 0x01  # damage record 0
    encrypted = EncryptedFile(io.BytesIO(bytes(blob)), KEY)
    assert encrypted.size == len(PLAIN)  # from the file size, nothing decrypted
    assert b"".join(encrypted.read_range(64, len(PLAIN))) == PLAIN[64:]
    with pytest.raises(RecordingCorrupt):
        b"".join(encrypted.read_range(63, 65))
    with pytest.raises(ValueError):
        encrypted.read_range(10, len(PLAIN) + 1)


def test_range_read_of_the_end_checks_the_final_record() -> None:
    record = 64 + OVERHEAD
    cut = SMALL_RECORDS[:HEADER_SIZE + 5 * record]  # lost the final record: now looks like 5 full records
    encrypted = EncryptedFile(io.BytesIO(cut), KEY)
    assert b"".join(encrypted.read_range(0, 64)) == PLAIN[:64]
    with pytest.raises(RecordingCorrupt):
        b"".join(encrypted.read_range(encrypted.size - 1, encrypted.size))
