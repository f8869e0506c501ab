"""The coach's output: clips placed on the session timeline to the sample, cut within a frame.

The player produces the speaker signal one 10 ms frame at a time, so a cut is heard at the
next frame (plus the device's own buffer), with a short fade so it does not click. It keeps a
record of everything it played, and when, so the listener can tell the coach's own voice from
the person's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from voicecoach.audio import FRAME, RATE

FADE = 48
"""Samples of fade-out on a cut (3 ms): long enough not to click, short enough to be instant."""


@dataclass
class Played:
    """One clip on the timeline: what it says, where its words fall, and when it ended."""

    text: str
    start: float
    end: float
    words: Tuple[Tuple[str, float, float], ...] = ()
    cut_at: Optional[float] = None

    def words_at(self, t0: float, t1: float, margin: float) -> List[str]:
        """Words of this clip sounding between t0 and t1 (session seconds), give or take margin."""
        stop = self.cut_at if self.cut_at is not None else self.end
        return [w for w, a, b in self.words
                if self.start + a - margin <= t1 and t0 <= min(self.start + b, stop) + margin]


@dataclass
class _Voice:
    samples: np.ndarray
    start_sample: int
    played: Played


@dataclass
class Player:
    """Mixes scheduled clips into frames; `frame(t)` renders [t, t + 10 ms)."""

    history_seconds: float = 30.0
    timeline: List[Played] = field(default_factory=list)
    _voices: List[_Voice] = field(default_factory=list)
    _next_sample: int = 0

    def schedule(self, text: str, samples: np.ndarray, at: float,
                 words: Sequence[Tuple[str, float, float]] = ()) -> Played:
        """Play `samples` starting exactly at session time `at` (s)."""
        start = int(round(at * RATE))
        played = Played(text, start / RATE, (start + len(samples)) / RATE, tuple(words))
        self._voices.append(_Voice(samples.astype(np.float32), start, played))
        self.timeline.append(played)
        return played

    def cut(self, at: float) -> None:
        """Silence everything playing or scheduled from session time `at` (or the next frame)."""
        cut_sample = max(int(round(at * RATE)), self._next_sample)
        alive = []
        for v in self._voices:
            keep = cut_sample - v.start_sample
            if keep <= 0:
                self.timeline.remove(v.played)
                continue
            if keep < len(v.samples):
                tail = v.samples[keep:keep + FADE]
                v.samples = np.concatenate([v.samples[:keep], tail * np.linspace(1, 0, len(tail))])
                v.played.cut_at = cut_sample / RATE
            alive.append(v)
        self._voices = alive

    @property
    def busy(self) -> bool:
        return bool(self._voices)

    def frame(self) -> np.ndarray:
        """The next 10 ms of speaker signal (int16)."""
        start, end = self._next_sample, self._next_sample + FRAME
        out = np.zeros(FRAME, np.float32)
        alive = []
        for v in self._voices:
            a = max(start, v.start_sample)
            b = min(end, v.start_sample + len(v.samples))
            if a < b:
                out[a - start:b - start] += v.samples[a - v.start_sample:b - v.start_sample]
            if v.start_sample + len(v.samples) > end:
                alive.append(v)
        self._voices = alive
        self._next_sample = end
        self._forget(end / RATE)
        return np.clip(out, -32768, 32767).astype(np.int16)

    @property
    def now(self) -> float:
        """Session time of the next frame to be rendered."""
        return self._next_sample / RATE

    def speaking(self, t0: float, t1: float, margin: float = 0.25) -> List[str]:
        """Words the coach was saying between t0 and t1: the listener discounts these."""
        words: List[str] = []
        for p in self.timeline:
            if p.start - margin <= t1 and t0 <= p.end + margin:
                words += p.words_at(t0, t1, margin)
        return words

    def _forget(self, now: float) -> None:
        """Keep the timeline bounded: old entries can no longer be confused with what is heard."""
        horizon = now - self.history_seconds
        if self.timeline and self.timeline[0].end < horizon:
            self.timeline = [p for p in self.timeline if p.end >= horizon]
