"""Audio format helpers shared by speech, listening and devices.

Everything inside voicecoach is 16 kHz mono signed 16-bit, handled as numpy int16 arrays and
moved in 10 ms frames; conversion happens once, at the edges (WAV files, devices).
"""

from __future__ import annotations

import math
import wave
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

RATE = 16000
"""Sample rate of every signal inside voicecoach (Hz)."""
FRAME = 160
"""Samples per frame: 10 ms at RATE, the unit of every loop."""
FRAME_SECONDS = FRAME / RATE

PathLike = Union[str, Path]


class AudioFormatError(ValueError):
    """A WAV file that cannot be read as PCM audio."""


RESAMPLE_ROLLOFF = 0.9
"""Resampler cutoff as a fraction of the lower Nyquist frequency (7.2 kHz for 16 kHz audio):
flat to ~0.8 of it, at least 80 dB down from the lower Nyquist frequency on, so nothing above
it folds back into the band (downsampling) and no images appear above it (upsampling)."""
RESAMPLE_TAPS = 25
"""Half the filter's length in samples at the lower rate: 80 dB over a 0.1-of-Nyquist transition."""
_KAISER_BETA = 7.86   # 80 dB stopband (Kaiser's formula: 0.1102 * (80 - 8.7))
_MAX_PHASES = 1024
"""Ratios with more phases than this (16000 -> 14083, say) blend the two nearest of 512 tabled
phases: building a table per phase would cost more than the resampling (error < -90 dB)."""


class Resampler:
    """Band-limited (Kaiser-windowed sinc, polyphase) resampling of int16 mono audio, streamed.

    Blocks of any length go in; what comes out, plus `flush()` at the end, is exactly what
    `resample()` gives for the whole signal, so a device read 10 ms at a time has no clicks at
    block edges and no drift from rounding each block's length. Output lags input by `latency`
    seconds (the filter's look-ahead: 25 samples at the lower rate, 1.6 ms for 16 kHz): a
    streamed sample is emitted once the input it needs has arrived.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, not {src_rate} and {dst_rate}")
        common = math.gcd(src_rate, dst_rate)
        self.up, self.down = dst_rate // common, src_rate // common
        low = min(src_rate, dst_rate)
        width = RESAMPLE_TAPS * src_rate / low          # half-length, in input samples
        self._reach = math.ceil(width)
        self.latency = self._reach / src_rate
        # output n sits at input time n*down/up = base + phase/up; tap j weighs input base + j
        self._phases = self.up if self.up <= _MAX_PHASES else _MAX_PHASES // 2
        tau = (np.arange(self._phases + 1) / self._phases)[:, None] - np.arange(-self._reach, self._reach + 1)
        cutoff = RESAMPLE_ROLLOFF * low / src_rate      # cycles per input sample, times 2
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (tau / width) ** 2, 0, None)))
        taps = cutoff * np.sinc(cutoff * tau) * np.where(np.abs(tau) <= width, window, 0.0)
        self._taps = taps / taps.sum(axis=1, keepdims=True)   # every phase passes DC at gain 1
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next block starts a new signal."""
        self._buf = np.zeros(self._reach)   # input from sample -reach (silence before the start)
        self._start = -self._reach          # input index of _buf[0]
        self._seen = 0                      # input samples received
        self._next = 0                      # index of the next output sample

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next block; returns every output sample whose input is complete."""
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float64)])
        self._seen += len(block)
        ready = max(((self._seen - self._reach) * self.up - 1) // self.down + 1, self._next)
        return self._emit(ready)

    def flush(self) -> np.ndarray:
        """The rest of the output (the input is over: silence after it); then reset."""
        total = round(Fraction(self._seen * self.up, self.down))
        self._buf = np.concatenate([self._buf, np.zeros(self._reach + 1)])
        out = self._emit(total)
        self.reset()
        return out

    def _emit(self, stop: int, chunk: int = 4096) -> np.ndarray:
        out = np.empty(stop - self._next, np.int16)
        span = np.arange(2 * self._reach + 1)
        for first in range(self._next, stop, chunk):
            n = np.arange(first, min(first + chunk, stop))
            if self.up == 1:   # one phase, evenly spaced inputs: a strided view, no gather
                lo = first * self.down - self._reach - self._start
                rows = sliding_window_view(self._buf, len(span))[lo:lo + len(n) * self.down:self.down]
                y = np.einsum("ij,j->i", rows, self._taps[0])
            else:
                base, phase = np.divmod(n * self.down, self.up)
                rows = self._buf[(base - self._reach - self._start)[:, None] + span]
                if self._phases == self.up:
                    taps = self._taps[phase]
                else:          # between the two nearest tabled phases
                    at = phase * (self._phases / self.up)
                    k = at.astype(np.int64)
                    blend = (at - k)[:, None]
                    taps = self._taps[k] * (1 - blend) + self._taps[k + 1] * blend
                y = np.einsum("ij,ij->i", rows, taps)
            out[first - self._next:first - self._next + len(n)] = np.clip(np.round(y), -32768, 32767)
        self._next = stop
        drop = stop * self.down // self.up - self._reach - self._start   # input no longer needed
        if drop > 0:
            self._buf, self._start = self._buf[drop:], self._start + drop
        return out


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of int16 mono audio; round(len * dst / src) samples come out.

    Cuts off just below the lower Nyquist frequency (see `Resampler`), so a 44.1/48 kHz
    microphone's content above 8 kHz does not alias into 16 kHz audio and upsampled 8 kHz
    clips carry no images. A 10 s clip costs tens of milliseconds of one core (docs/benchmarks.md).
    """
    if src_rate == dst_rate or len(samples) == 0:
        return np.asarray(samples).astype(np.int16, copy=False)
    stream = Resampler(src_rate, dst_rate)
    return np.concatenate([stream.process(samples), stream.flush()])


def to_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    """Average interleaved channels into one."""
    if channels == 1:
        return samples
    return samples.reshape(-1, channels).mean(axis=1).astype(samples.dtype)


def read_wav(path: PathLike, rate: int = RATE) -> np.ndarray:
    """Read a PCM WAV of any rate, width and channel count as mono int16 at `rate`."""
    return np.concatenate([np.zeros(0, np.int16), *wav_blocks(path, rate)])


def wav_blocks(path: PathLike, rate: int = RATE, seconds: float = 1.0) -> Iterator[np.ndarray]:
    """A PCM WAV as mono int16 at `rate`, about `seconds` at a time: an hour-long file is heard
    in a few MB (the blocks, joined, are `read_wav`'s array to the sample)."""
    try:
        w = wave.open(str(path), "rb")
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    with w:
        channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        if width not in (1, 2, 3, 4):
            raise AudioFormatError(f"{path}: unsupported sample width {width}")
        stream = Resampler(src_rate, rate) if src_rate != rate else None
        step = max(int(src_rate * seconds), 1)
        while True:
            try:
                raw = w.readframes(step)
            except (wave.Error, EOFError) as exc:
                raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
            if not raw:
                break
            mono = to_mono(_pcm(raw, width), channels)
            yield stream.process(mono) if stream is not None else mono.astype(np.int16, copy=False)
        if stream is not None:
            yield stream.flush()


def _pcm(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM samples of 1-4 bytes as int16 (the top 16 bits)."""
    if width == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8
    if width == 2:
        return np.frombuffer(raw, "<i2")
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        return ((b[:, 2].astype(np.int8).astype(np.int32) << 8) | b[:, 1]).astype(np.int16)
    return (np.frombuffer(raw, "<i4") >> 16).astype(np.int16)


def write_wav(path: PathLike, samples: np.ndarray, rate: int = RATE) -> None:
    """Write mono int16 samples as a 16-bit PCM WAV."""
    # the file opened first: a path that cannot be written is one OSError, not also wave's
    # "Exception ignored ... Wave_write has no attribute _file" from its half-made writer
    with open(path, "wb") as f, wave.open(f, "wb") as w:
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


def speech_power(samples: np.ndarray) -> float:
    """Mean power of the samples within 20 dB of the peak: a voice's loudness without its gaps,
    to make one voice as loud as another (1.0 for digital silence)."""
    x = samples.astype(np.float64)
    peak = np.abs(x).max() if len(x) else 0.0
    return float(np.mean(x[np.abs(x) > 0.1 * peak] ** 2)) if peak > 0 else 1.0


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
