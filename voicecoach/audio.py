"""Audio format helpers shared by speech, listening and devices.

Everything inside voicecoach is 16 kHz mono signed 16-bit, handled as numpy int16 arrays and
moved in 10 ms frames; conversion happens once, at the edges (WAV files, devices).
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Union

import numpy as np

RATE = 16000
"""Sample rate of every signal inside voicecoach (Hz)."""
FRAME = 160
"""Samples per frame: 10 ms at RATE, the unit of every loop."""
FRAME_SECONDS = FRAME / RATE

PathLike = Union[str, Path]


class AudioFormatError(ValueError):
    """A WAV file that cannot be read as PCM audio."""


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Linear-interpolation resampling of int16 mono audio (adequate for speech at 8-48 kHz)."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.int16, copy=False)
    n_out = int(round(len(samples) * dst_rate / src_rate))
    positions = np.arange(n_out) * (src_rate / dst_rate)
    out = np.interp(positions, np.arange(len(samples)), samples.astype(np.float32))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def to_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    """Average interleaved channels into one."""
    if channels == 1:
        return samples
    return samples.reshape(-1, channels).mean(axis=1).astype(samples.dtype)


def read_wav(path: PathLike, rate: int = RATE) -> np.ndarray:
    """Read a PCM WAV of any rate, width and channel count as mono int16 at `rate`."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        data = np.frombuffer(raw, "<i2")
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        data = ((b[:, 2].astype(np.int8).astype(np.int32) << 8) | b[:, 1]).astype(np.int16)
    elif width == 4:
        data = (np.frombuffer(raw, "<i4") >> 16).astype(np.int16)
    else:
        raise AudioFormatError(f"{path}: unsupported sample width {width}")
    return resample(to_mono(data, channels), src_rate, rate)


def write_wav(path: PathLike, samples: np.ndarray, rate: int = RATE) -> None:
    """Write mono int16 samples as a 16-bit PCM WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def rms_dbfs(samples: np.ndarray) -> float:
    """Level of a block in dB relative to full scale (-120 for digital silence)."""
    if len(samples) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20 * np.log10(rms / 32768) if rms > 0 else -120.0


def onsets(samples: np.ndarray, threshold_db: float = -40.0, min_silence: float = 0.08,
           rate: int = RATE) -> list:
    """Times (s) where sound starts after at least `min_silence` of quiet, to the sample.

    Used to measure where speech really lands in a recording (counts on the second, silence
    after a cut) rather than trusting the scheduler's own account.
    """
    level = 32768 * 10 ** (threshold_db / 20)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > level)
    if len(loud) == 0:
        return []
    gaps = np.flatnonzero(np.diff(loud) > min_silence * rate)
    starts = np.concatenate([[loud[0]], loud[gaps + 1]])
    return [float(s) / rate for s in starts]
