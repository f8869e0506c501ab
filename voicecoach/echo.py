"""Echo cancellation against the played signal: the coach knows exactly what it plays.

The speaker beside the microphone puts the coach's own voice into what it hears, at about the
level of a person. The canceller keeps the last seconds of what was played, tracks the echo's
delay by cross-correlation while the coach speaks (ten times a second), fits a short filter
around that delay, and subtracts the filtered reference from each microphone frame before the
spotter hears it. Through PulseAudio's loopback at 0 dB this removes a median 20-25 dB of
the coach's voice (measured live, see README); room reverberation beyond +-0.5 ms is
left to the spotter and to the own-voice discount.
"""

from __future__ import annotations

import threading
from typing import Optional, Tuple

import numpy as np

from voicecoach.audio import RATE

MAX_DELAY = 0.8
"""Longest echo path searched (s): device buffers plus air."""
WINDOW = int(0.4 * RATE)
"""Samples of microphone audio per delay estimate (0.4 s)."""
EVERY = int(0.1 * RATE)
"""How often the delay is estimated anew: a live audio stack's buffers shift the echo's delay
by tens of milliseconds within seconds (measured through PulseAudio), so it is tracked."""
MIN_CORRELATION = 0.5
"""Below this normalized correlation the estimate is not trusted (the person is louder)."""
HALF = 8
"""The echo filter spans the delay +- this many samples (0.5 ms)."""
GAIN_ENOUGH = 10 ** (-30 / 10)
"""One gain is used when it leaves less than this share of the microphone's power (-30 dB)."""
SILENT = 100.0
"""RMS of played audio below which there is no echo worth estimating from."""
RESYNC = int(0.1 * RATE)
"""A live frame's stamp is the wall clock at its read, which jitters with the audio stack's
bursts; frames are counted as one contiguous stream unless a stamp strays this far (a gap)."""


class EchoCanceller:
    """Frames of played audio in (`played`), cleaned microphone frames out (`clean`)."""

    def __init__(self, seconds: float = 3.0) -> None:
        self._ref = np.zeros(int(seconds * RATE), np.float32)
        self._ref_end: Optional[int] = None          # session sample just after the newest played
        self._mic = np.zeros(WINDOW, np.float32)
        self._mic_end = 0
        self._next: Optional[int] = None             # where the next frame starts, if contiguous
        self._since_estimate = 0
        self.model: Optional[Tuple[int, np.ndarray]] = None   # (delay in samples, filter taps)
        self._lock = threading.Lock()

    def played(self, start: float, frame: np.ndarray) -> None:
        """The speaker played `frame` from session time `start`."""
        with self._lock:
            self._ref = np.roll(self._ref, -len(frame))
            self._ref[-len(frame):] = frame
            self._ref_end = int(round(start * RATE)) + len(frame)

    def clean(self, start: float, frame: np.ndarray) -> np.ndarray:
        """The microphone frame heard from session time `start`, without the coach's echo."""
        stamp = int(round(start * RATE))
        if self._next is None or abs(stamp - self._next) > RESYNC:
            self._next = stamp
        begin, self._next = self._next, self._next + len(frame)
        self._mic = np.roll(self._mic, -len(frame))
        self._mic[-len(frame):] = frame
        self._mic_end = begin + len(frame)
        self._since_estimate += len(frame)
        if self._since_estimate >= EVERY:
            self._since_estimate = 0
            self._estimate()
        if self.model is None:
            return frame
        delay, taps = self.model
        ref = self._reference(begin - delay - HALF, len(frame) + 2 * HALF)
        echo = np.convolve(ref, taps, "valid")
        return np.clip(frame - echo, -32768, 32767).astype(np.int16)

    def _reference(self, begin: int, n: int) -> np.ndarray:
        """Played samples [begin, begin + n) in session samples; zeros where not held."""
        with self._lock:
            out = np.zeros(n, np.float32)
            if self._ref_end is None:
                return out
            lo = begin - (self._ref_end - len(self._ref))
            a, b = max(lo, 0), min(lo + n, len(self._ref))
            if a < b:
                out[a - lo:b - lo] = self._ref[a:b]
            return out

    def _estimate(self) -> None:
        """Delay by cross-correlation, then a short least-squares filter around it: it fits the
        fractional delay and resampling of a real audio path, where one gain left ~14 dB. Where
        one gain already removes 30 dB (an exact electrical or file echo), the gain is
        kept: a filter fit to one word's spectrum can extrapolate badly to the next."""
        max_lag = int(MAX_DELAY * RATE)
        ref = self._reference(self._mic_end - WINDOW - max_lag, WINDOW + max_lag)
        if float(np.dot(ref, ref)) < WINDOW * SILENT ** 2:     # the coach was (nearly) silent
            return
        n = 1 << int(np.ceil(np.log2(len(ref) + WINDOW)))
        # corr[m] = sum_j ref[j + m] * mic[j]: the microphone lags the reference by max_lag - m
        corr = np.fft.irfft(np.fft.rfft(ref, n) * np.fft.rfft(self._mic, n).conj(), n)[:max_lag + 1]
        power = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
        energy = np.sqrt(power[WINDOW:WINDOW + max_lag + 1] - power[:max_lag + 1] + 1e-9)
        norm = corr / (energy * (np.linalg.norm(self._mic) + 1e-9))
        norm[energy ** 2 < WINDOW * SILENT ** 2] = 0.0      # a lag that aligns with silence
        best = int(np.argmax(norm))
        if norm[best] < MIN_CORRELATION:
            return
        lag = max_lag - best                                # echo delay in samples
        ref = self._reference(self._mic_end - WINDOW - lag - HALF, WINDOW + 2 * HALF)
        rows = np.lib.stride_tricks.sliding_window_view(ref, 2 * HALF + 1)[:, ::-1]
        gram, cross = rows.T @ rows, rows.T @ self._mic
        ridge = np.eye(len(gram)) * (1e-3 * np.trace(gram) / len(gram) + 1e-6)
        gain = cross[HALF] / (gram[HALF, HALF] + 1e-9)
        mic_power = float(self._mic @ self._mic)
        if mic_power - gain * cross[HALF] < GAIN_ENOUGH * mic_power:   # what one gain leaves
            taps = np.zeros(len(cross))
            taps[HALF] = gain
        else:
            taps = np.linalg.solve(gram + ridge, cross)
        self.model = (lag, taps.astype(np.float32))
