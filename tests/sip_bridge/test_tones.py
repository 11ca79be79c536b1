import numpy as np
import pytest

from sip_bridge.tones import detect_dtmf, detect_tone, dtmf_tone, goertzel_power, sine

RATE = 8000


def add_noise(pcm: bytes, level: float, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.frombuffer(pcm, "<i2").astype(np.float64) + rng.normal(0, level * 32767, len(pcm) // 2)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def test_sine_shape_and_level() -> None:
    pcm = sine(1000, 0.5, amplitude=0.5)
    x = np.frombuffer(pcm, "<i2")
    assert len(x) == 4000
    assert abs(int(x.max()) - 16384) < 10
    assert sine([350, 440], 0.01, amplitude=0.6) != sine(350, 0.01, amplitude=0.6)
    assert sine(440, 0) == b""
    assert np.abs(np.frombuffer(sine([400, 400], 0.1, amplitude=0.9), "<i2")).max() == 32767  # clipped


def test_goertzel_power_is_relative_to_signal_energy() -> None:
    pcm = sine(1000, 0.2)
    assert goertzel_power(pcm, 1000) == pytest.approx(1.0, abs=0.01)
    assert goertzel_power(sine(1000, 0.2, amplitude=0.01), 1000) == pytest.approx(1.0, abs=0.01)
    assert goertzel_power(pcm, 1200) < 0.01
    assert goertzel_power(sine([697, 1209], 0.2), 697) == pytest.approx(0.5, abs=0.02)
    assert goertzel_power(silence(0.1), 1000) == 0.0
    assert goertzel_power(b"", 1000) == 0.0


def test_detect_tone_in_noise() -> None:
    pcm = add_noise(sine(425, 1.0), 0.03)  # European dial tone, about 17 dB SNR
    assert detect_tone(pcm, 425)
    assert not detect_tone(pcm, 480)
    assert not detect_tone(add_noise(silence(1.0), 0.1), 425)


def test_detect_dtmf_123_hash_with_noise() -> None:
    pcm = silence(0.03) + b"".join(dtmf_tone(d) + silence(0.05) for d in "123#")
    assert detect_dtmf(pcm) == "123#"
    assert detect_dtmf(add_noise(pcm, 0.02)) == "123#"


def test_detect_dtmf_every_key_and_repeats() -> None:
    keys = "0123456789*#ABCD11"
    pcm = b"".join(dtmf_tone(d, 0.06) + silence(0.04) for d in keys)
    assert detect_dtmf(pcm) == keys


def test_detect_dtmf_ignores_short_blips_single_tones_and_quiet_signals() -> None:
    assert detect_dtmf(dtmf_tone("5", 0.02)) == ""
    assert detect_dtmf(sine(697, 0.2)) == ""
    assert detect_dtmf(sine([697, 1209], 0.2, amplitude=0.003)) == ""  # below -40 dBFS
    assert detect_dtmf(add_noise(silence(0.5), 0.1)) == ""
    assert detect_dtmf(b"") == ""


def test_detect_dtmf_twist_limits() -> None:
    def twisted(low: float, high: float) -> bytes:
        a = np.frombuffer(sine(770, 0.1, amplitude=low), "<i2").astype(np.int32)
        b = np.frombuffer(sine(1336, 0.1, amplitude=high), "<i2").astype(np.int32)
        return (a + b).astype("<i2").tobytes()

    assert detect_dtmf(twisted(0.3, 0.3 * 10 ** (-6 / 20))) == "5"  # high 6 dB weaker: accepted
    assert detect_dtmf(twisted(0.3, 0.3 * 10 ** (-10 / 20))) == ""  # 10 dB weaker: rejected
    assert detect_dtmf(twisted(0.3 * 10 ** (-6 / 20), 0.3)) == ""  # high 6 dB stronger: rejected


def test_pcm_and_digit_validation() -> None:
    with pytest.raises(ValueError, match=r"^16-bit PCM must have an even number of bytes, got 3$"):
        goertzel_power(b"abc", 1000)
    with pytest.raises(ValueError, match=r"^not a DTMF digit: 'E'$"):
        dtmf_tone("E")
    with pytest.raises(ValueError, match=r"^duration must not be negative, got -1$"):
        sine(440, -1)
