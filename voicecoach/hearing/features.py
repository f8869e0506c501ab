"""Log-mel features, 10 ms at a time: the same numbers streamed live or computed over a file.

The learned spotter (learned.py) sees a second of these; training (bench/train_spotter.py)
computes them with `logmel` over whole clips, and `LogMelStream` gives frame for frame the
same values from 10 ms chunks.
"""

from __future__ import annotations

import numpy as np

from voicecoach.audio import FRAME, RATE

WINDOW = 400            # 25 ms analysis window, ending at each 10 ms frame's end
NFFT = 512
BANDS = 40
HISTORY = WINDOW - FRAME
FLOOR = 1e5
"""Added to each band's power before the log: about a room's quietest hiss at int16 scale, so
digital silence and a quiet room look alike (they did not, and the network fired on the step)."""


def _mel_matrix() -> np.ndarray:
    """Triangular filters from 60 Hz to 7.6 kHz on the mel scale."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)
    edges = 700 * (10 ** (np.linspace(mel(np.array(60.0)), mel(np.array(7600.0)), BANDS + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(NFFT, 1 / RATE)
    out = np.zeros((BANDS, len(bins)))
    for b in range(BANDS):
        lo, mid, hi = edges[b:b + 3]
        out[b] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
    return out


MEL = _mel_matrix()
HANN = np.hanning(WINDOW)


def logmel(samples: np.ndarray) -> np.ndarray:
    """(frames, BANDS) for int16 16 kHz audio: one row per whole 10 ms frame."""
    x = np.concatenate([np.zeros(HISTORY), np.asarray(samples, np.float64)])
    n = (len(x) - HISTORY) // FRAME
    if n <= 0:
        return np.zeros((0, BANDS))
    idx = np.arange(WINDOW)[None, :] + FRAME * np.arange(n)[:, None]
    return _log_bands(x[idx])


def _log_bands(windows: np.ndarray) -> np.ndarray:
    """Log mel-band power of 25 ms windows (rows), or of one window."""
    power = np.abs(np.fft.rfft(windows * HANN, NFFT)) ** 2
    return np.log(power @ MEL.T + FLOOR)


class LogMelStream:
    """Feeds 10 ms frames, returns their feature rows (keeps the 15 ms of history it needs)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._tail = np.zeros(HISTORY)

    def frame(self, samples: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._tail, np.asarray(samples, np.float64)])
        self._tail = x[-HISTORY:]
        return _log_bands(x[-WINDOW:])
