"""Echo cancellation against the played signal: the coach knows exactly what it plays.

The speaker beside the microphone puts the coach's own voice into what it hears, at about the
level of a person. The canceller keeps the last seconds of what was played, finds the echo's
delay and gain by cross-correlation while the coach speaks, and subtracts the delayed, scaled
signal from each microphone frame before the spotter hears it. A delay-and-gain model is exact
for a virtual or electrical coupling and removes the direct path in a room; reverberation is
left to the spotter and to the own-voice discount.
"""

from __future__ import annotations

import threading
from typing import Optional, Tuple

import numpy as np

from voicecoach.audio import RATE

MAX_DELAY = 0.8
"""Longest echo path searched (s): device buffers plus air."""
WINDOW = RATE
"""Samples of microphone audio per delay estimate (1 s)."""
MIN_CORRELATION = 0.5
"""Below this normalized correlation the estimate is not trusted (the person is louder)."""


class EchoCanceller:
    """Frames of played audio in (`played`), cleaned microphone frames out (`clean`)."""

    def __init__(self, seconds: float = 3.0) -> None:
        self._ref = np.zeros(int(seconds * RATE), np.float32)
        self._ref_end: Optional[int] = None          # session sample just after the newest played
        self._mic = np.zeros(WINDOW, np.float32)
        self._mic_end = 0
        self._since_estimate = 0
        self.model: Optional[Tuple[int, float]] = None   # (delay in samples, gain)
        self._lock = threading.Lock()

    def played(self, start: float, frame: np.ndarray) -> None:
        """The speaker played `frame` from session time `start`."""
        with self._lock:
            self._ref = np.roll(self._ref, -len(frame))
            self._ref[-len(frame):] = frame
            self._ref_end = int(round(start * RATE)) + len(frame)

    def clean(self, start: float, frame: np.ndarray) -> np.ndarray:
        """The microphone frame heard from session time `start`, without the coach's echo."""
        begin = int(round(start * RATE))
        self._mic = np.roll(self._mic, -len(frame))
        self._mic[-len(frame):] = frame
        self._mic_end = begin + len(frame)
        self._since_estimate += len(frame)
        if self._since_estimate >= WINDOW // 2:
            self._since_estimate = 0
            self._estimate()
        if self.model is None:
            return frame
        delay, gain = self.model
        echo = self._reference(begin - delay, len(frame))
        return np.clip(frame - gain * echo, -32768, 32767).astype(np.int16)

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
        """Delay and gain from the last second of microphone against what was played."""
        max_lag = int(MAX_DELAY * RATE)
        ref = self._reference(self._mic_end - WINDOW - max_lag, WINDOW + max_lag)
        if float(np.dot(ref, ref)) < WINDOW * 100.0 ** 2:     # the coach was (nearly) silent
            return
        n = 1 << int(np.ceil(np.log2(len(ref) + WINDOW)))
        # corr[m] = sum_j ref[j + m] * mic[j]: the microphone lags the reference by max_lag - m
        corr = np.fft.irfft(np.fft.rfft(ref, n) * np.fft.rfft(self._mic, n).conj(), n)[:max_lag + 1]
        energy = np.sqrt(np.convolve(ref ** 2, np.ones(WINDOW), "valid")[:max_lag + 1] + 1e-9)
        norm = corr / (energy * (np.linalg.norm(self._mic) + 1e-9))
        best = int(np.argmax(norm))
        if norm[best] < MIN_CORRELATION:
            return
        lag = max_lag - best                                # echo delay in samples
        aligned = self._reference(self._mic_end - WINDOW - lag, WINDOW)
        gain = float(np.dot(self._mic, aligned) / (np.dot(aligned, aligned) + 1e-9))
        self.model = (lag, gain)
