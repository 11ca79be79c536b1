import warnings

import numpy as np
import pytest

from sip_bridge.g711 import (
    SILENCE,
    alaw_to_pcm,
    decoder_for,
    encoder_for,
    pcm_to_alaw,
    pcm_to_ulaw,
    ulaw_to_pcm,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference coder; removed in Python 3.13

ALL_PCM = np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype("<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_ulaw_encoder_matches_audioop_for_every_sample() -> None:
    assert pcm_to_ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)


def test_alaw_encoder_matches_audioop_for_every_sample() -> None:
    assert pcm_to_alaw(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)


def test_ulaw_decoder_matches_audioop_for_every_code() -> None:
    assert ulaw_to_pcm(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decoder_matches_audioop_for_every_code() -> None:
    assert alaw_to_pcm(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_codes_survive_decode_encode(codec: str) -> None:
    expected = ALL_CODES
    if codec == "PCMU":  # 0x7F is mu-law's "negative zero": it decodes to 0, which encodes as 0xFF
        expected = ALL_CODES[:0x7F] + b"\xff" + ALL_CODES[0x80:]
    assert encoder_for(codec)(decoder_for(codec)(ALL_CODES)) == expected


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_silence_byte_decodes_to_near_zero(codec: str) -> None:
    [sample] = np.frombuffer(decoder_for(codec)(bytes([SILENCE[codec]])), "<i2")
    assert abs(int(sample)) <= 8
    assert encoder_for(codec)(b"\x00\x00") == bytes([SILENCE[codec]])


def test_frame_sizes_and_empty_input() -> None:
    frame = pcm_to_ulaw(bytes(320))
    assert len(frame) == 160 and len(ulaw_to_pcm(frame)) == 320
    assert pcm_to_alaw(b"") == b"" and alaw_to_pcm(b"") == b""


def test_odd_pcm_length_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^16-bit PCM must have an even number of bytes, got 3$"):
        pcm_to_ulaw(b"\x00\x01\x02")


def test_codec_lookup() -> None:
    assert decoder_for("pcma") is alaw_to_pcm and encoder_for("PCMU") is pcm_to_ulaw
    with pytest.raises(ValueError, match=r"^unsupported codec 'G722', expected PCMU or PCMA$"):
        encoder_for("G722")
    with pytest.raises(ValueError, match=r"^unsupported codec 'opus', expected PCMU or PCMA$"):
        decoder_for("opus")
