"""Resampling: band-limited both ways (no aliasing down, no images up), the length contract,
and a stream resampled block by block equals the whole signal resampled at once."""

from __future__ import annotations

import numpy as np
import pytest

from voicecoach.audio import Resampler, resample

RATES = [8000, 11025, 14083, 16000, 22050, 44100, 48000]


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 10000) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.int16)


def power_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x.astype(np.float64))) + 1e-12))


def test_a_1khz_tone_survives_48k_to_16k():
    x = tone(1000, 48000)
    y = resample(x, 48000, 16000)
    assert abs(power_db(y[100:-100]) - power_db(x[300:-300])) < 0.5


def test_content_above_8khz_does_not_alias_into_16k_audio():
    x = tone(11000, 48000)   # linear interpolation folds this to 5 kHz at nearly full level
    y = resample(x, 48000, 16000)
    assert power_db(y) - power_db(x) <= -40


def test_upsampling_8k_leaves_no_images():
    y = resample(tone(1000, 8000), 8000, 16000)[400:-400].astype(np.float64)
    power = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    assert 10 * np.log10(power[freqs > 4200].sum() / power.sum()) <= -40


@pytest.mark.parametrize("src", RATES)
@pytest.mark.parametrize("dst", RATES)
def test_length_is_rounded_ratio_and_int16(src, dst):
    rng = np.random.default_rng(src + dst)
    for n in (0, 1, 2, 3, 80, 159, 441, 4801):
        y = resample(rng.integers(-30000, 30000, n).astype(np.int16), src, dst)
        assert y.dtype == np.int16 and len(y) == round(n * dst / src), n


@pytest.mark.parametrize("dst", [14083, 17911])
def test_odd_ratios_keep_a_tone_at_its_level_and_pitch(dst):
    """Speed perturbation resamples by ratios with thousands of phases (blended, not tabled)."""
    y = resample(tone(1000, 16000), 16000, dst)[200:-200].astype(np.float64)
    assert abs(power_db(y) - power_db(tone(1000, 16000))) < 0.1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.fft.rfftfreq(len(y), 1 / dst)[np.argmax(spectrum)] - 1000) < 2


def test_full_scale_input_clips_rather_than_wraps():
    square = np.where(np.arange(4800) % 96 < 48, 32767, -32768).astype(np.int16)
    y = resample(square, 48000, 16000)   # Gibbs overshoot beyond full scale
    assert y.max() == 32767 and y.min() == -32768
    assert np.all(np.sign(y[100:-100:32].astype(int)) != 0)


@pytest.mark.parametrize("src,dst", [(48000, 16000), (44100, 16000), (22050, 16000), (11025, 16000),
                                     (8000, 16000), (16000, 44100), (16000, 48000), (16000, 8000),
                                     (16000, 14083), (16000, 17911)])
def test_streamed_blocks_equal_the_whole_signal(src, dst):
    rng = np.random.default_rng(7)
    x = rng.integers(-20000, 20000, 3 * src // 2).astype(np.int16)
    whole = resample(x, src, dst)
    stream = Resampler(src, dst)
    for sizes in ([1, 7, 160, 441, 1000, 3, 2049], [src // 100], [len(x)]):
        parts, i, k = [], 0, 0
        while i < len(x):
            parts.append(stream.process(x[i:i + sizes[k % len(sizes)]]))
            i, k = i + sizes[k % len(sizes)], k + 1
        parts.append(stream.flush())   # and flush starts the next stream afresh
        assert np.array_equal(np.concatenate(parts), whole), sizes


def test_stream_lags_by_its_latency_only():
    stream = Resampler(48000, 16000)
    out = [len(stream.process(np.zeros(480, np.int16))) for _ in range(100)]
    assert sum(out) == 16000 - round(stream.latency * 16000) and stream.latency < 0.002
    assert set(out[1:]) == {160}   # 10 ms in, 10 ms out: no drift once started


def _wav(path, samples: np.ndarray, rate: int, channels: int, width: int) -> None:
    import wave
    data = samples.astype("<i4") << 16 if width == 4 else samples.astype("<i2")
    raw = data.tobytes()
    if width == 3:               # the top three bytes of each 32-bit sample
        raw = (samples.astype("<i4") << 16).view(np.uint8).reshape(-1, 4)[:, 1:].tobytes()
    elif width == 1:
        raw = ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


@pytest.mark.parametrize("rate,channels,width", [(16000, 1, 2), (44100, 2, 2), (48000, 1, 3), (8000, 2, 1),
                                                 (22050, 1, 4)])
def test_a_wav_streamed_in_blocks_is_the_whole_file_read_at_once(tmp_path, rate, channels, width):
    """`voicecoach listen --file` hears a file block by block: the same samples as reading it all."""
    from voicecoach.audio import read_wav, to_mono, wav_blocks
    rng = np.random.default_rng(rate)
    samples = (rng.standard_normal(int(rate * 2.37) * channels) * 5000).astype(np.int16)
    path = tmp_path / "x.wav"
    _wav(path, samples, rate, channels, width)
    whole = read_wav(path)
    assert len(whole) == round(len(samples) // channels * 16000 / rate)
    assert np.array_equal(np.concatenate(list(wav_blocks(path, seconds=0.3))), whole)
    if width == 2:               # and what was written comes back (resampled where it must be)
        assert np.array_equal(whole, resample(to_mono(samples, channels), rate, 16000))


def test_a_long_file_is_heard_in_little_memory(tmp_path):
    """A 2-minute WAV (3.8 MB) goes through the file microphone holding about a second of it."""
    import tracemalloc
    from voicecoach.hearing.words import file_frames
    path = tmp_path / "long.wav"
    _wav(path, (np.random.default_rng(0).standard_normal(16000 * 120) * 3000).astype(np.int16), 16000, 1, 2)
    tracemalloc.start()
    try:
        frames = sum(1 for _ in file_frames(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames == 120 * 100 + 50            # every 10 ms, then the flushing half second
    assert peak < 500_000, peak
